package dashboard

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// filled writes n seconds of points, from storeT0 on, to a new history file and
// returns its path.
func filled(t *testing.T, storeT0 int64, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "history")
	s, err := openStore(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		p := histPoint{T: storeT0 + int64(i)*1000}
		p.V[fRPS] = float64(i + 1)
		p.V[fP99] = float64(i % 7)
		s.add(p)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	return path
}

const storeT0 int64 = 1_800_000_000_000 // a minute boundary, in Unix milliseconds

func TestStoreKeepsSecondsAndMinutes(t *testing.T) {
	path := filled(t, storeT0, 150) // two whole minutes and half of a third
	s, err := openStore(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	now := storeT0 + int64(150*1000)
	secs := s.since(now-3600*1000, now)
	if len(secs) != 150 || secs[0].T != storeT0 || secs[149].V[fRPS] != 150 {
		t.Fatalf("seconds: %d points, first %+v", len(secs), secs[0])
	}
	mins := s.since(now-24*3600*1000, now)
	if len(mins) != 2+30 || mins[2].T != storeT0+120*1000 {
		t.Fatalf("a day: %d points, want the 2 finished minutes, then the 30 seconds of the third", len(mins))
	}
	// the mean rate of seconds 1..60 is 30.5; the minute's p99 is its worst second
	if mins[0].T != storeT0 || mins[0].V[fRPS] != 30.5 || mins[0].V[fP99] != 6 || mins[1].V[fRPS] != 90.5 {
		t.Fatalf("minutes: %+v %+v", mins[0].V[:8], mins[1].V[:8])
	}
}

// TestStoreDamagedFile: a damaged file costs the damaged records, or, when the
// header is gone, the history; never the start, and the file works afterwards.
func TestStoreDamagedFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		keep   int // points of the second ring left
		warn   bool
	}{
		{"intact", func(b []byte) []byte { return b }, 100, false},
		{"torn last record", func(b []byte) []byte {
			// a crash in the middle of writing second 99: its second half is old
			off := headerSize + (int((storeT0+99*1000)/1000)%secSlots)*recordSize
			copy(b[off+recordSize/2:off+recordSize], make([]byte, recordSize/2))
			return b
		}, 99, false},
		{"empty", func(b []byte) []byte { return nil }, 0, true},
		{"cut in the header", func(b []byte) []byte { return b[:10] }, 0, true},
		{"cut in the records", func(b []byte) []byte { return b[:headerSize+5*recordSize] }, 0, true},
		{"other magic", func(b []byte) []byte { b[0] = 'X'; return b }, 0, true},
		{"other layout", func(b []byte) []byte { b[12]++; return b }, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filled(t, storeT0, 100)
			b, _ := os.ReadFile(path)
			os.WriteFile(path, tc.damage(b), 0o600)
			var logs bytes.Buffer
			s, err := openStore(path, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			now := storeT0 + int64(100*1000)
			if got := len(s.since(now-3600*1000, now)); got != tc.keep {
				t.Errorf("%d points kept, want %d", got, tc.keep)
			}
			if warned := strings.Contains(logs.String(), "history file unreadable"); warned != tc.warn {
				t.Errorf("warned %v: %s", warned, logs.String())
			}
			s.add(histPoint{T: now, V: [nFields]float64{fRPS: 7}})
			s.close()
			if fi, _ := os.Stat(path); fi.Size() != fileSize {
				t.Errorf("file is %d bytes, want %d", fi.Size(), fileSize)
			}
			s, err = openStore(path, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			pts := s.since(now+1-3600*1000, now+1)
			if len(pts) != tc.keep+1 || pts[len(pts)-1].V[fRPS] != 7 {
				t.Errorf("after a write: %d points, want %d ending with the new one", len(pts), tc.keep+1)
			}
		})
	}
}

// TestStoreOneWriter: a second process (here, a second open) on the same file
// is refused instead of interleaving its points with the first's.
func TestStoreOneWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	s, err := openStore(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openStore(path, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "in use by another gantry process") {
		t.Fatalf("second open: %v", err)
	}
	s.close()
	s, err = openStore(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open after the first closed: %v", err)
	}
	s.close()
}

// FuzzStoreOpen: whatever the file holds, opening it neither panics nor fails,
// and keeps only points that sit in their own slot.
func FuzzStoreOpen(f *testing.F) {
	dir := f.TempDir()
	good := filepath.Join(dir, "good")
	s, _ := openStore(good, slog.New(slog.DiscardHandler))
	s.add(histPoint{T: storeT0, V: [nFields]float64{fRPS: 1}})
	s.close()
	b, _ := os.ReadFile(good)
	f.Add(b[:headerSize])                          // the header alone
	f.Add(b[:headerSize+recordSize])               // one record
	f.Add([]byte("GNTYHST1"))                      // the magic alone
	f.Add(append(b[:headerSize:headerSize], 0xff)) // a header and garbage
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "h")
		// a short input stands for the start of an otherwise good file
		full := append([]byte{}, b...)
		copy(full, data)
		if len(data) > 1000 {
			full = data
		}
		os.WriteFile(path, full, 0o600)
		s, err := openStore(path, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		for _, r := range []*ring{&s.sec, &s.min} {
			for i, p := range r.pts {
				if p.T != 0 && r.slot(p.T) != i {
					t.Fatalf("point %d in slot %d", p.T, i)
				}
			}
		}
	})
}

// TestStoreRefusesOtherFiles: a symlink or a non-regular file at the history's
// path is refused (the history stays in memory), never truncated and rewritten:
// the path may point at any file the process can write.
func TestStoreRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	precious := filepath.Join(dir, "precious")
	os.WriteFile(precious, []byte("not a history file\n"), 0o600)
	link := filepath.Join(dir, "dashboard-history")
	if err := os.Symlink(precious, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{link, fifo, dir} {
		s, err := openStore(path, slog.New(slog.DiscardHandler))
		if err == nil {
			s.close()
			t.Errorf("%s: opened as a history file", path)
		}
	}
	if b, _ := os.ReadFile(precious); string(b) != "not a history file\n" {
		t.Fatalf("the symlink's target was rewritten: now %d bytes starting %q", len(b), b[:min(len(b), 8)])
	}
}

// TestStoreClockSetBack: after the clock ran days ahead and was set back, the
// points stamped in the future neither show in the graphs nor hide the
// seconds of the minute going on now.
func TestStoreClockSetBack(t *testing.T) {
	s := newStore()
	add := func(from int64, n int) {
		for i := range n {
			s.add(histPoint{T: from + int64(i)*1000, V: [nFields]float64{fRPS: 1}})
		}
	}
	add(storeT0, 150)
	add(storeT0+3*24*3600*1000+1800*1000, 150) // the clock three days and half an hour ahead
	add(storeT0+150*1000, 100)                 // and set back
	now := storeT0 + 250*1000
	for _, span := range []int64{300, 3600, 24 * 3600, 7 * 24 * 3600} {
		pts := s.since(now-span*1000, now)
		if len(pts) == 0 {
			t.Fatalf("%d s: no points", span)
		}
		for _, p := range pts {
			if p.T > now {
				t.Fatalf("%d s: a point %d s in the future", span, (p.T-now)/1000)
			}
		}
		if last := pts[len(pts)-1].T; last != now-1000 {
			t.Errorf("%d s: the last point is %d s before now, want the last second", span, (now-last)/1000)
		}
	}
}

// TestStoreDiskFull: the history's 2 MB are taken on the disk when the file is
// opened (a full disk later cannot refuse a record), and writes that fail all
// the same are logged once, not every second: a full disk must not fill up
// the log as well.
func TestStoreDiskFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	var logs bytes.Buffer
	s, err := openStore(path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 < fileSize {
		t.Errorf("%d bytes of the %d-byte file are on the disk: the rest is a hole a full disk can refuse", st.Blocks*512, fileSize)
	}
	// a file opened read-only stands for a disk that refuses every write
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	rw := s.f
	s.f = ro
	for i := range 600 {
		s.add(histPoint{T: storeT0 + int64(i)*1000, V: [nFields]float64{fRPS: 1}})
	}
	if n := strings.Count(logs.String(), "write failed"); n != 1 {
		t.Errorf("ten minutes of failed writes logged %d times, want once:\n%.2000s", n, logs.String())
	}
	if got := len(s.since(storeT0, storeT0+600*1000)); got != 600 {
		t.Errorf("the graphs kept %d of the 600 seconds in memory", got)
	}
	ro.Close()
	s.f = rw
	s.add(histPoint{T: storeT0 + 600*1000, V: [nFields]float64{fRPS: 1}})
	if !strings.Contains(logs.String(), "history: writes work again") {
		t.Errorf("the recovery is not logged:\n%.2000s", logs.String())
	}
}

// TestStoreMinuteLatencyOfQuietSite: a minute's median latency is that of its
// requests: seconds without any, whose p50 reads 0, do not pull it down (six
// requests at 100 ms in a quiet minute are not a 10 ms minute on the 24 h graph).
func TestStoreMinuteLatencyOfQuietSite(t *testing.T) {
	s := newStore()
	for i := range 61 {
		p := histPoint{T: storeT0 + int64(i)*1000}
		if i%10 == 0 && i < 60 {
			p.V[fRPS], p.V[fP50], p.V[fP99] = 1, 100, 120
		}
		s.add(p)
	}
	now := storeT0 + 61*1000
	pts := s.since(now-24*3600*1000, now)
	if len(pts) == 0 || pts[0].T != storeT0 {
		t.Fatalf("no minute: %+v", pts)
	}
	if m := pts[0]; m.V[fP50] != 100 || m.V[fP99] != 120 || m.V[fRPS] != 0.1 {
		t.Errorf("minute: p50 %v ms, p99 %v ms, %v requests/s; want 100, 120 and 0.1", m.V[fP50], m.V[fP99], m.V[fRPS])
	}
}
