package telescope

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A capture with a SYN scan of a whole /24 (every address twice, in random order, as
// a scanner's retransmissions) and a sweep of 5000 addresses reports the /24 as
// exactly 256 targets and marks the sweep's figure as estimated in JSON and the table.
func TestScanCountsInCapture(t *testing.T) {
	name := filepath.Join(t.TempDir(), "scan24.pcap")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newPcapWriter(f, LinkEthernet)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	write := func(frame []byte) {
		ts += int64(time.Millisecond)
		if err := w.WritePacket(ts, frame); err != nil {
			t.Fatal(err)
		}
	}
	order := rand.Perm(512)
	for _, i := range order {
		write(syn4("198.51.100.7", ip4String(0xcb007100+uint32(i%256)), 443)) // 203.0.113.0/24
	}
	for i := range 5000 {
		write(syn4("198.51.100.8", ip4String(0x0a000000+uint32(i)*3), 23))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	r, warn, err := analyze(t, Options{}, name)
	if err != nil || warn != "" {
		t.Fatalf("analyze: %v %q", err, warn)
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Scans []map[string]any `json:"scans"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]any{}
	for _, s := range back.Scans {
		got[s["source"].(string)] = s
	}
	if s := got["198.51.100.7"]; s == nil || s["targets"] != 256.0 || s["targets_estimated"] != nil {
		t.Errorf("the /24 scan: %v; want exactly 256 targets, not estimated", s)
	}
	s := got["198.51.100.8"]
	if s == nil || s["targets_estimated"] != true {
		t.Fatalf("the 5000-address sweep: %v; want targets_estimated true", s)
	}
	if n := s["targets"].(float64); n < 4850 || n > 5150 { // 5 standard errors
		t.Errorf("the 5000-address sweep estimated at %v targets", n)
	}
	var table strings.Builder
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(table.String(), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 4 && f[0] == "198.51.100.7" && f[4] != "256":
			t.Errorf("the /24 scan's row shows %q targets: %s", f[4], line)
		case len(f) > 4 && f[0] == "198.51.100.8" && !strings.HasPrefix(f[4], "~"):
			t.Errorf("the sweep's row shows %q targets, without the ~ of an estimate: %s", f[4], line)
		}
	}
}

// Sources that each sweep thousands of targets (the costliest a source can be) keep
// the scans' sets within MaxSetBytes: the largest are ended early, reported and
// counted as evicted, and the accounting matches what the sets hold.
func TestSetBytesBoundedUnderSweepingSources(t *testing.T) {
	sources, targets := 400, 4500
	if testing.Short() {
		sources = 100
	}
	const budget = 2 << 20
	c := NewClassifier(Options{MaxSetBytes: budget})
	frame := syn4("1.0.0.1", "10.0.0.1", 23)
	const ipOff = 14
	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	heapBefore := heapInUse()
	peak := 0
	for i := range targets {
		for s := range sources {
			binary.BigEndian.PutUint32(frame[ipOff+12:], 0x01000001+uint32(s)<<8)
			binary.BigEndian.PutUint32(frame[ipOff+16:], 0x0a000000+uint32(i))
			ts += 1000
			c.Packet(ts, LinkEthernet, frame)
			peak = max(peak, c.setBytes)
		}
	}
	held := 0
	for i := range c.scans.vals {
		held += c.scans.vals[i].bytes()
	}
	heap := heapInUse()
	r := c.Report()
	t.Logf("%d sources sweeping %d targets: sets peak %d KiB (budget %d KiB), %d evicted, heap %+d KiB",
		sources, targets, peak>>10, budget>>10, r.Evicted, (int(heap)-int(heapBefore))>>10)
	if peak > budget {
		t.Errorf("sets peaked at %d bytes, over the %d budget", peak, budget)
	}
	if held != c.setBytes {
		t.Errorf("the table's sets hold %d bytes, the accounting says %d", held, c.setBytes)
	}
	if r.Evicted == 0 {
		t.Error("nothing evicted although the sets cannot all fit")
	}
	if d := int(heap) - int(heapBefore); d > 4*budget+8<<20 {
		t.Errorf("heap grew by %d KiB", d>>10)
	}
}
