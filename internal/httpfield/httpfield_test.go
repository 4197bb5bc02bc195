package httpfield

import "testing"

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"plain", "Content-Type", true},
		{"all token punctuation", "!#$%&'*+-.^_`|~", true},
		{"empty", "", false},
		{"space", "X Bad", false},
		{"colon", "X:Bad", false},
		{"CR", "X\rBad", false},
		{"NUL", "X\x00", false},
		{"non-ASCII", "Ünicode", false},
		{"separator", "X(Bad)", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidName(tc.in); got != tc.want {
				t.Errorf("ValidName(%q) = %v, want %v", tc.in, got, tc.want)
			}
			if got := ValidName([]byte(tc.in)); got != tc.want {
				t.Errorf("ValidName([]byte(%q)) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestValidValue(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"plain", "text/html; charset=utf-8", true},
		{"empty", "", true},
		{"tab", "a\tb", true},
		{"obs-text", "caf\xe9", true},
		{"LF splits headers", "a\nSet-Cookie: x", false},
		{"CR", "a\rb", false},
		{"NUL truncates", "a\x00b", false},
		{"DEL", "a\x7fb", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidValue(tc.in); got != tc.want {
				t.Errorf("ValidValue(%q) = %v, want %v", tc.in, got, tc.want)
			}
			if got := ValidValue([]byte(tc.in)); got != tc.want {
				t.Errorf("ValidValue([]byte(%q)) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestHasToken(t *testing.T) {
	cases := []struct {
		name, v, token string
		want           bool
	}{
		{"alone", "close", "close", true},
		{"in a list, any case", "keep-alive, Upgrade", "upgrade", true},
		{"with tabs and empty elements", "a,,\tclose\t,", "close", true},
		{"a longer token is not it", "closed, x-close", "close", false},
		{"empty", "", "close", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := HasToken(tc.v, tc.token); got != tc.want {
				t.Errorf("HasToken(%q, %q) = %v, want %v", tc.v, tc.token, got, tc.want)
			}
		})
	}
}

func TestPlainName(t *testing.T) {
	cases := []struct {
		name, in string
		want     bool
	}{
		{"letters digits dash", "X-Auth-User2", true},
		{"underscore reads as a dash to CGI", "X_Auth_User", false},
		{"dot reads as an underscore to PHP", "X-Auth.User", false},
		{"other token characters", "X~Auth", false},
		{"non-ASCII", "X-Ü", false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := PlainName(tc.in); got != tc.want {
				t.Errorf("PlainName(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
