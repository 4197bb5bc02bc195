package fastcgi

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func TestEncodeRecords(t *testing.T) {
	long := strings.Repeat("v", 200)
	tests := []struct {
		name string
		got  []byte
		want string // hex
	}{
		{"begin request with keep-conn", appendBeginRequest(nil, 1, true),
			"0101000100080000" + "0001010000000000"},
		{"begin request without keep-conn", appendBeginRequest(nil, 258, false),
			"0101010200080000" + "0001000000000000"},
		{"empty params ends the stream", appendRecord(nil, typeParams, 1, nil),
			"0104000100000000"},
		{"content padded to 8 bytes", appendRecord(nil, typeStdin, 1, []byte("abc")),
			"0105000100030500" + "6162630000000000"},
		{"abort request", appendRecord(nil, typeAbortRequest, 1, nil),
			"0102000100000000"},
		{"pair with 1-byte lengths", appendPair(nil, "A", "bc"),
			"0102" + "416263"},
		{"127 is the largest 1-byte length", appendLength(nil, 127), "7f"},
		{"128 takes 4 bytes with the top bit set", appendLength(nil, 128), "80000080"},
		{"pair with a 4-byte value length", appendPair(nil, "N", long)[:6],
			"01800000c84e"},
		{"large 4-byte length", appendLength(nil, 70000), "80011170"},
		{"get values with management id 0", appendRecord(nil, typeGetValues, 0, appendPair(nil, "FCGI_MAX_CONNS", "")),
			"0109000000100000" + "0e00" + hex.EncodeToString([]byte("FCGI_MAX_CONNS"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hex.EncodeToString(tt.got); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestAppendStreamSplitsAtMaxContent(t *testing.T) {
	content := bytes.Repeat([]byte{'x'}, maxContent+10)
	b := appendStream(nil, typeStdout, 1, content)
	r := bytes.NewReader(b)
	var buf [headerLen]byte
	var lengths []int
	for r.Len() > 0 {
		h, err := readHeader(r, buf[:])
		if err != nil {
			t.Fatal(err)
		}
		lengths = append(lengths, int(h.ContentLength))
		r.Seek(int64(h.ContentLength)+int64(h.PaddingLength), 1)
	}
	if len(lengths) != 2 || lengths[0] != maxContent || lengths[1] != 10 {
		t.Fatalf("record lengths %v, want [%d 10]", lengths, maxContent)
	}
}

func TestParsePairs(t *testing.T) {
	long := strings.Repeat("y", 300)
	tests := []struct {
		name    string
		in      []byte
		want    [][2]string
		wantErr bool
	}{
		{"one short pair", appendPair(nil, "FCGI_MAX_CONNS", "2"), [][2]string{{"FCGI_MAX_CONNS", "2"}}, false},
		{"long value", appendPair(appendPair(nil, "A", long), "B", ""), [][2]string{{"A", long}, {"B", ""}}, false},
		{"name length past the end", []byte{5, 0, 'a'}, nil, true},
		{"truncated 4-byte length", []byte{0x80, 0, 0}, nil, true},
		{"huge 4-byte length", []byte{0xff, 0xff, 0xff, 0xff, 0, 'a'}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePairs(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !equalPairs(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func equalPairs(a, b [][2]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadHeaderRejectsOtherVersions(t *testing.T) {
	var buf [headerLen]byte
	_, err := readHeader(bytes.NewReader([]byte{2, 6, 0, 1, 0, 0, 0, 0}), buf[:])
	if err == nil {
		t.Fatal("version 2 accepted")
	}
}

// FuzzParsePairs: whatever the bytes, parsing never panics, and what parses
// re-encodes to exactly the same bytes.
func FuzzParsePairs(f *testing.F) {
	f.Add(appendPair(nil, "FCGI_MAX_CONNS", "2"))                   // php-fpm's GET_VALUES_RESULT
	f.Add(appendPair(nil, "SCRIPT_NAME", strings.Repeat("a", 200))) // 4-byte value length
	f.Add([]byte{0x80, 0, 0, 1, 0x80, 0, 0, 1, 'n', 'v'})           // 4-byte lengths for short strings
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})   // hostile lengths
	f.Add([]byte{3})                                                // truncated
	f.Fuzz(func(t *testing.T, b []byte) {
		pairs, err := parsePairs(b)
		if err != nil {
			return
		}
		var re []byte
		for _, p := range pairs {
			re = appendPair(re, p[0], p[1])
		}
		// A 4-byte encoding of a short length is legal but re-encodes shorter.
		again, err := parsePairs(re)
		if err != nil || !equalPairs(again, pairs) {
			t.Fatalf("re-encoded pairs do not round-trip: %q vs %q (%v)", again, pairs, err)
		}
	})
}

// FuzzReadRecord: a stream of records never makes the decoder panic or read beyond
// what a header announces.
func FuzzReadRecord(f *testing.F) {
	f.Add(appendRecord(nil, typeStdout, 1, []byte("Status: 200\r\n\r\nhi")))                                                  // one STDOUT record
	f.Add(append(appendRecord(nil, typeStderr, 1, []byte("warn")), appendRecord(nil, typeEndRequest, 1, make([]byte, 8))...)) // stderr then end
	f.Add([]byte{1, 6, 0, 1, 0xff, 0xff, 0xff, 0})                                                                            // announces more than it has
	f.Add([]byte{1, 3, 0, 1, 0, 2, 0, 0, 0, 0})                                                                               // END_REQUEST too short
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReader(bytes.NewReader(b))
		var hdr [headerLen]byte
		buf := make([]byte, maxContent+255)
		for i := 0; i < 1000; i++ {
			h, content, err := decodeRecord(br, hdr[:], buf, nil)
			if err != nil {
				return
			}
			if len(content) != int(h.ContentLength) {
				t.Fatalf("content %d bytes, header says %d", len(content), h.ContentLength)
			}
			if h.Type == typeEndRequest {
				parseEndRequest(content)
			}
		}
	})
}
