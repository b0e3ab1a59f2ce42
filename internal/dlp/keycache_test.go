package dlp

import (
	"fmt"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// cacheKeys are attribute keys with and without findings, secret key names, exempt keys
// and keys that are neither.
var cacheKeys = append([]string{
	"gen_ai.usage.input_tokens", "password", "db.password", "userPassword", "x-api-key", "user.id",
	"user.email", "authorization", "token", "gen_ai.server.time_to_first_token", "a@b.co", "alice@example.com",
	"4111111111111111", "key " + openaiKey, "", "é", "\xff", "session.id",
}, anchorCorpus...)

// TestKeyCacheAnswers checks that what the key cache answers, cold or warm, is what a
// scan of the key gives, also when more keys than it holds evict each other.
func TestKeyCacheAnswers(t *testing.T) {
	m := newMasker(t, nil)
	keys := append([]string(nil), cacheKeys...)
	for i := range 3 * keyCacheSize {
		keys = append(keys, fmt.Sprintf("app.attribute_%d", i), fmt.Sprintf("app.%d.password", i))
	}
	for round := range 3 {
		for _, k := range keys {
			for _, en := range []KindSet{m.enabled, m.enabled &^ piiKinds} {
				got := m.keyFactsOf(k, en)
				var buf [8]match
				want := keyFacts{key: k, en: en, clean: len(m.find(k, en, buf[:0])) == 0, secret: m.keys.match(k)}
				if got != want {
					t.Fatalf("round %d: keyFactsOf(%q, %v) = %+v, want %+v", round, k, en, got, want)
				}
			}
		}
	}
}

// TestKeyCacheMasking masks the same maps with a masker whose cache is warm and with
// fresh ones: the results are the same, from many goroutines at once.
func TestKeyCacheMasking(t *testing.T) {
	build := func() pcommon.Map {
		mp := pcommon.NewMap()
		for i, k := range cacheKeys {
			mp.PutStr(k, fmt.Sprintf("value %d %s", i, anchorCorpus[i%len(anchorCorpus)]))
		}
		nested := mp.PutEmptyMap("nested")
		for _, k := range cacheKeys {
			nested.PutInt(k, 4111111111111111)
		}
		return mp
	}
	fresh := func() pcommon.Map {
		mp := build()
		newMasker(t, nil).MaskAttributes(mp)
		return mp
	}
	want := fresh()
	warm := newMasker(t, nil)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				mp := build()
				maskAttrs(warm, mp)
				if !mp.Equal(want) {
					t.Errorf("warm cache masked\n%v\nfresh masker\n%v", mp.AsRaw(), want.AsRaw())
					return
				}
			}
		}()
	}
	wg.Wait()
}
