//go:build !python

package wsgi

// PythonLinked is the libpython version this gantry runs embedded apps with: none,
// in the default build.
func PythonLinked() string { return "" }
