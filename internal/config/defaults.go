package config

import "time"

// setDefaults fills in what the file left out; locs (nil for a config built in
// code) says which keys each route set.
func (c *Config) setDefaults(locs [][]routeLoc) {
	s := &c.Server
	if len(s.Listen) == 0 {
		s.Listen = []string{DefaultListen}
	}
	if s.AccessLog == "" {
		s.AccessLog = "stdout"
	}
	if s.LogFormat == "" {
		s.LogFormat = "combined"
	}
	if s.ErrorLog == "" {
		s.ErrorLog = "stderr"
	}
	setDur(&s.ReadHeaderTimeout, 10*time.Second)
	setDur(&s.ReadTimeout, 5*time.Minute)
	setDur(&s.IdleTimeout, 120*time.Second)
	if !s.writeTimeoutSet {
		setDur(&s.WriteTimeout, DefaultWriteTimeout)
	}
	setDur(&s.ShutdownTimeout, 30*time.Second)
	if s.MaxBody == 0 {
		s.MaxBody = 100 << 20
	}
	if s.BodyTempMax == 0 {
		s.BodyTempMax = 1 << 30
	}
	if s.MaxHeader == 0 {
		s.MaxHeader = 64 << 10
	}

	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	}
	if len(c.Sites) == 0 {
		c.Sites = []Site{{Root: "."}}
	}
	base := c.baseDir()
	for si := range c.Sites {
		site := &c.Sites[si]
		site.setDefaults()
		if site.Middleware == nil {
			for _, m := range registry.middleware {
				site.Middleware = append(site.Middleware, m.Options())
			}
		}
		for _, o := range site.Middleware {
			o.Provision(&Scope{Site: site, base: base})
		}
		for ri := range site.Routes {
			r := &site.Routes[ri]
			if r.Handler == nil {
				continue
			}
			loc := &routeLoc{}
			if si < len(locs) && ri < len(locs[si]) {
				loc = &locs[si][ri]
			}
			sc := loc.scope(site, r, base)
			r.Handler.Provision(sc)
			r.provisionMiddleware(sc)
		}
	}
	c.setTLSDefaults()
	c.Telescope.Ban.setDefaults()
}

func setDur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// setDefaults makes a site with a PHP route work as PHP applications are deployed:
// index.php as a directory index and /index.php as the front controller.
func (s *Site) setDefaults() {
	php := s.PHP()
	if len(s.Index) == 0 {
		s.Index = []string{"index.html"}
		if php {
			s.Index = append(s.Index, "index.php")
		}
	}
	if s.TryFiles == nil && php && s.Root != "" {
		s.TryFiles = []string{"{path}", "{path}/", "/index.php"}
	}
	if s.Symlinks == "" {
		s.Symlinks = SymlinksInside
	}
}

// Symbolic link policies of a site.
const (
	SymlinksInside = "inside"
	SymlinksOwner  = "owner"
	SymlinksFollow = "follow"
)
