package feed

import (
	"strings"
	"testing"

	"github.com/otelaudit/otelcol-audit/internal/pricing/internal/tablefmt"
)

const license = "The MIT License (MIT)\n\nCopyright (c) Example 2025\n\nPermission is hereby granted...\n"

var origin = Origin{Commit: "47df840a5ab10bbcffb8e5ac01b9899032245d1b", Path: "prices/new_data/v2/data.json"}

const sample = `[
 {"id": "acme", "name": "Acme", "api_pattern": "x", "provider_match": {"contains": "acme"},
  "fallback_model_providers": ["other"],
  "models": [
   {"id": "tiered", "match": {"starts_with": "tiered"}, "context_window": 1,
    "prices": {"input_mtok": {"base": 0.135, "tiers": [{"start": 200000, "price": 0.27}]}, "output_mtok": 1.1,
               "output_reasoning_mtok": 3, "input_audio_mtok": 40, "web_searches_kcount": 10}},
   {"id": "dated", "match": {"or": [{"equals": "dated"}, {"regex": "^dated-\\d{8}$"}]},
    "prices": [{"prices": {"input_mtok": 10, "output_mtok": 40}},
               {"constraint": {"start_date": "2025-06-10"}, "prices": {"input_mtok": 2, "output_mtok": 8, "cache_read_mtok": 0.5}},
               {"constraint": {"start_time": "00:30:00Z", "end_time": "16:30:00Z"}, "prices": {"input_mtok": 3, "cache_write_mtok": 3.75}}]},
   {"id": "free:free", "match": {"equals": "free:free"}, "prices": {}}
  ]},
 {"id": "other", "name": "Other", "api_pattern": "y", "models": []}
]`

func TestConvert(t *testing.T) {
	f, rep, err := Convert([]byte(sample), []byte(license), origin)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Providers != 2 || rep.Models != 3 || rep.Tiered != 1 {
		t.Errorf("report %+v", rep)
	}
	if rep.Ignored["input_audio_mtok"] != 1 || rep.Ignored["web_searches_kcount"] != 1 {
		t.Errorf("ignored %v", rep.Ignored)
	}
	if !strings.HasPrefix(f.Version, "genai-prices@47df840+sha256:") || len(f.Version) != len("genai-prices@47df840+sha256:")+12 {
		t.Errorf("version %q", f.Version)
	}
	if f.Source.Copyright != "Copyright (c) Example 2025" || f.Source.License != "MIT" || len(f.Source.SHA256) != 64 {
		t.Errorf("source %+v", f.Source)
	}
	acme := f.Providers[0]
	if acme.Fallbacks[0] != "other" || *acme.ProviderMatch.Contains != "acme" {
		t.Errorf("provider %+v", acme)
	}
	tiered := acme.Models[0].Prices[0]
	// The base tier, divided exactly: the nearest float64 to 1.35e-7.
	if *tiered.Input != 1.35e-7 || *tiered.Output != 1.1e-6 || *tiered.Reasoning != 3e-6 || tiered.CacheRead != nil {
		t.Errorf("tiered prices %+v", tiered)
	}
	dated := acme.Models[1].Prices
	if len(dated) != 3 || dated[0].StartDate != "" || dated[1].StartDate != "2025-06-10" || *dated[1].CacheRead != 5e-7 {
		t.Errorf("dated prices %+v", dated)
	}
	if dated[2].StartTime != "00:30:00" || dated[2].EndTime != "16:30:00" || *dated[2].CacheWrite != 3.75e-6 {
		t.Errorf("daily price %+v", dated[2])
	}
	if free := acme.Models[2].Prices; len(free) != 1 || free[0] != (tablefmt.Price{}) {
		t.Errorf("free model prices %+v", free)
	}

	// The same input gives the same bytes.
	f2, _, _ := Convert([]byte(sample), []byte(license), origin)
	a, _ := tablefmt.Encode(f)
	b, _ := tablefmt.Encode(f2)
	if string(a) != string(b) {
		t.Error("conversion is not deterministic")
	}
	parsed, err := tablefmt.Parse(a)
	if err != nil {
		t.Fatalf("encoded table does not parse: %v", err)
	}
	if h1, _ := tablefmt.ContentHash(parsed.Providers); !strings.HasSuffix(f.Version, h1[:12]) {
		t.Errorf("hash of the parsed table %s does not match version %s", h1[:12], f.Version)
	}
}

func TestConvertErrors(t *testing.T) {
	tests := []struct {
		name, feed, license string
		origin              Origin
		want                string
	}{
		{"short commit", sample, license, Origin{Commit: "47df840"}, "40-digit"},
		{"no licence", sample, "All rights reserved.", origin, "MIT"},
		{"python-only regex", strings.Replace(sample, `^dated-\\d{8}$`, `(?<=x)dated`, 1), license, origin, "regex"},
		{"two kinds in a rule", strings.Replace(sample, `{"equals": "dated"}`, `{"equals": "dated", "contains": "d"}`, 1), license, origin, "exactly one"},
		{"negative price", strings.Replace(sample, `"output_mtok": 1.1`, `"output_mtok": -1.1`, 1), license, origin, "negative"},
		{"local time", strings.Replace(sample, `"16:30:00Z"`, `"16:30:00+08:00"`, 1), license, origin, "UTC"},
		{"empty feed", `[]`, license, origin, "no providers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Convert([]byte(tt.feed), []byte(tt.license), tt.origin)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
