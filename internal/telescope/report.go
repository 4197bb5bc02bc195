package telescope

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what `gantry telescope analyze --format json` prints and what
// (*Live).Snapshot returns. Classes are running totals: a dashboard turns two
// snapshots into packets per second.
type Report struct {
	Packets uint64    `json:"packets"`
	Start   time.Time `json:"start,omitzero"`
	End     time.Time `json:"end,omitzero"`
	Classes Classes   `json:"classes"`
	Scans   []Scan    `json:"scans"`
	Attacks []Attack  `json:"attacks"`

	// OtherReasons splits Classes.Other by the filter that caught each packet.
	OtherReasons map[string]uint64 `json:"other_reasons"`
	// TelescopeSize is n, the IPv4 addresses monitored, that est_pps scales by.
	TelescopeSize float64 `json:"telescope_size"`
	// SizeEstimated says TelescopeSize is a sketch's estimate of the distinct
	// destinations seen (past 65536 of them, with neither Dark nor Size given).
	SizeEstimated bool `json:"telescope_size_estimated,omitempty"`
	// Evicted counts sources and victims dropped from full state tables; Dropped
	// counts finished scans and attacks dropped past MaxEvents.
	Evicted uint64 `json:"evicted"`
	Dropped uint64 `json:"dropped"`
	// Sources and Victims are the entries in the state tables now.
	Sources int `json:"sources"`
	Victims int `json:"victims"`
	// KernelDrops counts packets a live capture lost because it fell behind.
	KernelDrops uint64 `json:"kernel_drops"`
}

// Classes counts packets by class; they add up to Report.Packets.
type Classes struct {
	Backscatter uint64 `json:"backscatter"`
	Scan        uint64 `json:"scan"`
	Other       uint64 `json:"other"`
}

// Scan is one source's probing of one protocol, from its first probe until it was idle
// for ScanIdle.
type Scan struct {
	Source   string   `json:"source"`
	Kind     string   `json:"kind"` // horizontal, strobe, vertical, block
	Protocol string   `json:"protocol"`
	Ports    []uint16 `json:"ports"`
	Targets  uint64   `json:"targets"`
	// Estimated says Targets comes from a sketch (past 4096 distinct targets, with a
	// standard error of 0.81%); below that it is exact.
	Estimated bool      `json:"targets_estimated,omitempty"`
	Packets   uint64    `json:"packets"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Tool      string    `json:"tool"` // masscan, zmap, mirai, nmap, or empty
}

// Attack is a denial-of-service attack on one victim and protocol, seen through the
// backscatter the victim sent to the telescope's spoofed addresses.
type Attack struct {
	Victim   string    `json:"victim"`
	Protocol string    `json:"protocol"`
	Packets  uint64    `json:"packets"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	MaxPPM   uint64    `json:"max_ppm"`
	EstPPS   float64   `json:"est_pps"`
	Ports    []uint16  `json:"ports"`

	// The observed rate and family, kept so that est_pps uses the telescope size
	// known when the report is made, not when the attack ended.
	rate float64
	v6   bool
}

const timeFormat = time.RFC3339Nano

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(timeFormat)
}

func joinPorts(ports []uint16, sep string, limit int) string {
	var b strings.Builder
	for i, p := range ports {
		if limit > 0 && i == limit {
			fmt.Fprintf(&b, "%s…(+%d)", sep, len(ports)-limit)
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(strconv.Itoa(int(p)))
	}
	return b.String()
}

// approx marks an estimated figure for a person.
func approx(estimated bool) string {
	if estimated {
		return "~"
	}
	return ""
}

// WriteTable writes r for a person: totals, then one aligned table of scans and one of
// attacks.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "packets\t%d\n", r.Packets)
	fmt.Fprintf(tw, "start\t%s\n", fmtTime(r.Start))
	fmt.Fprintf(tw, "end\t%s\n", fmtTime(r.End))
	fmt.Fprintf(tw, "backscatter\t%d\n", r.Classes.Backscatter)
	fmt.Fprintf(tw, "scan\t%d\n", r.Classes.Scan)
	fmt.Fprintf(tw, "other\t%d\n", r.Classes.Other)
	reasons := make([]string, 0, len(r.OtherReasons))
	for k := range r.OtherReasons {
		reasons = append(reasons, k)
	}
	slices.Sort(reasons)
	for _, k := range reasons {
		fmt.Fprintf(tw, "  %s\t%d\n", k, r.OtherReasons[k])
	}
	fmt.Fprintf(tw, "telescope size\t%s%.0f\n", approx(r.SizeEstimated), r.TelescopeSize)
	if r.Evicted > 0 || r.Dropped > 0 {
		fmt.Fprintf(tw, "evicted\t%d\n", r.Evicted)
		fmt.Fprintf(tw, "dropped\t%d\n", r.Dropped)
	}
	fmt.Fprintf(tw, "\nSCANS (%d)\n", len(r.Scans))
	if len(r.Scans) > 0 {
		fmt.Fprintln(tw, "SOURCE\tKIND\tPROTO\tPORTS\tTARGETS\tPACKETS\tSTART\tEND\tTOOL")
		for _, s := range r.Scans {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s%d\t%d\t%s\t%s\t%s\n", s.Source, s.Kind, s.Protocol,
				joinPorts(s.Ports, ",", 10), approx(s.Estimated), s.Targets, s.Packets, fmtTime(s.Start), fmtTime(s.End), s.Tool)
		}
	}
	fmt.Fprintf(tw, "\nATTACKS (%d)\n", len(r.Attacks))
	if len(r.Attacks) > 0 {
		fmt.Fprintln(tw, "VICTIM\tPROTO\tPORTS\tPACKETS\tMAX_PPM\tEST_PPS\tSTART\tEND")
		for _, a := range r.Attacks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.1f\t%s\t%s\n", a.Victim, a.Protocol,
				joinPorts(a.Ports, ",", 10), a.Packets, a.MaxPPM, a.EstPPS, fmtTime(a.Start), fmtTime(a.End))
		}
	}
	return tw.Flush()
}

// WriteCSV writes one row per scan and attack, told apart by the type column, after
// a total row, one row per class and one per reason for "other", so that the CSV
// carries what the table does.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"type", "address", "kind", "protocol", "ports", "targets", "packets",
		"start", "end", "tool", "max_ppm", "est_pps", "targets_estimated"})
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	cw.Write([]string{"total", "", "", "", "", "", u(r.Packets), fmtTime(r.Start), fmtTime(r.End), "", "", "", ""})
	for _, c := range []struct {
		name string
		n    uint64
	}{{"backscatter", r.Classes.Backscatter}, {"scan", r.Classes.Scan}, {"other", r.Classes.Other}} {
		cw.Write([]string{"class", "", c.name, "", "", "", u(c.n), "", "", "", "", "", ""})
	}
	reasons := make([]string, 0, len(r.OtherReasons))
	for k := range r.OtherReasons {
		reasons = append(reasons, k)
	}
	slices.Sort(reasons)
	for _, k := range reasons {
		cw.Write([]string{"other", "", k, "", "", "", u(r.OtherReasons[k]), "", "", "", "", "", ""})
	}
	for _, s := range r.Scans {
		cw.Write([]string{"scan", s.Source, s.Kind, s.Protocol, joinPorts(s.Ports, " ", 0), u(s.Targets),
			u(s.Packets), fmtTime(s.Start), fmtTime(s.End), s.Tool, "", "", strconv.FormatBool(s.Estimated)})
	}
	for _, a := range r.Attacks {
		cw.Write([]string{"attack", a.Victim, "", a.Protocol, joinPorts(a.Ports, " ", 0), "",
			u(a.Packets), fmtTime(a.Start), fmtTime(a.End), "", u(a.MaxPPM),
			strconv.FormatFloat(a.EstPPS, 'f', 3, 64), ""})
	}
	cw.Flush()
	return cw.Error()
}
