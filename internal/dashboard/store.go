package dashboard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

// The history store keeps the per-second series twice: an hour at one second
// and seven days at one minute. Each ring is a fixed array of fixed-size records
// in one file, and a record's slot is its time modulo the ring's length, so the
// file never grows, needs no write pointer, and a write is one WriteAt of one
// record. Every record carries its own checksum: a crash in the middle of a
// write costs that record and no other.

// Series fields, in the order a record stores them.
const (
	fRPS = iota
	f1xx
	f2xx
	f3xx
	f4xx
	f5xx
	fP50
	fP99
	fUnsolicited
	fDark
	fBackscatter
	fScan
	fOther
	fInFlight
	fBytesIn
	fBytesOut
	fAborted
	nFields
)

// fieldNames are the series' names in /api/history?range=.
var fieldNames = [nFields]string{"rps", "1xx", "2xx", "3xx", "4xx", "5xx", "p50_ms", "p99_ms", "unsolicited", "dark",
	"backscatter", "scan", "other", "in_flight", "bytes_in", "bytes_out", "aborted"}

// histPoint is one sample as the store keeps it.
type histPoint struct {
	T int64 // Unix milliseconds; 0 for an empty slot
	V [nFields]float64
}

const (
	secSlots   = 3600        // one hour at one second
	minSlots   = 7 * 24 * 60 // seven days at one minute
	recordSize = 8 + 8*nFields + 4
	headerSize = 32
	fileMagic  = "GNTYHST1"
)

var errBadFile = errors.New("not a gantry history file of this version")

// ring is one series of points with a slot per step.
type ring struct {
	step int64 // milliseconds per slot
	pts  []histPoint
	base int64 // offset of slot 0 in the file
}

func (r *ring) slot(t int64) int { return int((t / r.step) % int64(len(r.pts))) }

// between returns the points from `from` to `to`, oldest first.
func (r *ring) between(from, to int64) []histPoint {
	var out []histPoint
	for _, p := range r.pts {
		if p.T != 0 && p.T >= from && p.T <= to {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b histPoint) int { return cmpInt64(a.T, b.T) })
	return out
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// store is the two rings and, when the history is kept on disk, their file.
type store struct {
	mu   sync.Mutex
	sec  ring
	min  ring
	f    *os.File // nil: memory only
	log  *slog.Logger
	acc  histPoint // the current minute's sums
	accN int
	// the minute's median latencies weighted by their seconds' requests, and
	// the weight: a second without requests has no latency, not one of 0 ms
	accP50, accReq float64
	buf            [recordSize]byte
	// failing is set while writes fail (a full disk): logged once, not every second.
	failing bool
}

func newStore() *store {
	return &store{
		sec: ring{step: 1000, pts: make([]histPoint, secSlots), base: headerSize},
		min: ring{step: 60000, pts: make([]histPoint, minSlots), base: headerSize + secSlots*recordSize},
		log: slog.New(slog.DiscardHandler),
	}
}

const fileSize = headerSize + (secSlots+minSlots)*recordSize

// openStore opens or creates the history file at path. A file that is not a
// history file of this layout, or is cut short, is logged and started afresh: a
// history is worth less than a dashboard that starts.
func openStore(path string, log *slog.Logger) (*store, error) {
	s := newStore()
	s.log = log
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	// A file that is not a history file is rewritten as one: the path must not
	// lead, through a symlink, to some other file this process may write.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w (it must be a regular file, not a symlink)", path, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("history %s: not a regular file; move it away", path)
	}
	// Two gantry processes with one state directory would write each other's
	// seconds: the first keeps the file, the other its history in memory.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("history %s: in use by another gantry process (%w)", path, err)
	}
	kept, err := s.load(f)
	if err != nil {
		log.Warn("history file unreadable; starting a new one", "file", path, "err", err)
		if err := s.reset(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("history %s: %w", path, err)
		}
	} else if kept > 0 {
		log.Info("history restored", "file", path, "points", kept)
	}
	// Truncate made the file a hole: its blocks are taken now, so that a disk
	// that fills up later cannot refuse a record.
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, fileSize); err != nil {
		log.Warn("history: cannot reserve the file's space on the disk; writes may fail when it is full", "file", path, "err", err)
	}
	s.f = f
	return s, nil
}

// load reads a whole file into the rings; records whose checksum fails are
// skipped (the one a crash cut short), and so are records in the wrong slot.
func (s *store) load(f io.ReaderAt) (int, error) {
	var hdr [headerSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return 0, fmt.Errorf("header: %w", err)
	}
	if string(hdr[:8]) != fileMagic || binary.LittleEndian.Uint32(hdr[8:]) != recordSize ||
		binary.LittleEndian.Uint32(hdr[12:]) != secSlots || binary.LittleEndian.Uint32(hdr[16:]) != minSlots ||
		binary.LittleEndian.Uint32(hdr[20:]) != crc32.ChecksumIEEE(hdr[:20]) {
		return 0, errBadFile
	}
	kept := 0
	for _, r := range []*ring{&s.sec, &s.min} {
		b := make([]byte, len(r.pts)*recordSize)
		if _, err := f.ReadAt(b, r.base); err != nil {
			return 0, fmt.Errorf("records: %w", err)
		}
		for i := range r.pts {
			p, ok := decodePoint(b[i*recordSize : (i+1)*recordSize])
			if ok && p.T > 0 && r.slot(p.T) == i {
				r.pts[i] = p
				kept++
			}
		}
	}
	return kept, nil
}

// reset writes an empty file: the header, then zeros.
func (s *store) reset(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if err := f.Truncate(fileSize); err != nil {
		return err
	}
	var hdr [headerSize]byte
	copy(hdr[:], fileMagic)
	binary.LittleEndian.PutUint32(hdr[8:], recordSize)
	binary.LittleEndian.PutUint32(hdr[12:], secSlots)
	binary.LittleEndian.PutUint32(hdr[16:], minSlots)
	binary.LittleEndian.PutUint32(hdr[20:], crc32.ChecksumIEEE(hdr[:20]))
	_, err := f.WriteAt(hdr[:], 0)
	return err
}

func encodePoint(b []byte, p *histPoint) {
	binary.LittleEndian.PutUint64(b, uint64(p.T))
	for i, v := range p.V {
		binary.LittleEndian.PutUint64(b[8+8*i:], math.Float64bits(v))
	}
	binary.LittleEndian.PutUint32(b[recordSize-4:], crc32.ChecksumIEEE(b[:recordSize-4]))
}

func decodePoint(b []byte) (histPoint, bool) {
	var p histPoint
	if len(b) != recordSize || binary.LittleEndian.Uint32(b[recordSize-4:]) != crc32.ChecksumIEEE(b[:recordSize-4]) {
		return p, false
	}
	p.T = int64(binary.LittleEndian.Uint64(b))
	for i := range p.V {
		v := math.Float64frombits(binary.LittleEndian.Uint64(b[8+8*i:]))
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return histPoint{}, false
		}
		p.V[i] = v
	}
	return p, true
}

// add keeps one per-second point, and each minute the minute's average (the
// highest p99: a minute's worst second is what a p99 graph is read for; the
// p50 of the seconds with requests, by their number).
func (s *store) add(p histPoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accN > 0 && p.T/60000 != s.acc.T/60000 {
		m := s.acc
		for i := range m.V {
			if i != fP99 {
				m.V[i] = round3(m.V[i] / float64(s.accN))
			}
		}
		m.V[fP50] = 0
		if s.accReq > 0 {
			m.V[fP50] = round3(s.accP50 / s.accReq)
		}
		m.T = s.acc.T / 60000 * 60000
		s.put(&s.min, m)
		s.acc, s.accN, s.accP50, s.accReq = histPoint{}, 0, 0, 0
	}
	for i, v := range p.V {
		if i == fP99 {
			s.acc.V[i] = max(s.acc.V[i], v)
		} else {
			s.acc.V[i] += v
		}
	}
	if p.V[fRPS] > 0 {
		s.accP50 += p.V[fP50] * p.V[fRPS]
		s.accReq += p.V[fRPS]
	}
	s.acc.T = p.T
	s.accN++
	s.put(&s.sec, p)
}

func (s *store) put(r *ring, p histPoint) {
	i := r.slot(p.T)
	r.pts[i] = p
	if s.f == nil {
		return
	}
	encodePoint(s.buf[:], &p)
	_, err := s.f.WriteAt(s.buf[:], r.base+int64(i)*recordSize)
	// Once a minute, what the page cache holds goes to the disk: a power cut
	// costs at most the last minute.
	if err == nil && r == &s.min {
		err = s.f.Sync()
	}
	switch {
	case err != nil && !s.failing:
		s.failing = true
		s.log.Warn("history: write failed; the graphs keep their points in memory only until writes work again", "err", err)
	case err == nil && s.failing:
		s.failing = false
		s.log.Info("history: writes work again")
	}
}

// since returns the points from `from` on: seconds for the last hour; beyond
// it minutes, then the seconds of the minute not finished yet, so that a long
// range is never empty, nor its last minute missing. Points stamped after now
// (while the clock ran ahead, before it was set back) are left out until their
// slot is written again.
func (s *store) since(from, now int64) []histPoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now-from <= secSlots*1000 {
		return s.sec.between(from, now)
	}
	pts := s.min.between(from, now)
	if len(pts) > 0 {
		from = max(from, pts[len(pts)-1].T+s.min.step)
	}
	return append(pts, s.sec.between(from, now)...)
}

func (s *store) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
