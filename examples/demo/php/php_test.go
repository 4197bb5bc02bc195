package php_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gantry/internal/fastcgi"
	"gantry/internal/peertest"
)

// demo serves this directory at /php/ through a php-cgi that the handler spawns, as
// the demo config does, with its data in a temp dir.
func demo(t *testing.T) (*httptest.Server, *http.Client, string) {
	t.Helper()
	bin := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	root, _ := filepath.Abs(".")
	data := t.TempDir()
	h, err := fastcgi.New(fastcgi.Options{Command: []string{bin}, Processes: 1, Route: "/php/", Root: root,
		Env: map[string]string{"DEMO_DATA_DIR": data}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	})
	jar, _ := cookiejar.New(nil)
	return srv, &http.Client{Jar: jar}, data
}

var tokenRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`)

func page(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return string(b)
}

func token(t *testing.T, body string) string {
	t.Helper()
	m := tokenRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in the form:\n%s", body)
	}
	return m[1]
}

func TestContactForm(t *testing.T) {
	srv, c, data := demo(t)
	home := page(t, c, srv.URL+"/php/")
	tok := token(t, home)
	// The demo's shared header, navigation and footer, read from ../assets/partials.
	for _, want := range []string{`<header class="site-header">`, `<li><a href="/php/">PHP</a></li>`, `<footer class="site-footer">`, `<link rel="stylesheet" href="/assets/site.css">`} {
		if !strings.Contains(home, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		saved  bool
		shows  string
	}{
		{"no token is refused", url.Values{"action": {"contact"}, "name": {"A"}, "email": {"a@example.com"}, "message": {"hi"}}, 403, false, ""},
		{"wrong token is refused", url.Values{"csrf": {strings.Repeat("0", 64)}, "action": {"contact"}, "name": {"A"}, "email": {"a@example.com"}, "message": {"hi"}}, 403, false, ""},
		{"invalid email is reported in the error style", url.Values{"csrf": {tok}, "action": {"contact"}, "name": {"A"}, "email": {"nope"}, "message": {"hi"}}, 200, false, `<p class="alert alert-error" role="alert">Email: a valid address`},
		{"valid message is saved and shown escaped", url.Values{"csrf": {tok}, "action": {"contact"}, "name": {"Ada <b>"}, "email": {"ada@example.com"}, "message": {"Hello <script>"}}, 200, true, "Hello &lt;script&gt;"},
		{"its time is for the browser to put in words", url.Values{"csrf": {tok}, "action": {"contact"}, "name": {"B"}, "email": {"ada@example.com"}, "message": {"again"}}, 200, true, `Z" data-relative>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.PostForm(srv.URL+"/php/", tt.form)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.shows != "" && !strings.Contains(string(b), tt.shows) {
				t.Errorf("page after the redirect lacks %q", tt.shows)
			}
			saved, _ := os.ReadFile(filepath.Join(data, "messages.jsonl"))
			if got := bytes.Contains(saved, []byte(`"ada@example.com"`)); got != tt.saved {
				t.Errorf("messages file: %q", saved)
			}
		})
	}
}

func TestImageUpload(t *testing.T) {
	srv, c, data := demo(t)
	tok := token(t, page(t, c, srv.URL+"/php/"))
	var img bytes.Buffer
	m := image.NewRGBA(image.Rect(0, 0, 4, 4))
	m.Set(1, 1, color.RGBA{255, 0, 0, 255})
	png.Encode(&img, m)
	upload := func(filename string, content []byte) string {
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		w.WriteField("csrf", tok)
		w.WriteField("action", "upload")
		fw, _ := w.CreateFormFile("image", filename)
		fw.Write(content)
		w.Close()
		resp, err := c.Post(srv.URL+"/php/", w.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if body := upload("evil.php", []byte("<?php echo 'PWNED';")); !strings.Contains(body, "Only PNG, JPEG, GIF and WebP") {
		t.Fatalf("PHP disguised as an upload not refused:\n%s", body)
	}
	body := upload("../../x.png", img.Bytes())
	if !strings.Contains(body, "Image added to the gallery") {
		t.Fatalf("PNG upload failed:\n%s", body)
	}
	files, _ := filepath.Glob(filepath.Join(data, "gallery", "*.*"))
	if len(files) != 1 || !regexp.MustCompile(`^[0-9a-f]{16}\.png$`).MatchString(filepath.Base(files[0])) {
		t.Fatalf("gallery holds %q, want one randomly named .png", files)
	}
	src := regexp.MustCompile(`<img src="(image\.php\?f=[^"]+)"`).FindStringSubmatch(body)
	if src == nil {
		t.Fatalf("gallery does not show the image:\n%s", body)
	}
	resp, err := c.Get(srv.URL + "/php/" + src[1])
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(got, img.Bytes()) {
		t.Fatalf("image.php: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(got))
	}
	if resp, _ := c.Get(srv.URL + "/php/image.php?f=../lib.php"); resp.StatusCode != 404 {
		t.Fatalf("image.php served a path: %d", resp.StatusCode)
	}
}

// An upload gets a thumbnail made with GD, at most 320 pixels on its longer side,
// that image.php serves with ?thumb=1; a canvas too large to decode is refused.
func TestThumbnail(t *testing.T) {
	srv, c, data := demo(t)
	home := page(t, c, srv.URL+"/php/")
	if !strings.Contains(home, "made on the server with PHP's GD extension") {
		peertest.Missing(t, "php-gd", "the PHP GD extension is not loaded")
	}
	tok := token(t, home)
	send := func(content []byte) string {
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		w.WriteField("csrf", tok)
		w.WriteField("action", "upload")
		fw, _ := w.CreateFormFile("image", "photo.png")
		fw.Write(content)
		w.Close()
		resp, err := c.Post(srv.URL+"/php/", w.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var big bytes.Buffer
	m := image.NewNRGBA(image.Rect(0, 0, 800, 400))
	for x := range 800 {
		m.Set(x, 200, color.NRGBA{0, 0, 255, 255})
	}
	png.Encode(&big, m)
	if body := send(big.Bytes()); !strings.Contains(body, "with a thumbnail made by GD") {
		t.Fatalf("upload:\n%s", body)
	}
	thumbs, _ := filepath.Glob(filepath.Join(data, "gallery", "thumbs", "*.png"))
	if len(thumbs) != 1 {
		t.Fatalf("thumbnails: %q", thumbs)
	}
	name := strings.TrimSuffix(filepath.Base(thumbs[0]), ".png")
	resp, err := c.Get(srv.URL + "/php/image.php?f=" + name + ".png&thumb=1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := png.Decode(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("thumbnail: %v %q", err, resp.Header.Get("Content-Type"))
	}
	if b := got.Bounds(); b.Dx() != 320 || b.Dy() != 160 {
		t.Errorf("thumbnail is %dx%d, want 320x160", b.Dx(), b.Dy())
	}

	if body := send(pngHeader(20000, 20000)); !strings.Contains(body, "25 megapixels at most") {
		t.Errorf("a decompression bomb was not refused:\n%.300s", body)
	}
}

// pngHeader is a PNG that claims w×h pixels in a few bytes: its signature, its
// IHDR chunk and an empty IEND, enough for getimagesize and for the type check.
func pngHeader(w, h uint32) []byte {
	chunk := func(typ string, data []byte) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
		out = append(out, typ...)
		out = append(out, data...)
		return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, w), h)
	ihdr = append(ihdr, 8, 0, 0, 0, 0) // 8-bit greyscale, deflate, no filter, no interlace
	out := []byte("\x89PNG\r\n\x1a\n")
	out = append(out, chunk("IHDR", ihdr)...)
	return append(out, chunk("IEND", nil)...)
}

// The PHP session cookie carries the CSRF token and the form's flashes: over HTTPS
// it is Secure, so that a plain-HTTP request to the same host never sends it.
func TestSessionCookieSecureOverHTTPS(t *testing.T) {
	bin := peertest.Binary(t, "php-cgi", "php-cgi8.2")
	root, _ := filepath.Abs(".")
	h, err := fastcgi.New(fastcgi.Options{Command: []string{bin}, Processes: 1, Route: "/php/", Root: root,
		Env: map[string]string{"DEMO_DATA_DIR": t.TempDir()}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	plain, tls := httptest.NewServer(h), httptest.NewTLSServer(h)
	t.Cleanup(func() {
		plain.Close()
		tls.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	})
	tests := []struct {
		name   string
		srv    *httptest.Server
		secure bool
	}{
		{"over HTTPS", tls, true},
		{"over plain HTTP", plain, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.srv.Client().Get(tt.srv.URL + "/php/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var sc string
			for _, v := range resp.Header.Values("Set-Cookie") {
				if strings.HasPrefix(v, "demo_php=") {
					sc = v
				}
			}
			if sc == "" {
				t.Fatalf("no session cookie: %q", resp.Header.Values("Set-Cookie"))
			}
			if got := strings.Contains(strings.ToLower(sc), "; secure"); got != tt.secure {
				t.Errorf("Set-Cookie %q: Secure %v, want %v", sc, got, tt.secure)
			}
		})
	}
}
