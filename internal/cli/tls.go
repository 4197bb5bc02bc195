package cli

import (
	"gantry/internal/certs"
	"gantry/internal/config"
)

// internalRoot is where the internal CA's root is (or will be made) when cfg
// serves HTTPS for a site that uses it, else "".
func internalRoot(cfg *config.Config) string {
	if len(cfg.Server.TLSListen) == 0 {
		return ""
	}
	for i := range cfg.Sites {
		s := &cfg.Sites[i]
		for _, h := range s.Hosts {
			if s.TLSFor(h) == config.TLSInternal {
				return certs.RootPath(cfg.TLS.Storage)
			}
		}
	}
	return ""
}
