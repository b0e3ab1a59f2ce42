package pricing

import (
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Source says where a price came from.
type Source string

const (
	// SourceTable: the price table (the processor records cost source "computed").
	SourceTable Source = "table"
	// SourceOverride: a pricing.overrides entry (cost source "override").
	SourceOverride Source = "override"
)

// Match names what a lookup resolved to.
type Match struct {
	Source Source
	// Provider is the table's provider id; empty for an override.
	Provider string
	// Model is the table's model id, or the override's model name.
	Model string
}

// Lookup returns the price now in force for a model; see [Table.LookupAt].
func (t *Table) Lookup(provider, model string) (Price, Match, bool) {
	return t.LookupAt(provider, model, time.Time{})
}

// LookupAt returns the price of a model in force at time at (the request's time, i.e.
// the span's start; the zero time means now), what it matched, and whether it matched
// at all. provider is a gen_ai.provider.name / gen_ai.system value and may be empty.
//
// Names are trimmed and lower-cased. The model name is tried as given, then with
// decorations removed one after another: a path ("openai/", "models/", Vertex AI
// resource paths), a Bedrock region and vendor prefix ("us.anthropic."), a Bedrock
// version suffix ("-v1:0", ":0"), a Vertex AI "@version" suffix, and a date or
// "-latest" suffix ("-2024-08-06", "-20250514"). Overrides are tried first, for every
// form of the name. Then the table's rules, searching in turn: the given provider's
// models (and its fallback providers'), the models of providers whose model rule claims
// the name (e.g. "claude" names for anthropic), and finally every provider in table
// order. Within a provider the first matching model wins.
//
// Results are cached per (provider, model) string pair, so repeated lookups cost a map
// read; the cache holds up to 4096 pairs and later pairs are resolved each time.
func (t *Table) LookupAt(provider, model string, at time.Time) (Price, Match, bool) {
	k := lookupKey{provider, model}
	e, ok := t.cache.get(k)
	if !ok {
		e = t.resolve(provider, model)
		t.cache.put(k, e)
	}
	if e == nil {
		return Price{}, Match{}, false
	}
	return e.priceAt(at), e.match, true
}

// resolve finds the entry for a name, or nil; see LookupAt for the order.
func (t *Table) resolve(providerName, modelName string) *entry {
	name := normalise(modelName)
	if name == "" {
		return nil
	}
	names := nameForms(name)
	for _, n := range names {
		if e := t.overrides[n]; e != nil {
			return e
		}
	}
	if p := t.provider(providerName); p != nil {
		for _, n := range names {
			if e := p.find(n); e != nil {
				return e
			}
			for _, fb := range p.fallbacks {
				if e := fb.find(n); e != nil {
					return e
				}
			}
		}
	}
	for _, n := range names {
		for _, p := range t.providers {
			if p.modelMatch != nil && p.modelMatch.match(n) {
				if e := p.find(n); e != nil {
					return e
				}
			}
		}
	}
	for _, n := range names {
		for _, p := range t.providers {
			if e := p.find(n); e != nil {
				return e
			}
		}
	}
	return nil
}

func (p *provider) find(name string) *entry {
	for i := range p.models {
		if p.models[i].match.match(name) {
			return p.models[i].entry
		}
	}
	return nil
}

// providerAliases maps provider names used by instrumentations (gen_ai.provider.name,
// the older gen_ai.system, OpenInference llm.provider/llm.system) to genai-prices
// provider ids, where the table's own provider rules would not find them or would find
// the wrong one ("azure.ai.openai" contains "openai").
var providerAliases = map[string]string{
	"gcp.gemini":         "google",
	"gcp.vertex_ai":      "google",
	"gcp.gen_ai":         "google",
	"vertex_ai":          "google",
	"vertexai":           "google",
	"gemini":             "google",
	"aws.bedrock":        "aws",
	"bedrock":            "aws",
	"azure.ai.openai":    "azure",
	"azure.ai.inference": "azure",
	"az.ai.openai":       "azure",
	"az.ai.inference":    "azure",
	"azure_openai":       "azure",
	"mistral_ai":         "mistral",
	"mistralai":          "mistral",
	"x_ai":               "x-ai",
	"xai":                "x-ai",
	"fireworks_ai":       "fireworks",
	"fireworks-ai":       "fireworks",
	"moonshot":           "moonshotai",
	"voyage":             "voyageai",
}

// provider resolves a provider name: alias, then table id, then the table's provider
// rules in table order. It returns nil for an empty or unknown name.
func (t *Table) provider(name string) *provider {
	n := normalise(name)
	if n == "" {
		return nil
	}
	if id, ok := providerAliases[n]; ok {
		if p := t.byID[id]; p != nil {
			return p
		}
	}
	if p := t.byID[n]; p != nil {
		return p
	}
	for _, p := range t.providers {
		if p.providerMatch != nil && p.providerMatch.match(n) {
			return p
		}
	}
	return nil
}

func normalise(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

var (
	// Bedrock model ids: optional cross-region inference prefix, then the vendor.
	bedrockPrefix = regexp.MustCompile(`^(?:(?:us|us-gov|eu|apac|au|ca|jp|global)\.)?(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|openai|qwen|writer|google|nvidia|minimax|moonshot|moonshotai|twelvelabs|stability)\.`)
	// Bedrock version suffixes: "-v1:0", "-v2:0", ":0".
	bedrockVersion = regexp.MustCompile(`(?:-v\d+)?:\d+$`)
	// Snapshot suffixes: "-2024-08-06", "-20250514", "-latest".
	dateSuffix = regexp.MustCompile(`-(?:\d{4}-\d{2}-\d{2}|20\d{6}|latest)$`)
)

// nameForms returns name and the successively undecorated forms of it, without repeats.
func nameForms(name string) []string {
	forms := []string{name}
	add := func(n string) {
		if n != "" && n != forms[len(forms)-1] {
			forms = append(forms, n)
		}
	}
	n := name
	if i := strings.LastIndexByte(n, '/'); i >= 0 {
		n = n[i+1:]
		add(n)
	}
	if loc := bedrockPrefix.FindStringIndex(n); loc != nil {
		n = n[loc[1]:]
		add(n)
	}
	if loc := bedrockVersion.FindStringIndex(n); loc != nil {
		n = n[:loc[0]]
		add(n)
	}
	if i := strings.IndexByte(n, '@'); i > 0 {
		n = n[:i]
		add(n)
	}
	if loc := dateSuffix.FindStringIndex(n); loc != nil {
		n = n[:loc[0]]
		add(n)
	}
	return forms
}

// maxCached bounds the lookup cache: model names come from spans, so their number is
// not under our control.
const maxCached = 4096

type lookupKey struct{ provider, model string }

// lookupCache is a copy-on-write map: reads are a lock-free map access, and the rare
// writes (one per distinct name pair) copy the map under a mutex.
type lookupCache struct {
	m  atomic.Pointer[map[lookupKey]*entry] // nil entry: resolved to nothing
	mu sync.Mutex
}

func (c *lookupCache) get(k lookupKey) (*entry, bool) {
	m := c.m.Load()
	if m == nil {
		return nil, false
	}
	e, ok := (*m)[k]
	return e, ok
}

func (c *lookupCache) put(k lookupKey, e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	var n map[lookupKey]*entry
	if old == nil {
		n = make(map[lookupKey]*entry, 1)
	} else {
		if _, ok := (*old)[k]; ok || len(*old) >= maxCached {
			return
		}
		n = make(map[lookupKey]*entry, len(*old)+1)
		for kk, v := range *old {
			n[kk] = v
		}
	}
	// Clone the strings: they may point into a larger buffer of span data.
	n[lookupKey{strings.Clone(k.provider), strings.Clone(k.model)}] = e
	c.m.Store(&n)
}
