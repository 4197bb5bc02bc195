package telescope

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// repeatCapture writes the packets of in again and again to out until it holds n
// packets, each copy shifted to start just after the previous one ended, so that the
// result reads as one long capture. It builds the benchmark's large captures: pcapng
// when out ends in .pcapng, pcap otherwise.
func repeatCapture(in, out string, n int) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("repeat: %w", err)
	}
	defer f.Close()
	rd, err := NewReader(f)
	if err != nil {
		return fmt.Errorf("repeat: %s: %w", in, err)
	}
	type rec struct {
		ts   int64
		data []byte
	}
	var recs []rec
	var link uint32
	var r Record
	for {
		err := rd.Next(&r)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("repeat: %s: %w", in, err)
		}
		if len(recs) > 0 && r.LinkType != link {
			return fmt.Errorf("repeat: %s: mixes link types %d and %d", in, link, r.LinkType)
		}
		link = r.LinkType
		recs = append(recs, rec{r.Timestamp, slices.Clone(r.Data)})
	}
	if len(recs) == 0 {
		return fmt.Errorf("repeat: %s: no packets", in)
	}
	first, last := recs[0].ts, recs[0].ts
	for _, r := range recs {
		first, last = min(first, r.ts), max(last, r.ts)
	}
	span := last - first + 1e9
	o, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("repeat: %w", err)
	}
	var w interface {
		WritePacket(ts int64, data []byte) error
		Flush() error
	}
	if strings.HasSuffix(out, ".pcapng") {
		w, err = newPcapngWriter(o, link)
	} else {
		w, err = newPcapWriter(o, link)
	}
	if err != nil {
		o.Close()
		return fmt.Errorf("repeat: %s: %w", out, err)
	}
	for i := 0; i < n; i++ {
		r := recs[i%len(recs)]
		if err := w.WritePacket(r.ts+int64(i/len(recs))*span, r.data); err != nil {
			o.Close()
			return fmt.Errorf("repeat: %s: %w", out, err)
		}
	}
	return errors.Join(w.Flush(), o.Close())
}
