package wsgi

import (
	"encoding/hex"
	"maps"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gantry/internal/peertest"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Seeds: what CPython 3.11's marshal.dumps makes of real response heads.
var headSeeds = [][]byte{
	// ('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '13')]): interned
	// strings flagged as references (0x80 bit), a short int-ascii body length.
	unhex("a902fa06323030204f4b5b02000000a902fa0c436f6e74656e742d54797065fa0a746578742f706c61696ea902fa0e436f6e74656e742d4c656e677468da023133"),
	// ('404 Not Found', [(s, 'a'), (s, 'b'), ('X-Café', 'café')]) with s repeated: a
	// back-reference ('r') and UTF-8 text ('u') outside ASCII.
	unhex("a902fa0d343034204e6f7420466f756e645b030000002902fa06582d53616d65da016129027202000000da0162a902f507000000582d436166c3a9f505000000636166c3a9"),
	// ('200 OK', []) with plain (unflagged) types.
	{')', 2, 'z', 6, '2', '0', '0', ' ', 'O', 'K', '[', 0, 0, 0, 0},
	// A reference to itself while still being decoded: must be rejected.
	{0xa9, 2, 'r', 0, 0, 0, 0, '[', 0, 0, 0, 0},
}

func TestDecodeHead(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		status  string
		headers [][2]string
		err     string
	}{
		{name: "interned refs", in: headSeeds[0], status: "200 OK",
			headers: [][2]string{{"Content-Type", "text/plain"}, {"Content-Length", "13"}}},
		{name: "back-reference and Latin-1", in: headSeeds[1], status: "404 Not Found",
			headers: [][2]string{{"X-Same", "a"}, {"X-Same", "b"}, {"X-Caf\xe9", "caf\xe9"}}},
		{name: "no headers", in: headSeeds[2], status: "200 OK", headers: [][2]string{}},
		{name: "self reference", in: headSeeds[3], err: "malformed"},
		{name: "truncated", in: headSeeds[0][:20], err: "malformed"},
		{name: "not a pair", in: []byte{')', 1, 'z', 1, 'x'}, err: "not (status, headers)"},
		{name: "bytes header", in: []byte{')', 2, 'z', 6, '2', '0', '0', ' ', 'O', 'K', '[', 1, 0, 0, 0, ')', 2, 's', 1, 0, 0, 0, 'a', 'z', 1, 'b'},
			err: "must be str"},
		{name: "text beyond Latin-1", in: []byte{')', 2, 'u', 3, 0, 0, 0, 0xe2, 0x82, 0xac, '[', 0, 0, 0, 0}, err: "Latin-1"},
		{name: "huge length", in: []byte{')', 2, 'a', 0xff, 0xff, 0xff, 0x7f}, err: "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, headers, err := decodeHead(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.status || mustJSON(headers) != mustJSON(tc.headers) {
				t.Errorf("got %q %q, want %q %q", status, headers, tc.status, tc.headers)
			}
		})
	}
}

func FuzzDecodeHead(f *testing.F) {
	for _, s := range headSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		status, headers, err := decodeHead(b)
		if err == nil && status == "" && headers == nil {
			t.Error("success without a result")
		}
		// The fast path must agree with the general decoder whenever it answers.
		if fs, fh, ok := decodeHeadFast(b); ok {
			gs, gh, err := decodeHeadAny(b)
			if err != nil || fs != gs || !slices.Equal(fh, gh) {
				t.Errorf("fast path: %q %q; general decoder: %q %q %v", fs, fh, gs, gh, err)
			}
		}
	})
}

// FuzzMarshalStr checks that every Go string survives the trip through marshal as
// a Latin-1 str: bytes in, the same bytes out.
func FuzzMarshalStr(f *testing.F) {
	f.Add("")                          // empty
	f.Add("/env")                      // short ASCII
	f.Add(strings.Repeat("a", 300))    // long ASCII
	f.Add("/caf\xc3\xa9")              // UTF-8 bytes
	f.Add("\xff\x00\x80 invalid utf8") // arbitrary bytes
	f.Fuzz(func(t *testing.T, s string) {
		u := unmarshal{b: appendMarshalStr(nil, s)}
		v, err := u.value(0)
		if err != nil || v != s || len(u.b) != 0 {
			t.Errorf("round trip of %q: %q, %v, %d bytes left", s, v, err, len(u.b))
		}
	})
}

// TestMarshalEnvironInPython decodes gantry's environ encoding with CPython itself.
func TestMarshalEnvironInPython(t *testing.T) {
	python := peertest.Python(t)
	b := []byte{mDict}
	b = append(b, appendStatic(nil, Options{Threads: 4, Processes: 1})...)
	b = appendMarshalStr(appendMarshalStr(b, "PATH_INFO"), "/caf\xc3\xa9")
	b = appendMarshalStr(appendMarshalStr(b, "HTTP_X_LONG"), strings.Repeat("v", 300))
	b = append(b, mNull)
	code := `import marshal, sys; e = marshal.loads(bytes.fromhex(sys.argv[1]));` +
		`print(repr(sorted(e.items())))`
	out, err := exec.Command(python, "-c", code, hex.EncodeToString(b)).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := `[('HTTP_X_LONG', '` + strings.Repeat("v", 300) + `'), ('PATH_INFO', '/cafÃ©'), ` +
		`('wsgi.input_terminated', True), ('wsgi.multiprocess', False), ('wsgi.multithread', True), ` +
		`('wsgi.run_once', False), ('wsgi.version', (1, 0))]`
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("python decoded\n%s\nwant\n%s", got, want)
	}
}

// The fast path must take what CPython sends for a typical head, not leave it all to
// the general decoder.
func TestDecodeHeadFastPathTakesTypicalHeads(t *testing.T) {
	for i, seed := range [][]byte{headSeeds[0], headSeeds[2]} {
		if _, _, ok := decodeHeadFast(seed); !ok {
			t.Errorf("seed %d: fast path declined", i)
		}
	}
}

func BenchmarkDecodeHead(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodeHead(headSeeds[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// worker.py names its frame types as protocol.go does, with the same letters, so
// that a grep for a frame finds both sides.
func TestWorkerFrameNames(t *testing.T) {
	goFrames := map[string]byte{
		"frameRequest": frameRequest, "frameStream": frameStream, "frameBody": frameBody,
		"frameBodyEnd": frameBodyEnd, "frameBodyAbort": frameBodyAbort, "frameHead": frameHead,
		"frameData": frameData, "frameFile": frameFile, "frameEnd": frameEnd, "frameError": frameError,
	}
	pyFrames := map[string]byte{}
	for _, m := range regexp.MustCompile(`(?m)^(frame\w+) = ord\("(.)"\)`).FindAllStringSubmatch(workerSource, -1) {
		pyFrames[m[1]] = m[2][0]
	}
	if !maps.Equal(goFrames, pyFrames) {
		t.Errorf("worker.py frames %q, protocol.go frames %q", pyFrames, goFrames)
	}
	// No frame type is left as a bare number.
	if m := regexp.MustCompile(`_pack\(\d+|kind == \d+`).FindString(workerSource); m != "" {
		t.Errorf("worker.py still has %q: use the named frame type", m)
	}
}
