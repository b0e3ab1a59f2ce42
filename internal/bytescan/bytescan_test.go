package bytescan

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
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

func naiveIndexBytes(s *Set, text string) int {
	for i := 0; i < len(text); i++ {
		if s.member[text[i]] {
			return i
		}
	}
	return -1
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

// TestIndex compares Index (vectorised where the CPU allows) and the generic scan with
// a byte-by-byte loop: every length up to 100 with the first member at every place, and
// random texts over all byte values.
func TestIndex(t *testing.T) {
	check := func(s *Set, members, text string) {
		t.Helper()
		want := naiveIndexBytes(s, text)
		if got := s.Index(text); got != want {
			t.Fatalf("set %q: Index(%q) = %d, want %d", members, text, got, want)
		}
		if got := s.indexGeneric(text); got != want {
			t.Fatalf("set %q: indexGeneric(%q) = %d, want %d", members, text, got, want)
		}
		if useAVX2 && len(text) >= vectorMin {
			if got := indexSetAVX2(text, &s.nibbles); got != want {
				t.Fatalf("set %q: indexSetAVX2(%q) = %d, want %d", members, text, got, want)
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, members := range testSets {
		s := NewSet(members)
		var outside []byte
		for c := 0; c < 256; c++ {
			if !s.Has(byte(c)) {
				outside = append(outside, byte(c))
			}
		}
		for n := 0; n <= 100; n++ {
			b := make([]byte, n)
			for i := range b {
				b[i] = outside[r.IntN(len(outside))]
			}
			check(s, members, string(b))
			for p := 0; p < n && members != ""; p++ {
				c := b[p]
				b[p] = members[r.IntN(len(members))]
				check(s, members, string(b))
				// A second member later must not matter.
				if p+1 < n {
					q := p + 1 + r.IntN(n-p-1)
					d := b[q]
					b[q] = members[r.IntN(len(members))]
					check(s, members, string(b))
					b[q] = d
				}
				b[p] = c
			}
		}
		for range 2000 {
			b := make([]byte, r.IntN(300))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			check(s, members, string(b))
		}
	}
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

// TestValidUTF8 compares ValidUTF8 with utf8.ValidString on text with invalid and
// multi-byte sequences at every place, and at every offset of a longer text (so that
// the vectorised blocks start everywhere).
func TestValidUTF8(t *testing.T) {
	check := func(s string) {
		t.Helper()
		if got, want := ValidUTF8(s), utf8.ValidString(s); got != want {
			t.Fatalf("ValidUTF8(%q) = %v, want %v", s, got, want)
		}
		if useAVX2 && len(s) >= vectorMin {
			want := -1
			for i := 0; i < len(s); i++ {
				if s[i] >= 0x80 {
					want = i
					break
				}
			}
			if got := indexNonASCIIAVX2(s); got != want {
				t.Fatalf("indexNonASCIIAVX2(%q) = %d, want %d", s, got, want)
			}
		}
	}
	pieces := []string{"é", "日本", "\xff", "\xe6\x97", "\xed\xa0\x80", "😀", "\x7f", "\xc0\x80", "\xf4\x90\x80\x80"}
	base := strings.Repeat("the quick brown fox 0123456789. ", 4)
	for n := 0; n <= len(base); n++ {
		check(base[:n])
		for _, p := range pieces {
			for at := 0; at <= n; at++ {
				check(base[:at] + p + base[at:n])
			}
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		var b strings.Builder
		for range r.IntN(12) {
			if r.IntN(3) == 0 {
				b.WriteString(pieces[r.IntN(len(pieces))])
			} else {
				b.WriteString(base[:r.IntN(len(base))])
			}
		}
		check(b.String())
	}
}

func FuzzIndex(f *testing.F) {
	f.Add("the quick brown fox jumps over the lazy dog, twice: the quick brown fox", byte(0))
	f.Add(strings.Repeat("x", 64)+"_", byte(3))
	f.Fuzz(func(t *testing.T, text string, set byte) {
		members := testSets[int(set)%len(testSets)]
		s := NewSet(members)
		want := naiveIndexBytes(s, text)
		if got := s.Index(text); got != want {
			t.Fatalf("set %q: Index(%q) = %d, want %d", members, text, got, want)
		}
		if got, want := ValidUTF8(text), utf8.ValidString(text); got != want {
			t.Fatalf("ValidUTF8(%q) = %v, want %v", text, got, want)
		}
		for i := 0; i <= len(text); i++ {
			if got, want := s.Mask64(text, i), naiveMask64(s, text, i); got != want {
				t.Fatalf("set %q: Mask64(%q, %d) = %#x, want %#x", members, text, i, got, want)
			}
		}
	})
}

func BenchmarkIndex(b *testing.B) {
	s := NewSet("0123456789+(@-_:=[AJbB")
	text := strings.Repeat("the quick rown fox ", 200)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		s.Index(text)
	}
}

func BenchmarkValidUTF8(b *testing.B) {
	text := strings.Repeat("the quick brown fox ", 200)
	b.Run("bytescan", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			ValidUTF8(text)
		}
	})
	b.Run("utf8", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			utf8.ValidString(text)
		}
	})
}
