package bytescan

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// The DLP scanner's anchors, and sets at the edges of what a Set holds.
var testSets = []string{
	"0123456789+(@-_:=[AJbB",
	"\x00",
	"\xff",
	"\x00\x11\x22\x33\x44\x55\x66\x77",
	"\x80\x9f\xa0\xbf\xc0\xdf\xe0\xff",
	"a",
	"",
}

func TestSetMembersExact(t *testing.T) {
	for _, members := range testSets {
		s := NewSet(members)
		for c := 0; c < 256; c++ {
			want := strings.IndexByte(members, byte(c)) >= 0
			nib := s.nibbles[c&0x0f]&s.nibbles[16+c>>4] != 0
			if s.Has(byte(c)) != want || nib != want {
				t.Errorf("set %q, byte %#x: Has %v, nibbles %v, want %v", members, c, s.Has(byte(c)), nib, want)
			}
		}
	}
}

func TestNewSetTooManyNibbles(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for nine high nibbles")
		}
	}()
	NewSet("\x00\x10\x20\x30\x40\x50\x60\x70\x80")
}

// naiveMask64Pair is Mask64Pair's definition, a byte at a time.
func naiveMask64Pair(s *Set, text string, i int, lead, follow byte) uint64 {
	var m uint64
	last := min(len(text)-i, 64) - 1
	for k := 0; k <= last; k++ {
		c := text[i+k]
		if !s.member[c] {
			continue
		}
		if c|0x20 == lead && k < last && text[i+k+1]|0x20 != follow {
			continue
		}
		m |= 1 << k
	}
	return m
}

func naiveMask64(s *Set, text string, i int) uint64 {
	var m uint64
	for k := 0; k < 64 && i+k < len(text); k++ {
		if s.member[text[i+k]] {
			m |= 1 << k
		}
	}
	return m
}

// TestMask64 compares Mask64 with a byte-by-byte loop at every offset of texts of every
// length up to 200, and of short texts that end at the end of a memory page, where the
// vectorised scan must not read past it.
func TestMask64(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, members := range testSets {
		s := NewSet(members)
		check := func(text string, i int) {
			t.Helper()
			if got, want := s.Mask64(text, i), naiveMask64(s, text, i); got != want {
				t.Fatalf("set %q: Mask64(%q, %d) = %#x, want %#x", members, text, i, got, want)
			}
			if got, want := s.Mask64Pair(text, i, 'b', 'e'), naiveMask64Pair(s, text, i, 'b', 'e'); got != want {
				t.Fatalf("set %q: Mask64Pair(%q, %d) = %#x, want %#x", members, text, i, got, want)
			}
		}
		for n := 0; n <= 200; n++ {
			b := make([]byte, n)
			for k := range b {
				if r.IntN(4) == 0 && members != "" {
					b[k] = members[r.IntN(len(members))]
				} else {
					b[k] = byte(r.Uint32())
				}
			}
			for i := 0; i <= n; i++ {
				check(string(b), i)
			}
		}
		// Texts ending at the end of a page, and starting just before one.
		buf := make([]byte, 3*pageSize)
		for k := range buf {
			buf[k] = byte(r.Uint32())
		}
		page := pageSize - int(uintptr(unsafe.Pointer(&buf[0]))%pageSize) // offset of the first page start
		for n := 1; n < 64; n++ {
			for _, start := range []int{page + pageSize - n, page + pageSize - 64 - n + 1, page - 1} {
				text := unsafe.String(&buf[start], n)
				for i := 0; i < n; i++ {
					check(text, i)
				}
			}
		}
	}
}

func FuzzMask64(f *testing.F) {
	f.Add("the quick brown fox jumps over the lazy dog, twice: the quick brown fox", byte(0))
	f.Add(strings.Repeat("x", 64)+"_", byte(3))
	f.Fuzz(func(t *testing.T, text string, set byte) {
		members := testSets[int(set)%len(testSets)]
		s := NewSet(members)
		for i := 0; i <= len(text); i++ {
			if got, want := s.Mask64(text, i), naiveMask64(s, text, i); got != want {
				t.Fatalf("set %q: Mask64(%q, %d) = %#x, want %#x", members, text, i, got, want)
			}
			if got, want := s.Mask64Pair(text, i, 'b', 'e'), naiveMask64Pair(s, text, i, 'b', 'e'); got != want {
				t.Fatalf("set %q: Mask64Pair(%q, %d) = %#x, want %#x", members, text, i, got, want)
			}
		}
	})
}

func naiveASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// TestASCII checks ASCII against a byte-by-byte loop on texts of every length up to 300
// with no, one (at every position) and several high bytes, at every alignment.
func TestASCII(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	buf := make([]byte, 400)
	for n := 0; n <= 300; n++ {
		for off := 0; off < 8; off++ {
			b := buf[off : off+n]
			for k := range b {
				b[k] = byte(r.IntN(0x80))
			}
			if got := ASCII(string(b)); !got {
				t.Fatalf("ASCII(%q) = false", b)
			}
			for k := range b {
				for _, c := range []byte{0x80, 0xc3, 0xff} {
					old := b[k]
					b[k] = c
					if got := ASCII(string(b)); got {
						t.Fatalf("len %d: ASCII with %#x at %d = true", n, c, k)
					}
					b[k] = old
				}
			}
		}
	}
}

func FuzzASCII(f *testing.F) {
	f.Add("plain text, long enough for the vectorised path to run over it")
	f.Add("caf\xc3\xa9")
	f.Add(strings.Repeat("a", 95) + "\x80")
	f.Fuzz(func(t *testing.T, text string) {
		for i := 0; i <= len(text); i++ {
			if got, want := ASCII(text[i:]), naiveASCII(text[i:]); got != want {
				t.Fatalf("ASCII(%q) = %v, want %v", text[i:], got, want)
			}
		}
	})
}

// TestMask64PairLetters runs Mask64Pair over texts made of the lead and follow letters in
// both cases and a few other bytes (in the set and not), at every length up to 200 and
// every offset, and of short texts ending at the end of a memory page.
func TestMask64PairLetters(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	s := NewSet(testSets[0])
	const alphabet = "bBeEx-_\xe2\x42\x62"
	check := func(text string, i int) {
		t.Helper()
		if got, want := s.Mask64Pair(text, i, 'b', 'e'), naiveMask64Pair(s, text, i, 'b', 'e'); got != want {
			t.Fatalf("Mask64Pair(%q, %d) = %#x, want %#x", text, i, got, want)
		}
	}
	for n := 0; n <= 200; n++ {
		for range 4 {
			b := make([]byte, n)
			for k := range b {
				b[k] = alphabet[r.IntN(len(alphabet))]
			}
			for i := 0; i <= n; i++ {
				check(string(b), i)
			}
		}
	}
	buf := make([]byte, 3*pageSize)
	for k := range buf {
		buf[k] = alphabet[r.IntN(len(alphabet))]
	}
	page := pageSize - int(uintptr(unsafe.Pointer(&buf[0]))%pageSize)
	for n := 1; n < 64; n++ {
		for _, start := range []int{page + pageSize - n, page - 1} {
			text := unsafe.String(&buf[start], n)
			for i := 0; i < n; i++ {
				check(text, i)
			}
		}
	}
}
