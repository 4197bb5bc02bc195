package cli

import (
	"fmt"
	"os"

	"gantry/internal/certs"
	"gantry/internal/config"
	"gantry/internal/supervise"
)

// prepareTLSStorage makes [tls] storage for [server] user before gantry, started
// as root, drops to that user: the certificate manager starts after the drop.
func prepareTLSStorage(cfg *config.Config) error {
	name := cfg.Server.User
	if name == "" || os.Getuid() != 0 || len(cfg.Server.TLSListen) == 0 {
		return nil
	}
	c, err := supervise.LookupCredential(name)
	if err != nil {
		return fmt.Errorf("[server] user %q: %w", name, err)
	}
	return certs.PrepareStorage(cfg.TLS.Storage, name, int(c.Uid), int(c.Gid))
}

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
