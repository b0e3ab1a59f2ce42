package pricing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/pricing/internal/feed"
	"github.com/otelaudit/otelcol-audit/internal/pricing/internal/tablefmt"
)

// The feed the shipped table is generated from, present when the repository is checked
// out beside ../shared (as in CI); tests that need it skip otherwise.
const (
	feedPath    = "../../../shared/pricing/genai-prices-v2.json"
	licensePath = "../../../shared/pricing/LICENSE"
	readmePath  = "../../../shared/pricing/README.md"
)

func n(v int64) *int64 { return &v }

func TestLookupRealNames(t *testing.T) {
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		provider, model   string
		wantProv, wantMod string
	}{
		{"openai", "gpt-4o", "openai", "gpt-4o"},
		{"openai", "gpt-4o-2024-08-06", "openai", "gpt-4o"},
		{"", "GPT-4o-mini ", "openai", "gpt-4o-mini"},
		{"openai", "o3-mini", "openai", "o3-mini"},
		{"openai", "openai/gpt-4o", "openai", "gpt-4o"},
		{"anthropic", "claude-sonnet-4-20250514", "anthropic", "claude-sonnet-4-0"},
		{"anthropic", "claude-3-5-haiku-latest", "anthropic", "claude-3-5-haiku-latest"},
		{"", "claude-opus-4-1-20250805", "anthropic", "claude-opus-4-1"},
		{"aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "aws", "regional.anthropic.claude-3-5-sonnet-20240620-v1:0"},
		{"aws.bedrock", "us.anthropic.claude-3-7-sonnet-20250219-v1:0", "aws", "regional.anthropic.claude-3-7-sonnet-20250219-v1:0"},
		{"", "anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic", "claude-3-5-sonnet"},
		{"aws.bedrock", "meta.llama3-1-70b-instruct-v1:0", "aws", "meta.llama3-1-70b-instruct-v1:0"},
		{"gcp.gemini", "gemini-2.0-flash", "google", "gemini-2.0-flash"},
		{"gcp.gemini", "models/gemini-1.5-pro", "google", "gemini-1.5-pro"},
		{"gcp.vertex_ai", "projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash-001", "google", "gemini-2.0-flash"},
		{"gcp.vertex_ai", "claude-3-5-sonnet-v2@20241022", "google", "claude-3-5-sonnet"},
		{"mistral_ai", "mistral-large-latest", "mistral", "mistral-large"},
		{"deepseek", "deepseek-chat", "deepseek", "deepseek-chat"},
		{"groq", "llama-3.3-70b-versatile", "groq", "llama-3.3-70b-versatile"},
		{"x_ai", "grok-3", "x-ai", "grok-3"},
		{"cohere", "command-r-plus", "cohere", "command-r-plus"},
		// Azure serves OpenAI's models: its fallback providers are searched.
		{"azure.ai.openai", "gpt-4o", "openai", "gpt-4o"},
		{"az.ai.openai", "o3-mini", "azure", "o3-mini"},
		// A wrong provider hint does not hide a model another provider has.
		{"openai", "claude-3-5-haiku-20241022", "anthropic", "claude-3-5-haiku-latest"},
	}
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.model, func(t *testing.T) {
			_, m, ok := Default().LookupAt(tt.provider, tt.model, at)
			if !ok {
				t.Fatalf("no price found")
			}
			want := Match{Source: SourceTable, Provider: tt.wantProv, Model: tt.wantMod}
			if m != want {
				t.Errorf("matched %+v, want %+v", m, want)
			}
		})
	}
}

func TestLookupUnknown(t *testing.T) {
	for _, model := range []string{"", "   ", "no-such-model", "llama-3.1-8b-mystery"} {
		for range 2 { // the second lookup is served from the cache
			if p, m, ok := Default().Lookup("openai", model); ok {
				t.Errorf("%q: found %+v %+v, want not found", model, m, p)
			}
		}
	}
}

// TestPricesMatchFeed checks table prices against the feed's own per-million figures,
// so the test is not a copy of the table.
func TestPricesMatchFeed(t *testing.T) {
	mtok := feedPrices(t)
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct{ provider, model, feedProvider, feedModel string }{
		{"openai", "gpt-4o-2024-08-06", "openai", "gpt-4o"},
		{"anthropic", "claude-sonnet-4-20250514", "anthropic", "claude-sonnet-4-0"},
		{"gcp.gemini", "gemini-2.0-flash", "google", "gemini-2.0-flash"},
		{"mistral_ai", "mistral-large-latest", "mistral", "mistral-large"},
		{"aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "aws", "regional.anthropic.claude-3-5-sonnet-20240620-v1:0"},
	} {
		p, _, ok := Default().LookupAt(c.provider, c.model, at)
		if !ok {
			t.Fatalf("%s: not found", c.model)
		}
		want := mtok(c.feedProvider, c.feedModel, 0)
		for _, f := range []struct {
			kind string
			got  float64
			has  bool
		}{{"input_mtok", p.Input, p.HasInput}, {"output_mtok", p.Output, p.HasOutput}, {"cache_read_mtok", p.CacheRead, p.HasCacheRead}, {"cache_write_mtok", p.CacheWrite, p.HasCacheWrite}} {
			w, listed := want[f.kind]
			if listed != f.has {
				t.Errorf("%s %s: known=%v, feed lists it: %v", c.model, f.kind, f.has, listed)
			}
			if listed && !near(f.got, w/1e6) {
				t.Errorf("%s %s: %g per token, feed says %g per million", c.model, f.kind, f.got, w)
			}
		}
	}
}

func TestTimeDependentPrices(t *testing.T) {
	mtok := feedPrices(t)
	day := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	for _, c := range []struct {
		model string
		at    time.Time
		price int // index in the feed's price list
	}{
		// o3: a price cut from 2025-06-10.
		{"o3", day("2025-06-09T23:59:59Z"), 0},
		{"o3", day("2025-06-10T00:00:00Z"), 1},
		{"o3", day("2026-01-01T08:00:00+09:00"), 1},
		// deepseek-chat: standard price 00:30-16:30 UTC, off-peak (the first) otherwise.
		{"deepseek-chat", day("2026-03-01T00:29:59Z"), 0},
		{"deepseek-chat", day("2026-03-01T00:30:00Z"), 1},
		{"deepseek-chat", day("2026-03-01T16:29:59Z"), 1},
		{"deepseek-chat", day("2026-03-01T17:00:00Z"), 0},
		{"deepseek-chat", day("2026-03-01T12:00:00-08:00"), 0}, // 20:00 UTC
	} {
		p, m, ok := Default().LookupAt("", c.model, c.at)
		if !ok {
			t.Fatalf("%s: not found", c.model)
		}
		want := mtok(m.Provider, m.Model, c.price)["input_mtok"] / 1e6
		if !near(p.Input, want) {
			t.Errorf("%s at %s: input %g per token, want %g (price %d)", c.model, c.at, p.Input, want, c.price)
		}
	}
	now, _, _ := Default().Lookup("", "o3")
	zero, _, _ := Default().LookupAt("", "o3", time.Time{})
	if now != zero {
		t.Errorf("zero time gives %+v, now gives %+v", zero, now)
	}
}

func TestCost(t *testing.T) {
	full := Price{
		Input: 1e-6, Output: 4e-6, CacheRead: 1e-7, CacheWrite: 1.25e-6, Reasoning: 3e-6,
		HasInput: true, HasOutput: true, HasCacheRead: true, HasCacheWrite: true, HasReasoning: true,
	}
	plain := Price{Input: 1e-6, Output: 4e-6, HasInput: true, HasOutput: true}
	embedding := Price{Input: 2e-8, HasInput: true}
	tests := []struct {
		name        string
		price       Price
		usage       Usage
		want        float64
		wantMissing string
	}{
		{"input and output", full, Usage{Input: n(1000), Output: n(500)}, 1000*1e-6 + 500*4e-6, ""},
		{"cached tokens are taken out of input", full,
			Usage{Input: n(1000), Output: n(500), CacheRead: n(600), CacheWrite: n(100)},
			300*1e-6 + 600*1e-7 + 100*1.25e-6 + 500*4e-6, ""},
		{"cache counts beyond input: input reported without them", full,
			Usage{Input: n(100), Output: n(0), CacheRead: n(600)},
			100*1e-6 + 600*1e-7, ""},
		{"no cache price: cached tokens cost input price", plain,
			Usage{Input: n(1000), Output: n(10), CacheRead: n(600), CacheWrite: n(100)},
			1000*1e-6 + 10*4e-6, ""},
		{"reasoning priced separately", full,
			Usage{Input: n(10), Output: n(500), Reasoning: n(200)},
			10*1e-6 + 300*4e-6 + 200*3e-6, ""},
		{"reasoning not priced separately is output", plain,
			Usage{Input: n(10), Output: n(500), Reasoning: n(200)},
			10*1e-6 + 500*4e-6, ""},
		{"reasoning beyond output: output reported without it", plain,
			Usage{Input: n(0), Output: n(100), Reasoning: n(300)},
			400 * 4e-6, ""},
		{"zero tokens cost zero", full, Usage{Input: n(0), Output: n(0)}, 0, ""},
		{"embedding without output count", embedding, Usage{Input: n(1000)}, 1000 * 2e-8, ""},
		{"free model", Price{}, Usage{Input: n(1000), Output: n(1000)}, 0, ""},
		{"missing input", full, Usage{Output: n(500)}, 0, FlagMissingTokens},
		{"missing output", full, Usage{Input: n(500)}, 0, FlagMissingTokens},
		{"negative input", full, Usage{Input: n(-1), Output: n(5)}, 0, FlagMissingTokens},
		{"missing both", full, Usage{}, 0, FlagMissingTokens},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, missing := tt.price.Cost(tt.usage)
			if missing != tt.wantMissing || ok != (tt.wantMissing == "") {
				t.Fatalf("ok=%v missing=%q, want missing %q", ok, missing, tt.wantMissing)
			}
			if !near(got, tt.want) {
				t.Errorf("cost %.12g, want %.12g", got, tt.want)
			}
		})
	}
}

func TestCostWithTablePrice(t *testing.T) {
	mtok := feedPrices(t)("openai", "gpt-4o", 0)
	p, _, ok := Default().Lookup("openai", "gpt-4o-2024-08-06")
	if !ok {
		t.Fatal("gpt-4o not found")
	}
	got, ok, _ := p.Cost(Usage{Input: n(12000), Output: n(800), CacheRead: n(10000)})
	want := (2000*mtok["input_mtok"] + 10000*mtok["cache_read_mtok"] + 800*mtok["output_mtok"]) / 1e6
	if !ok || !near(got, want) {
		t.Errorf("cost %v (ok=%v), want %v", got, ok, want)
	}
}

func TestOverrides(t *testing.T) {
	base := Default()
	tb, err := base.WithOverrides(map[string]OverridePrice{
		" My-Model ": {InputPerMTok: 1.5, OutputPerMTok: 6},
		"gpt-4o":     {InputPerMTok: 2, OutputPerMTok: 8, CacheReadPerMTok: 0.5},
	})
	if err != nil {
		t.Fatal(err)
	}

	p, m, ok := tb.Lookup("", "my-model")
	if !ok || m != (Match{Source: SourceOverride, Model: "my-model"}) {
		t.Fatalf("my-model: ok=%v match=%+v", ok, m)
	}
	if !near(p.Input, 1.5e-6) || !near(p.Output, 6e-6) || p.HasCacheRead || p.HasReasoning {
		t.Errorf("my-model price %+v", p)
	}
	cost, _, _ := p.Cost(Usage{Input: n(1000), Output: n(1000), CacheRead: n(500)})
	if !near(cost, 1000*1.5e-6+1000*6e-6) {
		t.Errorf("override without cache price: cost %v, cached tokens must cost the input price", cost)
	}

	// An override wins over the table, also for decorated forms of its name.
	for _, name := range []string{"gpt-4o", "openai/gpt-4o-2024-08-06"} {
		p, m, ok := tb.Lookup("openai", name)
		if !ok || m.Source != SourceOverride || !near(p.Input, 2e-6) || !near(p.CacheRead, 0.5e-6) {
			t.Errorf("%s: ok=%v match=%+v price=%+v, want the override", name, ok, m, p)
		}
	}
	// Other models still come from the table.
	if _, m, _ := tb.Lookup("openai", "gpt-4o-mini"); m.Source != SourceTable {
		t.Errorf("gpt-4o-mini: %+v, want the table", m)
	}
	// The base table is unchanged.
	if _, m, _ := base.Lookup("openai", "gpt-4o"); m.Source != SourceTable {
		t.Errorf("base table now gives %+v", m)
	}
	if tb.Version() == base.Version() || !strings.HasPrefix(tb.Version(), base.Version()+"+overrides:sha256:") {
		t.Errorf("version with overrides %q, base %q", tb.Version(), base.Version())
	}
	again, _ := base.WithOverrides(map[string]OverridePrice{"gpt-4o": {InputPerMTok: 2, OutputPerMTok: 8, CacheReadPerMTok: 0.5}, " My-Model ": {InputPerMTok: 1.5, OutputPerMTok: 6}})
	if again.Version() != tb.Version() {
		t.Errorf("same overrides, different versions: %q, %q", again.Version(), tb.Version())
	}
	none, _ := tb.WithOverrides(nil)
	if none.Version() != base.Version() {
		t.Errorf("removing overrides: version %q, want %q", none.Version(), base.Version())
	}
}

func TestOverrideValidation(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]OverridePrice
		wantErr   []string
	}{
		{"negative", map[string]OverridePrice{"m": {InputPerMTok: -1, OutputPerMTok: 2, ReasoningPerMTok: -3}},
			[]string{`override "m": input_per_mtok must not be negative, got -1`, "reasoning_per_mtok must not be negative, got -3"}},
		{"not a number", map[string]OverridePrice{"m": {OutputPerMTok: math.NaN(), CacheReadPerMTok: math.Inf(1)}},
			[]string{"output_per_mtok must be a number, got NaN", "cache_read_per_mtok must be a number, got +Inf"}},
		{"blank name", map[string]OverridePrice{"  ": {InputPerMTok: 1}}, []string{"model name is blank"}},
		{"same name twice", map[string]OverridePrice{"My-Model": {}, "my-model": {}}, []string{`override "my-model": same model as "My-Model"`}},
		{"valid, free", map[string]OverridePrice{"local-llama": {}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateOverrides(tt.overrides)
			_, werr := Default().WithOverrides(tt.overrides)
			if (err == nil) != (werr == nil) {
				t.Errorf("ValidateOverrides: %v, WithOverrides: %v", err, werr)
			}
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Errorf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

const minimalTable = `{
  "format": "otelcol-audit/price-table/v1",
  "version": "acme-2026-11",
  "providers": [
    {"id": "acme", "provider_match": {"contains": "acme"}, "models": [
      {"id": "acme-large", "match": {"or": [{"equals": "acme-large"}, {"regex": "^acme-large-\\d+$"}]}, "prices": [{"input": %s, "output": 0.000004}]}
    ]}
  ]
}`

func writeTable(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "prices.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFile(t *testing.T) {
	path := writeTable(t, fmt.Sprintf(minimalTable, "0.000001"))
	tb, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, m, ok := tb.Lookup("ACME cloud", "Acme-Large-2")
	if !ok || m != (Match{Source: SourceTable, Provider: "acme", Model: "acme-large"}) || !near(p.Input, 1e-6) {
		t.Errorf("lookup: ok=%v %+v %+v", ok, m, p)
	}
	if !strings.HasPrefix(tb.Version(), "acme-2026-11+sha256:") {
		t.Errorf("version %q", tb.Version())
	}
	// Editing a price without bumping the label still changes the version.
	edited, err := LoadFile(writeTable(t, fmt.Sprintf(minimalTable, "0.000002")))
	if err != nil {
		t.Fatal(err)
	}
	if edited.Version() == tb.Version() {
		t.Errorf("edited table kept version %q", tb.Version())
	}
}

func TestLoadFileErrors(t *testing.T) {
	valid := fmt.Sprintf(minimalTable, "0.000001")
	tests := []struct {
		name    string
		content string // "" means no file
		want    string
	}{
		{"missing file", "", "no such file"},
		{"bad JSON", `{"format": "otelcol-audit/price-table/v1",` + "\n" + `"version": }`, "invalid JSON at line 2"},
		{"negative price", fmt.Sprintf(minimalTable, "-0.000001"), `models[0] "acme-large": prices[0]: input price must be a non-negative number of USD per token, got -1e-06`},
		{"wrong type", fmt.Sprintf(minimalTable, `"cheap"`), "invalid JSON at line 6, column 133"},
		{"unknown field", strings.Replace(valid, `"output"`, `"ouptut"`, 1), `unknown field "ouptut"`},
		{"wrong format", strings.Replace(valid, "price-table/v1", "price-table/v0", 1), `format is "otelcol-audit/price-table/v0"`},
		{"no version", strings.Replace(valid, "acme-2026-11", "", 1), "version is empty"},
		{"bad regex", strings.Replace(valid, `^acme-large-\\d+$`, `(?<=x)`, 1), "regex"},
		{"empty rule", strings.Replace(valid, `{"equals": "acme-large"}`, `{}`, 1), "match rule is empty"},
		{"two kinds in one rule", strings.Replace(valid, `{"equals": "acme-large"}`, `{"equals": "a", "contains": "b"}`, 1), "combines equals, contains"},
		{"bad start date", strings.Replace(valid, `"prices": [{`, `"prices": [{"start_date": "2026-13-01", `, 1), `start_date "2026-13-01"`},
		{"half a daily window", strings.Replace(valid, `"prices": [{`, `"prices": [{"start_time": "01:00:00", `, 1), "end_time"},
		{"unknown fallback", strings.Replace(valid, `"provider_match"`, `"fallbacks": ["nobody"], "provider_match"`, 1), `fallback provider "nobody"`},
		{"no prices", strings.Replace(valid, `"prices": [{"input": 0.000001, "output": 0.000004}]`, `"prices": []`, 1), "prices is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "missing.json")
			if tt.content != "" {
				path = writeTable(t, tt.content)
			}
			_, err := LoadFile(path)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	v := Default().Version()
	if !strings.HasPrefix(v, "genai-prices@") || !strings.Contains(v, "+sha256:") {
		t.Errorf("version %q", v)
	}
	f, err := tablefmt.Parse(embeddedTable)
	if err != nil {
		t.Fatal(err)
	}
	if v != f.Version {
		t.Errorf("computed version %q differs from the version recorded in prices.json %q: regenerate with go generate", v, f.Version)
	}
	if Default() != Default() || Default().Version() != v {
		t.Error("Default is not parsed once")
	}
	// The same table loaded from a file has the same version.
	loaded, err := LoadFile(writeTable(t, string(embeddedTable)))
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Version() != v {
		t.Errorf("loaded copy has version %q, want %q", loaded.Version(), v)
	}
}

// TestGeneratedTableIsCurrent regenerates the table from the feed and compares it with
// the committed prices.json, so that a changed feed or generator cannot go unnoticed.
func TestGeneratedTableIsCurrent(t *testing.T) {
	data, err := os.ReadFile(feedPath)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("feed %s not present (the repository is not checked out beside ../shared); skipping", feedPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	license, err := os.ReadFile(licensePath)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := tablefmt.Parse(embeddedTable)
	if err != nil {
		t.Fatal(err)
	}
	if readme, err := os.ReadFile(readmePath); err == nil && !bytes.Contains(readme, []byte(committed.Source.Commit)) {
		t.Errorf("%s does not name commit %s recorded in prices.json: update the -commit flag in generate.go and regenerate", readmePath, committed.Source.Commit)
	}
	table, _, err := feed.Convert(data, license, feed.Origin{Commit: committed.Source.Commit, Path: committed.Source.Path})
	if err != nil {
		t.Fatal(err)
	}
	got, err := tablefmt.Encode(table)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, embeddedTable) {
		t.Errorf("prices.json is not what the generator makes of %s (version %s, committed %s): run go generate ./internal/pricing", feedPath, table.Version, committed.Version)
	}
	shipped, err := os.ReadFile("LICENSE.genai-prices")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shipped, license) {
		t.Errorf("LICENSE.genai-prices differs from %s", licensePath)
	}
}

func TestProviderAliasesExist(t *testing.T) {
	for alias, id := range providerAliases {
		if Default().byID[id] == nil {
			t.Errorf("alias %q names provider %q, which is not in the table", alias, id)
		}
	}
}

func TestNameForms(t *testing.T) {
	tests := map[string][]string{
		"gpt-4o": {"gpt-4o"},
		"us.anthropic.claude-3-5-sonnet-20240620-v1:0": {"us.anthropic.claude-3-5-sonnet-20240620-v1:0",
			"claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet-20240620", "claude-3-5-sonnet"},
		"models/gemini-1.5-pro-latest":  {"models/gemini-1.5-pro-latest", "gemini-1.5-pro-latest", "gemini-1.5-pro"},
		"claude-3-5-sonnet-v2@20241022": {"claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet-v2"},
		"gpt-4o-2024-08-06":             {"gpt-4o-2024-08-06", "gpt-4o"},
		"gpt-4-0613":                    {"gpt-4-0613"},
	}
	for in, want := range tests {
		if got := nameForms(in); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("nameForms(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCacheBoundedAndConcurrent(t *testing.T) {
	tb, err := Default().WithOverrides(nil) // a fresh cache
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range maxCached/4 + 100 {
				name := fmt.Sprintf("unknown-%d-%d", g, i)
				if _, _, ok := tb.Lookup("openai", name); ok {
					t.Errorf("%s found", name)
					return
				}
				if _, m, ok := tb.Lookup("openai", "gpt-4o"); !ok || m.Model != "gpt-4o" {
					t.Errorf("gpt-4o: %+v", m)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := len(*tb.cache.m.Load()); got != maxCached {
		t.Errorf("cache holds %d pairs, want the bound %d", got, maxCached)
	}
	if _, _, ok := tb.Lookup("anthropic", "claude-sonnet-4-20250514"); !ok {
		t.Error("lookups beyond the cache bound must still resolve")
	}
}

func BenchmarkLookup(b *testing.B) {
	tb := Default()
	names := [][2]string{{"openai", "gpt-4o-2024-08-06"}, {"anthropic", "claude-sonnet-4-20250514"}, {"aws.bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0"}, {"gcp.gemini", "gemini-2.0-flash"}}
	at := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c := names[i%len(names)]
			if _, _, ok := tb.LookupAt(c[0], c[1], at); !ok {
				b.Fatal("not found")
			}
			i++
		}
	})
}

// BenchmarkLookupUncached is the cost of resolving a name the cache has not seen.
func BenchmarkLookupUncached(b *testing.B) {
	tb := Default()
	for _, c := range [][2]string{{"openai", "gpt-4o-2024-08-06"}, {"aws.bedrock", "us.anthropic.claude-3-7-sonnet-20250219-v1:0"}, {"openai", "no-such-model-2025-01-01"}} {
		b.Run(c[1], func(b *testing.B) {
			for b.Loop() {
				tb.resolve(c[0], c[1])
			}
		})
	}
}

func BenchmarkCost(b *testing.B) {
	p, _, _ := Default().Lookup("anthropic", "claude-sonnet-4-20250514")
	u := Usage{Input: n(12000), Output: n(800), CacheRead: n(10000), CacheWrite: n(500), Reasoning: n(300)}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := p.Cost(u); !ok {
			b.Fatal("no cost")
		}
	}
}

func near(got, want float64) bool {
	return got == want || math.Abs(got-want) <= 1e-12*math.Max(math.Abs(got), math.Abs(want))
}

// feedPrices returns a function giving a model's per-million prices (the i-th of its
// price list) from the feed when present, else from the committed table.
func feedPrices(t *testing.T) func(provider, model string, i int) map[string]float64 {
	t.Helper()
	data, err := os.ReadFile(feedPath)
	if err != nil {
		t.Logf("feed not present (%v); checking against the committed table", err)
		return committedPrices(t)
	}
	var providers []struct {
		ID     string `json:"id"`
		Models []struct {
			ID     string          `json:"id"`
			Prices json.RawMessage `json:"prices"`
		} `json:"models"`
	}
	if err := json.Unmarshal(data, &providers); err != nil {
		t.Fatal(err)
	}
	return func(provider, model string, i int) map[string]float64 {
		t.Helper()
		for _, p := range providers {
			for _, m := range p.Models {
				if p.ID != provider || m.ID != model {
					continue
				}
				var list []struct {
					Prices map[string]any `json:"prices"`
				}
				if err := json.Unmarshal(m.Prices, &list); err != nil {
					var one map[string]any
					if err := json.Unmarshal(m.Prices, &one); err != nil {
						t.Fatal(err)
					}
					list = append(list, struct {
						Prices map[string]any `json:"prices"`
					}{one})
				}
				out := map[string]float64{}
				for k, v := range list[i].Prices {
					if f, ok := v.(float64); ok {
						out[k] = f
					}
				}
				return out
			}
		}
		t.Fatalf("feed has no model %s/%s", provider, model)
		return nil
	}
}

func committedPrices(t *testing.T) func(provider, model string, i int) map[string]float64 {
	f, err := tablefmt.Parse(embeddedTable)
	if err != nil {
		t.Fatal(err)
	}
	return func(provider, model string, i int) map[string]float64 {
		t.Helper()
		for _, p := range f.Providers {
			for _, m := range p.Models {
				if p.ID != provider || m.ID != model {
					continue
				}
				out := map[string]float64{}
				pr := m.Prices[i]
				for k, v := range map[string]*float64{"input_mtok": pr.Input, "output_mtok": pr.Output, "cache_read_mtok": pr.CacheRead, "cache_write_mtok": pr.CacheWrite} {
					if v != nil {
						out[k] = *v * 1e6
					}
				}
				return out
			}
		}
		t.Fatalf("table has no model %s/%s", provider, model)
		return nil
	}
}
