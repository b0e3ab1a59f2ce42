// Package bytescan finds the bytes of a small set in text, 32 bytes a step on CPUs with
// AVX2 (a table lookup per byte elsewhere): the DLP scanner skips to its rare anchor
// bytes with it.
package bytescan

import (
	"encoding/binary"
	"unsafe"
)

// A Set is a set of bytes that Mask64 finds. The vectorised scan classifies each byte
// by its two nibbles: the set's bytes are grouped by high nibble, one group per bit of
// a byte, and a byte is a member when the groups of its low nibble and of its high
// nibble meet. Any set whose bytes have at most eight distinct high nibbles is held
// exactly.
type Set struct {
	member [256]bool
	// nibbles[lo] and nibbles[16+hi]: the groups of each low and high nibble, as
	// VPSHUFB looks them up.
	nibbles [32]byte
}

// NewSet returns the set of the bytes of members. It panics when they have more than
// eight distinct high nibbles: the set is a constant of the caller's.
func NewSet(members string) *Set {
	s := &Set{}
	group := map[byte]byte{} // high nibble → its group's bit
	for i := 0; i < len(members); i++ {
		c := members[i]
		s.member[c] = true
		hi, lo := c>>4, c&0x0f
		bit, ok := group[hi]
		if !ok {
			if len(group) == 8 {
				panic("bytescan: more than eight high nibbles in " + members)
			}
			bit = 1 << len(group)
			group[hi] = bit
			s.nibbles[16+hi] = bit
		}
		s.nibbles[lo] |= bit
	}
	return s
}

// Has reports whether c is in the set.
func (s *Set) Has(c byte) bool { return s.member[c] }

// pageSize is the smallest page size of the platforms with a vectorised scan.
const pageSize = 4096

// Vectorised reports whether Mask64 runs 32 bytes a step on this CPU. Without,
// a caller stepping from member to member does better with a table of its own.
func Vectorised() bool { return useAVX2 }

// Mask64 returns the members among text[i:i+64] (fewer bytes at the end of text): bit k
// is set when text[i+k] is in the set. Stepping through a mask costs a few instructions
// per member, one call per 64 bytes.
func (s *Set) Mask64(text string, i int) uint64 {
	n := len(text)
	if useAVX2 && i < n {
		p := unsafe.StringData(text[i:])
		switch {
		case i+64 <= n:
			return mask64AVX2(p, &s.nibbles)
		case n >= 64:
			// The last 64 bytes of text, without those before i.
			return mask64AVX2(unsafe.StringData(text[n-64:]), &s.nibbles) >> (i - (n - 64))
		case uintptr(unsafe.Pointer(p))%pageSize <= pageSize-64:
			// Short text: the 64 bytes from p are read, past its end but not past the
			// end of its memory page, which is mapped as a whole (as the runtime's own
			// IndexByte does); what lies beyond the text is masked off.
			return mask64AVX2(p, &s.nibbles) & (1<<(n-i) - 1)
		}
	}
	var m uint64
	for k, c := range []byte(text[i:min(n, i+64)]) {
		if s.member[c] {
			m |= 1 << k
		}
	}
	return m
}

// ASCII reports whether every byte of s is below 0x80: such a string is valid UTF-8, and
// checking it costs far less than utf8.ValidString, which goes eight bytes a step (32
// with AVX2 here, 8 elsewhere).
func ASCII(s string) bool {
	n := len(s)
	if useAVX2 && n >= 32 {
		return asciiAVX2(unsafe.StringData(s), n)
	}
	const high = 0x8080808080808080
	i := 0
	if n >= 8 {
		// binary.LittleEndian reads a word at once where the CPU allows unaligned
		// loads, and is correct everywhere.
		b := unsafe.Slice(unsafe.StringData(s), n)
		var acc uint64
		for ; i+8 <= n; i += 8 {
			acc |= binary.LittleEndian.Uint64(b[i:])
		}
		// The last eight bytes, overlapping those already read.
		acc |= binary.LittleEndian.Uint64(b[n-8:])
		return acc&high == 0
	}
	var b byte
	for ; i < n; i++ {
		b |= s[i]
	}
	return b < 0x80
}

// Mask64Pair is Mask64 less the members that are the letter lead, in either case, and
// are followed by a byte other than the letter follow, in either case: a member that
// only counts as the start of a pair ("be" of "bearer"). lead and follow are lower-case
// ASCII letters. A lead in the window's last position, or at the end of text, is kept:
// its next byte is not looked at.
func (s *Set) Mask64Pair(text string, i int, lead, follow byte) uint64 {
	n := len(text)
	if i >= n {
		return 0
	}
	var m, l, f uint64
	p := unsafe.StringData(text[i:])
	switch {
	case !useAVX2:
		m, l, f = s.mask64PairBytes(text, i, lead, follow)
	case i+64 <= n:
		m, l, f = mask64PairAVX2(p, &s.nibbles, lead, follow)
	case n >= 64:
		// The last 64 bytes of text, without those before i.
		sh := i - (n - 64)
		m, l, f = mask64PairAVX2(unsafe.StringData(text[n-64:]), &s.nibbles, lead, follow)
		m, l, f = m>>sh, l>>sh, f>>sh
	case uintptr(unsafe.Pointer(p))%pageSize <= pageSize-64:
		// As in Mask64: the bytes past the end of text, in the same page, are masked off.
		keep := uint64(1)<<(n-i) - 1
		m, l, f = mask64PairAVX2(p, &s.nibbles, lead, follow)
		m, l, f = m&keep, l&keep, f&keep
	default:
		m, l, f = s.mask64PairBytes(text, i, lead, follow)
	}
	last := min(n-i, 64) - 1
	followed := f>>1 | 1<<63 | 1<<last
	return m &^ (l &^ followed)
}

func (s *Set) mask64PairBytes(text string, i int, lead, follow byte) (m, l, f uint64) {
	for k, c := range []byte(text[i:min(len(text), i+64)]) {
		if s.member[c] {
			m |= 1 << k
		}
		if c|0x20 == lead {
			l |= 1 << k
		}
		if c|0x20 == follow {
			f |= 1 << k
		}
	}
	return m, l, f
}
