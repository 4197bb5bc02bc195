package static

import (
	"errors"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

var (
	varyHeader         = []string{"Accept-Encoding"}
	acceptRangesHeader = []string{"bytes"}
)

// serveMiss answers a request whose path is not cached: it opens the file, caches
// it, and answers from the new entry; with the cache disabled, from disk.
func (h *Handler) serveMiss(w http.ResponseWriter, r *http.Request, st *rootState, rel string) {
	loc, err := h.locate(st, rel)
	if err != nil {
		var le *lookupError
		switch {
		case h.opts.Browse && errors.Is(err, errNoIndex):
			h.serveListing(w, r, st, rel)
		case h.next != nil && errors.As(err, &le) && le.status == http.StatusNotFound:
			h.next.serve(w, r, rel, time.Now().UnixNano())
		default:
			h.fail(w, r, err)
		}
		return
	}
	if !st.cache.enabled() || h.shut.Load() {
		h.serveDisk(w, r, st, loc)
		return
	}
	e, cacheable := h.load(st, loc)
	if cacheable {
		st.cache.put(strings.Clone(rel), e)
	}
	h.serveEntry(w, r, st, e, rel)
	if !cacheable {
		e.retire()
	}
}

// load builds an entry from loc and its precompressed siblings, taking ownership
// of loc's file. cacheable is false when a file changed while it was read.
func (h *Handler) load(st *rootState, loc located) (e *entry, cacheable bool) {
	e = &entry{name: loc.name}
	e.checked.Store(time.Now().UnixNano())
	p, cacheable := h.newCachedRep(st, loc.name, loc.f, loc.fi, encIdentity, "")
	e.add(p, loc.fi)
	for _, enc := range [...]int{encGzip, encBrotli} {
		if f, fi, ok := sibling(st.root, loc.name, enc); ok {
			sp, ok := h.newCachedRep(st, loc.name+siblingSuffix[enc], f, fi, enc, p.hType[0])
			cacheable = cacheable && ok
			e.add(sp, fi)
		}
	}
	return e, cacheable
}

// newCachedRep builds the cached representation of the open file f, taking
// ownership of f: a small file is read into memory and closed, a larger one keeps
// its first bytes in memory and f in a descriptor pool. ctype is the identity
// file's Content-Type, or "" to determine it from this file.
func (h *Handler) newCachedRep(st *rootState, name string, f *os.File, fi os.FileInfo, enc int, ctype string) (*rep, bool) {
	size := fi.Size()
	if size <= h.opts.CacheMaxFileSize {
		body, ok := readAll(f, size)
		f.Close()
		if ctype == "" {
			ctype = contentType(name, body[:min(len(body), 512)])
		}
		p := newRep(ctype, fi, enc)
		p.body = body
		if int64(len(body)) != size {
			// Changed mid-read: answer this once with what was read, consistently.
			p.size = int64(len(body))
			p.hLength = []string{strconv.Itoa(len(body))}
		}
		return p, ok
	}
	head := make([]byte, min(size, headLen))
	// A short read means the file is being truncated: not cacheable then.
	n, _ := f.ReadAt(head, 0)
	head = head[:n:n]
	if ctype == "" {
		ctype = contentType(name, head[:min(n, 512)])
	}
	p := newRep(ctype, fi, enc)
	p.body = head
	p.pool = newFDPool(st.root, name, sigOf(fi), &h.fds)
	p.pool.adopt(f)
	return p, n == len(head)
}

// revalidate checks whether the files behind e changed. It returns e (unchanged),
// a fresh entry, or nil when the request must take the uncached path (the file is
// gone or became a directory).
func (h *Handler) revalidate(st *rootState, e *entry, rel string) *entry {
	loc, err := h.locate(st, rel)
	if err != nil {
		st.cache.remove(rel, e)
		return nil
	}
	var sigs [numEncodings]fileSig
	sigs[encIdentity] = sigOf(loc.fi)
	for _, enc := range [...]int{encGzip, encBrotli} {
		if fi, err := st.root.Stat(loc.name + siblingSuffix[enc]); err == nil && fi.Mode().IsRegular() {
			sigs[enc] = sigOf(fi)
		}
	}
	if loc.name == e.name && sigs == e.sigs {
		loc.f.Close()
		return e
	}
	ne, cacheable := h.load(st, loc)
	if cacheable {
		st.cache.put(strings.Clone(rel), ne)
	} else {
		st.cache.remove(rel, e)
		ne.retire()
		return nil
	}
	return ne
}

// serveEntry answers from a cached entry: for a file in memory no system call but
// the write; for a pooled one an lseek and sendfile.
func (h *Handler) serveEntry(w http.ResponseWriter, r *http.Request, st *rootState, e *entry, rel string) {
	p, vary := chooseRep(e, r)
	if p.pool == nil || r.Method != http.MethodGet {
		h.serveRep(w, r, p, vary, nil)
		return
	}
	f, owned, err := p.pool.acquire()
	if err != nil {
		// The file was replaced since it was cached: revalidate on the next
		// request, and answer this one from what is on disk now.
		h.log.Debug("static: cached file changed, serving from disk", "path", r.URL.Path, "err", err)
		e.checked.Store(0)
		loc, err := h.locate(st, rel)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		h.serveDisk(w, r, st, loc)
		return
	}
	h.serveRep(w, r, p, vary, f)
	p.pool.release(f, owned)
}

// chooseRep picks the representation of e for r's Accept-Encoding; vary tells
// whether e has any other.
func chooseRep(e *entry, r *http.Request) (p *rep, vary bool) {
	if e.avail == 1<<encIdentity {
		return e.reps[encIdentity], false
	}
	ae, present := headerValue(r.Header, "Accept-Encoding")
	enc := chooseEncoding(ae, present, e.avail)
	if enc < 0 {
		// Nothing acceptable, not even identity: RFC 9110 §12.5.3 allows
		// sending the identity anyway, which serves clients better than 406.
		enc = encIdentity
	}
	return e.reps[enc], true
}

// serveDisk sends a file from disk (sendfile), choosing a precompressed sibling
// when the client accepts one; it is the path when the cache is disabled.
func (h *Handler) serveDisk(w http.ResponseWriter, r *http.Request, st *rootState, loc located) {
	f, fi, enc := loc.f, loc.fi, encIdentity
	defer func() { f.Close() }()
	ctype := contentType(loc.name, sniffHead(loc.name, loc.f))
	// Siblings are probed even when the client accepts no coding, so that Vary
	// is the same for every client, as it is for cached files.
	var sibs [numEncodings]*os.File
	var infos [numEncodings]os.FileInfo
	avail := uint8(1 << encIdentity)
	for _, e := range [...]int{encGzip, encBrotli} {
		if sf, sfi, ok := sibling(st.root, loc.name, e); ok {
			sibs[e], infos[e] = sf, sfi
			avail |= 1 << e
		}
	}
	vary := avail != 1<<encIdentity
	if vary {
		ae, present := headerValue(r.Header, "Accept-Encoding")
		if c := chooseEncoding(ae, present, avail); c > encIdentity {
			f.Close()
			f, fi, enc = sibs[c], infos[c], c
			sibs[c] = nil
		}
		for _, sf := range sibs {
			if sf != nil {
				sf.Close()
			}
		}
	}
	h.serveRep(w, r, newRep(ctype, fi, enc), vary, f)
}

// headerValue returns a request header's value; repeated lines are joined as one
// comma-separated list (RFC 9110 §5.3). The common single line costs no allocation.
func headerValue(hdr http.Header, key string) (string, bool) {
	v, ok := hdr[key]
	switch {
	case !ok || len(v) == 0:
		return "", false
	case len(v) == 1:
		return v[0], true
	}
	return strings.Join(v, ","), true
}

// serveRep writes the response for one representation: preconditions (304/412),
// then Range (206/416), else the whole body.
// The body comes from p.body, or from src when it is not nil (with p.body then
// holding the file's first bytes, if any).
func (h *Handler) serveRep(w http.ResponseWriter, r *http.Request, p *rep, vary bool, src *os.File) {
	hdr := w.Header()
	hdr["Etag"] = p.hETag
	hdr["Last-Modified"] = p.hLastMod
	if vary {
		hdr["Vary"] = varyHeader
	}
	if h.cacheControl != nil {
		hdr["Cache-Control"] = h.cacheControl
	}
	if status := checkPreconditions(r, p); status != 0 {
		w.WriteHeader(status)
		return
	}
	hdr["Accept-Ranges"] = acceptRangesHeader
	hdr["Content-Type"] = p.hType
	if p.hEncoding != nil {
		hdr["Content-Encoding"] = p.hEncoding
	}
	if r.Method == http.MethodGet {
		if rv, ok := headerValue(r.Header, "Range"); ok && ifRangeHolds(r, p) {
			ranges, res := parseRange(rv, p.size, h.opts.MaxRanges)
			switch res {
			case rangeUnsatisfiable:
				delete(hdr, "Content-Type")
				delete(hdr, "Content-Encoding")
				hdr["Content-Range"] = []string{"bytes */" + strconv.FormatInt(p.size, 10)}
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return
			case rangeSatisfiable:
				h.serveRanges(w, r, p, src, ranges)
				return
			}
		}
	}
	hdr["Content-Length"] = p.hLength
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	h.writeBody(w, r, p, src, 0, p.size)
}

// writeBody sends n bytes of p from off: from memory, or from src with io.CopyN,
// which reaches net/http's ReadFrom and so sendfile(2).
func (h *Handler) writeBody(w io.Writer, r *http.Request, p *rep, src *os.File, off, n int64) bool {
	var err error
	if src == nil {
		_, err = w.Write(p.body[off : off+n])
	} else {
		if off == 0 && len(p.body) > 0 && n > int64(len(p.body)) {
			_, err = w.Write(p.body)
			off, n = int64(len(p.body)), n-int64(len(p.body))
		}
		if err == nil {
			_, err = src.Seek(off, io.SeekStart)
		}
		if err == nil {
			var sent int64
			sent, err = io.CopyN(w, src, n)
			if err == io.EOF {
				err = fmt.Errorf("file shrank while being sent: %d of %d bytes", sent, n)
			}
		}
	}
	if err != nil {
		h.log.Debug("static: response body not sent in full", "path", r.URL.Path, "err", err)
		return false
	}
	return true
}

func (h *Handler) serveRanges(w http.ResponseWriter, r *http.Request, p *rep, src *os.File, ranges []byteRange) {
	hdr := w.Header()
	size := strconv.FormatInt(p.size, 10)
	if len(ranges) == 1 {
		rg := ranges[0]
		hdr["Content-Range"] = []string{contentRange(rg, size)}
		hdr["Content-Length"] = []string{strconv.FormatInt(rg.length(), 10)}
		w.WriteHeader(http.StatusPartialContent)
		h.writeBody(w, r, p, src, rg.start, rg.length())
		return
	}
	boundary := strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36)
	partHeaders := make([]string, len(ranges))
	total := int64(0)
	for i, rg := range ranges {
		partHeaders[i] = "\r\n--" + boundary + "\r\nContent-Type: " + p.hType[0] +
			"\r\nContent-Range: " + contentRange(rg, size) + "\r\n\r\n"
		total += int64(len(partHeaders[i])) + rg.length()
	}
	closing := "\r\n--" + boundary + "--\r\n"
	total += int64(len(closing))
	hdr["Content-Type"] = []string{"multipart/byteranges; boundary=" + boundary}
	hdr["Content-Length"] = []string{strconv.FormatInt(total, 10)}
	w.WriteHeader(http.StatusPartialContent)
	for i, rg := range ranges {
		if _, err := io.WriteString(w, partHeaders[i]); err != nil {
			return
		}
		if !h.writeBody(w, r, p, src, rg.start, rg.length()) {
			return
		}
	}
	io.WriteString(w, closing)
}

func contentRange(rg byteRange, size string) string {
	return "bytes " + strconv.FormatInt(rg.start, 10) + "-" + strconv.FormatInt(rg.end-1, 10) + "/" + size
}

// checkPreconditions evaluates the conditional headers in the order of RFC 9110
// §13.2.2 and returns 0 to go on, or 304 / 412.
func checkPreconditions(r *http.Request, p *rep) int {
	if im, ok := headerValue(r.Header, "If-Match"); ok {
		if !etagMatch(im, p.etag, false) {
			return http.StatusPreconditionFailed
		}
	} else if ius, ok := headerValue(r.Header, "If-Unmodified-Since"); ok {
		if t, err := http.ParseTime(ius); err == nil && p.modTime.After(t) {
			return http.StatusPreconditionFailed
		}
	}
	if inm, ok := headerValue(r.Header, "If-None-Match"); ok {
		if etagMatch(inm, p.etag, true) {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				return http.StatusNotModified
			}
			return http.StatusPreconditionFailed
		}
	} else if ims, ok := headerValue(r.Header, "If-Modified-Since"); ok {
		if ims == p.hLastMod[0] {
			return http.StatusNotModified
		}
		if t, err := http.ParseTime(ims); err == nil && !p.modTime.After(t) {
			return http.StatusNotModified
		}
	}
	return 0
}

// ifRangeHolds reports whether a Range may be honoured: there is no If-Range, or
// it names the current representation (strong ETag, or exactly its date).
func ifRangeHolds(r *http.Request, p *rep) bool {
	ir, ok := headerValue(r.Header, "If-Range")
	if !ok {
		return true
	}
	ir = trimOWS(ir)
	if strings.HasPrefix(ir, `"`) || strings.HasPrefix(ir, "W/") {
		return etagMatch(ir, p.etag, false)
	}
	t, err := http.ParseTime(ir)
	return err == nil && p.modTime.Equal(t)
}

// fail answers a request whose file could not be served.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errRedirectDir) {
		// A relative Location ("./name/") cannot be turned into an open
		// redirect by a path like "//evil.example", which an absolute one
		// built from the request path could.
		loc := "./" + url.PathEscape(path.Base(r.URL.Path)) + "/"
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header()["Location"] = []string{loc}
		w.Header()["Content-Type"] = []string{"text/html; charset=utf-8"}
		w.WriteHeader(http.StatusMovedPermanently)
		if r.Method == http.MethodGet {
			io.WriteString(w, "<a href=\""+html.EscapeString(loc)+"\">Moved Permanently</a>.\n")
		}
		return
	}
	status := http.StatusInternalServerError
	var le *lookupError
	if errors.As(err, &le) {
		status = le.status
	}
	switch {
	case status >= 500:
		h.log.Error("static: cannot serve file", "path", r.URL.Path, "err", err)
	case strings.Contains(err.Error(), "escapes from parent"):
		// Usually a symlink the site's owner made on purpose: say how to serve it.
		h.log.Warn("static: symlink leads outside the root, refused (serve its target with a route of its own)",
			"path", r.URL.Path, "root", h.opts.Root, "err", err)
	default:
		h.log.Debug("static: file not served", "path", r.URL.Path, "status", status, "err", err)
	}
	http.Error(w, http.StatusText(status), status)
}
