package pricing

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/otelaudit/otelcol-audit/internal/pricing/internal/tablefmt"
)

type matchKind uint8

const (
	matchEquals matchKind = iota
	matchStartsWith
	matchEndsWith
	matchContains
	matchRegex
	matchOr
	matchAnd
)

// matcher is a compiled name-matching rule. Names reach it lower-cased, and its strings
// are lower-cased when compiled, so string comparisons are case-insensitive; regexes are
// compiled once, at load.
type matcher struct {
	kind matchKind
	s    string
	re   *regexp.Regexp
	subs []matcher
}

func (m *matcher) match(name string) bool {
	switch m.kind {
	case matchEquals:
		return name == m.s
	case matchStartsWith:
		return strings.HasPrefix(name, m.s)
	case matchEndsWith:
		return strings.HasSuffix(name, m.s)
	case matchContains:
		return strings.Contains(name, m.s)
	case matchRegex:
		return m.re.MatchString(name)
	case matchOr:
		for i := range m.subs {
			if m.subs[i].match(name) {
				return true
			}
		}
		return false
	default: // matchAnd
		for i := range m.subs {
			if !m.subs[i].match(name) {
				return false
			}
		}
		return true
	}
}

func compileClause(c tablefmt.Clause) (matcher, error) {
	var kinds []string
	var m matcher
	str := func(name string, kind matchKind, s *string) {
		if s != nil {
			kinds = append(kinds, name)
			m = matcher{kind: kind, s: strings.ToLower(*s)}
		}
	}
	str("equals", matchEquals, c.Equals)
	str("starts_with", matchStartsWith, c.StartsWith)
	str("ends_with", matchEndsWith, c.EndsWith)
	str("contains", matchContains, c.Contains)
	if c.Regex != nil {
		kinds = append(kinds, "regex")
		re, err := regexp.Compile(*c.Regex)
		if err != nil {
			return matcher{}, fmt.Errorf("regex %q: %w", *c.Regex, err)
		}
		m = matcher{kind: matchRegex, re: re}
	}
	for _, group := range []struct {
		name string
		kind matchKind
		subs []tablefmt.Clause
	}{{"or", matchOr, c.Or}, {"and", matchAnd, c.And}} {
		if group.subs == nil {
			continue
		}
		kinds = append(kinds, group.name)
		if len(group.subs) == 0 {
			return matcher{}, fmt.Errorf("%q needs at least one rule", group.name)
		}
		m = matcher{kind: group.kind, subs: make([]matcher, len(group.subs))}
		for i, sub := range group.subs {
			var err error
			if m.subs[i], err = compileClause(sub); err != nil {
				return matcher{}, err
			}
		}
	}
	switch len(kinds) {
	case 1:
		return m, nil
	case 0:
		return matcher{}, errors.New("match rule is empty; use one of equals, starts_with, ends_with, contains, regex, or, and")
	default:
		return matcher{}, fmt.Errorf("match rule combines %s; use one per rule (\"or\"/\"and\" to combine)", strings.Join(kinds, ", "))
	}
}
