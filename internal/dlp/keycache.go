package dlp

import (
	"hash/maphash"
	"strings"
	"sync/atomic"
)

// Attribute keys repeat from span to span: the same instrumentation sends the same
// names. What masking needs to know about a key — whether the detectors find anything
// in it, whether it is a secret key name — is remembered per key, so that a key seen
// before costs a hash and a comparison instead of a scan. The answers are functions of
// the key, the kinds enabled and the Masker's configuration alone, so a remembered
// answer is exactly the one a scan would give.

// keyCacheSize is the number of keys remembered: far more than the attribute names of a
// deployment's instrumentations. They are held in sets of keyCacheWays slots, so that a
// few keys falling in the same set do not evict each other span after span.
const (
	keyCacheSize = 1024
	keyCacheWays = 4
)

// maxCachedKey bounds the keys remembered; longer ones are rare and scanned each time.
const maxCachedKey = 128

// keyFacts is what masking knows about a key.
type keyFacts struct {
	key    string
	en     KindSet // the kinds enabled when the key was scanned
	clean  bool    // the detectors of en find nothing in the key
	secret bool    // the key is a secret key name (keyMatcher.match)
}

// keyCache is a set-associative table of keyFacts, safe for concurrent use: an entry is
// never changed once published, and a slot is replaced whole. An entry is used only for
// its own key and kinds, so a replaced or lost entry costs a scan, never a wrong answer.
type keyCache struct {
	seed  maphash.Seed
	slots [keyCacheSize]atomic.Pointer[keyFacts]
}

// keyFactsOf returns the facts of key k under the kinds en.
func (m *Masker) keyFactsOf(k string, en KindSet) keyFacts {
	if len(k) > maxCachedKey {
		return m.scanKey(k, en)
	}
	h := maphash.String(m.keyCache.seed, k)
	set := m.keyCache.slots[h&(keyCacheSize-keyCacheWays) : h&(keyCacheSize-keyCacheWays)+keyCacheWays]
	free := -1
	for i := range set {
		f := set[i].Load()
		if f == nil {
			if free < 0 {
				free = i
			}
			continue
		}
		if f.en == en && f.key == k {
			return *f
		}
	}
	if free < 0 {
		free = int(h>>32) % keyCacheWays // a full set: replace any
	}
	f := m.scanKey(k, en)
	// The key may point into a larger buffer (a decoded request): keep a copy of its
	// own rather than the buffer.
	f.key = strings.Clone(k)
	set[free].Store(&f)
	return f
}

func (m *Masker) scanKey(k string, en KindSet) keyFacts {
	var buf [8]match
	return keyFacts{key: k, en: en, clean: len(m.find(k, en, buf[:0])) == 0, secret: m.keys.match(k)}
}
