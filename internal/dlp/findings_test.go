package dlp

import (
	"math/rand/v2"
	"testing"
)

// TestFindingsString checks Findings.String against Result.String on every pair of
// kinds and on random sets, twice each: the second time the text comes from the cache.
func TestFindingsString(t *testing.T) {
	all := KindSet(1<<numKinds - 1)
	var sets []Findings
	for a := kind(0); a < numKinds; a++ {
		for b := kind(0); b < numKinds; b++ {
			sets = append(sets,
				Findings{Redacted: a.bit() | b.bit()},
				Findings{Blocked: a.bit() | b.bit()},
				Findings{Redacted: a.bit(), Blocked: b.bit()})
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		sets = append(sets, Findings{Redacted: KindSet(r.Uint32()) & all, Blocked: KindSet(r.Uint32()) & all})
	}
	sets = append(sets, Findings{}, Findings{Redacted: all, Blocked: all})
	for pass := range 2 {
		for _, f := range sets {
			want := resultOf(f, false).String()
			if got := f.String(); got != want {
				t.Fatalf("pass %d: %#v.String() = %q, want %q", pass, f, got, want)
			}
			if got, want := resultOf(f, false).CredentialMasked, f.CredentialMasked(); got != want {
				t.Fatalf("%#v: CredentialMasked %v, Result's %v", f, want, got)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = sets[7].String() }); n != 0 {
		t.Errorf("a text already formed costs %v allocations", n)
	}
}
