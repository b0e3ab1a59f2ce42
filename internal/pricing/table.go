// Package pricing prices GenAI requests: it resolves a provider and model name to
// per-token prices from a price table and computes the USD cost of reported token
// usage.
//
// The default table ([Default]) is generated from the public genai-prices feed
// (pydantic/genai-prices, MIT) and embedded in the binary; users can load their own
// table file ([LoadFile]) and override single models ([Table.WithOverrides]). A table is
// immutable and safe for concurrent use; lookups are cached. See README.md for the
// table's origin, the matching rules and the cost formula.
package pricing

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/pricing/internal/tablefmt"
)

//go:embed prices.json
var embeddedTable []byte

// Table is a price table, optionally with overrides.
type Table struct {
	baseVersion string // version of the table data
	version     string // baseVersion, plus the overrides' hash when there are overrides
	providers   []*provider
	byID        map[string]*provider
	overrides   map[string]*entry // by normalised model name
	cache       *lookupCache
}

type provider struct {
	id            string
	providerMatch *matcher // matches provider names, nil when none
	modelMatch    *matcher // matches model names this provider likely serves, nil when none
	fallbacks     []*provider
	models        []model
}

type model struct {
	match matcher
	entry *entry
}

// entry is a resolved model: who it is and its prices over time.
type entry struct {
	match   Match
	periods []period // at least one
}

// period is one of a model's prices with the condition under which it holds.
type period struct {
	from             time.Time // zero: no start date
	daily            bool
	dayStart, dayEnd time.Duration // since midnight UTC, when daily
	price            Price
}

var defaultTable = sync.OnceValue(func() *Table {
	t, err := parseTable(embeddedTable)
	if err != nil {
		panic("pricing: embedded prices.json: " + err.Error())
	}
	return t
})

// Default returns the table shipped with the binary, parsed once.
func Default() *Table { return defaultTable() }

// LoadFile reads a price table in the format of the shipped prices.json (see README.md).
// Errors name the file and what is wrong with it.
func LoadFile(path string) (*Table, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("price table: %w", err)
	}
	t, err := parseTable(data)
	if err != nil {
		return nil, fmt.Errorf("price table %s: %w", path, err)
	}
	return t, nil
}

// Version identifies the prices the table holds: the table's declared version label
// followed by "+sha256:" and the first 12 hex digits of the hash of its price data, so
// any edit to a price changes the version even if the label was not bumped. With
// overrides, "+overrides:sha256:<12 hex digits>" follows.
func (t *Table) Version() string { return t.version }

func parseTable(data []byte) (*Table, error) {
	f, err := tablefmt.Parse(data)
	if err != nil {
		return nil, jsonError(data, err)
	}
	if f.Format != tablefmt.Format {
		return nil, fmt.Errorf("format is %q, want %q (prices in USD per token)", f.Format, tablefmt.Format)
	}
	label, _, _ := strings.Cut(strings.TrimSpace(f.Version), "+sha256:")
	if label == "" {
		return nil, errors.New("version is empty; give the table a version label")
	}
	if len(f.Providers) == 0 {
		return nil, errors.New("table lists no providers")
	}
	hash, err := tablefmt.ContentHash(f.Providers)
	if err != nil {
		return nil, err
	}
	t := &Table{
		baseVersion: label + "+sha256:" + hash[:12],
		byID:        make(map[string]*provider, len(f.Providers)),
		cache:       &lookupCache{},
	}
	t.version = t.baseVersion

	var errs []error
	for i, fp := range f.Providers {
		p, err := compileProvider(fp)
		if err != nil {
			errs = append(errs, fmt.Errorf("providers[%d] %q: %w", i, fp.ID, err))
			continue
		}
		if _, dup := t.byID[p.id]; dup {
			errs = append(errs, fmt.Errorf("providers[%d]: provider %q is listed twice", i, fp.ID))
			continue
		}
		t.byID[p.id] = p
		t.providers = append(t.providers, p)
	}
	for _, fp := range f.Providers {
		p := t.byID[normalise(fp.ID)]
		if p == nil {
			continue
		}
		for _, id := range fp.Fallbacks {
			fb := t.byID[normalise(id)]
			if fb == nil {
				errs = append(errs, fmt.Errorf("provider %q: fallback provider %q is not in the table", fp.ID, id))
				continue
			}
			p.fallbacks = append(p.fallbacks, fb)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func compileProvider(fp tablefmt.Provider) (*provider, error) {
	p := &provider{id: normalise(fp.ID), models: make([]model, 0, len(fp.Models))}
	if p.id == "" {
		return nil, errors.New("provider id is empty")
	}
	var err error
	if p.providerMatch, err = optionalMatcher(fp.ProviderMatch); err != nil {
		return nil, fmt.Errorf("provider_match: %w", err)
	}
	if p.modelMatch, err = optionalMatcher(fp.ModelMatch); err != nil {
		return nil, fmt.Errorf("model_match: %w", err)
	}
	var errs []error
	for j, fm := range fp.Models {
		m, err := compileModel(p.id, fm)
		if err != nil {
			errs = append(errs, fmt.Errorf("models[%d] %q: %w", j, fm.ID, err))
			continue
		}
		p.models = append(p.models, m)
	}
	return p, errors.Join(errs...)
}

func optionalMatcher(c *tablefmt.Clause) (*matcher, error) {
	if c == nil {
		return nil, nil
	}
	m, err := compileClause(*c)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

func compileModel(providerID string, fm tablefmt.Model) (model, error) {
	if strings.TrimSpace(fm.ID) == "" {
		return model{}, errors.New("model id is empty")
	}
	match, err := compileClause(fm.Match)
	if err != nil {
		return model{}, fmt.Errorf("match: %w", err)
	}
	if len(fm.Prices) == 0 {
		return model{}, errors.New("prices is empty; list at least one price")
	}
	e := &entry{
		match:   Match{Source: SourceTable, Provider: providerID, Model: fm.ID},
		periods: make([]period, 0, len(fm.Prices)),
	}
	for k, fp := range fm.Prices {
		per, err := compilePeriod(fp)
		if err != nil {
			return model{}, fmt.Errorf("prices[%d]: %w", k, err)
		}
		e.periods = append(e.periods, per)
	}
	return model{match: match, entry: e}, nil
}

func compilePeriod(fp tablefmt.Price) (period, error) {
	var per period
	if fp.StartDate != "" {
		d, err := time.Parse(time.DateOnly, fp.StartDate)
		if err != nil {
			return per, fmt.Errorf("start_date %q is not YYYY-MM-DD", fp.StartDate)
		}
		per.from = d
	}
	if fp.StartTime != "" || fp.EndTime != "" {
		var err error
		if per.dayStart, err = timeOfDay("start_time", fp.StartTime); err != nil {
			return per, err
		}
		if per.dayEnd, err = timeOfDay("end_time", fp.EndTime); err != nil {
			return per, err
		}
		per.daily = true
	}
	var errs []error
	set := func(name string, v *float64, price *float64, has *bool) {
		if v == nil {
			return
		}
		if math.IsNaN(*v) || math.IsInf(*v, 0) || *v < 0 {
			errs = append(errs, fmt.Errorf("%s price must be a non-negative number of USD per token, got %v", name, *v))
			return
		}
		*price, *has = *v, true
	}
	p := &per.price
	set("input", fp.Input, &p.Input, &p.HasInput)
	set("output", fp.Output, &p.Output, &p.HasOutput)
	set("cache_read", fp.CacheRead, &p.CacheRead, &p.HasCacheRead)
	set("cache_write", fp.CacheWrite, &p.CacheWrite, &p.HasCacheWrite)
	set("reasoning", fp.Reasoning, &p.Reasoning, &p.HasReasoning)
	return per, errors.Join(errs...)
}

func timeOfDay(field, s string) (time.Duration, error) {
	t, err := time.Parse(time.TimeOnly, s)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not HH:MM:SS (UTC); start_time and end_time go together", field, s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second, nil
}

// priceAt returns the price in force at t (the zero time: now): the last period whose
// condition holds, or the first if none holds (the feed's rule).
func (e *entry) priceAt(t time.Time) Price {
	if len(e.periods) == 1 {
		return e.periods[0].price
	}
	if t.IsZero() {
		t = time.Now()
	}
	t = t.UTC()
	for i := len(e.periods) - 1; i >= 0; i-- {
		if e.periods[i].holds(t) {
			return e.periods[i].price
		}
	}
	return e.periods[0].price
}

// holds reports whether the period's condition holds at t (in UTC). A daily window whose
// end is before its start wraps around midnight.
func (p *period) holds(t time.Time) bool {
	if !p.from.IsZero() && t.Before(p.from) {
		return false
	}
	if !p.daily {
		return true
	}
	y, m, d := t.Date()
	tod := t.Sub(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
	if p.dayStart <= p.dayEnd {
		return tod >= p.dayStart && tod < p.dayEnd
	}
	return tod >= p.dayStart || tod < p.dayEnd
}

// jsonError adds the line and column to JSON decoding errors.
func jsonError(data []byte, err error) error {
	var offset int64 = -1
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		offset = syn.Offset
	case errors.As(err, &typ):
		offset = typ.Offset
	}
	if offset < 0 || offset > int64(len(data)) {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	line := 1 + strings.Count(string(data[:offset]), "\n")
	col := offset - int64(strings.LastIndexByte(string(data[:offset]), '\n'))
	return fmt.Errorf("invalid JSON at line %d, column %d: %w", line, col, err)
}
