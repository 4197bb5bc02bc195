// Package cgienv builds the RFC 3875 meta-variables for a request. It is the one place
// the CGI host, the FastCGI client and the WSGI gateway get them from, so that the
// security rules hold everywhere at once:
//
//   - QUERY_STRING is always present, even when empty;
//   - request headers become HTTP_* variables only when their names are made of
//     ASCII letters, digits and "-", as Apache's rule is: "X_Auth_User" would read
//     as "X-Auth-User" after the "-" to "_" mapping, and PHP turns the "." of
//     "X-Auth.User" into "_" too, so either could stand in for a header a proxy in
//     front vouches for; "Proxy" (httpoxy, CVE-2016-5385) never, and
//     "Authorization" only when asked for;
//   - repeated headers are joined into one variable, never set twice;
//   - route variables (Options.Env) win over everything derived from the request.
package cgienv

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"

	"gantry/internal/httpfield"
)

// Var is one meta-variable.
type Var struct {
	Name, Value string
}

// Options carries what only the gateway knows: where the script is and how the URL
// splits around it.
type Options struct {
	// ScriptName is the URL path that names the script (SCRIPT_NAME), e.g. "/cgi-bin/x"
	// or "" for a WSGI app mounted at "/".
	ScriptName string
	// PathInfo is the decoded rest of the path after ScriptName (PATH_INFO).
	PathInfo string
	// ScriptFilename is the script's file (SCRIPT_FILENAME); omitted when empty.
	ScriptFilename string
	// DocumentRoot is the site's document root (DOCUMENT_ROOT). When PathInfo is not
	// empty, PATH_TRANSLATED is DocumentRoot+PathInfo, as Apache's mod_cgi sets it.
	DocumentRoot string
	// PassAuthorization passes the Authorization header as HTTP_AUTHORIZATION. Off by
	// default: a CGI script seldom needs the client's credentials.
	PassAuthorization bool
	// ServerSoftware is SERVER_SOFTWARE; default "gantry".
	ServerSoftware string
	// Env holds extra variables from the route's config; they win over derived ones.
	Env map[string]string
}

type userKey struct{}

// WithUser returns ctx carrying the name gantry authenticated the request as
// (basic auth): the gateways then set AUTH_TYPE to "Basic" and REMOTE_USER to it,
// as Apache does, while the credentials themselves stay away from them.
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

// Append adds r's meta-variables to dst and returns the extended slice.
func Append(dst []Var, r *http.Request, o *Options) []Var {
	add := func(name, value string) {
		if _, ok := o.Env[name]; ok {
			return
		}
		dst = append(dst, Var{name, value})
	}
	software := o.ServerSoftware
	if software == "" {
		software = "gantry"
	}
	add("GATEWAY_INTERFACE", "CGI/1.1")
	add("SERVER_SOFTWARE", software)
	add("SERVER_PROTOCOL", r.Proto)
	add("REQUEST_METHOD", r.Method)
	add("REQUEST_URI", r.RequestURI)
	add("QUERY_STRING", r.URL.RawQuery)
	add("SCRIPT_NAME", o.ScriptName)
	add("PATH_INFO", o.PathInfo)
	if o.PathInfo != "" && o.DocumentRoot != "" {
		add("PATH_TRANSLATED", strings.TrimSuffix(o.DocumentRoot, "/")+o.PathInfo)
	}
	if o.ScriptFilename != "" {
		add("SCRIPT_FILENAME", o.ScriptFilename)
	}
	if o.DocumentRoot != "" {
		add("DOCUMENT_ROOT", o.DocumentRoot)
	}

	serverName, _ := splitHostPort(r.Host)
	localHost, localPort := "", ""
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		localHost, localPort = splitHostPort(la.String())
	}
	if serverName == "" {
		serverName = localHost
	}
	add("SERVER_NAME", serverName)
	add("SERVER_ADDR", localHost)
	add("SERVER_PORT", localPort)
	remoteHost, remotePort := splitHostPort(r.RemoteAddr)
	add("REMOTE_ADDR", remoteHost)
	add("REMOTE_HOST", remoteHost)
	add("REMOTE_PORT", remotePort)
	if r.TLS != nil {
		add("HTTPS", "on")
		add("REQUEST_SCHEME", "https")
	} else {
		add("REQUEST_SCHEME", "http")
	}
	if user, ok := r.Context().Value(userKey{}).(string); ok {
		add("AUTH_TYPE", "Basic")
		add("REMOTE_USER", user)
	} else if auth := r.Header.Get("Authorization"); auth != "" {
		if scheme, _, ok := strings.Cut(auth, " "); ok && httpfield.ValidName(scheme) {
			add("AUTH_TYPE", scheme)
		}
	}
	if r.ContentLength > 0 || (r.ContentLength == 0 && bodyMethod(r.Method)) {
		add("CONTENT_LENGTH", strconv.FormatInt(r.ContentLength, 10))
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		add("CONTENT_TYPE", ct)
	}
	if r.Host != "" {
		add("HTTP_HOST", r.Host)
	}
	for name, values := range r.Header {
		switch name {
		case "Content-Type", "Content-Length", "Proxy", "Host":
			continue
		case "Authorization":
			if !o.PassAuthorization {
				continue
			}
		}
		if !httpfield.PlainName(name) {
			continue
		}
		sep := ", "
		if name == "Cookie" {
			sep = "; "
		}
		add(HeaderVar(name), strings.Join(values, sep))
	}
	for k, v := range o.Env {
		dst = append(dst, Var{k, v})
	}
	return dst
}

// HeaderVar maps a canonical header name to its HTTP_* variable name.
func HeaderVar(name string) string {
	if v, ok := commonHeaders[name]; ok {
		return v
	}
	b := make([]byte, 0, len(name)+5)
	b = append(b, "HTTP_"...)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-':
			c = '_'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}

// Environ renders vars as "NAME=value" strings for exec.
func Environ(vars []Var) []string {
	env := make([]string, len(vars))
	for i, v := range vars {
		env[i] = v.Name + "=" + v.Value
	}
	return env
}

var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, h := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Cache-Control",
		"Connection", "Cookie", "Referer", "User-Agent", "Origin", "If-Modified-Since",
		"If-None-Match", "Upgrade-Insecure-Requests", "X-Forwarded-For", "X-Forwarded-Proto",
		"X-Forwarded-Host", "X-Requested-With", "Authorization", "Pragma", "Dnt", "Te"} {
		m[h] = "HTTP_" + strings.ToUpper(strings.ReplaceAll(h, "-", "_"))
	}
	return m
}()

func splitHostPort(hp string) (host, port string) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return strings.Trim(hp, "[]"), ""
	}
	return h, p
}

func bodyMethod(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}
