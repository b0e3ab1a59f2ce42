// Package tablefmt defines the JSON file format of a price table, shared by the pricing
// package (which reads tables) and the generator (which writes the shipped one).
//
// A table lists providers in lookup order; each provider lists its models in match order
// (the first model whose rule matches a name wins). Prices are USD per token.
package tablefmt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Format identifies version 1 of the table format: prices in USD per token.
const Format = "otelcol-audit/price-table/v1"

// File is a whole price table.
type File struct {
	// Format must be [Format].
	Format string `json:"format"`
	// Version labels the table; readers append the content hash (see [ContentHash]).
	Version string `json:"version"`
	// Source records where the prices come from; optional in hand-written tables.
	Source *Source `json:"source,omitempty"`
	// Providers in lookup order.
	Providers []Provider `json:"providers"`
}

// Source records the origin of a generated table.
type Source struct {
	Name      string `json:"name"`
	URL       string `json:"url,omitempty"`
	Commit    string `json:"commit,omitempty"`
	Path      string `json:"path,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	License   string `json:"license,omitempty"`
	Copyright string `json:"copyright,omitempty"`
}

// Provider is one inference provider and its models.
type Provider struct {
	ID string `json:"id"`
	// ProviderMatch matches provider names given by instrumentations (e.g. "amazon-bedrock").
	ProviderMatch *Clause `json:"provider_match,omitempty"`
	// ModelMatch matches model names this provider is the likely origin of (e.g. "claude").
	ModelMatch *Clause `json:"model_match,omitempty"`
	// Fallbacks are provider ids whose models are also searched (Azure serves OpenAI's).
	Fallbacks []string `json:"fallbacks,omitempty"`
	Models    []Model  `json:"models"`
}

// Model is one priced model.
type Model struct {
	ID    string `json:"id"`
	Match Clause `json:"match"`
	// Prices holds at least one entry; see [Price] for which one is in force.
	Prices []Price `json:"prices"`
}

// Price is a set of per-token prices with an optional condition. Of a model's prices, the
// last whose condition holds at the request time is in force; if none holds, the first.
// An absent price means the feed lists no charge for that kind of token.
type Price struct {
	// StartDate (YYYY-MM-DD, UTC): the price holds from this day on.
	StartDate string `json:"start_date,omitempty"`
	// StartTime and EndTime (HH:MM:SS, UTC): the price holds daily in [start, end).
	StartTime string `json:"start_time,omitempty"`
	EndTime   string `json:"end_time,omitempty"`

	Input      *float64 `json:"input,omitempty"`
	Output     *float64 `json:"output,omitempty"`
	CacheRead  *float64 `json:"cache_read,omitempty"`
	CacheWrite *float64 `json:"cache_write,omitempty"`
	Reasoning  *float64 `json:"reasoning,omitempty"`
}

// Clause is a name-matching rule: exactly one field is set. String comparisons are
// case-insensitive; a regex is searched (unanchored) in the lower-cased name.
type Clause struct {
	Equals     *string  `json:"equals,omitempty"`
	StartsWith *string  `json:"starts_with,omitempty"`
	EndsWith   *string  `json:"ends_with,omitempty"`
	Contains   *string  `json:"contains,omitempty"`
	Regex      *string  `json:"regex,omitempty"`
	Or         []Clause `json:"or,omitempty"`
	And        []Clause `json:"and,omitempty"`
}

// Parse decodes a table, refusing unknown fields so that typos in hand-written tables
// surface instead of silently dropping a price.
func Parse(data []byte) (*File, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("unexpected data after the table")
	}
	return &f, nil
}

// ContentHash is the hex SHA-256 of the canonical (compact encoding/json) form of the
// providers: it changes whenever any price or rule changes, whatever the file layout.
func ContentHash(providers []Provider) (string, error) {
	b, err := json.Marshal(providers)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Encode writes f in the shipped layout: an indented header and one line per model, so
// that a regenerated table diffs line by line. The output is deterministic.
func Encode(f *File) ([]byte, error) {
	var buf bytes.Buffer
	line := func(indent, key string, v any, comma bool) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		buf.WriteString(indent)
		if key != "" {
			fmt.Fprintf(&buf, "%q: ", key)
		}
		buf.Write(b)
		if comma {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
		return nil
	}
	buf.WriteString("{\n")
	if err := line("  ", "format", f.Format, true); err != nil {
		return nil, err
	}
	if err := line("  ", "version", f.Version, true); err != nil {
		return nil, err
	}
	if f.Source != nil {
		src, err := json.MarshalIndent(f.Source, "  ", "  ")
		if err != nil {
			return nil, err
		}
		buf.WriteString(`  "source": `)
		buf.Write(src)
		buf.WriteString(",\n")
	}
	buf.WriteString("  \"providers\": [\n")
	for i, p := range f.Providers {
		buf.WriteString("    {\n")
		if err := line("      ", "id", p.ID, true); err != nil {
			return nil, err
		}
		if p.ProviderMatch != nil {
			if err := line("      ", "provider_match", p.ProviderMatch, true); err != nil {
				return nil, err
			}
		}
		if p.ModelMatch != nil {
			if err := line("      ", "model_match", p.ModelMatch, true); err != nil {
				return nil, err
			}
		}
		if len(p.Fallbacks) > 0 {
			if err := line("      ", "fallbacks", p.Fallbacks, true); err != nil {
				return nil, err
			}
		}
		buf.WriteString("      \"models\": [\n")
		for j, m := range p.Models {
			if err := line("        ", "", m, j < len(p.Models)-1); err != nil {
				return nil, err
			}
		}
		buf.WriteString("      ]\n    }")
		if i < len(f.Providers)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("  ]\n}\n")
	return buf.Bytes(), nil
}
