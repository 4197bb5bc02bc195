package darkport

import (
	"bytes"
	"testing"
)

// fuzzDecoder checks what every decoder promises whatever the bytes: no panic, a
// detail of printable ASCII within its bound, and the same answer twice.
func fuzzDecoder(f *testing.F, dec decoder, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d1, d2 Detail
		ok := dec(data, &d1)
		if dec(data, &d2) != ok || d1.String() != d2.String() {
			t.Fatalf("not deterministic on %q", data)
		}
		for _, c := range d1.b[:d1.n] {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("detail %q holds byte %#x", d1.String(), c)
			}
		}
	})
}

func FuzzCUPS(f *testing.F) {
	fuzzDecoder(f, decodeCUPS,
		cupsExploit,                      // CVE-2024-47176 packet
		[]byte("3 3 ipp://h/printers/x"), // no trailing fields or newline
		[]byte("0 3 http://"),            // scheme without host
		[]byte("ffffffffff 3 http://x/"), // type longer than 8 hex digits
	)
}

func FuzzSSDP(f *testing.F) {
	fuzzDecoder(f, decodeSSDP,
		ssdpMSearch,                          // M-SEARCH ssdp:all
		[]byte("M-SEARCH * HTTP/1.1\r\n"),    // no headers
		[]byte("m-search * HTTP/1.1\nST:\n"), // lower case, bare LF, empty ST
	)
}

func FuzzDNS(f *testing.F) {
	fuzzDecoder(f, decodeDNS,
		dnsQuery(1, 0x0100, "isc.org", 255, 1),                     // ANY
		dnsQuery(0, 0, "_services._dns-sd._udp.local", 12, 0x8001), // mDNS, QU bit
		dnsQuery(1, 0, ".", 2, 1),                                  // root
		append(dnsQuery(1, 0, "a", 1, 1)[:12], 0xc0, 0x0c),         // compression pointer loop
		append(dnsQuery(1, 0, "a", 1, 1)[:12], 63),                 // label longer than the data
	)
}

func FuzzSNMP(f *testing.F) {
	fuzzDecoder(f, decodeSNMP,
		snmpGet,                              // v2c GetRequest public
		[]byte{0x30, 0x84, 0, 0, 0, 1},       // 4-byte long-form length (refused)
		[]byte{0x30, 0x03, 0x02, 0x01, 0x03}, // v3, nothing else
		snmpGet[:10],                         // cut inside the community
	)
}

func FuzzMemcached(f *testing.F) {
	fuzzDecoder(f, decodeMemcached,
		memcachedStats,      // UDP frame header + stats
		[]byte("get k\r\n"), // TCP
		[]byte("\x00\x01\x00\x00\x00\x00\x00\x00stats\r\n"), // datagram count 0
	)
}

func FuzzTLSHello(f *testing.F) {
	hello := clientHello(f, "victim.example")
	fuzzDecoder(f, decodeTLSHello,
		hello,          // crypto/tls ClientHello with SNI
		hello[:9],      // headers only
		nmapSSLv3Hello, // no extensions
		hello[:len(hello)/2],
		append(append([]byte{}, hello[:43]...), 0xff), // session ID length past the data
	)
}

func FuzzSSH(f *testing.F) {
	fuzzDecoder(f, decodeSSH,
		[]byte("SSH-2.0-OpenSSH_9.6\r\n"),
		[]byte("SSH-"), // nothing after the prefix
	)
}

func FuzzRDP(f *testing.F) {
	fuzzDecoder(f, decodeRDP,
		rdpRequest("administrator"),                   // mstsc
		rdpRequest(""),                                // no cookie
		[]byte{3, 0, 0, 11, 255, 0xe0, 0, 0, 0, 0, 0}, // length indicator past the data
	)
}

func FuzzTelnet(f *testing.F) {
	fuzzDecoder(f, decodeTelnet,
		telnetClient,                   // WILL TTYPE, WILL NAWS, DO SGA
		[]byte{0xff, 0xfb},             // cut before the option
		bytes.Repeat(telnetClient, 40), // longer than a detail
	)
}

func FuzzSMB(f *testing.F) {
	fuzzDecoder(f, decodeSMB,
		smb1Negotiate(),                      // SMB1 with three dialects
		smb2Negotiate(),                      // SMB2 with five
		smb2Negotiate()[:70],                 // dialect count past the data
		append(smb1Negotiate()[:40], 2, 'N'), // dialect without its NUL
	)
}

func FuzzHTTP(f *testing.F) {
	fuzzDecoder(f, decodeHTTP,
		[]byte("GET / HTTP/1.1\r\n"),
		[]byte("G / HTTP/1.1"), // method too short
	)
}
