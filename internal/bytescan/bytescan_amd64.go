//go:build amd64 && !purego

package bytescan

import "golang.org/x/sys/cpu"

var useAVX2 = cpu.X86.HasAVX2

// indexSetAVX2 is Index for len(text) >= 32, given the nibble tables of the set.
//
//go:noescape
func indexSetAVX2(text string, nibbles *[32]byte) int

// indexNonASCIIAVX2 returns the index of the first byte >= 0x80 of text, len(text) >= 32,
// or -1.
//
//go:noescape
func indexNonASCIIAVX2(text string) int

// mask64AVX2 is Mask64 of the 64 bytes at p.
//
//go:noescape
func mask64AVX2(p *byte, nibbles *[32]byte) uint64
