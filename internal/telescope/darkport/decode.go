package darkport

import (
	"bytes"
	"encoding/binary"
)

// Decoders of the payloads the dark ports name. Each reads only the bytes it was
// given (a TCP read stops at 1 KB or a deadline, so a message may be cut) and
// never trusts a length field further than the data.

// line returns data up to the first CR or LF, and whether one was found.
func line(data []byte) ([]byte, bool) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return data[:i], true
	}
	return data, false
}

func hasPrefixFold(s []byte, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		a, b := s[i], prefix[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// decodeCUPS reads a CUPS browse packet, "type state uri "location" "info"..."
// (CUPS's cups-browsed protocol): type in hex, state a decimal IPP printer state.
// CVE-2024-47176 sends "0 3 http://attacker:port/printers/name"; the URI is where
// the host would fetch the printer's attributes from.
func decodeCUPS(data []byte, d *Detail) bool {
	i := 0
	hexDigits := func() bool {
		j := i
		for i < len(data) && i-j < 8 && (('0' <= data[i] && data[i] <= '9') || ('a' <= data[i]|0x20 && data[i]|0x20 <= 'f')) {
			i++
		}
		return i > j
	}
	if !hexDigits() || i >= len(data) || data[i] != ' ' {
		return false
	}
	i++
	if !hexDigits() || i >= len(data) || data[i] != ' ' {
		return false
	}
	i++
	uri := data[i:]
	if j := bytes.IndexAny(uri, " \t\r\n\x00"); j >= 0 {
		uri = uri[:j]
	}
	scheme, _, ok := bytes.Cut(uri, []byte("://"))
	if !ok || len(uri) == len(scheme)+3 {
		return false
	}
	switch string(scheme) { // no allocation: the compiler compares in place
	case "http", "https", "ipp", "ipps":
	default:
		return false
	}
	d.write(uri)
	return true
}

// decodeSSDP reads an SSDP M-SEARCH (UPnP Device Architecture §1.3.2): an HTTP-like
// request over UDP whose ST header names the devices searched for.
func decodeSSDP(data []byte, d *Detail) bool {
	first, ok := line(data)
	if !ok || !hasPrefixFold(first, "M-SEARCH ") {
		return false
	}
	d.writeString("st=")
	rest := data[len(first):]
	for len(rest) > 0 {
		rest = bytes.TrimLeft(rest, "\r\n")
		l, _ := line(rest)
		rest = rest[len(l):]
		if hasPrefixFold(l, "ST:") {
			d.write(bytes.TrimSpace(l[3:]))
			return true
		}
	}
	d.writeString("(none)")
	return true
}

// dnsQuestion parses a DNS query's first question (RFC 1035 §4.1): a message with
// QR clear, a standard query, one to sixteen questions, and a name of labels
// (queries carry no compression pointers in their first name).
func dnsQuestion(data []byte, d *Detail) (qtype uint16, ok bool) {
	if len(data) < 12 {
		return 0, false
	}
	flags := binary.BigEndian.Uint16(data[2:])
	qd := binary.BigEndian.Uint16(data[4:])
	if flags&0x8000 != 0 {
		return 0, false
	}
	if op := (flags >> 11) & 0xf; op == 2 && qd == 0 && len(data) == 12 {
		// a server status request (RFC 1035 §4.1.1), nmap's DNSStatusRequest probe
		d.writeString("STATUS request")
		return 0, true
	} else if op != 0 || qd == 0 || qd > 16 {
		return 0, false
	}
	if len(data) < 12+5 {
		return 0, false
	}
	i, total := 12, 0
	for {
		if i >= len(data) {
			return 0, false
		}
		n := int(data[i])
		i++
		if n == 0 {
			break
		}
		total += n + 1
		if n > 63 || total > 255 || i+n > len(data) {
			return 0, false
		}
		if total > n+1 {
			d.writeByte('.')
		}
		d.write(data[i : i+n])
		i += n
	}
	if total == 0 {
		d.writeByte('.')
	}
	if i+4 > len(data) {
		return 0, false
	}
	qtype = binary.BigEndian.Uint16(data[i:])
	if class := binary.BigEndian.Uint16(data[i+2:]) &^ 0x8000; class != 1 && class != 255 {
		return 0, false // mDNS sets the top bit to ask for a unicast answer
	}
	d.writeByte(' ')
	switch qtype {
	case 1:
		d.writeString("A")
	case 2:
		d.writeString("NS")
	case 5:
		d.writeString("CNAME")
	case 6:
		d.writeString("SOA")
	case 12:
		d.writeString("PTR")
	case 15:
		d.writeString("MX")
	case 16:
		d.writeString("TXT")
	case 28:
		d.writeString("AAAA")
	case 33:
		d.writeString("SRV")
	case 48:
		d.writeString("DNSKEY")
	case 255:
		d.writeString("ANY")
	default:
		d.writeString("TYPE")
		d.writeUint(uint64(qtype))
	}
	return qtype, true
}

func decodeDNSAny(data []byte, d *Detail) bool {
	qt, ok := dnsQuestion(data, d)
	return ok && qt == 255
}

func decodeDNS(data []byte, d *Detail) bool {
	_, ok := dnsQuestion(data, d)
	return ok
}

// ber reads one BER tag-length header (X.690 §8.1) and returns the tag, the value
// and what follows it; the value is cut to the data given.
func ber(data []byte) (tag byte, val, rest []byte, ok bool) {
	if len(data) < 2 {
		return 0, nil, nil, false
	}
	tag = data[0]
	n, i := int(data[1]), 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 3 || len(data) < 2+k {
			return 0, nil, nil, false
		}
		n = 0
		for _, b := range data[2 : 2+k] {
			n = n<<8 | int(b)
		}
		i += k
	}
	if n > len(data)-i {
		return tag, data[i:], nil, true // cut short: what there is
	}
	return tag, data[i : i+n], data[i+n:], true
}

// decodeSNMP reads an SNMP v1 or v2c message (RFC 1157 §4, RFC 3416): a SEQUENCE of
// the version, the community string and a request PDU.
func decodeSNMP(data []byte, d *Detail) bool {
	tag, msg, _, ok := ber(data)
	if !ok || tag != 0x30 {
		return false
	}
	tag, ver, msg, ok := ber(msg)
	if !ok || tag != 0x02 || len(ver) != 1 {
		return false
	}
	var version string
	switch ver[0] {
	case 0:
		version = "v1"
	case 1:
		version = "v2c"
	case 3:
		d.writeString("v3") // a v3 message carries no community
		return true
	default:
		return false
	}
	tag, community, msg, ok := ber(msg)
	if !ok || tag != 0x04 || len(msg) == 0 {
		return false
	}
	var pdu string
	switch msg[0] {
	case 0xa0:
		pdu = "get"
	case 0xa1:
		pdu = "getnext"
	case 0xa3:
		pdu = "set"
	case 0xa5:
		pdu = "getbulk"
	default:
		return false
	}
	d.writeString(version)
	d.writeString(" community=")
	d.write(community)
	d.writeString(" ")
	d.writeString(pdu)
	return true
}

// decodeMemcached reads a memcached text command: over UDP after the 8-byte frame
// header (request ID, sequence, datagram count, reserved zero), over TCP as is.
func decodeMemcached(data []byte, d *Detail) bool {
	if len(data) > 8 && data[6] == 0 && data[7] == 0 && binary.BigEndian.Uint16(data[4:]) >= 1 && memcachedCommand(data[8:], d) {
		return true
	}
	return memcachedCommand(data, d)
}

func memcachedCommand(data []byte, d *Detail) bool {
	l, ok := line(data)
	if !ok {
		return false // a command ends with CRLF; a cut one is not told from noise
	}
	word := l
	if i := bytes.IndexByte(l, ' '); i >= 0 {
		word = l[:i]
	}
	switch string(word) {
	case "stats", "version", "get", "gets":
		d.write(l)
		return true
	}
	return false
}

// decodeTLSHello reads a ClientHello (RFC 8446 §4.1.2) as far as the data goes and
// reports its server_name (RFC 6066 §3).
func decodeTLSHello(data []byte, d *Detail) bool {
	if len(data) < 9 || data[0] != 0x16 || data[1] != 3 || data[2] > 4 || data[5] != 1 {
		return false
	}
	// A hello without extensions (SSLv3, nmap's probes) ends after the compression
	// methods; only a record given whole tells that from one cut short.
	recLen := int(binary.BigEndian.Uint16(data[3:]))
	if recLen < 4 {
		return false // not even the handshake header
	}
	whole := len(data) >= 5+recLen
	b := data[9:min(len(data), 5+recLen)] // record header (5), handshake type (1) and length (3)
	skip := func(n int) bool {
		if n > len(b) {
			return false
		}
		b = b[n:]
		return true
	}
	vec := func(lenBytes int) bool {
		if len(b) < lenBytes {
			return false
		}
		n := 0
		for _, c := range b[:lenBytes] {
			n = n<<8 | int(c)
		}
		return skip(lenBytes + n)
	}
	// version, random, session ID, cipher suites, compression methods
	if !skip(2+32) || !vec(1) || !vec(2) || !vec(1) {
		d.writeString("sni=? (hello cut short)")
		return true
	}
	if len(b) == 0 && whole {
		d.writeString("no sni (no extensions)")
		return true
	}
	if !skip(2) {
		d.writeString("sni=? (hello cut short)")
		return true
	}
	for len(b) >= 4 {
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		b = b[4:]
		if typ == 0 {
			ext := b[:min(n, len(b))]
			// server_name_list length, name type 0 (host_name), name length, name
			if len(ext) >= 5 && ext[2] == 0 {
				name := ext[5:]
				name = name[:min(len(name), int(binary.BigEndian.Uint16(ext[3:])))]
				d.writeString("sni=")
				d.write(name)
				return true
			}
			break
		}
		if !skip(n) {
			d.writeString("sni=? (hello cut short)")
			return true
		}
	}
	if len(b) > 0 {
		d.writeString("sni=? (hello cut short)")
		return true
	}
	d.writeString("no sni")
	return true
}

// decodeSSH reads an SSH identification string, "SSH-protoversion-softwareversion"
// (RFC 4253 §4.2).
func decodeSSH(data []byte, d *Detail) bool {
	if !bytes.HasPrefix(data, []byte("SSH-")) {
		return false
	}
	l, _ := line(data)
	d.write(l[:min(len(l), 255)])
	return true
}

// decodeRDP reads an X.224 Connection Request in a TPKT (MS-RDPBCGR §2.2.1.1): its
// optional "Cookie: mstshash=NAME" names the user the client logs in as.
func decodeRDP(data []byte, d *Detail) bool {
	// TPKT version 3, X.224 length indicator, Connection Request code 0xE0
	if len(data) < 11 || data[0] != 3 || data[1] != 0 || data[5]&0xf0 != 0xe0 || int(data[4]) < 6 {
		return false
	}
	tpdu := data[11:min(len(data), 5+int(data[4]))]
	const cookie = "Cookie: mstshash="
	if i := bytes.Index(tpdu, []byte(cookie)); i >= 0 {
		user, _ := line(tpdu[i+len(cookie):])
		d.writeString("mstshash=")
		d.write(user)
		return true
	}
	d.writeString("no cookie")
	return true
}

var telnetOptions = [...]string{0: "BINARY", 1: "ECHO", 3: "SGA", 5: "STATUS", 6: "TIMING-MARK",
	24: "TTYPE", 31: "NAWS", 32: "TSPEED", 33: "LFLOW", 34: "LINEMODE", 35: "XDISPLOC",
	36: "ENVIRON", 37: "AUTHENTICATION", 38: "ENCRYPT", 39: "NEW-ENVIRON"}

// decodeTelnet reads Telnet option negotiation (RFC 854, RFC 855): IAC followed by
// WILL, WONT, DO or DONT and an option.
func decodeTelnet(data []byte, d *Detail) bool {
	if len(data) < 3 || data[0] != 0xff || data[1] < 0xfb || data[1] == 0xff {
		return false
	}
	for i := 0; i+2 < len(data) && data[i] == 0xff; i += 3 {
		if data[i+1] < 0xfb || data[i+1] == 0xff {
			break
		}
		if i > 0 {
			d.writeString(", ")
		}
		d.writeString([...]string{"WILL", "WONT", "DO", "DONT"}[data[i+1]-0xfb])
		d.writeByte(' ')
		if o := data[i+2]; int(o) < len(telnetOptions) && telnetOptions[o] != "" {
			d.writeString(telnetOptions[o])
		} else {
			d.writeUint(uint64(o))
		}
	}
	return true
}

// decodeSMB reads a NEGOTIATE request after its NetBIOS session header (RFC 1002
// §4.3.1): SMB1's (MS-CIFS §2.2.4.52.1) names its dialects as strings, SMB2's
// (MS-SMB2 §2.2.3) as 16-bit numbers.
func decodeSMB(data []byte, d *Detail) bool {
	if len(data) < 4+4 || data[0] != 0 {
		return false
	}
	smb := data[4:]
	switch {
	case bytes.HasPrefix(smb, []byte("\xffSMB")):
		// header 32 bytes (command at 4), word count 0, byte count, dialects
		if len(smb) < 35 || smb[4] != 0x72 || smb[32] != 0 {
			return false
		}
		d.writeString("smb1")
		sep := " dialects="
		for b := smb[35:]; len(b) > 1 && b[0] == 0x02; {
			name := b[1:]
			end := bytes.IndexByte(name, 0)
			if end < 0 {
				end = len(name)
			}
			d.writeString(sep)
			d.write(name[:end])
			sep = ","
			b = name[min(end+1, len(name)):]
		}
		return true
	case bytes.HasPrefix(smb, []byte("\xfeSMB")):
		// header 64 bytes (command at 12); request: structure size 36, dialect count
		// at 2, dialects at 36
		if len(smb) < 64+4 || binary.LittleEndian.Uint16(smb[12:]) != 0 || binary.LittleEndian.Uint16(smb[64:]) != 36 {
			return false
		}
		d.writeString("smb2")
		n := int(binary.LittleEndian.Uint16(smb[66:]))
		sep := " dialects="
		for i, b := 0, smb[min(len(smb), 64+36):]; i < n && len(b) >= 2; i, b = i+1, b[2:] {
			d.writeString(sep)
			d.writeHex16(binary.LittleEndian.Uint16(b))
			sep = ","
		}
		return true
	}
	return false
}

// decodeHTTP reads an HTTP/1 request line (RFC 9112 §3).
func decodeHTTP(data []byte, d *Detail) bool {
	l, _ := line(data)
	sp := bytes.IndexByte(l, ' ')
	if sp < 3 || sp > 16 || !bytes.Contains(l[sp:], []byte(" HTTP/")) {
		return false
	}
	for _, c := range l[:sp] {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	d.write(l)
	return true
}
