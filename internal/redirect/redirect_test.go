package redirect

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRedirect(t *testing.T) {
	tests := []struct {
		name, to, target string
		status           int
		wantStatus       int
		wantLocation     string
	}{
		{"default status is 302", "/new", "/old", 0, http.StatusFound, "/new"},
		{"permanent", "https://example.org/", "/old", 301, http.StatusMovedPermanently, "https://example.org/"},
		{"{uri} keeps path and query", "https://example.org{uri}", "/a/b?x=1&y=2", 308, http.StatusPermanentRedirect, "https://example.org/a/b?x=1&y=2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			New(Options{To: tc.to, Status: tc.status}).ServeHTTP(rec, httptest.NewRequest("GET", tc.target, nil))
			if rec.Code != tc.wantStatus || rec.Header().Get("Location") != tc.wantLocation {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Header().Get("Location"), tc.wantStatus, tc.wantLocation)
			}
		})
	}
	for _, status := range []int{200, 304, 399} {
		if probs := (&Options{To: "/x", Status: status}).Validate(nil); len(probs) != 1 || probs[0].Key != "status" {
			t.Errorf("status %d: problems %+v, want one about status", status, probs)
		}
	}
}
