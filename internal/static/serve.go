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

// serveMiss answers a request whose path is not cached: it opens the file, and
// either caches it (small enough) or sends it from disk.
func (h *Handler) serveMiss(w http.ResponseWriter, r *http.Request, st *rootState, rel string) {
	loc, err := h.locate(st, rel)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if st.cache.enabled() && loc.fi.Size() <= st.cache.maxFile {
		if e, cacheable := h.load(st, loc); e != nil {
			if cacheable {
				st.cache.put(strings.Clone(rel), e)
			}
			h.serveEntry(w, r, e)
			return
		}
	}
	h.serveDisk(w, r, st, loc)
}

// load reads loc and its precompressed siblings into a new entry and closes loc.
// It returns nil (leaving loc open) when a sibling is too large to keep in memory,
// and cacheable=false when a file changed while it was read.
func (h *Handler) load(st *rootState, loc located) (e *entry, cacheable bool) {
	type sib struct {
		f  *os.File
		fi os.FileInfo
	}
	var sibs [numEncodings]sib
	closeSibs := func() {
		for _, s := range sibs {
			if s.f != nil {
				s.f.Close()
			}
		}
	}
	for _, enc := range [...]int{encGzip, encBrotli} {
		if f, fi, ok := sibling(st.root, loc.name, enc); ok {
			sibs[enc] = sib{f, fi}
			if fi.Size() > st.cache.maxFile {
				closeSibs()
				return nil, false
			}
		}
	}
	defer closeSibs()
	defer loc.f.Close()

	body, cacheable := readAll(loc.f, loc.fi.Size())
	head := body
	if len(head) > 512 {
		head = head[:512]
	}
	ctype := contentType(loc.name, head)
	e = &entry{name: loc.name, avail: 1 << encIdentity}
	e.checked.Store(time.Now().UnixNano())
	e.reps[encIdentity] = newRepBody(ctype, loc.fi, encIdentity, body)
	e.sigs[encIdentity] = sigOf(loc.fi)
	e.cost = entryOverhead + int64(len(body))
	for enc, s := range sibs {
		if s.f == nil {
			continue
		}
		b, ok := readAll(s.f, s.fi.Size())
		cacheable = cacheable && ok
		e.reps[enc] = newRepBody(ctype, s.fi, enc, b)
		e.sigs[enc] = sigOf(s.fi)
		e.avail |= 1 << enc
		e.cost += entryOverhead + int64(len(b))
	}
	return e, cacheable
}

// newRepBody is newRep for contents held in memory; the size and Content-Length
// come from the bytes actually read, so a file that changed mid-read still gets a
// self-consistent response.
func newRepBody(ctype string, fi os.FileInfo, enc int, body []byte) *rep {
	p := newRep(ctype, fi, enc)
	p.body = body
	if int64(len(body)) != p.size {
		p.size = int64(len(body))
		p.hLength = []string{strconv.Itoa(len(body))}
	}
	return p
}

// revalidate checks whether the files behind e changed. It returns e (unchanged),
// a fresh entry, or nil when the request must take the uncached path (the file is
// gone, became a directory, or grew too large to cache).
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
	if loc.fi.Size() <= st.cache.maxFile {
		if ne, cacheable := h.load(st, loc); ne != nil {
			if cacheable {
				st.cache.put(strings.Clone(rel), ne)
			} else {
				st.cache.remove(rel, e)
			}
			return ne
		}
	}
	loc.f.Close()
	st.cache.remove(rel, e)
	return nil
}

// serveEntry answers from a cached entry: no system call but the write.
func (h *Handler) serveEntry(w http.ResponseWriter, r *http.Request, e *entry) {
	if e.avail == 1<<encIdentity {
		h.serveRep(w, r, e.reps[encIdentity], false)
		return
	}
	ae, present := headerValue(r.Header, "Accept-Encoding")
	enc := chooseEncoding(ae, present, e.avail)
	if enc < 0 {
		// Nothing acceptable, not even identity: RFC 9110 §12.5.3 allows
		// sending the identity anyway, which serves clients better than 406.
		enc = encIdentity
	}
	h.serveRep(w, r, e.reps[enc], true)
}

// serveDisk sends a file too large for the cache from disk (sendfile), choosing a
// precompressed sibling when the client accepts one.
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
	p := newRep(ctype, fi, enc)
	p.file = f
	h.serveRep(w, r, p, vary)
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
func (h *Handler) serveRep(w http.ResponseWriter, r *http.Request, p *rep, vary bool) {
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
				h.serveRanges(w, r, p, ranges)
				return
			}
		}
	}
	hdr["Content-Length"] = p.hLength
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	h.writeBody(w, r, p, 0, p.size)
}

// writeBody sends n bytes of p from off: from memory, or from the file with
// io.CopyN, which reaches net/http's ReadFrom and so sendfile(2).
func (h *Handler) writeBody(w io.Writer, r *http.Request, p *rep, off, n int64) bool {
	var err error
	if p.file == nil {
		_, err = w.Write(p.body[off : off+n])
	} else if _, err = p.file.Seek(off, io.SeekStart); err == nil {
		var sent int64
		sent, err = io.CopyN(w, p.file, n)
		if err == io.EOF {
			err = fmt.Errorf("file shrank while being sent: %d of %d bytes", sent, n)
		}
	}
	if err != nil {
		h.log.Debug("static: response body not sent in full", "path", r.URL.Path, "err", err)
		return false
	}
	return true
}

func (h *Handler) serveRanges(w http.ResponseWriter, r *http.Request, p *rep, ranges []byteRange) {
	hdr := w.Header()
	size := strconv.FormatInt(p.size, 10)
	if len(ranges) == 1 {
		rg := ranges[0]
		hdr["Content-Range"] = []string{contentRange(rg, size)}
		hdr["Content-Length"] = []string{strconv.FormatInt(rg.length(), 10)}
		w.WriteHeader(http.StatusPartialContent)
		h.writeBody(w, r, p, rg.start, rg.length())
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
		if !h.writeBody(w, r, p, rg.start, rg.length()) {
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
		h.log.Warn("static: path leads outside the root, refused", "path", r.URL.Path, "err", err)
	default:
		h.log.Debug("static: file not served", "path", r.URL.Path, "status", status, "err", err)
	}
	http.Error(w, http.StatusText(status), status)
}
