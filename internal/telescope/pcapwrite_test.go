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

// pcapngWriter writes a little-endian pcapng file with one interface whose
// timestamps are in nanoseconds: the benchmark's pcapng captures.
type pcapngWriter struct {
	w   *bufio.Writer
	hdr [28]byte
}

// newPcapngWriter writes the section header and the interface description for
// link type link.
func newPcapngWriter(w io.Writer, link uint32) (*pcapngWriter, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	le := binary.LittleEndian
	var b []byte
	b = le.AppendUint32(b, 0x0a0d0d0a) // section header: magic, version 1.0, length unknown
	b = le.AppendUint32(b, 28)
	b = le.AppendUint32(b, 0x1a2b3c4d)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, ^uint64(0))
	b = le.AppendUint32(b, 28)
	b = le.AppendUint32(b, 1) // interface description with if_tsresol = 9
	b = le.AppendUint32(b, 32)
	b = le.AppendUint16(b, uint16(link))
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, maxRecord)
	b = append(b, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0)
	b = le.AppendUint32(b, 32)
	if _, err := bw.Write(b); err != nil {
		return nil, err
	}
	return &pcapngWriter{w: bw}, nil
}

// WritePacket appends one enhanced packet block with timestamp ts (Unix nanoseconds).
func (w *pcapngWriter) WritePacket(ts int64, data []byte) error {
	pad := -len(data) & 3
	n := uint32(32 + len(data) + pad)
	le := binary.LittleEndian
	le.PutUint32(w.hdr[0:], 6)
	le.PutUint32(w.hdr[4:], n)
	le.PutUint32(w.hdr[8:], 0)
	le.PutUint32(w.hdr[12:], uint32(uint64(ts)>>32))
	le.PutUint32(w.hdr[16:], uint32(ts))
	le.PutUint32(w.hdr[20:], uint32(len(data)))
	le.PutUint32(w.hdr[24:], uint32(len(data)))
	// A bufio.Writer keeps its first error, so the last write reports any.
	w.w.Write(w.hdr[:])
	w.w.Write(data)
	w.w.Write([]byte{0, 0, 0}[:pad])
	_, err := w.w.Write(le.AppendUint32(w.hdr[:0], n))
	return err
}

// Flush writes buffered blocks to the underlying writer.
func (w *pcapngWriter) Flush() error { return w.w.Flush() }
