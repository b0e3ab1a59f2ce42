//go:build amd64 && !purego

#include "textflag.h"

DATA lowNibble<>+0(SB)/1, $0x0f
GLOBL lowNibble<>(SB), RODATA|NOPTR, $1

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

// func asciiAVX2(p *byte, n int) bool
// Whether the n >= 32 bytes at p are all below 0x80: the bytes are or-ed 64 at a time,
// the last 32 read again where n is not a multiple of 32.
TEXT ·asciiAVX2(SB), NOSPLIT, $0-17
	MOVQ	p+0(FP), SI
	MOVQ	n+8(FP), CX
	LEAQ	-32(SI)(CX*1), DX
	VPXOR	Y0, Y0, Y0
	VPXOR	Y1, Y1, Y1
	CMPQ	CX, $64
	JB	tail
loop64:
	VPOR	(SI), Y0, Y0
	VPOR	32(SI), Y1, Y1
	ADDQ	$64, SI
	SUBQ	$64, CX
	CMPQ	CX, $64
	JAE	loop64
tail:
	CMPQ	CX, $32
	JB	last
	VPOR	(SI), Y0, Y0
last:
	VPOR	(DX), Y1, Y1
	VPOR	Y1, Y0, Y0
	VPMOVMSKB	Y0, AX
	TESTL	AX, AX
	SETEQ	ret+16(FP)
	VZEROUPPER
	RET

DATA caseBit<>+0(SB)/1, $0x20
GLOBL caseBit<>(SB), RODATA|NOPTR, $1

// func mask64PairAVX2(p *byte, nibbles *[32]byte, lead, follow byte) (members, leads, follows uint64)
// mask64AVX2's members among the 64 bytes at p, and the bytes equal to lead and to
// follow once the case bit (0x20) is set.
TEXT ·mask64PairAVX2(SB), NOSPLIT, $0-48
	MOVQ	p+0(FP), SI
	MOVQ	nibbles+8(FP), AX
	VPBROADCASTB	caseBit<>(SB), Y13
	VPBROADCASTB	lead+16(FP), Y14
	VPBROADCASTB	follow+17(FP), Y15
	VMOVDQU	(SI), Y0
	VMOVDQU	32(SI), Y8
	VPOR	Y13, Y0, Y11
	VPOR	Y13, Y8, Y12
	VPCMPEQB	Y14, Y11, Y1
	VPCMPEQB	Y14, Y12, Y2
	VPMOVMSKB	Y1, DX
	VPMOVMSKB	Y2, CX
	SHLQ	$32, CX
	ORQ	CX, DX
	MOVQ	DX, leads+32(FP)
	VPCMPEQB	Y15, Y11, Y1
	VPCMPEQB	Y15, Y12, Y2
	VPMOVMSKB	Y1, DX
	VPMOVMSKB	Y2, CX
	SHLQ	$32, CX
	ORQ	CX, DX
	MOVQ	DX, follows+40(FP)
	VBROADCASTI128	(AX), Y6
	VBROADCASTI128	16(AX), Y7
	VPBROADCASTB	lowNibble<>(SB), Y5
	VPXOR	Y4, Y4, Y4
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
	VPCMPEQB	Y4, Y2, Y2
	VPCMPEQB	Y4, Y10, Y10
	VPMOVMSKB	Y2, DX
	VPMOVMSKB	Y10, CX
	SHLQ	$32, CX
	ORQ	CX, DX
	NOTQ	DX
	MOVQ	DX, members+24(FP)
	VZEROUPPER
	RET
