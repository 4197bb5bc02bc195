package compress

import "strings"

// compressibleTypes are the media types outside text/* that compress well:
// Caddy's default list (scripts, data, fonts without their own compression,
// vector images, wasm). Any "+json" or "+xml" type is added by its suffix.
// Images, audio, video, archives, woff/woff2 and application/octet-stream are
// left alone: they are compressed already, or unknown.
var compressibleTypes = map[string]bool{
	"application/javascript":        true,
	"application/x-javascript":      true,
	"application/ecmascript":        true,
	"application/json":              true,
	"application/x-ndjson":          true,
	"application/xml":               true,
	"application/wasm":              true,
	"application/yaml":              true,
	"application/x-yaml":            true,
	"application/toml":              true,
	"application/graphql":           true,
	"application/x-httpd-cgi":       true,
	"application/x-protobuf":        true,
	"application/vnd.ms-fontobject": true,
	"application/x-font-ttf":        true,
	"application/x-font-opentype":   true,
	"application/font-sfnt":         true,
	"font/ttf":                      true,
	"font/otf":                      true,
	"font/collection":               true,
	"image/x-icon":                  true,
	"image/vnd.microsoft.icon":      true,
	"image/bmp":                     true,
}

// compressible reports whether a body of Content-Type ct is worth compressing.
func compressible(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = trimOWS(mt)
	var buf [64]byte
	if len(mt) > len(buf) {
		return false
	}
	b := buf[:len(mt)]
	for i := 0; i < len(mt); i++ {
		c := mt[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	switch {
	case strings.HasPrefix(string(b), "text/"),
		strings.HasSuffix(string(b), "+json"),
		strings.HasSuffix(string(b), "+xml"):
		return true
	}
	return compressibleTypes[string(b)]
}
