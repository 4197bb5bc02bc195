package static

import (
	"mime"
	"net/http"
	"path"
	"strings"
)

// builtinTypes is the extension table consulted first. It does not depend on the
// host's /etc/mime.types (which differs between machines and lacks some web types),
// so the same site gets the same Content-Type everywhere; text types carry
// charset=utf-8 so browsers do not guess.
var builtinTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".htm":         "text/html; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".webmanifest": "application/manifest+json",
	".xml":         "application/xml",
	".rss":         "application/rss+xml",
	".atom":        "application/atom+xml",
	".txt":         "text/plain; charset=utf-8",
	".md":          "text/markdown; charset=utf-8",
	".csv":         "text/csv; charset=utf-8",
	".ics":         "text/calendar; charset=utf-8",
	".vtt":         "text/vtt; charset=utf-8",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".gif":         "image/gif",
	".webp":        "image/webp",
	".avif":        "image/avif",
	".ico":         "image/x-icon",
	".bmp":         "image/bmp",
	".woff":        "font/woff",
	".woff2":       "font/woff2",
	".ttf":         "font/ttf",
	".otf":         "font/otf",
	".wasm":        "application/wasm",
	".pdf":         "application/pdf",
	".zip":         "application/zip",
	".gz":          "application/gzip",
	".tgz":         "application/gzip",
	".br":          "application/x-brotli",
	".tar":         "application/x-tar",
	".7z":          "application/x-7z-compressed",
	".bin":         "application/octet-stream",
	".exe":         "application/octet-stream",
	".iso":         "application/octet-stream",
	".mp4":         "video/mp4",
	".webm":        "video/webm",
	".ogv":         "video/ogg",
	".mp3":         "audio/mpeg",
	".ogg":         "audio/ogg",
	".oga":         "audio/ogg",
	".opus":        "audio/ogg",
	".wav":         "audio/wav",
	".flac":        "audio/flac",
	".m4a":         "audio/mp4",
}

// typeByName returns the Content-Type for name from the built-in table, then the
// host's MIME table.
func typeByName(name string) (string, bool) {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := builtinTypes[ext]; ok {
		return t, true
	}
	if ext != "" {
		if t := mime.TypeByExtension(ext); t != "" {
			return t, true
		}
	}
	return "", false
}

// contentType returns the Content-Type for name, sniffing head (the first bytes of
// the file) only when the extension is unknown, as browsers would otherwise sniff
// it themselves.
func contentType(name string, head []byte) string {
	if t, ok := typeByName(name); ok {
		return t
	}
	return http.DetectContentType(head)
}
