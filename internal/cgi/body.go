package cgi

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// spool reads a body of unknown length to its end: up to memLimit bytes in memory,
// the rest in an unlinked temp file. It returns either the bytes or the file,
// rewound, and the body's length.
func spool(body io.Reader, memLimit int) (mem []byte, file *os.File, n int64, err error) {
	var buf bytes.Buffer
	m, err := io.CopyN(&buf, body, int64(memLimit)+1)
	if err == io.EOF {
		return buf.Bytes(), nil, m, nil
	}
	if err != nil {
		return nil, nil, 0, err
	}
	f, err := os.CreateTemp("", "gantry-cgi-body-*")
	if err != nil {
		return nil, nil, 0, fmt.Errorf("spooling request body: %w", err)
	}
	// Unlinked at once: the file lives as long as its descriptor, even if gantry
	// is killed.
	os.Remove(f.Name())
	if _, err = f.Write(buf.Bytes()); err == nil {
		var rest int64
		rest, err = io.Copy(f, body)
		m += rest
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, nil, 0, err
	}
	return nil, f, m, nil
}
