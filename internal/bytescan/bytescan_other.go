//go:build !amd64 || purego

package bytescan

const useAVX2 = false

func indexSetAVX2(string, *[32]byte) int { panic("bytescan: no AVX2") }

func indexNonASCIIAVX2(string) int { panic("bytescan: no AVX2") }

func mask64AVX2(*byte, *[32]byte) uint64 { panic("bytescan: no AVX2") }
