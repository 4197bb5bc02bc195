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
	// TelescopeSize is n, the IPv4 addresses monitored, that est_pps scales by;
	// SizeSource says where n comes from ("dark prefixes", "given size" or
	// "distinct destinations seen", a lower bound of n and so an overestimate of
	// the rates); Assumption spells out the estimate.
	TelescopeSize float64 `json:"telescope_size"`
	// SizeEstimated says TelescopeSize is a sketch's estimate of the distinct
	// destinations seen (past 65536 of them, with neither Dark nor Size given).
	SizeEstimated bool   `json:"telescope_size_estimated,omitempty"`
	SizeSource    string `json:"size_source"`
	Assumption    string `json:"est_assumption"`
	// Evicted counts sources and victims dropped from full state tables; Dropped
	// counts finished scans and attacks dropped past MaxEvents.
	Evicted uint64 `json:"evicted"`
	Dropped uint64 `json:"dropped"`
	// Sources and Victims are the entries in the state tables now.
	Sources int `json:"sources"`
	Victims int `json:"victims"`
	// KernelDrops counts packets a live capture lost because it fell behind.
	KernelDrops uint64 `json:"kernel_drops"`
	// Thresholds are the ones the report was made with: what it takes to be
	// called a scan or an attack.
	Thresholds Thresholds `json:"thresholds"`
}

// Thresholds echoes the classifier's options that decide what a scan and an
// attack are.
type Thresholds struct {
	ScanHosts    int     `json:"scan_hosts"`     // distinct targets for a horizontal scan
	ScanPorts    int     `json:"scan_ports"`     // distinct ports for a vertical scan
	ScanIdleS    float64 `json:"scan_idle_s"`    // a scan ends after this long without a probe
	DoSPackets   int     `json:"dos_packets"`    // packets an attack needs
	DoSDurationS float64 `json:"dos_duration_s"` // how long an attack must last
	DoSPPM       int     `json:"dos_ppm"`        // packets in its busiest minute
	DoSIdleS     float64 `json:"dos_idle_s"`     // an attack ends after this long without backscatter
}

func (t Thresholds) String() string {
	return fmt.Sprintf("scan: %d hosts or %d ports, ends after %s idle; attack: %d packets over %s with %d in its busiest minute, ends after %s idle",
		t.ScanHosts, t.ScanPorts, fmtDuration(t.ScanIdleS), t.DoSPackets, fmtDuration(t.DoSDurationS), t.DoSPPM, fmtDuration(t.DoSIdleS))
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
	Source   string    `json:"source"`
	Kind     string    `json:"kind"` // horizontal, strobe, vertical, block
	Protocol string    `json:"protocol"`
	Ports    []uint16  `json:"ports"`
	Targets  uint64    `json:"targets"`
	Packets  uint64    `json:"packets"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Tool     string    `json:"tool"` // masscan, zmap, mirai, nmap, or empty
	// Estimated says Targets comes from a sketch (past 4096 distinct targets, with a
	// standard error of 0.81%); below that it is exact.
	Estimated bool `json:"targets_estimated,omitempty"`
	Location
}

// Location is where an address is, from the GeoIP databases given; empty
// without them or for an address they do not know.
type Location struct {
	Country string `json:"country,omitempty"` // ISO 3166-1 alpha-2
	ASN     uint32 `json:"asn,omitempty"`
	ASOrg   string `json:"as_org,omitempty"`
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
	// Duration is End - Start in seconds; MeanPPS the packets seen over it;
	// PeakPPS the busiest 60 s window (MaxPPM / 60). EstPPS and EstPeakPPS scale
	// the mean and the peak to the whole address space (see Report.Assumption).
	Duration   float64 `json:"duration_s"`
	MeanPPS    float64 `json:"mean_pps"`
	PeakPPS    float64 `json:"peak_pps"`
	EstPeakPPS float64 `json:"est_peak_pps"`
	// Services are the victim's ports the backscatter came from, with packets:
	// exact for the first 8 ports seen, the packets of any others in ServicesOther.
	Services      []Service `json:"services"`
	ServicesOther uint64    `json:"services_other_packets,omitempty"`
	Location

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
	fmt.Fprintf(tw, "telescope size\t%s%.0f (%s)\n", approx(r.SizeEstimated), r.TelescopeSize, r.SizeSource)
	fmt.Fprintf(tw, "est_pps\t%s\n", r.Assumption)
	fmt.Fprintf(tw, "thresholds\t%s\n", r.Thresholds)
	if r.Evicted > 0 || r.Dropped > 0 {
		fmt.Fprintf(tw, "evicted\t%d\n", r.Evicted)
		fmt.Fprintf(tw, "dropped\t%d\n", r.Dropped)
	}
	fmt.Fprintf(tw, "\nSCANS (%d)\n", len(r.Scans))
	if len(r.Scans) > 0 {
		fmt.Fprintln(tw, "SOURCE\tKIND\tPROTO\tPORTS\tTARGETS\tPACKETS\tSTART\tEND\tTOOL\tCOUNTRY\tAS")
		for _, s := range r.Scans {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s%d\t%d\t%s\t%s\t%s\t%s\t%s\n", s.Source, s.Kind, s.Protocol,
				joinPorts(s.Ports, ",", 10), approx(s.Estimated), s.Targets, s.Packets, fmtTime(s.Start), fmtTime(s.End), s.Tool,
				s.Country, s.Location.as())
		}
	}
	fmt.Fprintf(tw, "\nATTACKS (%d)\n", len(r.Attacks))
	if len(r.Attacks) > 0 {
		fmt.Fprintln(tw, "VICTIM\tPROTO\tSERVICES (PORT:PACKETS)\tPACKETS\tDURATION\tMEAN_PPS\tPEAK_PPS\tMAX_PPM\tEST_PPS\tEST_PEAK_PPS\tSTART\tEND\tCOUNTRY\tAS")
		for _, a := range r.Attacks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%.3f\t%.3f\t%d\t%.1f\t%.1f\t%s\t%s\t%s\t%s\n", a.Victim, a.Protocol,
				a.services(",", 5), a.Packets, fmtDuration(a.Duration), a.MeanPPS, a.PeakPPS, a.MaxPPM, a.EstPPS, a.EstPeakPPS,
				fmtTime(a.Start), fmtTime(a.End), a.Country, a.Location.as())
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
		"start", "end", "tool", "max_ppm", "est_pps",
		"duration_s", "mean_pps", "peak_pps", "est_peak_pps", "services", "country", "asn", "as_org", "targets_estimated"})
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	none := []string{"", "", "", "", "", "", "", "", ""}
	cw.Write(append([]string{"total", "", "", "", "", "", u(r.Packets), fmtTime(r.Start), fmtTime(r.End), "", "", ""}, none...))
	// the telescope size n that est_pps scales by, and where it comes from
	cw.Write(append([]string{"telescope", "", r.SizeSource, "", "", strconv.FormatFloat(r.TelescopeSize, 'f', 0, 64), "", "", "", "", "", ""}, none...))
	for _, c := range []struct {
		name string
		n    uint64
	}{{"backscatter", r.Classes.Backscatter}, {"scan", r.Classes.Scan}, {"other", r.Classes.Other}} {
		cw.Write(append([]string{"class", "", c.name, "", "", "", u(c.n), "", "", "", "", ""}, none...))
	}
	reasons := make([]string, 0, len(r.OtherReasons))
	for k := range r.OtherReasons {
		reasons = append(reasons, k)
	}
	slices.Sort(reasons)
	for _, k := range reasons {
		cw.Write(append([]string{"other", "", k, "", "", "", u(r.OtherReasons[k]), "", "", "", "", ""}, none...))
	}
	for _, s := range r.Scans {
		cw.Write([]string{"scan", s.Source, s.Kind, s.Protocol, joinPorts(s.Ports, " ", 0), u(s.Targets),
			u(s.Packets), fmtTime(s.Start), fmtTime(s.End), s.Tool, "", "",
			"", "", "", "", "", s.Country, s.Location.asn(), s.ASOrg, strconv.FormatBool(s.Estimated)})
	}
	for _, a := range r.Attacks {
		cw.Write([]string{"attack", a.Victim, "", a.Protocol, joinPorts(a.Ports, " ", 0), "",
			u(a.Packets), fmtTime(a.Start), fmtTime(a.End), "", u(a.MaxPPM), f(a.EstPPS),
			f(a.Duration), f(a.MeanPPS), f(a.PeakPPS), f(a.EstPeakPPS), a.services(" ", 0), a.Country, a.Location.asn(), a.ASOrg, ""})
	}
	cw.Flush()
	return cw.Error()
}

// as is "AS64500 Name" for a table, or empty.
func (l Location) as() string {
	if l.ASN == 0 {
		return ""
	}
	if l.ASOrg == "" {
		return "AS" + strconv.FormatUint(uint64(l.ASN), 10)
	}
	return "AS" + strconv.FormatUint(uint64(l.ASN), 10) + " " + l.ASOrg
}

func (l Location) asn() string {
	if l.ASN == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(l.ASN), 10)
}

// services is "80:3265,443:12" (port:packets), at most limit entries (0: all),
// then the packets of the ports not counted one by one.
func (a *Attack) services(sep string, limit int) string {
	var b strings.Builder
	for i, s := range a.Services {
		if limit > 0 && i == limit {
			fmt.Fprintf(&b, "%s…(+%d)", sep, len(a.Services)-limit)
			break
		}
		if i > 0 {
			b.WriteString(sep)
		}
		fmt.Fprintf(&b, "%d:%d", s.Port, s.Packets)
	}
	if a.ServicesOther > 0 {
		fmt.Fprintf(&b, "%sother:%d", sep, a.ServicesOther)
	}
	return b.String()
}

// fmtDuration shows seconds as a duration a person reads: "1h2m3s".
func fmtDuration(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}
