package darkport

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
)

// TestOnUDP: each datagram is reported with its source, port and bytes; TCP
// hits are not (OnTCP has them).
func TestOnUDP(t *testing.T) {
	type report struct {
		src  netip.Addr
		port uint16
		data string
	}
	reports := make(chan report, 10)
	p := start(t, Options{Ports: []Port{{"127.0.0.1:0", "udp"}, {"127.0.0.1:0", "tcp"}},
		OnUDP: func(src netip.Addr, port uint16, data []byte) { reports <- report{src, port, string(data)} }})
	c, err := net.Dial("tcp", addr(p, "tcp"))
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("tcp bytes"))
	c.Close()
	waitHits(t, p, 1)
	u, err := net.Dial("udp", addr(p, "udp"))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for _, msg := range []string{"M-SEARCH * HTTP/1.1\r\n", "0 3 http://x/printers/y"} {
		u.Write([]byte(msg))
	}
	_, port, _ := net.SplitHostPort(addr(p, "udp"))
	for _, want := range []string{"M-SEARCH * HTTP/1.1\r\n", "0 3 http://x/printers/y"} {
		r := <-reports
		if r.src != netip.MustParseAddr("127.0.0.1") || r.data != want || port != strconv.Itoa(int(r.port)) {
			t.Errorf("reported %+v, want %q from 127.0.0.1 on port %s", r, want, port)
		}
	}
	select {
	case r := <-reports:
		t.Errorf("a third report (the TCP hit?): %+v", r)
	default:
	}
}
