package config

import (
	"path/filepath"
	"strings"
)

// resolvePaths makes relative paths in the config relative to the config file's
// directory, so that a site and its config can move together (and the demo runs from
// any working directory).
func (c *Config) resolvePaths() {
	if c.File == "" {
		return
	}
	base, err := filepath.Abs(filepath.Dir(c.File))
	if err != nil {
		return
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	abs(&c.Server.BodyTemp)
	c.TLS.resolvePaths(abs)
	for _, p := range []*string{&c.Server.AccessLog, &c.Server.ErrorLog} {
		switch *p {
		case "", "stdout", "stderr", "off":
		default:
			abs(p)
		}
	}
	for si := range c.Sites {
		s := &c.Sites[si]
		abs(&s.Root)
		abs(&s.TLSCert)
		abs(&s.TLSKey)
		for ri := range s.Routes {
			r := &s.Routes[ri]
			abs(&r.Static)
			abs(&r.CGI)
			abs(&r.Root)
			abs(&r.Chdir)
			abs(&r.SendfileRoot)
			if strings.HasSuffix(r.WSGI, ".py") {
				abs(&r.WSGI)
			}
			if strings.Contains(r.Python, "/") {
				abs(&r.Python)
			}
		}
	}
}
