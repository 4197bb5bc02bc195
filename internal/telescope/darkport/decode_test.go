package darkport

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"
)

// The packets below are written out field by field as the protocols lay them out
// (and as nmap's probes and common clients send them), not copied from a decoder.

var cupsExploit = []byte("0 3 http://198.51.100.7:12345/printers/EVIL_PRINTER \"Office\" \"HP LaserJet\"\n")

var ssdpMSearch = []byte("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n")

// dnsQuery builds a query: ID, flags, QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 0,
// then the name as labels, QTYPE and QCLASS.
func dnsQuery(id, flags uint16, name string, qtype, qclass uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = append(b, 0, 1, 0, 0, 0, 0, 0, 0)
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if l != "" {
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
	}
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, qtype)
	return binary.BigEndian.AppendUint16(b, qclass)
}

// snmpGet is an SNMPv2c GetRequest for sysDescr.0 (1.3.6.1.2.1.1.1.0), as
// `snmpget -v2c -c public` sends it.
var snmpGet = []byte{
	0x30, 0x29, // SEQUENCE
	0x02, 0x01, 0x01, // INTEGER version 1 (v2c)
	0x04, 0x06, 'p', 'u', 'b', 'l', 'i', 'c', // OCTET STRING community
	0xa0, 0x1c, // GetRequest-PDU
	0x02, 0x04, 0x12, 0x34, 0x56, 0x78, // request-id
	0x02, 0x01, 0x00, // error-status
	0x02, 0x01, 0x00, // error-index
	0x30, 0x0e, 0x30, 0x0c, // varbind list, varbind
	0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, // OID
	0x05, 0x00, // NULL
}

// memcachedStats is `stats` over UDP: request ID 1, sequence 0, one datagram,
// reserved 0 — the packet of the 2018 amplification attacks.
var memcachedStats = []byte("\x00\x01\x00\x00\x00\x01\x00\x00stats\r\n")

// rdpRequest is a TPKT with an X.224 Connection Request carrying the mstshash cookie
// and an RDP_NEG_REQ asking for TLS and CredSSP, as mstsc and nmap send it.
func rdpRequest(cookie string) []byte {
	var body []byte
	if cookie != "" {
		body = append(body, "Cookie: mstshash="+cookie+"\r\n"...)
	}
	body = append(body, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00) // RDP_NEG_REQ
	x224 := append([]byte{byte(6 + len(body)), 0xe0, 0, 0, 0, 0, 0}, body...)
	tpkt := []byte{3, 0, 0, 0}
	binary.BigEndian.PutUint16(tpkt[2:], uint16(4+len(x224)))
	return append(tpkt, x224...)
}

// telnetClient is what a Telnet client offers first: WILL TTYPE, WILL NAWS, DO SGA.
var telnetClient = []byte{0xff, 0xfb, 24, 0xff, 0xfb, 31, 0xff, 0xfd, 3}

func netbios(msg []byte) []byte {
	return append([]byte{0, byte(len(msg) >> 16), byte(len(msg) >> 8), byte(len(msg))}, msg...)
}

// smb1Negotiate is an SMB1 NEGOTIATE (command 0x72) offering NT LM 0.12 and SMB 2,
// as nmap's smb-protocols and old Windows clients send it.
func smb1Negotiate() []byte {
	h := make([]byte, 32)
	copy(h, "\xffSMB\x72")
	h[9] = 0x18 // flags
	var dialects []byte
	for _, d := range []string{"NT LM 0.12", "SMB 2.002", "SMB 2.???"} {
		dialects = append(dialects, 0x02)
		dialects = append(dialects, d...)
		dialects = append(dialects, 0)
	}
	msg := append(h, 0) // word count
	msg = binary.LittleEndian.AppendUint16(msg, uint16(len(dialects)))
	return netbios(append(msg, dialects...))
}

// smb2Negotiate is an SMB2 NEGOTIATE request (command 0) offering 2.0.2 to 3.1.1.
func smb2Negotiate() []byte {
	h := make([]byte, 64)
	copy(h, "\xfeSMB")
	binary.LittleEndian.PutUint16(h[4:], 64) // structure size
	body := make([]byte, 36)
	binary.LittleEndian.PutUint16(body, 36)
	dialects := []uint16{0x0202, 0x0210, 0x0300, 0x0302, 0x0311}
	binary.LittleEndian.PutUint16(body[2:], uint16(len(dialects)))
	for _, d := range dialects {
		body = binary.LittleEndian.AppendUint16(body, d)
	}
	return netbios(append(h, body...))
}

// clientHello returns the first flight of crypto/tls's client for serverName: a
// real ClientHello, with SNI unless serverName is an IP address (RFC 6066 §3).
func clientHello(t testing.TB, serverName string) []byte {
	t.Helper()
	c, s := net.Pipe()
	defer s.Close()
	go func() {
		cl := tls.Client(c, &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
		cl.SetDeadline(time.Now().Add(10 * time.Second))
		cl.Handshake()
		c.Close()
	}()
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, 5)
	if _, err := readFull(s, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[3:]))
	if _, err := readFull(s, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Probes nmap 7.93 sent to gantry's dark ports (-sV, its default probes), as the
// dashboard showed their first bytes.
var (
	// SSLv3 ClientHello (SSLSessionReq): no extensions at all
	nmapSSLv3Hello = []byte("\x16\x03\x00\x00S\x01\x00\x00O\x03\x00?G\xd7\xf7\xba,\xee\xea\xb2`~\xf3\x00\xfd\x82{\xb9\xd5\x96\xc8w\x9b\xe6\xc4\xdb<=\xdbo\xef\x10n\x00\x00(\x00\x16\x00\x13\x00\n\x00f\x00\x05\x00\x04\x00e\x00d\x00c\x00b\x00a\x00`\x00\x15\x00\x12\x00\t\x00\x14\x00\x11\x00\b\x00\x06\x00\x03\x01\x00")
	// SNMPv3 engine discovery (SNMPv3GetRequest)
	nmapSNMPv3 = []byte("0:\x02\x01\x030\x0f\x02\x02Ji\x02\x03\x00\xff\xe3\x04\x01\x04\x02\x01\x03\x04\x100\x0e\x04\x00\x02\x01\x00\x02\x01\x00\x04\x00\x04\x00\x04\x000\x12\x04\x00\x04\x00\xa0\f\x02\x027\xf0\x02\x01\x00\x02\x01\x000\x00")
	// DNSStatusRequest: opcode STATUS, no question
	nmapDNSStatus = []byte("\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00")
)

func TestClassify(t *testing.T) {
	rules := DefaultRules()
	hello := clientHello(t, "victim.example")
	tests := []struct {
		name, proto string
		data        []byte
		rule        string // "" for none
		detail      string
	}{
		{"cups exploit", "udp", cupsExploit, "cups-browsed", "http://198.51.100.7:12345/printers/EVIL_PRINTER"},
		{"cups ipp", "udp", []byte("3 3 ipp://10.0.0.5:631/printers/x\n"), "cups-browsed", "ipp://10.0.0.5:631/printers/x"},
		{"cups without uri", "udp", []byte("0 3 \n"), "", ""},
		{"cups other scheme", "udp", []byte("0 3 file:///etc/passwd\n"), "", ""},
		{"ssdp m-search", "udp", ssdpMSearch, "ssdp-msearch", "st=ssdp:all"},
		{"ssdp notify is not a search", "udp", []byte("NOTIFY * HTTP/1.1\r\nNT: upnp:rootdevice\r\n\r\n"), "", ""},
		{"dns any", "udp", dnsQuery(0xbeef, 0x0100, "isc.org", 255, 1), "dns-any", "isc.org ANY"},
		{"dns a", "udp", dnsQuery(0xbeef, 0x0100, "example.com", 1, 1), "dns-query", "example.com A"},
		{"dns root ns", "udp", dnsQuery(1, 0, ".", 2, 1), "dns-query", ". NS"},
		{"mdns service discovery, unicast answer asked", "udp", dnsQuery(0, 0, "_services._dns-sd._udp.local", 12, 0x8001), "dns-query", "_services._dns-sd._udp.local PTR"},
		{"mdns any", "udp", dnsQuery(0, 0, "host.local", 255, 0x8001), "dns-any", "host.local ANY"},
		{"dns response is no probe", "udp", dnsQuery(1, 0x8180, "example.com", 1, 1), "", ""},
		{"dns query over tcp is not named", "tcp", dnsQuery(1, 0x0100, "example.com", 1, 1), "", ""},
		{"snmp get", "udp", snmpGet, "snmp-get", "v2c community=public get"},
		{"snmp response", "udp", append(append([]byte{}, snmpGet[:13]...), append([]byte{0xa2}, snmpGet[14:]...)...), "", ""},
		{"memcached stats udp", "udp", memcachedStats, "memcached", "stats"},
		{"memcached stats tcp", "tcp", []byte("stats items\r\n"), "memcached", "stats items"},
		{"memcached cut short", "udp", []byte("\x00\x01\x00\x00\x00\x01\x00\x00stat"), "", ""},
		{"tls hello with sni", "tcp", hello, "tls-client-hello", "sni=victim.example"},
		{"tls hello without sni", "tcp", clientHello(t, "192.0.2.1"), "tls-client-hello", "no sni"},
		{"tls hello cut short", "tcp", hello[:60], "tls-client-hello", "sni=? (hello cut short)"},
		{"nmap sslv3 hello", "tcp", nmapSSLv3Hello, "tls-client-hello", "no sni (no extensions)"},
		{"nmap sslv3 hello cut before its end", "tcp", nmapSSLv3Hello[:len(nmapSSLv3Hello)-1], "tls-client-hello", "sni=? (hello cut short)"},
		{"nmap snmpv3 discovery", "udp", nmapSNMPv3, "snmp-get", "v3"},
		{"nmap dns status request", "udp", nmapDNSStatus, "dns-query", "STATUS request"},
		{"tls alert is no hello", "tcp", []byte{0x15, 3, 3, 0, 2, 2, 40, 0, 0}, "", ""},
		{"ssh banner", "tcp", []byte("SSH-2.0-libssh2_1.9.0\r\n"), "ssh-banner", "SSH-2.0-libssh2_1.9.0"},
		{"ssh banner with control bytes", "tcp", []byte("SSH-2.0-x\x1b[31m\r\n"), "ssh-banner", "SSH-2.0-x?[31m"},
		{"rdp cookie", "tcp", rdpRequest("administrator"), "rdp-cookie", "mstshash=administrator"},
		{"rdp nmap", "tcp", rdpRequest("nmap"), "rdp-cookie", "mstshash=nmap"},
		{"rdp no cookie", "tcp", rdpRequest(""), "rdp-cookie", "no cookie"},
		{"telnet", "tcp", telnetClient, "telnet-negotiation", "WILL TTYPE, WILL NAWS, DO SGA"},
		{"telnet unknown option", "tcp", []byte{0xff, 0xfe, 200}, "telnet-negotiation", "DONT 200"},
		{"telnet subnegotiation first is not named", "tcp", []byte{0xff, 0xfa, 24, 1, 0xff, 0xf0}, "", ""},
		{"smb1 negotiate", "tcp", smb1Negotiate(), "smb-negotiate", "smb1 dialects=NT LM 0.12,SMB 2.002,SMB 2.???"},
		{"smb2 negotiate", "tcp", smb2Negotiate(), "smb-negotiate", "smb2 dialects=0x0202,0x0210,0x0300,0x0302,0x0311"},
		{"http", "tcp", []byte("GET /cgi-bin/luci HTTP/1.1\r\nHost: x\r\n\r\n"), "http-request", "GET /cgi-bin/luci HTTP/1.1"},
		{"empty", "tcp", nil, "", ""},
		{"noise", "udp", []byte("\x00\x01ipp-probe"), "", ""},
		{"text", "tcp", []byte("hello\r\n"), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Detail
			i := Classify(rules, tt.proto, tt.data, &d)
			got := ""
			if i >= 0 {
				got = rules[i].Name
			}
			if got != tt.rule || (i >= 0 && d.String() != tt.detail) {
				t.Fatalf("rule %q detail %q, want %q %q", got, d.String(), tt.rule, tt.detail)
			}
		})
	}
}

// TestClassifyAllocates nothing: it runs on every datagram of a flood.
func TestClassifyAllocatesNothing(t *testing.T) {
	rules := DefaultRules()
	var d Detail
	for proto, data := range map[string][][]byte{
		"udp": {cupsExploit, ssdpMSearch, dnsQuery(1, 0, "a.example", 255, 1), snmpGet, memcachedStats, []byte("noise")},
		"tcp": {clientHello(t, "x.example"), []byte("SSH-2.0-x\r\n"), rdpRequest("u"), telnetClient, smb1Negotiate(), smb2Negotiate(), []byte("GET / HTTP/1.0\r\n")},
	} {
		for _, p := range data {
			if n := testing.AllocsPerRun(100, func() { Classify(rules, proto, p, &d) }); n != 0 {
				t.Errorf("%s %q: %v allocations", proto, p[:min(len(p), 20)], n)
			}
		}
	}
}

func TestDetailIsBounded(t *testing.T) {
	var d Detail
	long := "SSH-2.0-" + strings.Repeat("x", 500) + "\r\n"
	i := Classify(DefaultRules(), "tcp", []byte(long), &d)
	if i < 0 || len(d.String()) > len(d.b)+len("…") || !strings.HasSuffix(d.String(), "…") {
		t.Fatalf("detail %q", d.String())
	}
}

func TestParseRules(t *testing.T) {
	tests := []struct{ name, toml, err string }{
		{"no ref", "[[rule]]\nname='a'\ncategory='probe'\nprotocols=['udp']\nmatch='dns'", "no ref"},
		{"unknown decoder", "[[rule]]\nname='a'\ncategory='probe'\nprotocols=['udp']\nmatch='quic'\nref='x'", "no such decoder"},
		{"bad protocol", "[[rule]]\nname='a'\ncategory='probe'\nprotocols=['sctp']\nmatch='dns'\nref='x'", "want tcp or udp"},
		{"bad category", "[[rule]]\nname='a'\ncategory='bad'\nprotocols=['udp']\nmatch='dns'\nref='x'", "category"},
		{"unknown key", "[[rule]]\nname='a'\ncategory='probe'\nprotocols=['udp']\nmatch='dns'\nref='x'\nport=53", "unknown key"},
		{"twice", "[[rule]]\nname='a'\ncategory='probe'\nprotocols=['udp']\nmatch='dns'\nref='x'\n[[rule]]\nname='a'\ncategory='probe'\nprotocols=['udp']\nmatch='dns'\nref='x'", "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tt.toml))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
	for _, r := range DefaultRules() {
		if r.Ref == "" || r.decode == nil {
			t.Errorf("built-in rule %q: no ref or decoder", r.Name)
		}
	}
}

// BenchmarkClassify is the cost a datagram of a flood adds on the UDP read loop:
// an unnamed payload goes through every UDP rule.
func BenchmarkClassify(b *testing.B) {
	rules := DefaultRules()
	for _, bc := range []struct {
		name string
		data []byte
	}{{"cups", cupsExploit}, {"snmp", snmpGet}, {"noise", []byte("\x00\x01\x02\x03 random payload of a flood that no rule names")}} {
		b.Run(bc.name, func(b *testing.B) {
			var d Detail
			b.ReportAllocs()
			for b.Loop() {
				Classify(rules, "udp", bc.data, &d)
			}
		})
	}
}
