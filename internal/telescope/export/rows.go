package export

import (
	"math"
	"net/netip"
	"strconv"
	"time"

	"gantry/internal/telescope"
)

// The tables rows go to.
const (
	tableHTTP    = "http_events"
	tableDark    = "darkport_hits"
	tableScans   = "scans"
	tableAttacks = "attacks"
	tableBans    = "bans"
)

// HTTPEvent is one unsolicited request, as the HTTP sensor judged it.
type HTTPEvent struct {
	Time      time.Time
	Source    netip.Addr
	Host      string
	Method    string
	Path      string
	UserAgent string
	Rule      string
	Category  string
	Status    int
}

// DarkPortHit is one connection or datagram to a dark port.
type DarkPortHit struct {
	Time     time.Time
	Source   netip.Addr
	Port     uint16
	Protocol string
	Data     []byte
}

// Ban is one ban a node issued (never one it imported from another node).
type Ban struct {
	Time    time.Time
	Source  string // the unit: "203.0.113.7/32", "2001:db8:1:2::/64", "2001:db8:1::/48"
	Rule    string
	Sample  string // the request or bytes that decided it
	Until   time.Time
	Strikes int
}

// The longest text a row keeps of a field the client chose (path, user agent,
// payload), so that one request cannot make a row large.
const maxText = 1024

// clip cuts s to maxText bytes.
func clip(s string) string {
	if len(s) > maxText {
		return s[:maxText]
	}
	return s
}

// Timestamps are seconds since the epoch (JSONEachRow reads a number into
// DateTime whatever the server's time zone) plus the millisecond.
type httpRow struct {
	Time      int64  `json:"time"`
	MS        uint16 `json:"ms"`
	Node      string `json:"node"`
	Source    string `json:"source"`
	Host      string `json:"host"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	UserAgent string `json:"user_agent"`
	Rule      string `json:"rule"`
	Category  string `json:"category"`
	Status    uint16 `json:"status"`
}

type darkRow struct {
	Time       int64  `json:"time"`
	MS         uint16 `json:"ms"`
	Node       string `json:"node"`
	Source     string `json:"source"`
	Port       uint16 `json:"port"`
	Protocol   string `json:"protocol"`
	Bytes      uint32 `json:"bytes"`
	FirstBytes string `json:"first_bytes"`
}

type scanRow struct {
	Node     string   `json:"node"`
	Source   string   `json:"source"`
	Kind     string   `json:"kind"`
	Protocol string   `json:"protocol"`
	Ports    []uint16 `json:"ports"`
	Targets  uint64   `json:"targets"`
	Estim    bool     `json:"targets_estimated"`
	Packets  uint64   `json:"packets"`
	Start    int64    `json:"start_time"`
	End      int64    `json:"end_time"`
	Tool     string   `json:"tool"`
}

type attackRow struct {
	Node     string   `json:"node"`
	Victim   string   `json:"victim"`
	Protocol string   `json:"protocol"`
	Packets  uint64   `json:"packets"`
	Start    int64    `json:"start_time"`
	End      int64    `json:"end_time"`
	MaxPPM   uint64   `json:"max_ppm"`
	EstPPS   float64  `json:"est_pps"`
	Ports    []uint16 `json:"ports"`
}

type banRow struct {
	Time    int64  `json:"time"`
	MS      uint16 `json:"ms"`
	Node    string `json:"node"`
	Source  string `json:"source"`
	Rule    string `json:"rule"`
	Sample  string `json:"sample"`
	Until   int64  `json:"until"`
	Strikes uint32 `json:"strikes"`
}

func ms(t time.Time) uint16 { return uint16(t.Nanosecond() / 1e6) }

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}

func (n node) http(e HTTPEvent) httpRow {
	return httpRow{Time: e.Time.Unix(), MS: ms(e.Time), Node: string(n), Source: addrText(e.Source),
		Host: clip(e.Host), Method: clip(e.Method), Path: clip(e.Path), UserAgent: clip(e.UserAgent),
		Rule: e.Rule, Category: e.Category, Status: uint16(max(0, min(e.Status, 65535)))}
}

func (n node) dark(h DarkPortHit) darkRow {
	data := h.Data[:min(len(h.Data), 256)]
	return darkRow{Time: h.Time.Unix(), MS: ms(h.Time), Node: string(n), Source: addrText(h.Source),
		Port: h.Port, Protocol: h.Protocol, Bytes: uint32(len(h.Data)), FirstBytes: strconv.QuoteToASCII(string(data))}
}

func (n node) scan(s telescope.Scan) scanRow {
	ports := s.Ports
	if ports == nil {
		ports = []uint16{}
	}
	return scanRow{Node: string(n), Source: s.Source, Kind: s.Kind, Protocol: s.Protocol, Ports: ports,
		Targets: s.Targets, Estim: s.Estimated, Packets: s.Packets, Start: s.Start.Unix(), End: s.End.Unix(), Tool: s.Tool}
}

func (n node) attack(a telescope.Attack) attackRow {
	ports := a.Ports
	if ports == nil {
		ports = []uint16{}
	}
	return attackRow{Node: string(n), Victim: a.Victim, Protocol: a.Protocol, Packets: a.Packets,
		Start: a.Start.Unix(), End: a.End.Unix(), MaxPPM: a.MaxPPM, EstPPS: finite(a.EstPPS), Ports: ports}
}

func (n node) ban(b Ban) banRow {
	return banRow{Time: b.Time.Unix(), MS: ms(b.Time), Node: string(n), Source: clip(b.Source), Rule: clip(b.Rule),
		Sample: clip(b.Sample), Until: b.Until.Unix(), Strikes: uint32(max(0, min(b.Strikes, math.MaxUint32)))}
}

// node is the name every row carries.
type node string
