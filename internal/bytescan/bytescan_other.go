//go:build !amd64 || purego

package bytescan

const useAVX2 = false

func mask64AVX2(*byte, *[32]byte) uint64 { panic("bytescan: no AVX2") }

func asciiAVX2(*byte, int) bool { panic("bytescan: no AVX2") }

func mask64PairAVX2(*byte, *[32]byte, byte, byte) (uint64, uint64, uint64) {
	panic("bytescan: no AVX2")
}
