// Package feed converts the genai-prices v2 data file (pydantic/genai-prices,
// prices/new_data/v2/data.json) into the project's price table format.
//
// What is kept, per model: the match rule, and per-token prices for input, output,
// cache read, cache write (the default, 5-minute, cache write price) and reasoning
// output, each with its start-date or time-of-day condition. Tiered prices keep their
// base tier. Other kinds of usage (audio, image, video, web searches, requests) are
// counted and reported by [Convert] but not kept: the audit trail only records tokens.
package feed

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/pricing/internal/tablefmt"
)

// Origin names the upstream file a feed was taken from.
type Origin struct {
	Commit string // full commit hash of pydantic/genai-prices
	Path   string // file path inside that repository
}

// Report summarises what the conversion dropped or simplified.
type Report struct {
	Providers, Models int
	// Ignored counts models per price kind that the table does not keep.
	Ignored map[string]int
	// Tiered counts models whose tiered prices were reduced to the base tier.
	Tiered int
}

// keptKinds maps the feed's price keys to table fields.
var keptKinds = map[string]func(p *tablefmt.Price) **float64{
	"input_mtok":            func(p *tablefmt.Price) **float64 { return &p.Input },
	"output_mtok":           func(p *tablefmt.Price) **float64 { return &p.Output },
	"cache_read_mtok":       func(p *tablefmt.Price) **float64 { return &p.CacheRead },
	"cache_write_mtok":      func(p *tablefmt.Price) **float64 { return &p.CacheWrite },
	"output_reasoning_mtok": func(p *tablefmt.Price) **float64 { return &p.Reasoning },
}

type feedProvider struct {
	ID            string           `json:"id"`
	ProviderMatch *tablefmt.Clause `json:"provider_match"`
	ModelMatch    *tablefmt.Clause `json:"model_match"`
	Fallbacks     []string         `json:"fallback_model_providers"`
	Models        []feedModel      `json:"models"`
}

type feedModel struct {
	ID     string          `json:"id"`
	Match  tablefmt.Clause `json:"match"`
	Prices json.RawMessage `json:"prices"`
}

type feedConditional struct {
	Constraint *struct {
		StartDate string `json:"start_date"`
		StartTime string `json:"start_time"`
		EndTime   string `json:"end_time"`
	} `json:"constraint"`
	Prices map[string]json.RawMessage `json:"prices"`
}

// Convert builds the table from the feed bytes and the upstream LICENSE text. The
// result does not depend on when or where it runs, so regeneration is reproducible.
func Convert(data, license []byte, origin Origin) (*tablefmt.File, Report, error) {
	rep := Report{Ignored: map[string]int{}}
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(origin.Commit) {
		return nil, rep, fmt.Errorf("commit %q is not a full 40-digit hex commit hash", origin.Commit)
	}
	copyright := copyrightLine(license)
	if copyright == "" || !bytes.Contains(license, []byte("MIT License")) {
		return nil, rep, errors.New("license text is not the MIT licence with a copyright line; refusing to ship prices under unknown terms")
	}

	var providers []feedProvider
	if err := json.Unmarshal(data, &providers); err != nil {
		return nil, rep, fmt.Errorf("decode feed: %w", err)
	}
	if len(providers) == 0 {
		return nil, rep, errors.New("feed lists no providers")
	}

	out := &tablefmt.File{Format: tablefmt.Format}
	for _, fp := range providers {
		p := tablefmt.Provider{
			ID:            fp.ID,
			ProviderMatch: fp.ProviderMatch,
			ModelMatch:    fp.ModelMatch,
			Fallbacks:     fp.Fallbacks,
			Models:        make([]tablefmt.Model, 0, len(fp.Models)),
		}
		for _, c := range []*tablefmt.Clause{fp.ProviderMatch, fp.ModelMatch} {
			if c != nil {
				if err := checkClause(*c); err != nil {
					return nil, rep, fmt.Errorf("provider %s: %w", fp.ID, err)
				}
			}
		}
		for _, fm := range fp.Models {
			if err := checkClause(fm.Match); err != nil {
				return nil, rep, fmt.Errorf("provider %s model %s: %w", fp.ID, fm.ID, err)
			}
			prices, tiered, err := convertPrices(fm.Prices, rep.Ignored)
			if err != nil {
				return nil, rep, fmt.Errorf("provider %s model %s: %w", fp.ID, fm.ID, err)
			}
			if tiered {
				rep.Tiered++
			}
			p.Models = append(p.Models, tablefmt.Model{ID: fm.ID, Match: fm.Match, Prices: prices})
			rep.Models++
		}
		out.Providers = append(out.Providers, p)
		rep.Providers++
	}

	hash, err := tablefmt.ContentHash(out.Providers)
	if err != nil {
		return nil, rep, err
	}
	feedSum := sha256.Sum256(data)
	out.Version = fmt.Sprintf("genai-prices@%s+sha256:%s", origin.Commit[:7], hash[:12])
	out.Source = &tablefmt.Source{
		Name:      "pydantic/genai-prices",
		URL:       "https://github.com/pydantic/genai-prices",
		Commit:    origin.Commit,
		Path:      origin.Path,
		SHA256:    hex.EncodeToString(feedSum[:]),
		License:   "MIT",
		Copyright: copyright,
	}
	return out, rep, nil
}

// IgnoredKinds lists the report's ignored price kinds, most frequent first.
func (r Report) IgnoredKinds() []string {
	kinds := make([]string, 0, len(r.Ignored))
	for k := range r.Ignored {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if r.Ignored[kinds[i]] != r.Ignored[kinds[j]] {
			return r.Ignored[kinds[i]] > r.Ignored[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	return kinds
}

func copyrightLine(license []byte) string {
	for _, l := range strings.Split(string(license), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "Copyright") {
			return l
		}
	}
	return ""
}

// convertPrices turns a feed "prices" value (one price set, or a list of conditional
// ones) into table prices, reporting whether any tier was dropped.
func convertPrices(raw json.RawMessage, ignored map[string]int) ([]tablefmt.Price, bool, error) {
	var conds []feedConditional
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
		if err := json.Unmarshal(raw, &conds); err != nil {
			return nil, false, fmt.Errorf("prices: %w", err)
		}
		if len(conds) == 0 {
			return nil, false, errors.New("prices: empty list")
		}
	} else {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, false, fmt.Errorf("prices: %w", err)
		}
		conds = []feedConditional{{Prices: one}}
	}

	seen := map[string]bool{}
	tiered := false
	out := make([]tablefmt.Price, 0, len(conds))
	for _, c := range conds {
		var p tablefmt.Price
		if c.Constraint != nil {
			var err error
			if p.StartDate, p.StartTime, p.EndTime, err = constraint(c.Constraint.StartDate, c.Constraint.StartTime, c.Constraint.EndTime); err != nil {
				return nil, false, err
			}
		}
		keys := make([]string, 0, len(c.Prices))
		for k := range c.Prices {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			field, ok := keptKinds[k]
			if !ok {
				if !seen[k] {
					ignored[k]++
					seen[k] = true
				}
				continue
			}
			v, wasTiered, err := perToken(c.Prices[k])
			if err != nil {
				return nil, false, fmt.Errorf("%s: %w", k, err)
			}
			tiered = tiered || wasTiered
			*field(&p) = &v
		}
		out = append(out, p)
	}
	return out, tiered, nil
}

func constraint(startDate, startTime, endTime string) (string, string, string, error) {
	if startDate != "" {
		if _, err := time.Parse(time.DateOnly, startDate); err != nil {
			return "", "", "", fmt.Errorf("constraint start_date %q: %w", startDate, err)
		}
	}
	if (startTime == "") != (endTime == "") {
		return "", "", "", errors.New("constraint needs both start_time and end_time")
	}
	utc := func(s string) (string, error) {
		if s == "" {
			return "", nil
		}
		t := strings.TrimSuffix(strings.TrimSuffix(s, "Z"), "+00:00")
		if _, err := time.Parse(time.TimeOnly, t); err != nil {
			return "", fmt.Errorf("constraint time %q is not HH:MM:SS in UTC", s)
		}
		return t, nil
	}
	st, err := utc(startTime)
	if err != nil {
		return "", "", "", err
	}
	et, err := utc(endTime)
	if err != nil {
		return "", "", "", err
	}
	if startDate == "" && st == "" {
		return "", "", "", errors.New("constraint has neither start_date nor start_time")
	}
	return startDate, st, et, nil
}

// perToken converts a per-million-token price (a number, or a tiered price whose base
// is taken) to USD per token. The decimal text is divided exactly and rounded once, so
// the value is the float64 nearest to the true per-token price.
func perToken(raw json.RawMessage) (float64, bool, error) {
	tiered := false
	num := json.Number("")
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		var tp struct {
			Base  json.Number `json:"base"`
			Tiers []struct {
				Start int64       `json:"start"`
				Price json.Number `json:"price"`
			} `json:"tiers"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		dec.DisallowUnknownFields()
		if err := dec.Decode(&tp); err != nil {
			return 0, false, fmt.Errorf("tiered price: %w", err)
		}
		num, tiered = tp.Base, true
	} else {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&num); err != nil {
			return 0, false, err
		}
	}
	r, ok := new(big.Rat).SetString(num.String())
	if !ok {
		return 0, false, fmt.Errorf("price %q is not a number", num)
	}
	if r.Sign() < 0 {
		return 0, false, fmt.Errorf("price %s is negative", num)
	}
	f, _ := r.Quo(r, big.NewRat(1_000_000, 1)).Float64()
	return f, tiered, nil
}

// checkClause verifies a rule has exactly one kind per node and that its regexes
// compile in Go's RE2 syntax (the feed is written for Python's re).
func checkClause(c tablefmt.Clause) error {
	n := 0
	for _, set := range []bool{c.Equals != nil, c.StartsWith != nil, c.EndsWith != nil, c.Contains != nil, c.Regex != nil, c.Or != nil, c.And != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("match rule must have exactly one of equals, starts_with, ends_with, contains, regex, or, and; has %d", n)
	}
	if c.Regex != nil {
		if _, err := regexp.Compile(*c.Regex); err != nil {
			return fmt.Errorf("regex %q: %w", *c.Regex, err)
		}
	}
	for _, sub := range append(c.Or, c.And...) {
		if err := checkClause(sub); err != nil {
			return err
		}
	}
	return nil
}
