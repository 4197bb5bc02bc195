//go:build python

package pyembed

/*
#include "pyembed.h"
*/
import "C"

import (
	"io"
	"unsafe"
)

// The functions the _gantry module calls (pyembed.c), with the GIL released. h is a
// request handle: the slot's registry index and its request sequence number, so
// that a call from a thread the app started, after the request ended, finds no
// request and gets Gone.

func request(h C.longlong) (*Slot, Request) {
	s := lookup(int64(h) >> 32)
	if s == nil {
		return nil, nil
	}
	j := s.cur.Load()
	if j == nil || j.h != int64(h) {
		return s, nil
	}
	return s, j.req
}

func bytesAt(p *C.char, n C.Py_ssize_t) []byte {
	if n <= 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

//export goHead
func goHead(h C.longlong, p *C.char, n C.Py_ssize_t, b *C.char, bn C.Py_ssize_t) C.int {
	_, r := request(h)
	if r == nil || r.Head(bytesAt(p, n), bytesAt(b, bn)) != nil {
		return 1
	}
	return 0
}

//export goWrite
func goWrite(h C.longlong, p *C.char, n C.Py_ssize_t) C.int {
	_, r := request(h)
	if r == nil || r.Write(bytesAt(p, n)) != nil {
		return 1
	}
	return 0
}

// goRead returns the bytes read, 0 at the end of the body, -1 when the request is
// gone and -2 when reading the body failed.
//
//export goRead
func goRead(h C.longlong, p *C.char, n C.Py_ssize_t) C.longlong {
	_, r := request(h)
	if r == nil {
		return -1
	}
	buf := bytesAt(p, n)
	got := 0
	for got < len(buf) {
		m, err := r.Read(buf[got:])
		got += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return -2
		}
		if m > 0 {
			break // what came, now: a streamed body is read as it arrives
		}
	}
	return C.longlong(got)
}

//export goSendfile
func goSendfile(h C.longlong, fd C.int, off C.longlong) C.int {
	_, r := request(h)
	if r == nil || r.SendFile(int(fd), int64(off)) != nil {
		return 1
	}
	return 0
}

//export goLog
func goLog(h C.longlong, level C.int, p *C.char, n C.Py_ssize_t) {
	text := string(bytesAt(p, n))
	if h < 0 {
		if v, ok := pools.Load(-int64(h)); ok {
			v.(*Pool).log.Info("wsgi: app output", "text", text)
		}
		return
	}
	s, r := request(h)
	if r != nil {
		if level == 1 {
			s.Failed()
		}
		r.Log(int(level), text)
		return
	}
	if s != nil {
		s.pool.log.Error("wsgi: app error after its request ended", "text", text)
	}
}
