package headers

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		app     http.Header // what the application sets
		want    http.Header // nil values: the field must be absent
		bad     string      // a problem Validate reports instead
	}{
		{name: "set replaces the application's value",
			headers: map[string]string{"Cache-Control": "public, max-age=3600"},
			app:     http.Header{"Cache-Control": {"no-store"}},
			want:    http.Header{"Cache-Control": {"public, max-age=3600"}}},
		{name: "add keeps the application's value",
			headers: map[string]string{"+Link": "</a.css>; rel=preload"},
			app:     http.Header{"Link": {"</b.js>; rel=preload"}},
			want:    http.Header{"Link": {"</b.js>; rel=preload", "</a.css>; rel=preload"}}},
		{name: "remove",
			headers: map[string]string{"-Server": "", "-x-powered-by": ""},
			app:     http.Header{"Server": {"gantry"}, "X-Powered-By": {"PHP/8.2"}},
			want:    http.Header{"Server": nil, "X-Powered-By": nil}},
		{name: "names are case-insensitive",
			headers: map[string]string{"x-frame-options": "DENY"},
			want:    http.Header{"X-Frame-Options": {"DENY"}}},
		{name: "a removal runs before a set of the same name",
			headers: map[string]string{"-Vary": "", "Vary": "Accept"},
			app:     http.Header{"Vary": {"Cookie"}},
			want:    http.Header{"Vary": {"Accept"}}},
		{name: "framing fields refused", headers: map[string]string{"Content-Length": "0"}, bad: "framing"},
		{name: "removing framing refused", headers: map[string]string{"-Transfer-Encoding": ""}, bad: "framing"},
		{name: "bad name", headers: map[string]string{"Bad Name": "x"}, bad: "not a header field name"},
		{name: "empty name", headers: map[string]string{"-": ""}, bad: "not a header field name"},
		{name: "a value cannot split the header", headers: map[string]string{"X-A": "1\r\nSet-Cookie: a=b"}, bad: "control character"},
		{name: "NUL in a value", headers: map[string]string{"X-A": "a\x00b"}, bad: "control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &Options{Headers: tc.headers}
			probs := o.Validate(nil)
			if tc.bad != "" {
				if len(probs) != 1 || probs[0].Key != "headers" || !strings.Contains(probs[0].Msg, tc.bad) {
					t.Fatalf("problems %+v, want one naming %q", probs, tc.bad)
				}
				return
			}
			if len(probs) != 0 {
				t.Fatalf("problems: %+v", probs)
			}
			o.rules, _ = parse(o.Headers)
			h, _ := wrap(o, configEnv(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.app {
					w.Header()[k] = v
				}
				io.WriteString(w, "body")
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			for k, v := range tc.want {
				if got := rec.Result().Header[k]; !slices.Equal(got, v) {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if rec.Body.String() != "body" {
				t.Errorf("body = %q", rec.Body)
			}
		})
	}
}

// A handler that sends its header before any body (an error page, a redirect, a
// streamed response) still gets the rules.
func TestRulesOnEveryWayOut(t *testing.T) {
	o := &Options{Headers: map[string]string{"X-Site": "yes"}}
	o.rules, _ = parse(o.Headers)
	for name, serve := range map[string]func(http.ResponseWriter){
		"WriteHeader": func(w http.ResponseWriter) { w.WriteHeader(http.StatusNotFound) },
		"http.Error":  func(w http.ResponseWriter) { http.Error(w, "no", http.StatusBadGateway) },
		"Flush":       func(w http.ResponseWriter) { http.NewResponseController(w).Flush() },
		"ReadFrom":    func(w http.ResponseWriter) { w.(io.ReaderFrom).ReadFrom(strings.NewReader("x")) },
	} {
		t.Run(name, func(t *testing.T) {
			h, _ := wrap(o, configEnv(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w) }))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Result().Header.Get("X-Site") != "yes" {
				t.Errorf("X-Site missing: %v", rec.Result().Header)
			}
		})
	}
}

func TestNoRulesNoWrapper(t *testing.T) {
	if h, err := wrap(&Options{}, configEnv(), http.NotFoundHandler()); h != nil || err != nil {
		t.Errorf("no headers: wrap = %v, %v; want nil, nil", h, err)
	}
}
