package dlp

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/otelaudit/otelcol-audit/internal/bytescan"
)

// anchorCorpus holds inputs around every anchor and credential prefix: matches at the
// start and end of the string, glued and adjacent matches, prefixes split by the end of
// the string, and multi-byte characters next to matches.
var anchorCorpus = []string{
	openaiKey, legacyKey, anthKey, awsKey, ghToken, ghPAT, slackTok, jwtSample, pemBlock,
	"sk-", "sk", "s", "k-", "-sk-", "xox", "xoxb", "xoxb-", "xapp-1234567890abc", "xapp", "gh_", "ghp", "ghp_", "_", "github_", "github",
	"ey", "eyJ", "J", "AKIA", "A", "b", "B", "bearer", "Bearer", "BEARER abcdefgh1", "bEaReR xyzXYZ12345",
	openaiKey + openaiKey, openaiKey + " " + openaiKey, "x" + openaiKey, "é" + openaiKey + "é", "日本" + awsKey + "語",
	"task-" + openaiKey[3:], "ask-" + openaiKey[3:], "-" + openaiKey, "_" + ghToken, "." + jwtSample, "é" + jwtSample,
	"github_pat_", "agithub_pat_11ABCDEFG0123456789_abcdefghijklmnop", "ghp_" + ghToken, ghToken + "_", ghToken[:39],
	"xoxb-xoxb-123456789012", "x" + slackTok, "xoxz-123456789012", "xoxo-123456789012-", slackTok + slackTok,
	"eyJ" + jwtSample, jwtSample + "." + jwtSample, "eyJhbGciOiJIUzI1NiJ9.eyJ.", "Bearer " + openaiKey, "Bearer Bearer abcdefghij12",
	"Authorization: Bearer " + jwtSample + "\n", "-----BEGIN RSA PRIVATE KEY-----", "sk-----BEGIN RSA PRIVATE KEY-----\nabc",
	"xox-----BEGIN EC PRIVATE KEY-----", "[REDACTED:jwt]eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.x",
	"[REDACTED:openai_key]sk-" + strings.Repeat("A1", 12), "[HMAC:jwt:0123456789abcdef0123456789abcdef]ghp_" + strings.Repeat("a", 36),
	"4111111111111111sk-" + strings.Repeat("Z9", 11), "a@b.co" + awsKey, awsKey + "@example.com", "sk-proj-" + strings.Repeat("x", 20) + "@a.io",
	"ghs_" + strings.Repeat("A", 36) + "_", "ghr_" + strings.Repeat("9", 40), "github_pat_" + strings.Repeat("_", 22),
	"key=sk-ant-" + strings.Repeat("q", 20), `{"api_key":"xoxp-1234567890-abc"}`, `\nsk-` + strings.Repeat("B", 20), `\u003ceyJaaaaaaaaaa.bb.cc`,
	"+1 555 123 4567", "(555) 123-4567", "123-45-6789", "4111 1111 1111 1111", "password=hunter2", "postgres://a:b@h/x",
}

func TestFindMatchesReference(t *testing.T) {
	maskers := []*Masker{newMasker(t, nil), newMasker(t, func(c *Config) {
		// Only credentials: a disabled detector must not hide an enabled one.
		for k := range c.Detectors {
			if !IsSecret(k) {
				delete(c.Detectors, k)
			}
		}
	})}
	check := func(s string) {
		t.Helper()
		for _, m := range maskers {
			want := m.referenceFind(s, m.enabled, nil)
			for _, vector := range scanModes() {
				useVectorScan = vector
				got := m.find(s, m.enabled, nil)
				useVectorScan = bytescan.Vectorised()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("find(%q), vector scan %v\n got %v\nwant %v", s, vector, got, want)
				}
			}
		}
	}
	for _, s := range anchorCorpus {
		check(s)
		check(" " + s + " ")
		check(s + s)
	}
	// Random concatenations of corpus pieces, prose and single bytes, so that matches
	// meet each other at every offset.
	r := rand.New(rand.NewPCG(1, 2))
	pieces := append([]string{" ", "a", "e", "s", "x", "g", "k", "-", "_", "J", "y", ".", "\\n", "é", "1", "\xff"}, anchorCorpus...)
	for range 20000 {
		var b strings.Builder
		for range 1 + r.IntN(12) {
			p := pieces[r.IntN(len(pieces))]
			if r.IntN(4) == 0 && len(p) > 1 {
				p = p[r.IntN(len(p)):] // a suffix: prefixes cut at every place
			}
			b.WriteString(p)
		}
		check(b.String())
	}
}

func FuzzFindMatchesReference(f *testing.F) {
	for _, s := range anchorCorpus {
		f.Add(s)
	}
	m := newMasker(f, nil)
	f.Fuzz(func(t *testing.T, s string) {
		want := m.referenceFind(s, m.enabled, nil)
		for _, vector := range scanModes() {
			useVectorScan = vector
			got := m.find(s, m.enabled, nil)
			useVectorScan = bytescan.Vectorised()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("find(%q), vector scan %v\n got %v\nwant %v", s, vector, got, want)
			}
		}
	})
}

// scanModes are the ways find can skip to anchors on this CPU: the table, and the
// vectorised masks where the CPU has them.
func scanModes() []bool {
	if bytescan.Vectorised() {
		return []bool{true, false}
	}
	return []bool{false}
}

// TestAnchoredPrefixes pins what the anchored scan must find where a prefix meets the
// start or end of the string, another match, or multi-byte text.
func TestAnchoredPrefixes(t *testing.T) {
	m := newMasker(t, nil)
	ghBody := strings.Repeat("a1", 18)
	tests := []struct{ in, want string }{
		{openaiKey, "[REDACTED:openai_key]"},
		{"é" + openaiKey + "é", "é[REDACTED:openai_key]é"},
		{openaiKey + " " + awsKey, "[REDACTED:openai_key] [REDACTED:aws_access_key]"},
		{ghToken + "," + slackTok, "[REDACTED:github_token],[REDACTED:slack_token]"},
		{"日本" + jwtSample, "日本[REDACTED:jwt]"},
		{jwtSample + "日本", "[REDACTED:jwt]日本"},
		{"ghp_" + ghBody, "[REDACTED:github_token]"},
		{"ghp_" + ghBody[:35], "ghp_" + ghBody[:35]},
		{"xghp_" + ghBody, "xghp_" + ghBody},
		{"xapp-1234567890a", "[REDACTED:slack_token]"},
		{"xapp-123456789", "xapp-123456789"},
		{"sk-" + strings.Repeat("A", 20), "[REDACTED:openai_key]"},
		{"sk-" + strings.Repeat("A", 19), "sk-" + strings.Repeat("A", 19)},
		{"[REDACTED:openai_key]" + openaiKey, "[REDACTED:openai_key][REDACTED:openai_key]"},
		{"bearer abcdefgh1", "bearer [REDACTED:bearer_token]"},
		{"BEARER ABCDEFGH1", "BEARER [REDACTED:bearer_token]"},
	}
	for _, tc := range tests {
		if got, _ := m.MaskString(tc.in); got != tc.want {
			t.Errorf("MaskString(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestBearerAtEveryOffset moves "bearer" (in mixed cases) and near misses ("b", "bx",
// "b" at the end) across the 64-byte windows of the vectorised scan, which leaves out a
// 'b' not followed by an 'e', and compares find with the reference in every mode.
func TestBearerAtEveryOffset(t *testing.T) {
	m := newMasker(t, nil)
	for _, word := range []string{"bearer abcdefgh12", "BeArEr abcdefgh12", "bEARER ABCDEFGH12", "bx bearer abcdefgh12", "b", "be", "bbearer abcdefgh12"} {
		for off := 0; off <= 140; off++ {
			for _, tail := range []string{"", " ", strings.Repeat("z", 70)} {
				s := strings.Repeat("a ", off/2) + strings.Repeat(" ", off%2) + word + tail
				want := m.referenceFind(s, m.enabled, nil)
				for _, vector := range scanModes() {
					useVectorScan = vector
					got := m.find(s, m.enabled, nil)
					useVectorScan = bytescan.Vectorised()
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("find(%q), vector scan %v\n got %v\nwant %v", s, vector, got, want)
					}
				}
			}
		}
	}
}
