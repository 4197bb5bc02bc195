//go:build python

package wsgi

func init() { modes = append(modes, modeEmbedded) }
