package compress

import (
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// encoder is a compressor that can be reused for another response.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(w io.Writer)
}

// coding is a content coding gantry can produce, with a pool of its encoders: a
// steady stream of responses reuses them instead of allocating their tables.
type coding struct {
	name string
	new  func() encoder
	pool sync.Pool
}

// The levels favour speed, as compressing happens on every response
// (BenchmarkServe compares them): gzip 1 is nginx's default gzip_comp_level;
// zstd's fastest level is about as fast with smaller output; brotli 1 is smaller
// still at about twice gzip 1's CPU (level 0 compresses worse than gzip, and
// level 2 and above cost several times more). zstd's window is kept at 128 KB,
// as Caddy does, so a pooled encoder stays small and every browser can decode it.
var codings = []*coding{
	{name: "zstd", new: func() encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(128<<10), zstd.WithZeroFrames(true))
		if err != nil {
			panic(err) // the options are constants
		}
		return e
	}},
	{name: "br", new: func() encoder { return brotli.NewWriterLevel(nil, 1) }},
	{name: "gzip", new: func() encoder {
		e, err := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		if err != nil {
			panic(err)
		}
		return e
	}},
}

// maxCodings bounds a route's list, which names each coding at most once.
const maxCodings = 3

// codingNamed returns the coding called name, or nil.
func codingNamed(name string) *coding {
	for _, c := range codings {
		if c.name == name {
			return c
		}
	}
	return nil
}

// get returns an encoder writing to w.
func (c *coding) get(w io.Writer) encoder {
	e, _ := c.pool.Get().(encoder)
	if e == nil {
		e = c.new()
	}
	e.Reset(w)
	return e
}

// put returns e to the pool, dropping its hold on the response it wrote to.
func (c *coding) put(e encoder) {
	e.Reset(io.Discard)
	c.pool.Put(e)
}
