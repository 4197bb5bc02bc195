package compress

import "gantry/internal/config"

func configEnv() config.Env { return config.Env{} }
