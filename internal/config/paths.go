package config

import "path/filepath"

// resolvePaths makes relative paths in the config relative to the config file's
// directory, so that a site and its config can move together (and the demo runs from
// any working directory).
func (c *Config) resolvePaths() {
	base := c.baseDir()
	if base == "" {
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
	}
}

// baseDir is the directory relative paths start from: the config file's ("" for a
// config built in code, whose paths are absolute).
func (c *Config) baseDir() string {
	if c.File == "" {
		return ""
	}
	base, err := filepath.Abs(filepath.Dir(c.File))
	if err != nil {
		return ""
	}
	return base
}
