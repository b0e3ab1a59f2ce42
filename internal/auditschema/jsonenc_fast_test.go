package auditschema

import (
	"math/rand/v2"
	"testing"
)

func safeByte(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }

// special8 must find a special byte wherever it is, whatever the others are: every pair
// of positions with every pair of byte values, the other bytes safe.
func TestSpecial8(t *testing.T) {
	for p := 0; p < 8; p++ {
		for q := p; q < 8; q++ {
			for c := 0; c < 256; c++ {
				for d := 0; d < 256; d++ {
					w := [8]byte{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'}
					w[p], w[q] = byte(c), byte(d)
					want := !safeByte(w[p]) || !safeByte(w[q])
					if got := special8(load8(string(w[:]), 0)) != 0; got != want {
						t.Fatalf("special8(%q) = %v, want %v", w, got, want)
					}
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		x := r.Uint64()
		want := false
		for i := range 8 {
			want = want || !safeByte(byte(x>>(8*i)))
		}
		if got := special8(x) != 0; got != want {
			t.Fatalf("special8(%#x) = %v, want %v", x, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range awkwardStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendString([]byte("x"), s)), string(refAppendString([]byte("x"), s)); got != want {
			t.Fatalf("appendString(%q) = %q, want %q", s, got, want)
		}
	})
}
