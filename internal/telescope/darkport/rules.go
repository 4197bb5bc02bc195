package darkport

import (
	_ "embed"
	"fmt"

	"gantry/internal/telescope/rulefile"
)

// Rule is one entry of the payload rule file; see probes.toml for each field.
type Rule struct {
	Name      string   `toml:"name" json:"name"`
	Category  string   `toml:"category" json:"category"`
	Protocols []string `toml:"protocols" json:"protocols"`
	Match     string   `toml:"match" json:"match"`
	Ref       string   `toml:"ref" json:"ref"`

	decode decoder
	tcp    bool
	udp    bool
}

// A decoder recognises a payload and writes what it names into d; it must not
// allocate: it runs on every hit.
type decoder func(data []byte, d *Detail) bool

var decoders = map[string]decoder{
	"cups":         decodeCUPS,
	"ssdp-msearch": decodeSSDP,
	"dns-any":      decodeDNSAny,
	"dns":          decodeDNS,
	"snmp":         decodeSNMP,
	"memcached":    decodeMemcached,
	"tls-hello":    decodeTLSHello,
	"ssh":          decodeSSH,
	"rdp":          decodeRDP,
	"telnet":       decodeTelnet,
	"smb":          decodeSMB,
	"http":         decodeHTTP,
}

//go:embed probes.toml
var defaultRules []byte

// DefaultRules returns the payload rules built into gantry.
func DefaultRules() []Rule {
	r, err := ParseRules(defaultRules)
	if err != nil {
		panic("darkport: built-in probes.toml: " + err.Error()) // caught by the package tests
	}
	return r
}

// ParseRules reads a payload rule file. Unknown keys, unknown decoders and rules
// without a name, category or reference are errors.
func ParseRules(data []byte) ([]Rule, error) {
	return rulefile.Read("darkport rules", data,
		func(r *Rule) (string, string, string) { return r.Name, r.Category, r.Ref }, checkRule)
}

// checkRule checks a rule's decoder and protocols and completes it with them.
func checkRule(r *Rule) error {
	if r.decode = decoders[r.Match]; r.decode == nil {
		return fmt.Errorf("match %q: no such decoder", r.Match)
	}
	if len(r.Protocols) == 0 {
		return fmt.Errorf("no protocols: want [\"tcp\"], [\"udp\"] or both")
	}
	for _, p := range r.Protocols {
		switch p {
		case "tcp":
			r.tcp = true
		case "udp":
			r.udp = true
		default:
			return fmt.Errorf("protocol %q: want tcp or udp", p)
		}
	}
	return nil
}

// Classify returns the index in rules of the first rule matching a payload sent
// over proto ("tcp" or "udp"), with its detail in d, or -1.
func Classify(rules []Rule, proto string, data []byte, d *Detail) int {
	if len(data) == 0 {
		return -1
	}
	for i := range rules {
		r := &rules[i]
		if (proto == "tcp" && !r.tcp) || (proto == "udp" && !r.udp) {
			continue
		}
		d.Reset()
		if r.decode(data, d) {
			return i
		}
	}
	d.Reset()
	return -1
}

// Detail is what a decoder extracts from a payload, in a fixed buffer so that
// decoding allocates nothing; only printable ASCII is kept.
type Detail struct {
	b     [160]byte
	n     int
	trunc bool
}

// Reset empties d.
func (d *Detail) Reset() { d.n, d.trunc = 0, false }

// String returns the detail, with "…" when it was cut.
func (d *Detail) String() string {
	if d.trunc {
		return string(d.b[:d.n]) + "…"
	}
	return string(d.b[:d.n])
}

func (d *Detail) writeByte(c byte) {
	if d.n == len(d.b) {
		d.trunc = true
		return
	}
	if c < 0x20 || c > 0x7e {
		c = '?' // a detail is shown to a person: no control bytes, no half runes
	}
	d.b[d.n] = c
	d.n++
}

func (d *Detail) write(p []byte) {
	for _, c := range p {
		d.writeByte(c)
	}
}

func (d *Detail) writeString(s string) {
	for i := 0; i < len(s); i++ {
		d.writeByte(s[i])
	}
}

func (d *Detail) writeUint(v uint64) {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	d.write(buf[i:])
}

func (d *Detail) writeHex16(v uint16) {
	const hex = "0123456789abcdef"
	d.writeString("0x")
	for s := 12; s >= 0; s -= 4 {
		d.writeByte(hex[v>>s&0xf])
	}
}
