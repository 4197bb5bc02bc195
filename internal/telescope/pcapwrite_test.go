package telescope

import (
	"bufio"
	"encoding/binary"
	"io"
)

// pcapWriter writes a classic little-endian nanosecond pcap file. The tests and the
// benchmark generator use it to build captures in process.
type pcapWriter struct {
	w   *bufio.Writer
	hdr [16]byte
}

// newPcapWriter writes the file header for link type link.
func newPcapWriter(w io.Writer, link uint32) (*pcapWriter, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b23c4d)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], maxRecord)
	binary.LittleEndian.PutUint32(h[20:], link)
	if _, err := bw.Write(h[:]); err != nil {
		return nil, err
	}
	return &pcapWriter{w: bw}, nil
}

// WritePacket appends one record with timestamp ts (Unix nanoseconds).
func (w *pcapWriter) WritePacket(ts int64, data []byte) error {
	binary.LittleEndian.PutUint32(w.hdr[0:], uint32(ts/1e9))
	binary.LittleEndian.PutUint32(w.hdr[4:], uint32(ts%1e9))
	binary.LittleEndian.PutUint32(w.hdr[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(w.hdr[12:], uint32(len(data)))
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		return err
	}
	_, err := w.w.Write(data)
	return err
}

// Flush writes buffered records to the underlying writer.
func (w *pcapWriter) Flush() error { return w.w.Flush() }
