package headers

import "gantry/internal/config"

func configEnv() config.Env { return config.Env{} }
