package spool

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"gantry/internal/clientnet"
	"gantry/internal/peertest"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func newSpooler(t *testing.T, mem int) *Spooler {
	t.Helper()
	s, err := New(filepath.Join(t.TempDir(), "body"), mem, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// unsized hides a reader's length, as a chunked request body does.
func unsized(b []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(b)} }

func TestRead(t *testing.T) {
	const mem = 1024
	tests := []struct {
		name   string
		size   int
		length int64 // declared; -1 = chunked
		inFile bool
	}{
		{"empty chunked", 0, -1, false},
		{"small declared", 100, 100, false},
		{"small chunked", 100, -1, false},
		{"threshold declared", mem, mem, false},
		{"threshold chunked", mem, -1, false},
		{"one past threshold declared", mem + 1, mem + 1, true},
		{"one past threshold chunked", mem + 1, -1, true},
		{"large declared", 300 << 10, 300 << 10, true},
		{"large chunked", 300 << 10, -1, true},
	}
	for _, noTmpfile := range []bool{false, true} {
		s := newSpooler(t, mem)
		s.noTmpfs.Store(noTmpfile)
		for _, tt := range tests {
			name := tt.name
			if noTmpfile {
				name += " without O_TMPFILE"
			}
			t.Run(name, func(t *testing.T) {
				want := randomBytes(tt.size)
				var src io.Reader = bytes.NewReader(want)
				if tt.length < 0 {
					src = unsized(want)
				}
				// Short reads: the copy must not depend on full ones.
				b, err := s.Read(iotest.HalfReader(src), tt.length)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				if b.Len() != int64(tt.size) {
					t.Errorf("Len = %d, want %d", b.Len(), tt.size)
				}
				if got := b.File() != nil; got != tt.inFile {
					t.Errorf("in a file = %v, want %v", got, tt.inFile)
				}
				if (b.Bytes() == nil) != tt.inFile {
					t.Errorf("Bytes() nil = %v, want %v", b.Bytes() == nil, tt.inFile)
				}
				if n := peertest.Entries(t, s.Dir()); n != 0 {
					t.Errorf("%d names left in body_temp while the body is open; want none", n)
				}
				for pass := range 2 {
					got, err := io.ReadAll(b)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("pass %d: read %d bytes that differ from the %d sent", pass, len(got), len(want))
					}
					if err := b.Rewind(); err != nil {
						t.Fatal(err)
					}
				}
				if f := b.File(); f != nil {
					// A child given the file as stdin reads it from the start.
					if off, err := f.Seek(0, io.SeekCurrent); err != nil || off != 0 {
						t.Errorf("file offset %d (%v), want 0", off, err)
					}
				}
			})
		}
	}
}

func TestReadClosed(t *testing.T) {
	s := newSpooler(t, 16)
	b, err := s.Read(unsized(randomBytes(100)), -1)
	if err != nil {
		t.Fatal(err)
	}
	f := b.File()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := b.Read(make([]byte, 10)); err == nil {
		t.Error("Read after Close succeeded")
	}
	if _, err := f.Stat(); err == nil {
		t.Error("the file is still open after Close")
	}
}

// Every way a body can fail leaves no file and no descriptor behind, and maps to the
// status a client should get.
func TestReadFailures(t *testing.T) {
	const mem = 64
	broken := errors.New("connection reset")
	tests := []struct {
		name   string
		src    func() io.Reader
		length int64
		limit  int64
		status int
	}{
		{"short declared, in memory", func() io.Reader { return bytes.NewReader(make([]byte, 10)) }, 20, 1 << 20, 400},
		{"short declared, in a file", func() io.Reader { return bytes.NewReader(make([]byte, 100)) }, 200, 1 << 20, 400},
		{"client gone in memory", func() io.Reader { return io.MultiReader(bytes.NewReader(make([]byte, 10)), iotest.ErrReader(broken)) }, -1, 1 << 20, 400},
		{"client gone in a file", func() io.Reader { return io.MultiReader(bytes.NewReader(make([]byte, 1000)), iotest.ErrReader(broken)) }, -1, 1 << 20, 400},
		{"chunked past the limit", func() io.Reader { return unsized(make([]byte, 5000)) }, -1, 4096, 413},
		{"declared past the limit", func() io.Reader { return bytes.NewReader(make([]byte, 5000)) }, 5000, 4096, 413},
	}
	s := newSpooler(t, mem)
	before := peertest.OpenFDs(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", io.NopCloser(tt.src()))
			r.ContentLength = tt.length
			b, err := s.Request(httptest.NewRecorder(), r, tt.limit)
			if err == nil {
				b.Close()
				t.Fatal("no error")
			}
			if got := Status(err); got != tt.status {
				t.Errorf("status %d (%v), want %d", got, err, tt.status)
			}
		})
	}
	if after := peertest.OpenFDs(t); after != before {
		t.Errorf("%d descriptors open after the failures, %d before", after, before)
	}
	if n := peertest.Entries(t, s.Dir()); n != 0 {
		t.Errorf("%d files left in body_temp", n)
	}
}

func TestRequest(t *testing.T) {
	s := newSpooler(t, 64)
	want := randomBytes(1000)
	r := httptest.NewRequest("POST", "/", io.NopCloser(unsized(want)))
	r.ContentLength, r.TransferEncoding = -1, []string{"chunked"}
	b, err := s.Request(httptest.NewRecorder(), r, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if r.ContentLength != 1000 || r.TransferEncoding != nil || r.Body != io.ReadCloser(b) {
		t.Fatalf("request not rewritten: length %d, transfer-encoding %v", r.ContentLength, r.TransferEncoding)
	}
	if got, _ := io.ReadAll(r.Body); !bytes.Equal(got, want) {
		t.Fatal("body differs")
	}

	empty := httptest.NewRequest("POST", "/", http.NoBody)
	empty.ContentLength = -1
	if b, err := s.Request(httptest.NewRecorder(), empty, 10); b != nil || err != nil || empty.ContentLength != 0 {
		t.Errorf("no body: %v, %v, length %d; want nil, nil, 0", b, err, empty.ContentLength)
	}
}

func TestNewDir(t *testing.T) {
	base := t.TempDir()
	made := filepath.Join(base, "a", "body")
	if _, err := New(made, 0, 0); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(made); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created %v (%v), want mode 700", fi.Mode(), err)
	}
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	for name, dir := range map[string]string{"world-writable": open, "a file": file} {
		if _, err := New(dir, 0, 0); err == nil {
			t.Errorf("%s accepted as body_temp", name)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	s, err := New(b.TempDir(), 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		body := make([]byte, size)
		for _, chunked := range []bool{false, true} {
			name := map[bool]string{false: "declared", true: "chunked"}[chunked]
			b.Run(name+"-"+sizeName(size), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					var src io.Reader = bytes.NewReader(body)
					length := int64(size)
					if chunked {
						src, length = unsized(body), -1
					}
					sb, err := s.Read(src, length)
					if err != nil {
						b.Fatal(err)
					}
					sb.Close()
				}
			})
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return "1MB"
	}
	if n >= 64<<10 {
		return "64KB"
	}
	return "1KB"
}

// TestBudget: bodies held in files at once are bounded in all and per client
// network; a refused body leaves nothing taken, and closing a body gives its bytes
// back.
func TestBudget(t *testing.T) {
	const kb = 1 << 10
	netA, netB := clientnet.OfRemote("192.0.2.7:1234"), clientnet.OfRemote("[2001:db8::1]:80")
	if netA != netip.MustParsePrefix("192.0.2.0/24") || netB != netip.MustParsePrefix("2001:db8::/64") {
		t.Fatalf("clientnet.OfRemote: %v %v", netA, netB)
	}
	s, err := New(t.TempDir(), 0, 1024*kb) // 256 KB per network
	if err != nil {
		t.Fatal(err)
	}
	read := func(key netip.Prefix, n int) (*Body, error) {
		return s.read(bytes.NewReader(randomBytes(n)), int64(n), key)
	}
	a1, err := read(netA, 200*kb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := read(netA, 100*kb); !errors.Is(err, ErrFull) || Status(err) != http.StatusServiceUnavailable {
		t.Fatalf("a network past its share: %v (status %d), want ErrFull and 503", err, Status(err))
	}
	var held []*Body
	// 200 KB from netA, then 200 KB from each other network: the fifth would
	// take the total past 1024 KB.
	for i := range 5 {
		b, err := read(clientnet.OfRemote(fmt.Sprintf("198.51.%d.1:1", i)), 200*kb)
		switch {
		case i < 4 && err != nil:
			t.Fatalf("network %d within the total: %v", i, err)
		case i == 4 && !errors.Is(err, ErrFull):
			t.Fatalf("past the total: %v, want ErrFull", err)
		}
		if b != nil {
			held = append(held, b)
		}
	}
	if _, err := read(netB, 32*kb); err != nil {
		t.Fatalf("a body kept in memory is not counted: %v", err)
	}
	a1.Close()
	for _, b := range held {
		b.Close()
	}
	if s.budget.used != 0 || len(s.budget.nets) != 0 {
		t.Fatalf("after every body closed: %d bytes and %d networks still counted", s.budget.used, len(s.budget.nets))
	}
	if b, err := read(netA, 250*kb); err != nil {
		t.Fatalf("after the others closed: %v", err)
	} else {
		b.Close()
	}
}

// TestNewDirOpenToOthers names, as body_temp, a directory other users may
// enter: an admin's fresh mkdir, which gantry closes (0700), or a shared one
// holding other files (a site's root), which it must refuse naming the fix and
// leave alone. Closing that one, as root, would lock every other user out of
// what it serves.
func TestNewDirOpenToOthers(t *testing.T) {
	cases := []struct {
		name   string
		mode   os.FileMode
		files  []string
		closed bool
	}{
		{"a fresh mkdir", 0o755, nil, true},
		{"gantry's leftover bodies", 0o755, []string{"body-123"}, true},
		{"a site's root", 0o755, []string{"index.html"}, false},
		{"a group's directory", 0o750, []string{"shared.txt"}, false},
		{"a traversable one", 0o711, []string{"x"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "shared")
			os.Mkdir(dir, 0o700)
			for _, f := range tc.files {
				os.WriteFile(filepath.Join(dir, f), nil, 0o644)
			}
			os.Chmod(dir, tc.mode)
			_, err := New(dir, 0, 0)
			fi, serr := os.Stat(dir)
			if serr != nil {
				t.Fatal(serr)
			}
			switch {
			case tc.closed && (err != nil || fi.Mode().Perm() != 0o700):
				t.Errorf("New: %v, mode %v; want it closed to 700", err, fi.Mode().Perm())
			case !tc.closed && (err == nil || !strings.Contains(err.Error(), "chmod 700")):
				t.Errorf("New: %v; want an error naming chmod 700", err)
			case !tc.closed && fi.Mode().Perm() != tc.mode:
				t.Errorf("mode now %v; want %v left alone", fi.Mode().Perm(), tc.mode)
			}
		})
	}
}
