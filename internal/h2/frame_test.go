package h2

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The frames the server writes, byte for byte as RFC 9113 §6 lays them out.
func TestAppendFrames(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"settings", appendSettings(nil, false, [2]uint32{settingMaxConcurrentStreams, 250}, [2]uint32{settingInitialWindowSize, 1 << 18}),
			"00000c 04 00 00000000  0003 000000fa  0004 00040000"},
		{"settings ack", appendSettings(nil, true), "000000 04 01 00000000"},
		{"ping ack", appendPing(nil, true, []byte("12345678")), "000008 06 01 00000000 3132333435363738"},
		{"window update on the connection", appendWindowUpdate(nil, 0, 983041), "000004 08 00 00000000 000f0001"},
		{"window update on a stream", appendWindowUpdate(nil, 3, 65536), "000004 08 00 00000003 00010000"},
		{"rst_stream", appendRSTStream(nil, 5, errRefusedStream), "000004 03 00 00000005 00000007"},
		{"goaway", appendGoAway(nil, 7, errEnhanceYourCalm, "x"), "000009 07 00 00000000 00000007 0000000b 78"},
		{"data", appendData(nil, 1, []byte("hi"), false), "000002 00 00 00000001 6869"},
		{"data ending the stream", appendData(nil, 1, nil, true), "000000 00 01 00000001"},
		{"headers in one frame", appendHeaderBlock(nil, 1, []byte{0x88}, true, 16384), "000001 01 05 00000001 88"},
		{"headers split into continuations", appendHeaderBlock(nil, 3, []byte("abcde"), false, 2),
			"000002 01 00 00000003 6162  000002 09 00 00000003 6364  000001 09 04 00000003 65"},
		{"empty header block", appendHeaderBlock(nil, 9, nil, false, 16384), "000000 01 04 00000009"},
		{"stream id above 2^24", appendData(nil, 0x01020304, nil, false), "000000 00 00 01020304"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if want := unhex(t, tt.want); !bytes.Equal(tt.got, want) {
				t.Errorf("got  %x\nwant %x", tt.got, want)
			}
		})
	}
}

// What the reader makes of the bytes a client sends.
func TestFrameReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     uint32
		want    frameHeader
		payload string
		err     error
	}{
		{"settings", "00000c 04 00 00000000 0003 000000fa 0004 00040000", 16384,
			frameHeader{12, frameSettings, 0, 0}, "0003000000fa000400040000", nil},
		{"the reserved bit is ignored", "000000 00 01 80000003", 16384, frameHeader{0, frameData, flagEndStream, 3}, "", nil},
		{"unknown type and flags", "000001 fa ff 00000001 00", 16384, frameHeader{1, 0xfa, 0xff, 1}, "00", nil},
		{"larger than the maximum", "004001 00 00 00000001", 16384, frameHeader{16385, frameData, 0, 1}, "", errFrameTooLarge},
		{"as large as the maximum", "000004 00 00 00000001 01020304", 4, frameHeader{4, frameData, 0, 1}, "01020304", nil},
		{"short header", "0000", 16384, frameHeader{}, "", io.ErrUnexpectedEOF},
		{"short payload", "000004 00 00 00000001 0102", 16384, frameHeader{4, frameData, 0, 1}, "", io.ErrUnexpectedEOF},
		{"nothing", "", 16384, frameHeader{}, "", io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := frameReader{r: bytes.NewReader(unhex(t, tt.in)), max: tt.max}
			h, p, err := fr.next()
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if h != tt.want {
				t.Errorf("header %v, want %v", h, tt.want)
			}
			if err == nil && hex.EncodeToString(p) != tt.payload {
				t.Errorf("payload %x, want %s", p, tt.payload)
			}
		})
	}
}

func TestStripPadding(t *testing.T) {
	tests := []struct {
		name   string
		flags  uint8
		in     string
		want   string
		wantOK bool
	}{
		{"not padded", 0, "616263", "616263", true},
		{"padded", flagPadded, "02 616263 0000", "616263", true},
		{"no padding", flagPadded, "00 6162", "6162", true},
		{"padding is the whole payload", flagPadded, "02 0000", "", true},
		{"padding longer than the payload", flagPadded, "03 0000", "", false},
		{"no pad length", flagPadded, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := stripPadding(frameHeader{flags: tt.flags}, unhex(t, tt.in))
			if ok != tt.wantOK || ok && hex.EncodeToString(got) != tt.want {
				t.Errorf("got %x, %v; want %s, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// FuzzFrameReader: any byte stream yields frames whose payload is exactly the
// length their header states and never more than the maximum, or an error;
// never a panic.
func FuzzFrameReader(f *testing.F) {
	// a client's first SETTINGS and a HEADERS frame
	f.Add(unhex(f, "000006 04 00 00000000 0003 00000064 000001 01 05 00000001 82"))
	// a frame larger than the maximum
	f.Add(unhex(f, "ffffff 00 00 00000001"))
	// a padded DATA frame whose padding is too long
	f.Add(unhex(f, "000003 00 08 00000001 05 6162"))
	// a truncated frame
	f.Add(unhex(f, "000010 00 00 0000"))
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := frameReader{r: bytes.NewReader(in), max: 64}
		for {
			h, p, err := fr.next()
			if err != nil {
				if err == errFrameTooLarge && h.length <= 64 {
					t.Fatalf("frame of %d bytes refused", h.length)
				}
				return
			}
			if uint32(len(p)) != h.length || h.length > 64 {
				t.Fatalf("payload of %d bytes for a header of %d", len(p), h.length)
			}
			if h.streamID>>31 != 0 {
				t.Fatalf("stream id %#x keeps the reserved bit", h.streamID)
			}
			if data, ok := stripPadding(h, p); ok && len(data) > len(p) {
				t.Fatalf("padding stripped to %d bytes of %d", len(data), len(p))
			}
		}
	})
}
