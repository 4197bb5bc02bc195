package compress

import "strings"

// negotiate picks the coding of cs (the route's, in preference order) for the
// Accept-Encoding value s, or returns -1 for the identity. An absent header gets
// the identity: RFC 9110 §12.5.3 lets a server assume any coding, but a client
// that sends nothing is most often a tool that cannot decode. The coding with the
// highest q wins, ties going to the earlier in cs; "*" rates the codings the
// client does not name; q=0 refuses, and a coding named several times is refused
// if any of them refuses it. The identity wins only when the client rates it
// (by name or by "*") above every coding it accepts: a client listing gzip
// wants it, whatever q it gives.
func negotiate(s string, present bool, cs []*coding) int {
	if !present {
		return -1
	}
	var q [maxCodings]int
	var named [maxCodings]bool
	identQ, identNamed, star := 1000, false, -1
	for s != "" {
		var item string
		item, s = next(s, ',')
		name, params, _ := strings.Cut(item, ";")
		name = trimOWS(name)
		if name == "" {
			continue
		}
		qv, ok := qvalue(params)
		if !ok {
			continue // a malformed item says nothing either way
		}
		if strings.EqualFold(name, "x-gzip") {
			name = "gzip"
		}
		switch {
		case name == "*":
			star = max(star, qv)
			continue
		case strings.EqualFold(name, "identity"):
			identQ, identNamed = rate(identQ, identNamed, qv), true
			continue
		}
		for i, c := range cs {
			if strings.EqualFold(name, c.name) {
				q[i], named[i] = rate(q[i], named[i], qv), true
			}
		}
	}
	best, bestQ := -1, 0
	for i := range cs {
		qi := q[i]
		if !named[i] && star >= 0 {
			qi = star
		}
		if qi > bestQ {
			best, bestQ = i, qi
		}
	}
	if !identNamed && star >= 0 {
		identQ, identNamed = star, true
	}
	if best >= 0 && identNamed && identQ > bestQ {
		return -1
	}
	return best
}

// rate combines a coding's q so far with another mention of it: a refusal sticks.
func rate(prev int, seen bool, q int) int {
	if !seen {
		return q
	}
	if prev == 0 || q == 0 {
		return 0
	}
	return max(prev, q)
}

// qvalue returns the q parameter of an Accept-Encoding item in thousandths (1000
// when absent); ok is false when it is malformed (RFC 9110 §12.4.2: "0", "0.",
// up to three decimals, or 1 with zeros).
func qvalue(params string) (q int, ok bool) {
	for params != "" {
		var p string
		p, params = next(params, ';')
		k, v, _ := strings.Cut(p, "=")
		if !strings.EqualFold(trimOWS(k), "q") {
			continue
		}
		v = trimOWS(v)
		if v == "" || len(v) > 5 || (v[0] != '0' && v[0] != '1') || (len(v) > 1 && v[1] != '.') {
			return 0, false
		}
		q = int(v[0]-'0') * 1000
		mul := 100
		for i := 2; i < len(v); i++ {
			c := v[i]
			if c < '0' || c > '9' || (q == 1000 && c != '0') {
				return 0, false
			}
			q += int(c-'0') * mul
			mul /= 10
		}
		return q, true
	}
	return 1000, true
}

// next splits s at the first sep.
func next(s string, sep byte) (item, rest string) {
	if i := strings.IndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func trimOWS(s string) string { return strings.Trim(s, " \t") }
