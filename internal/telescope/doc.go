// Package telescope analyses the unsolicited packets a server receives, as a network
// telescope does (DESIGN.md §5): denial-of-service backscatter, scans, and the noise
// that is neither.
//
// One incremental Classifier serves both inputs: capture files (pcap in either byte
// order with micro- or nanosecond timestamps, and pcapng; Ethernet with 802.1Q tags,
// Linux cooked v1 and v2, raw IP and BSD loopback) read by AnalyzeFile, and live
// AF_PACKET capture started by StartLive. Decoding uses one reused packet struct and
// allocates nothing per packet.
//
// Classification follows Corsaro (CAIDA) and Moore et al.:
//
//   - backscatter is TCP SYN-ACK or RST and ICMP replies and errors; its victim is the
//     sender, or for an ICMP error the destination of the packet it quotes. A victim's
//     backscatter of one protocol is an attack vector; it is an attack once it reaches
//     DoSPackets, DoSDuration and a peak of DoSPPM packets in a 60 s window sliding by
//     10 s, and it ends after DoSIdle without backscatter. The attack's rate on the whole
//     Internet is estimated as the observed rate × 2^32 / n, n the telescope's size.
//   - probes (TCP other than answers, UDP, ICMP requests) form one scan per source and
//     protocol until ScanIdle passes without one; its kind follows Zeek's thresholds and
//     a tool is named only when (nearly) all probes carry its published fingerprint.
//     Captures need not be in time order: a probe belongs to a scan when it falls
//     within ScanIdle of either end.
//   - Corsaro's spoofed and erratic filters move packets to "other", with the reason.
//
// State is bounded: at MaxSources entries a table evicts the least active of a random
// sample (a spoofed flood's one-packet sources, not a real scanner), and counts it.
package telescope
