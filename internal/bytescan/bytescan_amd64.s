//go:build amd64 && !purego

#include "textflag.h"

DATA lowNibble<>+0(SB)/1, $0x0f
GLOBL lowNibble<>(SB), RODATA|NOPTR, $1

// func indexSetAVX2(text string, nibbles *[32]byte) int
// A byte is in the set when nibbles[low nibble] & nibbles[16 + high nibble] != 0.
// Blocks of 32 bytes are classified with two VPSHUFB lookups; the last block is the
// last 32 bytes of text, overlapping the previous one, its first bytes ignored.
TEXT ·indexSetAVX2(SB), NOSPLIT, $0-32
	MOVQ	text_base+0(FP), SI
	MOVQ	text_len+8(FP), CX
	MOVQ	nibbles+16(FP), AX
	VBROADCASTI128	(AX), Y6	// low-nibble groups, in both lanes
	VBROADCASTI128	16(AX), Y7	// high-nibble groups
	VPBROADCASTB	lowNibble<>(SB), Y5
	VPXOR	Y4, Y4, Y4
	MOVQ	SI, DI
	LEAQ	-32(SI)(CX*1), R8	// the last block
	XORL	CX, CX	// bytes of the block already checked

loop:
	CMPQ	DI, R8
	JAE	last
	VMOVDQU	(DI), Y0
	VPSRLW	$4, Y0, Y1
	VPAND	Y5, Y0, Y2
	VPAND	Y5, Y1, Y1
	VPSHUFB	Y2, Y6, Y2
	VPSHUFB	Y1, Y7, Y1
	VPAND	Y1, Y2, Y2
	VPCMPEQB	Y4, Y2, Y2	// 0xff where not in the set
	VPMOVMSKB	Y2, DX
	NOTL	DX
	TESTL	DX, DX
	JNZ	found
	ADDQ	$32, DI
	JMP	loop

last:
	MOVQ	DI, CX
	SUBQ	R8, CX
	VMOVDQU	(R8), Y0
	VPSRLW	$4, Y0, Y1
	VPAND	Y5, Y0, Y2
	VPAND	Y5, Y1, Y1
	VPSHUFB	Y2, Y6, Y2
	VPSHUFB	Y1, Y7, Y1
	VPAND	Y1, Y2, Y2
	VPCMPEQB	Y4, Y2, Y2
	VPMOVMSKB	Y2, DX
	NOTL	DX
	SHRL	CX, DX
	TESTL	DX, DX
	JZ	none

found:
	BSFL	DX, DX
	ADDQ	DI, DX
	SUBQ	SI, DX
	MOVQ	DX, ret+24(FP)
	VZEROUPPER
	RET

none:
	MOVQ	$-1, ret+24(FP)
	VZEROUPPER
	RET

// func indexNonASCIIAVX2(text string) int
TEXT ·indexNonASCIIAVX2(SB), NOSPLIT, $0-24
	MOVQ	text_base+0(FP), SI
	MOVQ	text_len+8(FP), CX
	MOVQ	SI, DI
	LEAQ	-32(SI)(CX*1), R8

ascii:
	CMPQ	DI, R8
	JAE	asciilast
	VMOVDQU	(DI), Y0
	VPMOVMSKB	Y0, DX
	TESTL	DX, DX
	JNZ	nonascii
	ADDQ	$32, DI
	JMP	ascii

asciilast:
	MOVQ	DI, CX
	SUBQ	R8, CX
	VMOVDQU	(R8), Y0
	VPMOVMSKB	Y0, DX
	SHRL	CX, DX
	TESTL	DX, DX
	JZ	allascii

nonascii:
	BSFL	DX, DX
	ADDQ	DI, DX
	SUBQ	SI, DX
	MOVQ	DX, ret+16(FP)
	VZEROUPPER
	RET

allascii:
	MOVQ	$-1, ret+16(FP)
	VZEROUPPER
	RET

// func mask64AVX2(p *byte, nibbles *[32]byte) uint64
// The members among the 64 bytes at p, bit k for byte k.
TEXT ·mask64AVX2(SB), NOSPLIT, $0-24
	MOVQ	p+0(FP), SI
	MOVQ	nibbles+8(FP), AX
	VBROADCASTI128	(AX), Y6
	VBROADCASTI128	16(AX), Y7
	VPBROADCASTB	lowNibble<>(SB), Y5
	VPXOR	Y4, Y4, Y4
	VMOVDQU	(SI), Y0
	VMOVDQU	32(SI), Y8
	VPSRLW	$4, Y0, Y1
	VPSRLW	$4, Y8, Y9
	VPAND	Y5, Y0, Y2
	VPAND	Y5, Y8, Y10
	VPAND	Y5, Y1, Y1
	VPAND	Y5, Y9, Y9
	VPSHUFB	Y2, Y6, Y2
	VPSHUFB	Y10, Y6, Y10
	VPSHUFB	Y1, Y7, Y1
	VPSHUFB	Y9, Y7, Y9
	VPAND	Y1, Y2, Y2
	VPAND	Y9, Y10, Y10
	VPCMPEQB	Y4, Y2, Y2	// 0xff where not a member
	VPCMPEQB	Y4, Y10, Y10
	VPMOVMSKB	Y2, DX
	VPMOVMSKB	Y10, CX
	SHLQ	$32, CX
	ORQ	CX, DX
	NOTQ	DX
	MOVQ	DX, ret+16(FP)
	VZEROUPPER
	RET
