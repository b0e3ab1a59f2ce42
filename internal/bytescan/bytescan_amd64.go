//go:build amd64 && !purego

package bytescan

import "golang.org/x/sys/cpu"

var useAVX2 = cpu.X86.HasAVX2

// mask64AVX2 is Mask64 of the 64 bytes at p.
//
//go:noescape
func mask64AVX2(p *byte, nibbles *[32]byte) uint64
