package dlp

// Key-name matching. A key is split into segments at '.', '_', '-', ' ' and camelCase
// boundaries ("userPassword" → user, password; "APIKey" → api, key); a configured name,
// split the same way, matches when its segments equal the key's last segments, ignoring
// ASCII case. Matching walks the key backwards and allocates nothing.

func isKeySep(c byte) bool { return c == '.' || c == '_' || c == '-' || c == ' ' }

// segStart reports whether a segment of key[:end] starts at p (0 < p < end).
func segStart(key string, p, end int) bool {
	a, c := key[p-1], key[p]
	if isKeySep(a) {
		return true
	}
	if isUpper(c) {
		if isLower(a) || isDigit(a) {
			return true // fooBar, foo2Bar
		}
		if isUpper(a) && p+1 < end && isLower(key[p+1]) {
			return true // APIKey → API, Key
		}
	}
	return false
}

// prevSegment returns the last segment of key[:end].
func prevSegment(key string, end int) (start, stop int, ok bool) {
	for end > 0 && isKeySep(key[end-1]) {
		end--
	}
	if end == 0 {
		return 0, 0, false
	}
	s := end - 1
	for s > 0 {
		// Inside a run of lower-case letters and digits no segment starts: a start
		// needs a separator before it or an upper-case letter at it.
		if class[key[s]]&cUpper == 0 && class[key[s-1]]&(cLower|cDigit) != 0 {
			s--
			continue
		}
		if segStart(key, s, end) {
			break
		}
		s--
	}
	return s, end, true
}

// segmentsOf splits a name into lower-cased segments.
func segmentsOf(name string) []string {
	var segs []string
	end := len(name)
	for {
		s, e, ok := prevSegment(name, end)
		if !ok {
			break
		}
		segs = append(segs, lowerASCII(name[s:e]))
		end = s
	}
	for i, j := 0, len(segs)-1; i < j; i, j = i+1, j-1 {
		segs[i], segs[j] = segs[j], segs[i]
	}
	return segs
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if isUpper(c) {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if isUpper(c) {
		return c + 'a' - 'A'
	}
	return c
}

// equalFoldASCII compares s with the lower-case ASCII word w, ignoring ASCII case.
func equalFoldASCII(s, w string) bool {
	if len(s) != len(w) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != w[i] {
			return false
		}
	}
	return true
}

// maxSegLen bounds the last segment of a configured name (and the lookup buffer).
const maxSegLen = 63

type keyMatcher struct {
	byLast map[string][][]string // last segment → the preceding segments of each name
	// A prefilter, so that most keys cost neither segmentation nor a map lookup: the
	// last segments of the names by their last byte; a key must end with one of them.
	lastByByte [256][]string
}

func newKeyMatcher(names []string) keyMatcher {
	km := keyMatcher{byLast: map[string][][]string{}}
	for _, n := range names {
		segs := segmentsOf(n)
		if len(segs) == 0 {
			continue
		}
		last := segs[len(segs)-1]
		if len(last) > maxSegLen {
			continue
		}
		if _, seen := km.byLast[last]; !seen {
			c := last[len(last)-1]
			km.lastByByte[c] = append(km.lastByByte[c], last)
		}
		km.byLast[last] = append(km.byLast[last], segs[:len(segs)-1])
	}
	return km
}

// mayMatch reports whether key[:end] ends with one of the names' last segments,
// ignoring ASCII case: a necessary condition for a match, tested from the end so that
// most keys fail at their last or second-to-last byte.
func (km *keyMatcher) mayMatch(key string, end int) bool {
	for _, w := range km.lastByByte[lower(key[end-1])] {
		if end >= len(w) && equalFoldASCII(key[end-len(w):end], w) {
			return true
		}
	}
	return false
}

// match reports whether key is, or ends with, one of the names.
func (km *keyMatcher) match(key string) bool {
	if len(km.byLast) == 0 {
		return false
	}
	end := len(key)
	for end > 0 && isKeySep(key[end-1]) {
		end--
	}
	if end == 0 || !km.mayMatch(key, end) {
		return false
	}
	s, e, ok := prevSegment(key, end)
	if !ok || e-s > maxSegLen {
		return false
	}
	var buf [maxSegLen]byte
	n := copy(buf[:], key[s:e])
	for i := 0; i < n; i++ {
		buf[i] = lower(buf[i])
	}
	for _, prev := range km.byLast[string(buf[:n])] {
		if matchPreceding(key, s, prev) {
			return true
		}
	}
	return false
}

func matchPreceding(key string, end int, segs []string) bool {
	for i := len(segs) - 1; i >= 0; i-- {
		s, e, ok := prevSegment(key, end)
		if !ok || !equalFoldASCII(key[s:e], segs[i]) {
			return false
		}
		end = s
	}
	return true
}
