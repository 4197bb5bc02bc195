package cgienv

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func lookup(vars []Var) (map[string]string, map[string]int) {
	m, n := map[string]string{}, map[string]int{}
	for _, v := range vars {
		m[v.Name] = v.Value
		n[v.Name]++
	}
	return m, n
}

func TestAppend(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(r *http.Request)
		opts   Options
		want   map[string]string
		absent []string
	}{
		{
			name: "query string always present",
			want: map[string]string{"QUERY_STRING": "", "REQUEST_METHOD": "GET", "GATEWAY_INTERFACE": "CGI/1.1",
				"SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "example.com", "SERVER_PORT": "8080",
				"SERVER_ADDR": "127.0.0.1", "REMOTE_ADDR": "192.0.2.1", "REMOTE_PORT": "1234",
				"REQUEST_SCHEME": "http", "SERVER_SOFTWARE": "gantry", "HTTP_HOST": "example.com:8080"},
			absent: []string{"CONTENT_LENGTH", "PATH_TRANSLATED", "HTTPS", "AUTH_TYPE"},
		},
		{
			name:   "httpoxy: Proxy header never becomes HTTP_PROXY",
			setup:  func(r *http.Request) { r.Header.Set("Proxy", "http://evil:8080") },
			absent: []string{"HTTP_PROXY"},
		},
		{
			name:   "authorization withheld by default but AUTH_TYPE set",
			setup:  func(r *http.Request) { r.Header.Set("Authorization", "Basic dTpw") },
			want:   map[string]string{"AUTH_TYPE": "Basic"},
			absent: []string{"HTTP_AUTHORIZATION"},
		},
		{
			name:  "authorization passed when configured",
			setup: func(r *http.Request) { r.Header.Set("Authorization", "Basic dTpw") },
			opts:  Options{PassAuthorization: true},
			want:  map[string]string{"HTTP_AUTHORIZATION": "Basic dTpw"},
		},
		{
			name: "a user gantry authenticated: AUTH_TYPE and REMOTE_USER, whatever the header says",
			setup: func(r *http.Request) {
				*r = *r.WithContext(WithUser(r.Context(), "alice"))
				r.Header.Set("Authorization", "Bearer forged")
			},
			want:   map[string]string{"AUTH_TYPE": "Basic", "REMOTE_USER": "alice"},
			absent: []string{"HTTP_AUTHORIZATION"},
		},
		{
			name:   "no REMOTE_USER without authentication",
			setup:  func(r *http.Request) { r.Header.Set("Authorization", "Basic dTpw") },
			absent: []string{"REMOTE_USER"},
		},
		{
			name: "underscore headers dropped so they cannot shadow dashed ones",
			setup: func(r *http.Request) {
				r.Header["X_Forwarded_For"] = []string{"6.6.6.6"}
				r.Header.Set("X-Forwarded-For", "1.2.3.4")
			},
			want: map[string]string{"HTTP_X_FORWARDED_FOR": "1.2.3.4"},
		},
		{
			name: "dotted and other non-alphanumeric names dropped so PHP cannot map them onto dashed ones",
			setup: func(r *http.Request) {
				r.Header["X-Auth.User"] = []string{"admin"}
				r.Header["X-Auth~User"] = []string{"admin"}
				r.Header["X-Auth-User"] = []string{"alice"}
			},
			want:   map[string]string{"HTTP_X_AUTH_USER": "alice"},
			absent: []string{"HTTP_X_AUTH.USER", "HTTP_X_AUTH~USER"},
		},
		{
			name: "repeated headers joined, cookies with semicolons",
			setup: func(r *http.Request) {
				r.Header["Accept"] = []string{"a", "b"}
				r.Header["Cookie"] = []string{"x=1", "y=2"}
			},
			want: map[string]string{"HTTP_ACCEPT": "a, b", "HTTP_COOKIE": "x=1; y=2"},
		},
		{
			name: "path info translated against document root",
			opts: Options{ScriptName: "/cgi-bin/env", PathInfo: "/a b", DocumentRoot: "/srv/www/"},
			want: map[string]string{"SCRIPT_NAME": "/cgi-bin/env", "PATH_INFO": "/a b", "PATH_TRANSLATED": "/srv/www/a b", "DOCUMENT_ROOT": "/srv/www/"},
		},
		{
			name: "post body length and type",
			setup: func(r *http.Request) {
				r.Method = "POST"
				r.ContentLength = 0
				r.Header.Set("Content-Type", "text/plain")
			},
			want:   map[string]string{"CONTENT_LENGTH": "0", "CONTENT_TYPE": "text/plain"},
			absent: []string{"HTTP_CONTENT_TYPE"},
		},
		{
			name:  "route env wins",
			setup: func(r *http.Request) { r.Header.Set("X-App", "from-client") },
			opts:  Options{Env: map[string]string{"HTTP_X_APP": "from-config", "SERVER_NAME": "conf"}},
			want:  map[string]string{"HTTP_X_APP": "from-config", "SERVER_NAME": "conf"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://example.com:8080/cgi-bin/env", nil)
			r.RemoteAddr = "192.0.2.1:1234"
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}))
			if tc.setup != nil {
				tc.setup(r)
			}
			got, count := lookup(Append(nil, r, &tc.opts))
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s present, want absent", k)
				}
			}
			for k, n := range count {
				if n > 1 {
					t.Errorf("%s set %d times", k, n)
				}
			}
		})
	}
}

func BenchmarkAppend(b *testing.B) {
	r := httptest.NewRequest("GET", "http://example.com/x?y=1", nil)
	r.Header.Set("User-Agent", "wrk")
	r.Header.Set("Accept", "*/*")
	o := &Options{ScriptName: "/x"}
	buf := make([]Var, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = Append(buf[:0], r, o)
	}
}
