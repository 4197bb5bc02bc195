package compress

import "testing"

func TestNegotiate(t *testing.T) {
	all := []*coding{codingNamed("zstd"), codingNamed("br"), codingNamed("gzip")}
	gzipOnly := []*coding{codingNamed("gzip")}
	tests := []struct {
		name    string
		ae      string
		absent  bool
		codings []*coding
		want    string // "" for the identity
	}{
		{name: "no header: identity", absent: true, codings: all, want: ""},
		{name: "empty header: identity", ae: "", codings: all, want: ""},
		{name: "browser: the route's order breaks the tie", ae: "gzip, deflate, br, zstd", codings: all, want: "zstd"},
		{name: "safari: no zstd", ae: "gzip, deflate, br", codings: all, want: "br"},
		{name: "curl --compressed with gzip only", ae: "deflate, gzip", codings: all, want: "gzip"},
		{name: "higher q wins over the order", ae: "zstd;q=0.5, gzip;q=0.8", codings: all, want: "gzip"},
		{name: "q=0 refuses", ae: "zstd;q=0, br;q=0, gzip", codings: all, want: "gzip"},
		{name: "q=0.000 refuses", ae: "gzip;q=0.000", codings: gzipOnly, want: ""},
		{name: "a refusal sticks when named twice", ae: "gzip, gzip;q=0", codings: gzipOnly, want: ""},
		{name: "x-gzip is gzip", ae: "x-gzip", codings: all, want: "gzip"},
		{name: "names are case-insensitive", ae: "GZIP;Q=1", codings: all, want: "gzip"},
		{name: "star covers the unnamed", ae: "*", codings: all, want: "zstd"},
		{name: "star with a refusal", ae: "*, zstd;q=0", codings: all, want: "br"},
		{name: "star refused, gzip named", ae: "*;q=0, gzip", codings: all, want: "gzip"},
		{name: "identity preferred by name", ae: "gzip;q=0.5, identity", codings: all, want: ""},
		{name: "identity not named ranks below gzip", ae: "gzip;q=0.5", codings: all, want: "gzip"},
		{name: "identity equal to the coding: the coding", ae: "gzip, identity", codings: all, want: "gzip"},
		{name: "coding the route does not use", ae: "br", codings: gzipOnly, want: ""},
		{name: "unknown codings only", ae: "deflate, compress", codings: all, want: ""},
		{name: "malformed q ignores the item", ae: "zstd;q=x, gzip", codings: all, want: "gzip"},
		{name: "q above 1 is malformed", ae: "zstd;q=1.5, gzip", codings: all, want: "gzip"},
		{name: "too many decimals is malformed", ae: "zstd;q=0.5555, gzip;q=0.1", codings: all, want: "gzip"},
		{name: "spaces and empty items", ae: " , gzip ; q=0.9 ,, br ;q=0.1 ", codings: all, want: "gzip"},
		{name: "other parameters", ae: "gzip;level=9;q=0.7, br;q=0.6", codings: all, want: "gzip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i := negotiate(tc.ae, !tc.absent, tc.codings)
			got := ""
			if i >= 0 {
				got = tc.codings[i].name
			}
			if got != tc.want {
				t.Errorf("negotiate(%q) = %q, want %q", tc.ae, got, tc.want)
			}
		})
	}
}

// The parser never panics, picks one of the route's codings or the identity, and
// never picks a coding the client refuses.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{
		"gzip, deflate, br, zstd", // a browser
		"*;q=0, identity;q=1",     // identity only
		"gzip;q=0.001, br;q=1.000",
		"x-gzip;q=0.",          // the shortest valid q
		"zstd;q=0.5;level=3,,", // extra parameters and empty items
		";;;,=;q=",             // punctuation only
		"br ; q = 0.5",         // spaces around the equals sign
	} {
		f.Add(s)
	}
	all := []*coding{codingNamed("zstd"), codingNamed("br"), codingNamed("gzip")}
	f.Fuzz(func(t *testing.T, ae string) {
		i := negotiate(ae, true, all)
		if i < -1 || i >= len(all) {
			t.Fatalf("negotiate(%q) = %d", ae, i)
		}
		if i < 0 {
			return
		}
		if j := negotiate(ae+","+all[i].name+";q=0", true, all); j == i {
			t.Errorf("%q: %s chosen after the client refused it", ae, all[i].name)
		}
	})
}
