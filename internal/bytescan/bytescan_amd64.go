//go:build amd64 && !purego

package bytescan

import "golang.org/x/sys/cpu"

var useAVX2 = cpu.X86.HasAVX2

// mask64AVX2 is Mask64 of the 64 bytes at p.
//
//go:noescape
func mask64AVX2(p *byte, nibbles *[32]byte) uint64

// asciiAVX2 reports whether the n >= 32 bytes at p are all ASCII.
//
//go:noescape
func asciiAVX2(p *byte, n int) bool

// mask64PairAVX2 is Mask64 of the 64 bytes at p, with the masks of the bytes equal to
// lead and to follow once 0x20 is or-ed in.
//
//go:noescape
func mask64PairAVX2(p *byte, nibbles *[32]byte, lead, follow byte) (members, leads, follows uint64)
