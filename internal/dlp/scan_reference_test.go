package dlp

// The byte-at-a-time dispatcher the scanner used before anchors (scan.go): every byte
// that can start a match is a trigger, including the first letters of the credential
// prefixes. It is kept as the oracle of TestFindMatchesReference and FuzzFindMatchesReference:
// the anchored scan must find exactly what it finds, in the same order.

// Reference trigger bytes.
const (
	rNone uint8 = iota
	rDigit
	rPlus
	rParen
	rAt
	rLetter
	rDash
	rKV
	rBracket
)

var refTrigger = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = rDigit
	}
	for _, c := range "sAgxebB" {
		t[c] = rLetter
	}
	t['+'] = rPlus
	t['('] = rParen
	t['@'] = rAt
	t['-'] = rDash
	t[':'] = rKV
	t['='] = rKV
	t['['] = rBracket
	return t
}()

// refSecondByte lists, per trigger letter, the bytes that may follow it in a credential
// prefix: sk-, AKIA/ASIA, gh?_/github_pat_, xox?-/xapp-, eyJ, bearer.
var refSecondByte = func() (t [256][2]byte) {
	for c, next := range map[byte]string{'s': "kk", 'A': "KS", 'g': "hi", 'x': "oa", 'e': "yy", 'b': "eE", 'B': "eE"} {
		t[c] = [2]byte{next[0], next[1]}
	}
	return t
}()

// refSecretPrefix is a cheap test of the byte after a trigger letter.
func refSecretPrefix(s string, i int) bool {
	if i+1 >= len(s) {
		return false
	}
	c, want := s[i+1], &refSecondByte[s[i]]
	return c == want[0] || c == want[1]
}

// referenceFind is find as it was: one table lookup and dispatch per byte.
func (m *Masker) referenceFind(s string, en KindSet, ms []match) []match {
	n := len(s)
	kvEnd := 0 // end of the last key=value value: no key=value match inside it
	var memo runMemo
	for i := 0; i < n; {
		t := refTrigger[s[i]]
		if t == rNone {
			i++
			continue
		}
		next := i + 1
		switch t {
		case rDigit:
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
		case rPlus:
			if en.has(kPhone) && boundaryBefore(s, i) && (i == 0 || s[i-1] != '+') {
				if e := e164At(s, i); e > 0 {
					ms, next = append(ms, match{i, e, kPhone.bit()}), e
				}
			}
		case rParen:
			if en.has(kPhone) && boundaryBefore(s, i) {
				if e := usPhoneCore(s, i, 0); e > 0 {
					ms, next = append(ms, match{i, e, kPhone.bit()}), e
				}
			}
		case rAt:
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
		case rLetter:
			if !refSecretPrefix(s, i) || !boundaryBefore(s, i) {
				break
			}
			if st, e, k := secretAt(s, i, &memo); e > 0 && en.has(k) {
				ms, next = append(ms, match{st, e, k.bit()}), e
				if k == kBearer {
					next = st // the token may be a JWT or a known key: name it
				}
			}
		case rDash:
			if en.has(kPrivateKey) {
				if e := privateKeyAt(s, i); e > 0 {
					ms, next = append(ms, match{i, e, kPrivateKey.bit()}), e
				}
			}
		case rKV:
			// The value is not skipped: the specific detectors still run inside it, and
			// their matches merge with this one.
			if i >= kvEnd && en.has(kKeyName) {
				vs, ve, ok := m.keyValueAt(s, i)
				if ok {
					ms = append(ms, match{vs, ve, kKeyName.bit()})
				}
				kvEnd = max(kvEnd, ve)
			}
		case rBracket:
			if e := placeholderEnd(s, i); e > 0 {
				next = e
			}
		}
		i = next
	}
	return ms
}
