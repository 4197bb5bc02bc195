// Package pyembed runs Python inside gantry for the wsgi route's embedded mode: it
// links libpython through cgo (build tag python), initialises the interpreter once per
// process and runs each application in its own sub-interpreter (or the main one) on a
// fixed pool of goroutines, each locked to its OS thread with its own thread state.
//
// Without the python build tag the package is empty: internal/wsgi refuses embedded
// routes with one line that names the tag.
package pyembed
