package http1

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

func appendStatus(b []byte, code int) []byte {
	text := http.StatusText(code)
	if text == "" {
		return fmt.Appendf(b, "%03d status code %d\r\n", code, code)
	}
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, text...)
	return append(b, "\r\n"...)
}

// appendValue writes a header value as net/http's Header.Write does: CR and LF
// become spaces, surrounding spaces and tabs are trimmed.
func appendValue(b []byte, v string) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

func sortStrings(s []string) { slices.Sort(s) }

// cachedDate is the Date header value of the current second, built once a second
// instead of per response.
type cachedDate struct {
	sec int64
	val string
}

var dateCache atomic.Pointer[cachedDate]

func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.val
	}
	d := &cachedDate{sec: sec, val: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.val
}
