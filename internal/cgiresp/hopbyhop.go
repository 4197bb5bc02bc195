package cgiresp

// IsHopByHop reports whether the canonical field name key describes one connection
// rather than the response, so that no backend may set it for the server's. The
// set is RFC 9110 §7.6.1's with the older ones still seen (Keep-Alive,
// Proxy-Connection, and the proxy authentication fields RFC 2616 listed, which
// PEP 3333 forbids an application to send): what net/http/httputil strips.
func IsHopByHop(key string) bool {
	switch key {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}
