package config

import "time"

func (c *Config) setDefaults() {
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
	for si := range c.Sites {
		site := &c.Sites[si]
		for ri := range site.Routes {
			site.Routes[ri].SetDefaults()
		}
		site.setDefaults()
	}
	c.setTLSDefaults()
}

// SetDefaults fills the defaults of the route's handler kind.
func (r *Route) SetDefaults() {
	switch r.Kind() {
	case KindStatic:
		if len(r.Index) == 0 {
			r.Index = []string{"index.html"}
		}
	case KindCGI:
		setDur(&r.Timeout, DefaultTimeout)
		if r.MaxProcesses == 0 {
			r.MaxProcesses = 64
		}
	case KindFastCGI:
		setDur(&r.Timeout, DefaultTimeout)
		if len(r.Index) == 0 {
			r.Index = []string{"index.php"}
		}
		if len(r.Split) == 0 {
			r.Split = []string{".php"}
		}
		if len(r.FastCGICmd) > 0 && r.Processes == 0 {
			r.Processes = 2
		}
	case KindWSGI:
		setDur(&r.Timeout, DefaultTimeout)
		if r.Processes == 0 {
			r.Processes = 2
		}
		if r.Threads == 0 {
			r.Threads = 4
		}
		if r.Mode == "" {
			r.Mode = "daemon"
		}
	case KindProxy:
		setDur(&r.Timeout, DefaultTimeout)
	case KindRedirect:
		if r.Status == 0 {
			r.Status = 302
		}
	}
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
