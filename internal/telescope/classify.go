package telescope

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Packet classes.
const (
	classBackscatter = iota
	classScan
	classOther
)

// Reasons a packet is counted under "other". Corsaro's filter names are kept, prefixed
// with the group they belong to, so that a reader can look them up.
type reason uint8

const (
	reasonNotIP reason = iota
	reasonMalformed
	reasonUnknownLink
	reasonNotDark
	reasonTunnel
	reasonICMPOther
	reasonAbnormalProtocol
	reasonFragment
	reasonLastByte0
	reasonLastByte255
	reasonSameSrcDst
	reasonUDPPort0
	reasonTCPPort0
	reasonSCTPPort0
	reasonSCTPOther
	reasonUDP0x31
	reasonUDPLen96
	reasonDNSResponse
	reasonNetBIOS
	reasonBitTorrent
	numReasons
)

var reasonNames = [numReasons]string{
	reasonNotIP:            "not-ip",
	reasonMalformed:        "malformed",
	reasonUnknownLink:      "unknown-link-type",
	reasonNotDark:          "not-dark",
	reasonTunnel:           "tunnel",
	reasonICMPOther:        "icmp-other",
	reasonAbnormalProtocol: "spoofed:abnormal-protocol",
	reasonFragment:         "spoofed:fragmented",
	reasonLastByte0:        "spoofed:last-byte-src-0",
	reasonLastByte255:      "spoofed:last-byte-src-255",
	reasonSameSrcDst:       "spoofed:same-src-dst",
	reasonUDPPort0:         "spoofed:udp-port-0",
	reasonTCPPort0:         "spoofed:tcp-port-0",
	reasonSCTPPort0:        "spoofed:sctp-port-0",
	reasonSCTPOther:        "sctp-other",
	reasonUDP0x31:          "erratic:udp-0x31",
	reasonUDPLen96:         "erratic:udp-ip-len-96",
	reasonDNSResponse:      "erratic:dns-response",
	reasonNetBIOS:          "erratic:netbios-query-name",
	reasonBitTorrent:       "erratic:bittorrent",
}

// Protocol classes of scans and attack vectors.
const (
	pTCP uint8 = iota
	pUDP
	pICMP
	pSCTP
)

var protoNames = [...]string{pTCP: "tcp", pUDP: "udp", pICMP: "icmp", pSCTP: "sctp"}

type flowKey struct {
	a     addr
	proto uint8
}

type scanState struct {
	start, end int64
	packets    uint64
	hosts      hostSet
	ports      portSet
	// probes matching each tool's published relation
	fpZMap, fpMasscan, fpMirai, fpNmap uint64
}

// bytes is the heap memory of the source's sets, which MaxSetBytes bounds.
func (s *scanState) bytes() int { return s.hosts.bytes() + s.ports.bytes() }

type vectorState struct {
	start, end int64
	packets    uint64
	ports      portSet
	services   serviceCounts
	slots      [dosSlots]uint32 // packets per 10 s slot of the sliding 60 s window
	newest     int64            // slot number of slots' newest entry
	window     uint32           // the sum of slots
	maxPPM     uint32
}

const (
	dosSlotNs = int64(10 * time.Second)
	dosSlots  = 6 // 60 s window sliding by 10 s
)

// Classifier turns packets into the telescope's report incrementally. File analysis
// and live capture feed the same Classifier. It is not safe for concurrent use; Live
// serialises access.
type Classifier struct {
	opts    Options
	dark    darkSet
	idleNs  int64
	dosIdle int64
	packets uint64
	first   int64
	last    int64
	// clock is the timestamp of the latest packet, which expires idle state. It is
	// not the newest timestamp seen: with captures given out of time order, the
	// newest would expire everything of the older captures at once.
	clock    int64
	classes  [3]uint64
	other    [numReasons]uint64
	dsts     distinctCounter
	scans    table[scanState]
	vectors  table[vectorState]
	doneScan []Scan
	doneAtk  []Attack
	dropped  uint64
	evicted  uint64
	setBytes int // scans' hosts and ports sets, kept under opts.MaxSetBytes

	sweptAt    int64 // clock at the last sweep
	sinceSweep int
	rng        uint64
	pkt        packet
}

// NewClassifier returns a classifier for opts (zero fields take their defaults).
func NewClassifier(opts Options) *Classifier {
	opts = opts.Defaults()
	return &Classifier{
		opts:    opts,
		dark:    newDarkSet(opts.Dark),
		idleNs:  int64(opts.ScanIdle),
		dosIdle: int64(opts.DoSIdle),
		scans:   newTable[scanState](),
		vectors: newTable[vectorState](),
		rng:     0x9e3779b97f4a7c15,
	}
}

// Packet decodes one captured frame and classifies it. It does not allocate for
// packets of known sources and victims.
func (c *Classifier) Packet(ts int64, link uint32, frame []byte) {
	c.packets++
	if c.packets == 1 || ts < c.first {
		c.first = ts
	}
	if c.packets == 1 || ts > c.last {
		c.last = ts
	}
	c.clock = ts
	p := &c.pkt
	switch decodeFrame(link, frame, p) {
	case decodeOK:
	case decodeNotIP:
		c.countOther(reasonNotIP)
		return
	case decodeUnknownLink:
		c.countOther(reasonUnknownLink)
		return
	default:
		c.countOther(reasonMalformed)
		return
	}
	if len(c.dark.nets) > 0 {
		if !c.dark.contains(p.dst) {
			c.countOther(reasonNotDark)
			return
		}
	} else if c.opts.Size <= 0 {
		c.dsts.add(p.dst)
	}
	if r, bad := c.filter(p); bad {
		c.countOther(r)
		return
	}
	c.classify(ts, p)
	c.sinceSweep++
	if c.sinceSweep >= 64+c.scans.len()/8+c.vectors.len()/8 {
		c.sweep()
	}
}

func (c *Classifier) countOther(r reason) {
	c.classes[classOther]++
	c.other[r]++
}

// filter applies Corsaro's spoofed and erratic filters, less three of them. The
// ports 23, 80, 5000 and 53 of its erratic filter are left out: a telescope wants
// exactly those scans counted (Mirai on 23, web exploits on 80). Its TTL ≥ 200 filter
// is left out: ZMap and Masscan send with TTL 255, as do scanners one hop away and a
// telescope's own stack, so it would discard the very scans and backscatter counted
// here. And its backscatter filter is the backscatter class itself.
func (c *Classifier) filter(p *packet) (reason, bool) {
	switch p.proto {
	case protoTCP, protoUDP, protoICMP, protoICMPv6, protoSCTP:
	case 41:
		return reasonTunnel, true
	default:
		return reasonAbnormalProtocol, true
	}
	if p.v6 != (p.proto == protoICMPv6) && (p.proto == protoICMP || p.proto == protoICMPv6) {
		return reasonAbnormalProtocol, true
	}
	if p.frag {
		return reasonFragment, true
	}
	if !p.hasPorts {
		return reasonMalformed, true
	}
	if p.proto == protoTCP && !normalTCPFlags(p.tcpFlags) {
		return reasonAbnormalProtocol, true
	}
	if p.src.is4() {
		switch p.src.v4() & 0xff {
		case 0:
			return reasonLastByte0, true
		case 0xff:
			return reasonLastByte255, true
		}
	}
	if p.src == p.dst {
		return reasonSameSrcDst, true
	}
	if p.sport == 0 || p.dport == 0 {
		switch p.proto {
		case protoUDP:
			return reasonUDPPort0, true
		case protoTCP:
			return reasonTCPPort0, true
		case protoSCTP:
			return reasonSCTPPort0, true
		}
	}
	if p.proto == protoUDP {
		return erraticUDP(p)
	}
	return 0, false
}

// normalTCPFlags is Corsaro's list of flag combinations real stacks send, plus RST-ACK,
// which it lacks although it is the usual answer to a SYN on a closed port (RFC 9293
// §3.10.7.1) and so the commonest backscatter of all.
func normalTCPFlags(f uint8) bool {
	switch f & (flagFIN | flagSYN | flagRST | flagPSH | flagACK | flagURG) {
	case flagSYN, flagACK, flagRST, flagFIN, flagSYN | flagFIN, flagSYN | flagACK,
		flagFIN | flagACK, flagACK | flagPSH, flagFIN | flagACK | flagPSH, flagRST | flagACK:
		return true
	}
	return false
}

func masscanID(p *packet) bool {
	return !p.v6 && p.ipID == uint16(p.dst.v4()^uint32(p.dport)^p.seq)
}

func erraticUDP(p *packet) (reason, bool) {
	pl := p.payload
	if p.ipLen == 96 && !p.v6 {
		return reasonUDPLen96, true
	}
	if len(pl) >= 10 && p.ipLen == 58 && !p.v6 {
		if pl[0]|pl[1]|pl[2]|pl[3]|pl[4]|pl[5]|pl[6]|pl[7] == 0 && pl[8] == 0x31 && pl[9] == 0 {
			return reasonUDP0x31, true
		}
	}
	if len(pl) >= 12 && p.ipLen > 42 {
		// A well-formed DNS response (QR, opcode 0, RD, RA; small counts): reflection
		// aimed at a spoofed telescope address, not a probe.
		flags := uint16(pl[2])<<8 | uint16(pl[3])
		if flags&0xfff0 == 0x8180 && pl[4] == 0 && pl[5] < 10 && pl[6] == 0 && pl[7] < 10 &&
			pl[8] == 0 && pl[9] < 10 && pl[10] == 0 && pl[11] < 10 {
			return reasonDNSResponse, true
		}
	}
	if p.sport == 137 && p.dport == 137 && len(pl) >= 20 && p.ipLen > 48 &&
		string(pl[12:20]) == "\x20\x43\x4b\x41\x41\x41\x41\x41" {
		return reasonNetBIOS, true
	}
	if bitTorrent(p, pl) {
		return reasonBitTorrent, true
	}
	return 0, false
}

// bitTorrent is Corsaro's heuristic for DHT and uTP traffic that lingers at addresses
// which once ran a client.
func bitTorrent(p *packet, pl []byte) bool {
	be32 := func(i int) uint32 {
		return uint32(pl[i])<<24 | uint32(pl[i+1])<<16 | uint32(pl[i+2])<<8 | uint32(pl[i+3])
	}
	udpLen := len(pl) + 8
	if udpLen >= 20 && len(pl) >= 12 {
		if w := be32(0); (w == 0x64313a61 || w == 0x64313a72) && be32(4) == 0x64323a69 && be32(8) == 0x6432303a {
			return true
		}
	}
	if len(pl) >= 40 && string(pl[20:40]) == "\x13BitTorrent protocol" {
		return true
	}
	if len(pl) >= 10 && p.ipLen >= 0x3a {
		switch uint16(pl[0])<<8 | uint16(pl[1]) {
		case 0x4102, 0x2102, 0x3102, 0x1102:
			tail := pl[len(pl)-10:]
			if tail[0] == 0 && tail[1] == 8 && string(tail[2:]) == "\x00\x00\x00\x00\x00\x00\x00\x00" {
				return true
			}
		}
	}
	if len(pl) >= 2 && p.ipLen == 0x30 {
		switch uint16(pl[0])<<8 | uint16(pl[1]) {
		case 0x4100, 0x2100, 0x3102, 0x1100:
			return true
		}
	}
	if len(pl) >= 32 && p.ipLen == 61 && be32(12) == 0x7fffffff && be32(16) == 0xab020400 &&
		be32(20) == 0x01000000 && be32(24) == 0x08000000 && be32(28) == 0 {
		return true
	}
	return false
}

func (c *Classifier) classify(ts int64, p *packet) {
	switch p.proto {
	case protoTCP:
		if p.tcpFlags&flagRST != 0 || p.tcpFlags&(flagSYN|flagACK) == flagSYN|flagACK {
			c.backscatter(ts, flowKey{p.src, pTCP}, p.sport, true)
			return
		}
		c.probe(ts, p, pTCP, p.dport)
	case protoUDP:
		c.probe(ts, p, pUDP, p.dport)
	case protoSCTP:
		// RFC 9260 §8.4: an endpoint answers an INIT with INIT ACK, and a packet for
		// no association ("out of the blue") with ABORT, so those two are a victim's
		// replies to spoofed INITs. COOKIE ECHO opens no association either: nmap's
		// -sZ scan probes with it.
		switch p.sctpChunk {
		case sctpInitAck, sctpAbort:
			c.backscatter(ts, flowKey{p.src, pSCTP}, p.sport, true)
		case sctpInit, sctpCookieEcho:
			c.probe(ts, p, pSCTP, p.dport)
		default:
			c.countOther(reasonSCTPOther)
		}
	case protoICMP, protoICMPv6:
		t := p.icmpType
		v6 := p.proto == protoICMPv6
		switch {
		case isICMPError(p.proto, t):
			k, port, hasPort := flowKey{p.src, pICMP}, uint16(0), false
			if p.inner {
				k.a = p.innerDst
				switch p.innerProto {
				case protoTCP:
					k.proto = pTCP
				case protoUDP:
					k.proto = pUDP
				case protoSCTP:
					k.proto = pSCTP
				}
				port, hasPort = p.innerDport, p.innerPorts
			}
			c.backscatter(ts, k, port, hasPort)
		case !v6 && (t == 0 || t == 14 || t == 16 || t == 18), v6 && t == 129:
			c.backscatter(ts, flowKey{p.src, pICMP}, 0, false)
		case !v6 && (t == 8 || t == 13 || t == 15 || t == 17 || t == 10), v6 && (t == 128 || t == 133):
			c.probe(ts, p, pICMP, uint16(t))
		default:
			c.countOther(reasonICMPOther)
		}
	}
}

func (c *Classifier) random() uint64 {
	c.rng ^= c.rng << 13
	c.rng ^= c.rng >> 7
	c.rng ^= c.rng << 17
	return c.rng
}

func (c *Classifier) probe(ts int64, p *packet, proto uint8, port uint16) {
	c.classes[classScan]++
	k := flowKey{p.src, proto}
	i, ok := c.scans.find(k)
	if ok {
		s := &c.scans.vals[i]
		if ts > s.end+c.idleNs || ts < s.start-c.idleNs {
			c.finishScan(k, s)
			c.setBytes -= s.bytes()
			*s = scanState{}
		}
	} else {
		if c.scans.len() >= c.opts.MaxSources {
			c.evictScan()
		}
		i = c.scans.insert(k)
	}
	s := &c.scans.vals[i]
	if s.packets == 0 || ts < s.start {
		s.start = ts
	}
	if s.packets == 0 || ts > s.end {
		s.end = ts
	}
	s.packets++
	c.setBytes += s.hosts.add(p.dst) + s.ports.add(port)
	if p.ipID == 54321 && !p.v6 {
		s.fpZMap++
	}
	if proto == pTCP && p.tcpFlags&(flagSYN|flagACK) == flagSYN {
		if masscanID(p) {
			s.fpMasscan++
		}
		if !p.v6 && p.seq == p.dst.v4() {
			s.fpMirai++
		}
		if p.win == 1024 && p.mssOnly {
			s.fpNmap++
		}
	}
	if c.setBytes > c.opts.MaxSetBytes {
		c.shedScans()
	}
}

func (c *Classifier) backscatter(ts int64, k flowKey, port uint16, hasPort bool) {
	c.classes[classBackscatter]++
	i, ok := c.vectors.find(k)
	if ok {
		v := &c.vectors.vals[i]
		if ts > v.end+c.dosIdle || ts < v.start-c.dosIdle {
			c.finishAttack(k, v)
			*v = vectorState{}
		}
	} else {
		if c.vectors.len() >= c.opts.MaxSources {
			c.evictVector()
		}
		i = c.vectors.insert(k)
	}
	v := &c.vectors.vals[i]
	slot := floorDiv(ts, dosSlotNs)
	if v.packets == 0 {
		v.start, v.end, v.newest = ts, ts, slot
	}
	if ts < v.start {
		v.start = ts
	}
	if ts > v.end {
		v.end = ts
	}
	v.packets++
	if hasPort {
		v.ports.add(port)
		v.services.add(port)
	}
	if slot > v.newest {
		if d := slot - v.newest; d >= dosSlots {
			v.slots = [dosSlots]uint32{}
			v.window = 0
		} else {
			for j := int64(1); j <= d; j++ {
				k := slotIndex(v.newest + j)
				v.window -= v.slots[k]
				v.slots[k] = 0
			}
		}
		v.newest = slot
	}
	if slot > v.newest-dosSlots {
		v.slots[slotIndex(slot)]++
		v.window++
		v.maxPPM = max(v.maxPPM, v.window)
	}
}

func slotIndex(slot int64) int {
	i := int(slot % dosSlots)
	if i < 0 {
		i += dosSlots
	}
	return i
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// evictScan makes room by dropping the least active of a few randomly sampled sources:
// under a flood of one-packet spoofed sources the sample is nearly always one of
// them, while a real scanner with many probes survives.
func (c *Classifier) evictScan() {
	c.sweep()
	if c.scans.len() < c.opts.MaxSources {
		return
	}
	n := uint64(c.scans.len())
	best := int(c.random() % n)
	for range 7 {
		j := int(c.random() % n)
		a, b := &c.scans.vals[j], &c.scans.vals[best]
		if a.packets < b.packets || a.packets == b.packets && a.end < b.end {
			best = j
		}
	}
	c.dropScan(best)
	c.evicted++
}

// shedScans ends sources, each the largest of a random sample of eight, until the
// scans' sets fit in MaxSetBytes again: the table's cap counts entries, and an entry
// sweeping thousands of targets holds hundreds of times the memory of a spoofed
// flood's one-packet source. A shed scan is reported as it stood, like an evicted one.
func (c *Classifier) shedScans() {
	for c.setBytes > c.opts.MaxSetBytes && c.scans.len() > 0 {
		n := uint64(c.scans.len())
		best := int(c.random() % n)
		for range 7 {
			if j := int(c.random() % n); c.scans.vals[j].bytes() > c.scans.vals[best].bytes() {
				best = j
			}
		}
		c.dropScan(best)
		c.evicted++
	}
}

// dropScan ends the scan at i, reports it and frees its entry.
func (c *Classifier) dropScan(i int) {
	c.finishScan(c.scans.keys[i], &c.scans.vals[i])
	c.setBytes -= c.scans.vals[i].bytes()
	c.scans.remove(i)
}

func (c *Classifier) evictVector() {
	c.sweep()
	if c.vectors.len() < c.opts.MaxSources {
		return
	}
	n := uint64(c.vectors.len())
	best := int(c.random() % n)
	for range 7 {
		j := int(c.random() % n)
		a, b := &c.vectors.vals[j], &c.vectors.vals[best]
		if a.packets < b.packets || a.packets == b.packets && a.end < b.end {
			best = j
		}
	}
	c.finishAttack(c.vectors.keys[best], &c.vectors.vals[best])
	c.vectors.remove(best)
	c.evicted++
}

// sweep ends the scans and vectors whose idle timeout the clock has passed (either
// way: the clock runs backwards through a capture that is not in time order). It
// walks the tables at most once per 10 s of capture time, and Packet calls it only
// after enough packets to pay for the walk.
func (c *Classifier) sweep() {
	if d := c.clock - c.sweptAt; d < dosSlotNs && d > -dosSlotNs {
		return
	}
	c.sweptAt = c.clock
	c.sinceSweep = 0
	for i := c.scans.len() - 1; i >= 0; i-- {
		if s := &c.scans.vals[i]; c.clock > s.end+c.idleNs || c.clock < s.start-c.idleNs {
			c.dropScan(i)
		}
	}
	for i := c.vectors.len() - 1; i >= 0; i-- {
		if v := &c.vectors.vals[i]; c.clock > v.end+c.dosIdle || c.clock < v.start-c.dosIdle {
			c.finishAttack(c.vectors.keys[i], v)
			c.vectors.remove(i)
		}
	}
}

// Advance moves the clock to now (Unix nanoseconds) without a packet, so that a quiet
// live capture still ends idle scans and attacks.
func (c *Classifier) Advance(now int64) {
	if c.packets > 0 {
		c.clock = now
		c.sweep()
	}
}

func (c *Classifier) finishScan(k flowKey, s *scanState) {
	if sc, ok := c.scanReport(k, s); ok {
		c.doneScan = appendBounded(c.doneScan, sc, c.opts.MaxEvents, &c.dropped)
		if c.opts.OnScan != nil {
			c.opts.OnScan(sc)
		}
	}
}

func (c *Classifier) finishAttack(k flowKey, v *vectorState) {
	if !c.isAttack(v) {
		return // most victims end below the thresholds: skip building a report
	}
	if a, ok := c.attackReport(k, v); ok {
		c.doneAtk = appendBounded(c.doneAtk, a, c.opts.MaxEvents, &c.dropped)
		if c.opts.OnAttack != nil {
			c.estimate(&a)
			c.opts.OnAttack(a)
		}
	}
}

// appendBounded keeps the newest max items, amortising the shift over max appends.
func appendBounded[T any](s []T, v T, max int, dropped *uint64) []T {
	if len(s) >= 2*max {
		n := copy(s, s[len(s)-max:])
		clear(s[n:])
		*dropped += uint64(len(s) - n)
		s = s[:n]
	}
	return append(s, v)
}

func (c *Classifier) scanKind(hosts uint64, ports int) string {
	h, p := hosts >= uint64(c.opts.ScanHosts), ports >= c.opts.ScanPorts
	switch {
	case h && p:
		return "block"
	case h && ports == 1:
		return "horizontal"
	case h && ports > 1:
		return "strobe"
	case p:
		return "vertical"
	}
	return ""
}

func (c *Classifier) scanReport(k flowKey, s *scanState) (Scan, bool) {
	hosts := s.hosts.count()
	kind := c.scanKind(hosts, s.ports.len())
	if kind == "" {
		return Scan{}, false
	}
	sc := Scan{
		Source:    k.a.netip().String(),
		Kind:      kind,
		Protocol:  protoNames[k.proto],
		Ports:     []uint16{},
		Targets:   hosts,
		Estimated: s.hosts.estimated(),
		Packets:   s.packets,
		Start:     nsTime(s.start),
		End:       nsTime(s.end),
		Tool:      tool(s),
	}
	if k.proto != pICMP {
		sc.Ports = s.ports.all()
	}
	return sc, true
}

// tool names a scanner only when (nearly) all probes carry its mark: one in 65536
// random probes matches ZMap's or Masscan's relation by chance, so a few strays in a
// large scan must not decide it, and a few matches must not either.
func tool(s *scanState) string {
	nearly := func(m uint64) bool { return m*20 >= s.packets*19 }
	switch {
	case nearly(s.fpZMap):
		return "zmap"
	case nearly(s.fpMasscan):
		return "masscan"
	case nearly(s.fpMirai):
		return "mirai"
	case nearly(s.fpNmap):
		return "nmap"
	}
	return ""
}

// isAttack reports whether v meets the thresholds of an attack.
func (c *Classifier) isAttack(v *vectorState) bool {
	return v.packets >= uint64(c.opts.DoSPackets) && v.end-v.start >= int64(c.opts.DoSDuration) &&
		v.maxPPM >= uint32(c.opts.DoSPPM)
}

func (c *Classifier) attackReport(k flowKey, v *vectorState) (Attack, bool) {
	if !c.isAttack(v) {
		return Attack{}, false
	}
	a := Attack{
		Victim:   k.a.netip().String(),
		Protocol: protoNames[k.proto],
		Packets:  v.packets,
		Start:    nsTime(v.start),
		End:      nsTime(v.end),
		MaxPPM:   uint64(v.maxPPM),
		Ports:    v.ports.all(),
		Services: v.services.list(),
		Duration: float64(v.end-v.start) / 1e9,
		PeakPPS:  float64(v.maxPPM) / 60,
	}
	a.ServicesOther = uint64(v.services.other)
	a.rate = float64(v.packets) / (float64(v.end-v.start) / 1e9)
	a.MeanPPS = a.rate
	a.v6 = !k.a.is4()
	return a, true
}

// estimate sets a's EstPPS from the telescope size known now. Moore et al.: a
// victim answers spoofed sources drawn uniformly from the address space, so a
// telescope of n addresses sees n/2^32 of its replies.
func (c *Classifier) estimate(a *Attack) {
	// Moore et al.: a victim answers spoofed sources drawn uniformly from the
	// address space, so a telescope of n addresses sees n/2^32 of its replies.
	space := 4294967296.0
	if a.v6 {
		space = 3.402823669209385e38
	}
	if n := c.size(!a.v6); n > 0 {
		a.EstPPS = a.rate * space / n
		a.EstPeakPPS = a.PeakPPS * space / n
	}
}

// size is the number of monitored addresses n of the victim's family.
func (c *Classifier) size(v4 bool) float64 {
	if len(c.dark.nets) > 0 {
		if v4 {
			return c.dark.size4
		}
		return c.dark.size6
	}
	if c.opts.Size > 0 {
		return float64(c.opts.Size)
	}
	return float64(c.dsts.count())
}

// sizeSource says where size's n comes from, for the report's assumption.
func (c *Classifier) sizeSource() string {
	switch {
	case len(c.dark.nets) > 0:
		return "dark prefixes"
	case c.opts.Size > 0:
		return "given size"
	}
	return "distinct destinations seen"
}

func nsTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// Report returns the totals, every scan and attack that has ended, and those still
// going on that already meet their thresholds.
func (c *Classifier) Report() Report {
	r := Report{
		Packets: c.packets,
		Classes: Classes{
			Backscatter: c.classes[classBackscatter],
			Scan:        c.classes[classScan],
			Other:       c.classes[classOther],
		},
		OtherReasons: map[string]uint64{},
		Scans:        []Scan{},
		Attacks:      []Attack{},
		Evicted:      c.evicted,
		Dropped:      c.dropped,
		Sources:      c.scans.len(),
		Victims:      c.vectors.len(),
		Thresholds: Thresholds{ScanHosts: c.opts.ScanHosts, ScanPorts: c.opts.ScanPorts, ScanIdleS: c.opts.ScanIdle.Seconds(),
			DoSPackets: c.opts.DoSPackets, DoSDurationS: c.opts.DoSDuration.Seconds(), DoSPPM: c.opts.DoSPPM, DoSIdleS: c.opts.DoSIdle.Seconds()},
	}
	if c.packets > 0 {
		r.Start, r.End = nsTime(c.first), nsTime(c.last)
	}
	r.TelescopeSize = c.size(true)
	r.SizeEstimated = len(c.dark.nets) == 0 && c.opts.Size <= 0 && c.dsts.hll != nil
	r.SizeSource = c.sizeSource()
	r.Assumption = fmt.Sprintf("a victim answers spoofed sources drawn uniformly from the address space (Moore et al. 2006): "+
		"a telescope of n = %.0f IPv4 addresses (%s) sees n/2^32 of its replies, so est_pps = mean_pps × 2^32 / n", r.TelescopeSize, r.SizeSource)
	for i, n := range c.other {
		if n > 0 {
			r.OtherReasons[reasonNames[i]] = n
		}
	}
	r.Scans = append(r.Scans, lastN(c.doneScan, c.opts.MaxEvents)...)
	for i := range c.scans.vals {
		if sc, ok := c.scanReport(c.scans.keys[i], &c.scans.vals[i]); ok {
			r.Scans = append(r.Scans, sc)
		}
	}
	r.Attacks = append(r.Attacks, lastN(c.doneAtk, c.opts.MaxEvents)...)
	for i := range c.vectors.vals {
		if a, ok := c.attackReport(c.vectors.keys[i], &c.vectors.vals[i]); ok {
			r.Attacks = append(r.Attacks, a)
		}
	}
	for i := range r.Attacks {
		c.estimate(&r.Attacks[i])
	}
	slices.SortFunc(r.Scans, func(a, b Scan) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Protocol, b.Protocol))
	})
	slices.SortFunc(r.Attacks, func(a, b Attack) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Victim, b.Victim), cmp.Compare(a.Protocol, b.Protocol))
	})
	return r
}

func lastN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
