package pricing

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
)

// OverridePrice is one model's price as users write it under pricing.overrides in the
// processor configuration, in USD per million tokens (the unit price lists use).
//
// Input and output are taken as given, 0 meaning free. A cache or reasoning price of 0
// means "not priced separately": those tokens then cost what input (cache) or output
// (reasoning) tokens cost, as in [Price.Cost].
type OverridePrice struct {
	// InputPerMTok is the price of uncached input tokens.
	InputPerMTok float64 `mapstructure:"input_per_mtok"`
	// OutputPerMTok is the price of output tokens.
	OutputPerMTok float64 `mapstructure:"output_per_mtok"`
	// CacheReadPerMTok is the price of input tokens read from the provider's cache.
	CacheReadPerMTok float64 `mapstructure:"cache_read_per_mtok"`
	// CacheWritePerMTok is the price of input tokens written to the provider's cache.
	CacheWritePerMTok float64 `mapstructure:"cache_write_per_mtok"`
	// ReasoningPerMTok is the price of reasoning output tokens.
	ReasoningPerMTok float64 `mapstructure:"reasoning_per_mtok"`
}

// Validate checks that every price is a finite, non-negative number.
func (o OverridePrice) Validate() error {
	var errs []error
	for _, f := range o.fields() {
		switch {
		case math.IsNaN(f.value) || math.IsInf(f.value, 0):
			errs = append(errs, fmt.Errorf("%s must be a number, got %v", f.name, f.value))
		case f.value < 0:
			errs = append(errs, fmt.Errorf("%s must not be negative, got %v", f.name, f.value))
		}
	}
	return errors.Join(errs...)
}

type overrideField struct {
	name  string
	value float64
}

func (o OverridePrice) fields() []overrideField {
	return []overrideField{
		{"input_per_mtok", o.InputPerMTok},
		{"output_per_mtok", o.OutputPerMTok},
		{"cache_read_per_mtok", o.CacheReadPerMTok},
		{"cache_write_per_mtok", o.CacheWritePerMTok},
		{"reasoning_per_mtok", o.ReasoningPerMTok},
	}
}

// Price converts the override to per-token prices.
func (o OverridePrice) Price() Price {
	const perMTok = 1e6
	return Price{
		Input:         o.InputPerMTok / perMTok,
		Output:        o.OutputPerMTok / perMTok,
		CacheRead:     o.CacheReadPerMTok / perMTok,
		CacheWrite:    o.CacheWritePerMTok / perMTok,
		Reasoning:     o.ReasoningPerMTok / perMTok,
		HasInput:      true,
		HasOutput:     true,
		HasCacheRead:  o.CacheReadPerMTok > 0,
		HasCacheWrite: o.CacheWritePerMTok > 0,
		HasReasoning:  o.ReasoningPerMTok > 0,
	}
}

// ValidateOverrides checks a pricing.overrides map: model names must not be blank nor
// repeat after normalisation (trim, lower case), and every price must be valid. Errors
// name the model.
func ValidateOverrides(overrides map[string]OverridePrice) error {
	var errs []error
	seen := make(map[string]string, len(overrides))
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		n := normalise(name)
		if n == "" {
			errs = append(errs, fmt.Errorf("override %q: model name is blank", name))
			continue
		}
		if prev, dup := seen[n]; dup {
			errs = append(errs, fmt.Errorf("override %q: same model as %q (names are compared trimmed and lower-cased)", name, prev))
		}
		seen[n] = name
		if err := overrides[name].Validate(); err != nil {
			errs = append(errs, fmt.Errorf("override %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// WithOverrides returns a table that prices the given models (names as users write them)
// with the given prices instead of the table's, replacing any earlier overrides; t is
// unchanged. A lookup tries overrides before the table and reports [SourceOverride].
// The new table's version ends in "+overrides:sha256:<12 hex digits>" of the overrides.
func (t *Table) WithOverrides(overrides map[string]OverridePrice) (*Table, error) {
	if err := ValidateOverrides(overrides); err != nil {
		return nil, err
	}
	nt := &Table{
		baseVersion: t.baseVersion,
		version:     t.baseVersion,
		providers:   t.providers,
		byID:        t.byID,
		cache:       &lookupCache{},
	}
	if len(overrides) == 0 {
		return nt, nil
	}
	nt.overrides = make(map[string]*entry, len(overrides))
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		n, o := normalise(name), overrides[name]
		nt.overrides[n] = &entry{
			match:   Match{Source: SourceOverride, Model: n},
			periods: []period{{price: o.Price()}},
		}
		fmt.Fprintf(h, "%q", n)
		for _, f := range o.fields() {
			h.Write([]byte(" " + strconv.FormatFloat(f.value, 'g', -1, 64)))
		}
		h.Write([]byte("\n"))
	}
	nt.version += "+overrides:sha256:" + hex.EncodeToString(h.Sum(nil))[:12]
	return nt, nil
}
