package dlp

import (
	"math/bits"
	"strings"

	"github.com/otelaudit/otelcol-audit/internal/bytescan"
)

// The scanner makes one pass over the bytes of a string. It skips, eight bytes per step,
// to the next anchor: a byte that every match of some detector contains at a fixed place
// and that is rare in ordinary text — a digit, '+', '(', '@', '-', '_', ':', '=', '[',
// 'A', 'J', 'b' or 'B'. Letters that open a credential prefix but are common in prose
// are not anchors: "sk-" is found at its '-', "gh?_" and "github_" at their '_', "xox?-"
// and "xapp-" at their '-', "eyJ" at its 'J'; the match is then tried where the prefix
// starts, before whatever starts at the anchor, so matches are found in the same order
// as a scan trying every byte would. At an anchor a hand-written matcher for the
// candidate detectors runs; none uses regular expressions, all are linear in the input
// and none backtracks more than a bounded number of bytes.

// Character classes.
const (
	cDigit = 1 << iota
	cUpper
	cLower
	cB64URL   // [A-Za-z0-9_-]: JWT segments, sk- key bodies
	cToken    // bearer token68: [A-Za-z0-9._~+/=-]
	cLocal    // e-mail local part: [A-Za-z0-9._%+-]
	cLabel    // domain label: [A-Za-z0-9-]
	cValueEnd // ends an unquoted key=value value
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		var v uint8
		switch {
		case b >= '0' && b <= '9':
			v = cDigit | cB64URL | cToken | cLocal | cLabel
		case b >= 'A' && b <= 'Z':
			v = cUpper | cB64URL | cToken | cLocal | cLabel
		case b >= 'a' && b <= 'z':
			v = cLower | cB64URL | cToken | cLocal | cLabel
		}
		switch b {
		case '_':
			v |= cB64URL | cToken | cLocal
		case '-':
			v |= cB64URL | cToken | cLocal | cLabel
		case '.':
			v |= cToken | cLocal
		case '~', '/', '=':
			v |= cToken
		case '+':
			v |= cToken | cLocal
		case '%':
			v |= cLocal
		case ' ', '\t', '\r', '\n', ',', ';', '&', '}', ']', ')', '"', '\'', '\\':
			v |= cValueEnd
		}
		t[c] = v
	}
	return t
}()

func isDigit(c byte) bool { return class[c]&cDigit != 0 }
func isUpper(c byte) bool { return class[c]&cUpper != 0 }
func isLower(c byte) bool { return class[c]&cLower != 0 }
func isAlnum(c byte) bool { return class[c]&(cDigit|cUpper|cLower) != 0 }
func isHex(c byte) bool   { return isDigit(c) || (c|0x20) >= 'a' && (c|0x20) <= 'f' }

// runEnd returns the end of the run of bytes of class cl starting at i.
func runEnd(s string, i int, cl uint8) int {
	for i < len(s) && class[s[i]]&cl != 0 {
		i++
	}
	return i
}

// Anchor bytes.
const (
	aNone uint8 = iota
	aDigit
	aPlus
	aParen
	aAt
	aDash       // private key; the end of "sk-", "xox?-", "xapp-"
	aUnderscore // the end of "gh?_" and "github_"
	aUpperA     // AKIA, ASIA
	aUpperJ     // the end of "eyJ"
	aB          // bearer, any case
	aKV
	aBracket
)

var anchor = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = aDigit
	}
	t['+'] = aPlus
	t['('] = aParen
	t['@'] = aAt
	t['-'] = aDash
	t['_'] = aUnderscore
	t['A'] = aUpperA
	t['J'] = aUpperJ
	t['b'] = aB
	t['B'] = aB
	t[':'] = aKV
	t['='] = aKV
	t['['] = aBracket
	return t
}()

// useVectorScan is bytescan.Vectorised(); the tests turn it off to check the table scan.
var useVectorScan = bytescan.Vectorised()

// anchorSet holds the bytes of anchor that are not aNone.
var anchorSet = func() *bytescan.Set {
	var b []byte
	for c := 0; c < 256; c++ {
		if anchor[c] != aNone {
			b = append(b, byte(c))
		}
	}
	return bytescan.NewSet(string(b))
}()

// boundaryBefore reports whether a word may start at i: the byte before is not a letter
// or digit, or it ends a JSON escape (\n, \t, \r, \b, \f, \uXXXX), so that text inside
// JSON strings is scanned like plain text.
func boundaryBefore(s string, i int) bool {
	if i == 0 {
		return true
	}
	c := s[i-1]
	if !isAlnum(c) {
		return true
	}
	if i >= 2 && s[i-2] == '\\' {
		switch c {
		case 'n', 't', 'r', 'b', 'f':
			return true
		}
	}
	return i >= 6 && s[i-6] == '\\' && s[i-5] == 'u' && isHex(s[i-4]) && isHex(s[i-3]) && isHex(s[i-2]) && isHex(c)
}

// afterNumber reports whether the byte before i is a '.' or '-' that follows a digit:
// i continues a decimal, a version or a longer dash-separated number.
func afterNumber(s string, i int) bool {
	return i >= 2 && (s[i-1] == '.' || s[i-1] == '-') && isDigit(s[i-2])
}

// numEndOK reports whether a number may end at e: not followed by a letter or digit, nor
// by '.' or '-' and a digit (a longer number, decimal or date).
func numEndOK(s string, e int) bool {
	if e >= len(s) {
		return true
	}
	c := s[e]
	if isAlnum(c) {
		return false
	}
	return !((c == '.' || c == '-') && e+1 < len(s) && isDigit(s[e+1]))
}

// runMemo remembers the last two runs of [A-Za-z0-9_-] measured, so that candidates
// starting inside a run already measured (sk-a-sk-a-…, eyJ-eyJ-…) do not measure it
// again: without it, adversarial input would cost quadratic time.
type runMemo struct {
	start, end [2]int
	next       int
}

func (r *runMemo) b64End(s string, p int) int {
	for k := range r.start {
		if r.start[k] <= p && p < r.end[k] {
			return r.end[k]
		}
	}
	e := runEnd(s, p, cB64URL)
	if e > p {
		r.start[r.next], r.end[r.next] = p, e
		r.next ^= 1
	}
	return e
}

type match struct {
	start, end int
	kinds      KindSet
}

// find appends to ms the matches of the enabled kinds in s, in order of discovery (an
// e-mail match starts before its trigger, so the order is not sorted by start).
func (m *Masker) find(s string, en KindSet, ms []match) []match {
	n := len(s)
	kvEnd := 0    // end of the last key=value value: no key=value match inside it
	consumed := 0 // end of the last stretch skipped whole: no match starts before it
	var memo runMemo
	// Where the CPU allows, the text is stepped through with masks of its anchors (win:
	// the anchors of s[wbase:wbase+64]); elsewhere with the table.
	vector := useVectorScan
	var win uint64
	wbase := -64
	for i := 0; ; {
		// Skip to the next anchor. Ordinary text has one every few dozen bytes.
		if vector {
			// The anchors of 64 bytes at a time, from a vectorised classification
			// (internal/bytescan): a mask to step through, one call per window.
			for {
				if d := i - wbase; d < 64 {
					if w := win >> d; w != 0 {
						i += bits.TrailingZeros64(w)
						break
					}
					i = wbase + 64
				}
				if i >= n {
					return ms
				}
				// A 'b' or 'B' not followed by 'e' or 'E' (most, in prose) starts no
				// "bearer": the mask leaves it out, as its case below would skip it.
				win, wbase = anchorSet.Mask64Pair(s, i, 'b', 'e'), i
			}
		} else {
			// Eight table lookups or-ed per step: a branch per byte would cost more.
			for ; i+8 <= n; i += 8 {
				w := s[i : i+8]
				if anchor[w[0]]|anchor[w[1]]|anchor[w[2]]|anchor[w[3]]|anchor[w[4]]|anchor[w[5]]|anchor[w[6]]|anchor[w[7]] != aNone {
					break
				}
			}
			for i < n && anchor[s[i]] == aNone {
				i++
			}
			if i >= n {
				break
			}
		}
		next := i + 1
		switch anchor[s[i]] {
		case aDigit:
			next = runEnd(s, i, cDigit)
			// A card starts with a run of 4 or 13–19 digits, an SSN with 3, a phone
			// number with 3 or a country code 1.
			l := next - i
			if !(l == 3 || l == 4 || (l >= 13 && l <= 19) || (l == 1 && s[i] == '1')) {
				break
			}
			if !boundaryBefore(s, i) || (i >= 2 && s[i-1] == '.' && isDigit(s[i-2])) {
				break
			}
			if en.has(kCard) {
				if e := cardAt(s, i); e > 0 {
					ms, next = append(ms, match{i, e, kCard.bit()}), e
					break
				}
			}
			if afterNumber(s, i) {
				break
			}
			if en.has(kSSN) {
				if e := ssnAt(s, i); e > 0 {
					ms, next = append(ms, match{i, e, kSSN.bit()}), e
					break
				}
			}
			if en.has(kPhone) {
				if e := usPhoneAt(s, i); e > 0 {
					ms, next = append(ms, match{i, e, kPhone.bit()}), e
				}
			}
		case aPlus:
			if en.has(kPhone) && boundaryBefore(s, i) && (i == 0 || s[i-1] != '+') {
				if e := e164At(s, i); e > 0 {
					ms, next = append(ms, match{i, e, kPhone.bit()}), e
				}
			}
		case aParen:
			if en.has(kPhone) && boundaryBefore(s, i) {
				if e := usPhoneCore(s, i, 0); e > 0 {
					ms, next = append(ms, match{i, e, kPhone.bit()}), e
				}
			}
		case aAt:
			if en.has(kKeyName) {
				if st, e := urlPasswordAt(s, i); e > st {
					ms = append(ms, match{st, e, kKeyName.bit()})
					break // user:password@host is no e-mail address
				}
			}
			if en.has(kEmail) {
				if st, e := emailAt(s, i); e > 0 {
					ms, next = append(ms, match{st, e, kEmail.bit()}), e
				}
			}
		case aDash:
			// xox?- and xapp- start 4 bytes back, sk- 2 bytes back.
			if q := i - 4; q >= consumed && (s[q:q+3] == "xox" || s[q:i] == "xapp") {
				if ms, next = m.credentialAt(s, q, en, &memo, ms); next > i {
					break
				}
			}
			if q := i - 2; q >= consumed && s[q:i] == "sk" {
				if ms, next = m.credentialAt(s, q, en, &memo, ms); next > i {
					break
				}
			}
			next = i + 1
			if en.has(kPrivateKey) {
				if e := privateKeyAt(s, i); e > 0 {
					ms, next = append(ms, match{i, e, kPrivateKey.bit()}), e
				}
			}
		case aUnderscore:
			// gh?_ starts 3 bytes back, github_ 6.
			if q := i - 3; q >= consumed && s[q:q+2] == "gh" {
				ms, next = m.credentialAt(s, q, en, &memo, ms)
			} else if q := i - 6; q >= consumed && s[q:i] == "github" {
				ms, next = m.credentialAt(s, q, en, &memo, ms)
			}
			next = max(next, i+1)
		case aUpperJ:
			if q := i - 2; q >= consumed && s[q:i] == "ey" {
				ms, next = m.credentialAt(s, q, en, &memo, ms)
			}
			next = max(next, i+1)
		case aUpperA:
			if i+1 < n && (s[i+1] == 'K' || s[i+1] == 'S') {
				ms, next = m.credentialAt(s, i, en, &memo, ms)
			}
		case aB:
			if i+1 < n && s[i+1]|0x20 == 'e' {
				ms, next = m.credentialAt(s, i, en, &memo, ms)
			}
		case aKV:
			// The value is not skipped: the specific detectors still run inside it, and
			// their matches merge with this one.
			if i >= kvEnd && en.has(kKeyName) {
				vs, ve, ok := m.keyValueAt(s, i)
				if ok {
					ms = append(ms, match{vs, ve, kKeyName.bit()})
				}
				kvEnd = max(kvEnd, ve)
			}
		case aBracket:
			if e := placeholderEnd(s, i); e > 0 {
				next = e
			}
		}
		if next > i+1 {
			consumed = next
		}
		i = next
	}
	return ms
}

// credentialAt tries the credential prefixes at q (a word must start there) and returns
// where scanning continues: after the match, at a bearer token (which may be a JWT or a
// known key, to be named after it), or, without a match, q+1.
func (m *Masker) credentialAt(s string, q int, en KindSet, memo *runMemo, ms []match) ([]match, int) {
	if !boundaryBefore(s, q) {
		return ms, q + 1
	}
	st, e, k := secretAt(s, q, memo)
	if e <= 0 || !en.has(k) {
		return ms, q + 1
	}
	ms = append(ms, match{st, e, k.bit()})
	if k == kBearer {
		return ms, st
	}
	return ms, e
}

// ---- payment cards ----

// cardAt matches 13–19 digits at i, either unseparated or in groups separated by one
// consistent separator (all spaces or all dashes) with a first group of 4 and further
// groups of 3–6 digits; the number must pass the issuer-prefix check and Luhn.
func cardAt(s string, i int) int {
	j := runEnd(s, i, cDigit)
	l := j - i
	if l >= 13 {
		if l > 19 || !cardEndOK(s, j) {
			return -1
		}
		var d [19]byte
		copy(d[:], s[i:j])
		if validCard(d[:l]) {
			return j
		}
		return -1
	}
	if l != 4 || j+1 >= len(s) || (s[j] != ' ' && s[j] != '-') {
		return -1
	}
	sep := s[j]
	var ends, totals [6]int
	ends[0], totals[0] = j, 4
	g := 0
	for g < len(ends)-1 && j+1 < len(s) && s[j] == sep && isDigit(s[j+1]) {
		k := runEnd(s, j+1, cDigit)
		gl := k - (j + 1)
		if gl < 3 || gl > 6 || totals[g]+gl > 19 {
			break
		}
		g++
		ends[g], totals[g] = k, totals[g-1]+gl
		j = k
	}
	for ; g >= 1 && totals[g] >= 13; g-- {
		if !cardEndOK(s, ends[g]) {
			continue
		}
		var d [19]byte
		nd := 0
		for p := i; p < ends[g]; p++ {
			if isDigit(s[p]) {
				d[nd] = s[p]
				nd++
			}
		}
		if validCard(d[:nd]) {
			return ends[g]
		}
	}
	return -1
}

func cardEndOK(s string, e int) bool {
	return e >= len(s) || (!isAlnum(s[e]) && !(s[e] == '.' && e+1 < len(s) && isDigit(s[e+1])))
}

// validCard checks the issuer prefix and length (Visa, Mastercard, American Express,
// Diners, Discover, JCB, UnionPay, Maestro) and the Luhn checksum. Numbers starting with
// 0, 1, 7, 8 or 9 are never cards here: that keeps out millisecond and nanosecond Unix
// timestamps (1…), snowflake ids and most counters.
func validCard(d []byte) bool {
	n := len(d)
	ok := false
	switch d[0] {
	case '2': // Mastercard 2221–2720
		p := int(d[1]-'0')*100 + int(d[2]-'0')*10 + int(d[3]-'0')
		ok = n == 16 && p >= 221 && p <= 720
	case '3':
		switch d[1] {
		case '4', '7': // American Express
			ok = n == 15
		case '0', '6', '8', '9': // Diners Club
			ok = n >= 14
		case '5': // JCB
			ok = n >= 16
		}
	case '4': // Visa
		ok = n == 13 || n == 16 || n == 19
	case '5': // Mastercard 51–55; Maestro 50, 56–59
		if d[1] >= '1' && d[1] <= '5' {
			ok = n == 16
		} else {
			ok = true
		}
	case '6': // Discover, UnionPay, Maestro
		ok = true
	}
	return ok && luhn(d)
}

func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// ---- US social security numbers ----

// ssnAt matches ddd-dd-dddd or ddd dd dddd, excluding area 000, 666 and 900–999, group
// 00 and serial 0000. Nine digits without separators are not matched.
func ssnAt(s string, i int) int {
	if i+11 > len(s) {
		return -1
	}
	sep := s[i+3]
	if (sep != '-' && sep != ' ') || s[i+6] != sep {
		return -1
	}
	for _, p := range [...]int{0, 1, 2, 4, 5, 7, 8, 9, 10} {
		if !isDigit(s[i+p]) {
			return -1
		}
	}
	e := i + 11
	if !numEndOK(s, e) || (sep == ' ' && e+1 < len(s) && s[e] == ' ' && isDigit(s[e+1])) {
		return -1
	}
	area := s[i : i+3]
	if area == "000" || area == "666" || area[0] == '9' || s[i+4:i+6] == "00" || s[i+7:i+11] == "0000" {
		return -1
	}
	return e
}

// ---- phone numbers ----

// usPhoneAt matches a US number at a digit: 555-123-4567, 555.123.4567, with an optional
// leading "1-", "1." or "1 " (1 555 123 4567 then allows spaces), or 1 (555) 123-4567.
func usPhoneAt(s string, i int) int {
	if s[i] == '1' && i+2 < len(s) && (s[i+1] == '-' || s[i+1] == '.' || s[i+1] == ' ') {
		if e := usPhoneCore(s, i+2, s[i+1]); e > 0 {
			return e
		}
	}
	return usPhoneCore(s, i, 0)
}

// usPhoneCore matches (ddd) ddd-dddd (the last separator '-', '.' or ' ', the one after
// the parenthesis optional) or ddd-ddd-dddd / ddd.ddd.dddd (the same separator twice;
// spaces only after a country-code prefix, prefixSep != 0).
func usPhoneCore(s string, i int, prefixSep byte) int {
	n := len(s)
	digits := func(p, k int) bool {
		if p+k > n {
			return false
		}
		for q := p; q < p+k; q++ {
			if !isDigit(s[q]) {
				return false
			}
		}
		return true
	}
	var e int
	if i < n && s[i] == '(' {
		if !digits(i+1, 3) || i+4 >= n || s[i+4] != ')' {
			return -1
		}
		j := i + 5
		if j < n && s[j] == ' ' {
			j++
		}
		if !digits(j, 3) || j+3 >= n {
			return -1
		}
		if sep := s[j+3]; sep != '-' && sep != '.' && sep != ' ' {
			return -1
		}
		if !digits(j+4, 4) {
			return -1
		}
		e = j + 8
	} else {
		if !digits(i, 3) || i+3 >= n {
			return -1
		}
		sep := s[i+3]
		if sep != '-' && sep != '.' && !(sep == ' ' && prefixSep != 0) {
			return -1
		}
		if !digits(i+4, 3) || i+7 >= n || s[i+7] != sep || !digits(i+8, 4) {
			return -1
		}
		e = i + 12
	}
	if !numEndOK(s, e) || (e+1 < n && s[e] == ' ' && isDigit(s[e+1])) {
		return -1
	}
	return e
}

// e164At matches '+', a non-zero digit and 8–15 digits in all, which may be grouped by
// single spaces, dashes or dots and one parenthesised group: +14155552671,
// +1 555 123 4567, +44 20 7946 0958, +1 (555) 123-4567.
func e164At(s string, i int) int {
	n := len(s)
	j := i + 1
	if j >= n || !isDigit(s[j]) || s[j] == '0' {
		return -1
	}
	count, last := 0, -1 // digits so far; end of the last digit or ')'
	paren := false
	for j < n {
		c := s[j]
		switch {
		case isDigit(c):
			count++
			if count > 15 {
				return -1
			}
			j++
			last = j
			continue
		case (c == ' ' || c == '-' || c == '.') && last == j && j+1 < n && (isDigit(s[j+1]) || s[j+1] == '('):
			j++
			continue
		case c == '(' && !paren && (last == j || s[j-1] == ' ') && j+2 < n && isDigit(s[j+1]):
			k := runEnd(s, j+1, cDigit)
			if k-(j+1) > 4 || k >= n || s[k] != ')' {
				return -1
			}
			count += k - (j + 1)
			paren = true
			j = k + 1
			last = j
			continue
		}
		break
	}
	if count < 8 || count > 15 || last != j || (j < n && isAlnum(s[j])) {
		return -1
	}
	return j
}

// ---- e-mail ----

// emailAt matches local@domain.tld around the '@' at at: a local part of [A-Za-z0-9._%+-]
// (at most 64 bytes are taken), a domain of two or more labels whose last label is
// 2+ letters. JSON escapes (\n, \u003c) before the local part are not part of it.
func emailAt(s string, at int) (int, int) {
	k := at
	for k > 0 && at-k < 64 && class[s[k-1]]&cLocal != 0 {
		k--
	}
	if k > 0 && s[k-1] == '\\' && k < at {
		if s[k] == 'u' && k+5 <= at && isHex(s[k+1]) && isHex(s[k+2]) && isHex(s[k+3]) && isHex(s[k+4]) {
			k += 5
		} else {
			k++
		}
	}
	for k < at && s[k] == '.' {
		k++
	}
	if k >= at || s[at-1] == '.' {
		return -1, -1
	}
	n := len(s)
	j, good, labels := at+1, -1, 0
	for j-at <= 254 {
		ls := j
		j = runEnd(s, j, cLabel)
		for j > ls && s[j-1] == '-' {
			j--
		}
		if j == ls || s[ls] == '-' || j-ls > 63 {
			break
		}
		labels++
		if labels >= 2 && j-ls >= 2 && runEnd(s, ls, cUpper|cLower) == j {
			good = j
		}
		if j+1 < n && s[j] == '.' && class[s[j+1]]&cLabel != 0 {
			j++
			continue
		}
		break
	}
	if good < 0 || (good < n && isAlnum(s[good])) {
		return -1, -1
	}
	return k, good
}

// ---- credentials ----

// secretAt tries the credential prefixes that start with the letter at i.
func secretAt(s string, i int, memo *runMemo) (int, int, kind) {
	r := s[i:]
	switch s[i] {
	case 's':
		if e, k := skKeyAt(s, i, memo); e > 0 {
			return i, e, k
		}
	case 'A':
		if len(r) >= 20 && (r[:4] == "AKIA" || r[:4] == "ASIA") {
			for p := 4; p < 20; p++ {
				if !isUpper(r[p]) && !isDigit(r[p]) {
					return -1, -1, 0
				}
			}
			if len(r) == 20 || !isAlnum(r[20]) {
				return i, i + 20, kAWS
			}
		}
	case 'g':
		if len(r) >= 40 && r[1] == 'h' && r[3] == '_' && strings.IndexByte("pousr", r[2]) >= 0 {
			if e := runEnd(s, i+4, cDigit|cUpper|cLower); e-(i+4) >= 36 && (e == len(s) || s[e] != '_') {
				return i, e, kGitHub
			}
		}
		if strings.HasPrefix(r, "github_pat_") {
			if e := runEnd(s, i+11, cB64URL); e-(i+11) >= 22 {
				return i, e, kGitHub
			}
		}
	case 'x':
		var body int
		if len(r) >= 5 && r[:3] == "xox" && strings.IndexByte("abeoprs", r[3]) >= 0 && r[4] == '-' {
			body = i + 5
		} else if strings.HasPrefix(r, "xapp-") {
			body = i + 5
		}
		if body > 0 && body < len(s) && isDigit(s[body]) {
			if e := runEnd(s, body, cLabel); e-body >= 10 {
				return i, e, kSlack
			}
		}
	case 'e':
		if e := jwtAt(s, i, memo); e > 0 {
			return i, e, kJWT
		}
	case 'b', 'B':
		if st, e := bearerAt(s, i); e > 0 {
			return st, e, kBearer
		}
	}
	return -1, -1, 0
}

// skKeyAt matches sk-ant-… (Anthropic) and sk-… (OpenAI: sk-proj-, sk-svcacct-,
// sk-admin- or legacy) with at least 20 bytes of [A-Za-z0-9_-] after "sk-". A legacy
// body must hold a digit, an upper-case letter or '_' in its first 20 bytes (random
// keys do, with probability 1 − 3·10⁻⁸), so that lower-case slugs such as
// "sk-learn-compatible-interface" are not keys.
func skKeyAt(s string, i int, memo *runMemo) (int, kind) {
	if !strings.HasPrefix(s[i:], "sk-") {
		return -1, 0
	}
	e := memo.b64End(s, i+3)
	body := s[i+3 : e]
	if len(body) < 20 {
		return -1, 0
	}
	if strings.HasPrefix(body, "ant-") {
		return e, kAnthropic
	}
	if strings.HasPrefix(body, "proj-") || strings.HasPrefix(body, "svcacct-") || strings.HasPrefix(body, "admin-") {
		return e, kOpenAI
	}
	for p := 0; p < 20; p++ {
		if c := body[p]; isDigit(c) || isUpper(c) || c == '_' {
			return e, kOpenAI
		}
	}
	return -1, 0
}

// jwtAt matches eyJ<header>.<payload>.<signature> (the signature may be empty), with any
// further .<segment> of a JWE.
func jwtAt(s string, i int, memo *runMemo) int {
	if !strings.HasPrefix(s[i:], "eyJ") {
		return -1
	}
	n := len(s)
	e1 := memo.b64End(s, i)
	if e1-i < 10 || e1 >= n || s[e1] != '.' {
		return -1
	}
	e2 := memo.b64End(s, e1+1)
	if e2-(e1+1) < 2 || e2 >= n || s[e2] != '.' {
		return -1
	}
	e := runEnd(s, e2+1, cB64URL)
	for e+1 < n && s[e] == '.' && class[s[e+1]]&cB64URL != 0 {
		e = runEnd(s, e+1, cB64URL)
	}
	return e
}

// bearerAt matches "Bearer <token>" (any case) and returns the token alone. The token is
// a run of [A-Za-z0-9._~+/=-] without trailing dots, and must look like a credential
// rather than a word: 20+ bytes, or 8+ bytes with a digit, one of _~+/= or an upper-case
// letter after the first byte ("Bearer authentication" is not a token).
func bearerAt(s string, i int) (int, int) {
	n := len(s)
	if i+7 >= n || !equalFoldASCII(s[i:i+6], "bearer") || (s[i+6] != ' ' && s[i+6] != '\t') {
		return -1, -1
	}
	j := i + 6
	for j < n && (s[j] == ' ' || s[j] == '\t') {
		j++
	}
	e := runEnd(s, j, cToken)
	for e > j && s[e-1] == '.' {
		e--
	}
	tok := s[j:e]
	if len(tok) < 8 {
		return -1, -1
	}
	if len(tok) >= 20 {
		return j, e
	}
	for p := 0; p < len(tok); p++ {
		c := tok[p]
		if isDigit(c) || (p > 0 && isUpper(c)) || strings.IndexByte("_~+/=", c) >= 0 {
			return j, e
		}
	}
	return -1, -1
}

// privateKeyAt matches a PEM private-key block, from "-----BEGIN … PRIVATE KEY-----" (any
// label holding "PRIVATE KEY", so also OPENSSH, ENCRYPTED, PGP … KEY BLOCK) to the
// matching "-----END …-----", or to the end of the string when unterminated.
func privateKeyAt(s string, i int) int {
	const begin, end = "-----BEGIN ", "-----END "
	if !strings.HasPrefix(s[i:], begin) {
		return -1
	}
	ls := i + len(begin)
	le := strings.Index(s[ls:min(len(s), ls+80)], "-----")
	if le < 0 || !strings.Contains(s[ls:ls+le], "PRIVATE KEY") {
		return -1
	}
	j := ls + le + 5
	k := strings.Index(s[j:], end)
	if k < 0 {
		return len(s)
	}
	k += j + len(end)
	if le2 := strings.Index(s[k:min(len(s), k+80)], "-----"); le2 >= 0 {
		return k + le2 + 5
	}
	return len(s)
}

// ---- secrets under a key name, in text ----

// authSchemes are HTTP authentication schemes: after "Authorization: Basic" the
// credential that follows the scheme is part of the value.
var authSchemes = []string{"basic", "bearer", "digest", "token", "negotiate", "ntlm", "apikey", "aws4-hmac-sha256"}

// keyValueAt matches the value of key:value, key=value, key => value, "key": "value" and
// the same inside escaped JSON (\"key\":\"value\") when the key is a secret key name, at
// the ':' or '=' at i. It returns the value's range and whether it is a match; a value
// measured and refused still returns its end, where the next key=value may start.
func (m *Masker) keyValueAt(s string, i int) (int, int, bool) {
	n := len(s)
	// The key, backwards.
	j := i - 1
	for j >= 0 && (s[j] == ' ' || s[j] == '\t') {
		j--
	}
	if j < 0 {
		return 0, 0, false
	}
	var ks, ke int
	if q := s[j]; q == '"' || q == '\'' {
		ke = j
		for ke > 0 && s[ke-1] == '\\' {
			ke--
		}
		k := ke - 1
		for k >= 0 && ke-k <= 64 && s[k] != q {
			k--
		}
		if k < 0 || s[k] != q {
			return 0, 0, false
		}
		ks = k + 1
	} else {
		ke = j + 1
		k := j
		for k >= 0 && ke-k <= 64 && (isAlnum(s[k]) || s[k] == '_' || s[k] == '.' || s[k] == '-') {
			k--
		}
		ks = k + 1
		if ks > 0 && s[ks-1] == '\\' && ks < ke { // \npassword: the n is the escape's
			if s[ks] == 'u' && ks+5 <= ke && isHex(s[ks+1]) && isHex(s[ks+2]) && isHex(s[ks+3]) && isHex(s[ks+4]) {
				ks += 5
			} else {
				ks++
			}
		}
	}
	if ks >= ke {
		return 0, 0, false
	}
	key := s[ks:ke]
	if !m.keys.match(key) {
		return 0, 0, false
	}
	// The value, forwards.
	v := i + 1
	if s[i] == '=' {
		for v < n && s[v] == '=' { // password == "x"
			v++
		}
		if v < n && s[v] == '>' { // password => "x"
			v++
		}
	}
	for v < n && (s[v] == ' ' || s[v] == '\t') {
		v++
	}
	b := v
	for b < n && s[b] == '\\' {
		b++
	}
	var vs, ve int
	if b < n && (s[b] == '"' || s[b] == '\'') {
		vs = b + 1
		ve = closingQuote(s, vs, s[b], b-v)
	} else {
		if b > v || v >= n || s[v] == '{' || s[v] == '[' {
			return 0, 0, false
		}
		vs = v
		ve = v
		if lastSegmentIs(key, "cookie") {
			// Cookie: a=1; session=… — the whole header line is the value.
			for ve < n && strings.IndexByte("\r\n\"'\\", s[ve]) < 0 {
				ve++
			}
		}
		for ve < n && class[s[ve]]&cValueEnd == 0 {
			ve++
		}
		for _, lit := range [...]string{"null", "true", "false", "none", "nil"} {
			if equalFoldASCII(s[vs:ve], lit) {
				return 0, 0, false
			}
		}
		p := ve
		for p < n && s[p] == ' ' {
			p++
		}
		if p > ve && p < n && class[s[p]]&cValueEnd == 0 {
			for _, sc := range authSchemes {
				if equalFoldASCII(s[vs:ve], sc) {
					ve = p
					for ve < n && class[s[ve]]&cValueEnd == 0 {
						ve++
					}
					break
				}
			}
		}
	}
	if ve <= vs || placeholderEnd(s[vs:ve], 0) == ve-vs {
		return vs, ve, false
	}
	// A bare "token" key is also the key of LLM log-probability output
	// ({"token": "Hello", "logprob": -0.1}): in text it needs a credential-sized value.
	if equalFoldASCII(key, "token") && (ve-vs < 16 || strings.IndexByte(s[vs:ve], ' ') >= 0) {
		return vs, ve, false
	}
	return vs, ve, true
}

// lastSegmentIs reports whether the last segment of key is the lower-case word w.
func lastSegmentIs(key, w string) bool {
	s, e, ok := prevSegment(key, len(key))
	return ok && equalFoldASCII(key[s:e], w)
}

// urlPasswordAt matches the password of a URL's user-info, scheme://user:password@host,
// at the '@' at at: the bytes between the ':' and the '@', neither holding '/', ':', '@',
// white space or quotes, after "//" and a scheme. It returns the password's range.
func urlPasswordAt(s string, at int) (int, int) {
	stop := func(c byte) bool { return strings.IndexByte("/:@ \t\r\n\"'<>\\", c) >= 0 }
	k := at - 1
	for k >= 0 && at-k <= 256 && !stop(s[k]) {
		k--
	}
	if k < 0 || s[k] != ':' || k == at-1 {
		return -1, -1
	}
	u := k - 1
	for u >= 0 && k-u <= 256 && !stop(s[u]) {
		u--
	}
	if u < 2 || s[u] != '/' || s[u-1] != '/' || s[u-2] != ':' || u < 3 || !isAlnum(s[u-3]) {
		return -1, -1
	}
	return k + 1, at
}

// closingQuote finds the end of a quoted value that opened with quote q preceded by
// depth backslashes (depth > 0 inside escaped JSON). A quote closes the value when
// preceded by exactly depth backslashes, fewer, or — at depth 0 — an even number. When
// unsure it runs on: masking too much is safe, too little is not. Unterminated values
// run to the end of the string.
func closingQuote(s string, vs int, q byte, depth int) int {
	p := vs
	for {
		k := strings.IndexByte(s[p:], q)
		if k < 0 {
			return len(s)
		}
		p += k
		bs := 0
		for p-bs-1 >= vs && s[p-bs-1] == '\\' {
			bs++
		}
		if bs <= depth || (depth == 0 && bs%2 == 0) {
			return p - bs
		}
		p++
	}
}

// ---- placeholders ----

// placeholderEnd returns the end of a placeholder written by this package at i —
// [REDACTED:<kinds>], [BLOCKED:<kinds>] or [HMAC:<kind>:<32 hex>] with known kind names
// only — or -1. Placeholders are skipped so that masking is idempotent; their strict
// form leaves no room for anything else.
func placeholderEnd(s string, i int) int {
	r := s[i:]
	var p int
	hmac := false
	switch {
	case strings.HasPrefix(r, "[REDACTED:"):
		p = len("[REDACTED:")
	case strings.HasPrefix(r, "[BLOCKED:"):
		p = len("[BLOCKED:")
	case strings.HasPrefix(r, "[HMAC:"):
		p, hmac = len("[HMAC:"), true
	default:
		return -1
	}
	for {
		e := p
		for e < len(r) && (isLower(r[e]) || r[e] == '_') {
			e++
		}
		if _, ok := kindByName(r[p:e]); !ok || e >= len(r) {
			return -1
		}
		switch {
		case hmac:
			if r[e] != ':' || len(r) < e+34 || r[e+33] != ']' {
				return -1
			}
			for q := e + 1; q < e+33; q++ {
				if !isDigit(r[q]) && (r[q] < 'a' || r[q] > 'f') {
					return -1
				}
			}
			return i + e + 34
		case r[e] == ']':
			return i + e + 1
		case r[e] == ',':
			p = e + 1
		default:
			return -1
		}
	}
}
