package static

import (
	"gantry/internal/fsroot"

	"errors"
	"os"
	"sync/atomic"
	"syscall"
)

// Files larger than CacheMaxFileSize are not copied into memory: their cache entry
// keeps open descriptors instead, lent to one request at a time (sendfile(2) reads
// from the descriptor's offset, so two requests cannot share one), so a hit costs
// an lseek and the sendfile, not open/fstat/close. The descriptor stays on the
// inode that was validated; a file replaced by rename is noticed at the next
// revalidation, a file rewritten in place (not by rename) can be sent mixed or cut
// short within that window, as with any server that keeps files open.

// headLen is how much of a pooled file is also kept in memory and written first. It
// is net/http's per-response buffer size, so the write goes through to the
// connection's writer and marks the header written; ReadFrom then goes straight to
// sendfile instead of first reading 512 bytes from the file to sniff them, and the
// header and head leave in one write.
const headLen = 2048

// poolCap bounds the idle descriptors one file keeps: enough for the requests one
// hot file sees at once on a small server.
const poolCap = 32

// fdBudget bounds the descriptors all pools of a Handler keep open.
type fdBudget struct {
	n   atomic.Int64
	max int64
}

func (b *fdBudget) take() bool {
	if b.n.Add(1) > b.max {
		b.n.Add(-1)
		return false
	}
	return true
}

func (b *fdBudget) give() { b.n.Add(-1) }

// fdPool holds idle descriptors of one version of one file.
type fdPool struct {
	root    *fsroot.Root
	name    string
	sig     fileSig
	idle    chan *os.File
	retired atomic.Bool
	budget  *fdBudget
}

var errFileChanged = errors.New("file changed since it was cached")

func newFDPool(root *fsroot.Root, name string, sig fileSig, budget *fdBudget) *fdPool {
	return &fdPool{root: root, name: name, sig: sig, idle: make(chan *os.File, poolCap), budget: budget}
}

// acquire lends a descriptor; owned tells release whether it counts against the
// budget (and may go back to the pool) or must simply be closed.
func (p *fdPool) acquire() (f *os.File, owned bool, err error) {
	select {
	case f := <-p.idle:
		return f, true, nil
	default:
	}
	f, err = p.root.OpenFile(p.name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, false, err
	}
	fi, err := f.Stat()
	if err != nil || sigOf(fi) != p.sig {
		f.Close()
		return nil, false, errFileChanged
	}
	return f, p.budget.take(), nil
}

func (p *fdPool) release(f *os.File, owned bool) {
	if owned && !p.retired.Load() {
		select {
		case p.idle <- f:
			if p.retired.Load() { // retired meanwhile: drain what was just added
				p.drain()
			}
			return
		default:
		}
	}
	f.Close()
	if owned {
		p.budget.give()
	}
}

// adopt takes f, opened by the lookup that built the entry, into the pool.
func (p *fdPool) adopt(f *os.File) {
	if p.budget.take() {
		p.release(f, true)
		return
	}
	f.Close()
}

// retire closes the idle descriptors; lent ones are closed when released.
func (p *fdPool) retire() {
	p.retired.Store(true)
	p.drain()
}

func (p *fdPool) drain() {
	for {
		select {
		case f := <-p.idle:
			f.Close()
			p.budget.give()
		default:
			return
		}
	}
}
