// Package spancond is the one way the distribution reads named OTTL span conditions —
// the audit processor's policies and the webhook exporter's alert rules: the span
// context's paths with the standard converters (IsMatch, Len, ...), parsed once, each
// span evaluated in rule order. Conditions that only compare attributes with strings are
// evaluated directly on the span's maps (see equality.go), the others by OTTL.
package spancond

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/contexts/ottlspan"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/ottl/ottlfuncs"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

func newParser(set component.TelemetrySettings) (ottl.Parser[*ottlspan.TransformContext], error) {
	return ottlspan.NewParser(ottlfuncs.StandardConverters[*ottlspan.TransformContext](), set)
}

var checker = sync.OnceValues(func() (ottl.Parser[*ottlspan.TransformContext], error) {
	return newParser(component.TelemetrySettings{Logger: zap.NewNop()})
})

// Check parses condition and returns the OTTL error, for config validation.
func Check(condition string) error {
	p, err := checker()
	if err != nil {
		return err
	}
	_, err = p.ParseCondition(condition)
	return err
}

// Named is a condition with the name it is reported under.
type Named struct {
	Name, Condition string
}

// Set is a list of parsed conditions, in order.
type Set struct {
	names []string
	conds []*ottl.Condition[*ottlspan.TransformContext]
	// fast[i] evaluates conds[i] without OTTL when it is a conjunction of equalities;
	// nil otherwise.
	fast []conjunction
}

// Compile parses every condition; an error names the rule.
func Compile(rules []Named, set component.TelemetrySettings) (*Set, error) {
	p, err := newParser(set)
	if err != nil {
		return nil, err
	}
	s := &Set{}
	for _, r := range rules {
		if d := nesting(r.Condition); d > maxNesting {
			return nil, fmt.Errorf("%s: parentheses nested %d deep, at most %d: write the condition with fewer", r.Name, d, maxNesting)
		}
		c, err := p.ParseCondition(r.Condition)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Name, err)
		}
		fast, _ := parseConjunction(r.Condition)
		s.names = append(s.names, r.Name)
		s.conds = append(s.conds, c)
		s.fast = append(s.fast, fast)
	}
	return s, nil
}

// maxNesting bounds how deep a condition's parentheses nest: OTTL's parser takes seconds
// on a few thousand levels, and a collector with such a condition would not start in time.
const maxNesting = 32

// nesting is the depth of the parentheses of a condition, outside string literals.
func nesting(cond string) int {
	depth, deepest, quoted := 0, 0, false
	for i := 0; i < len(cond); i++ {
		switch c := cond[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
			deepest = max(deepest, depth)
		case c == ')':
			depth--
		}
	}
	return deepest
}

// Len is the number of conditions.
func (s *Set) Len() int { return len(s.conds) }

// Eval evaluates the conditions on span in order and calls matched with the index of
// each that holds, until matched returns false. A condition that fails to evaluate
// counts as not holding; its error, naming the rule, is returned with the others.
func (s *Set) Eval(ctx context.Context, rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, span ptrace.Span, matched func(i int) bool) error {
	// The OTTL context is made for the first condition that needs it, if any does.
	var tCtx *ottlspan.TransformContext
	defer func() {
		if tCtx != nil {
			tCtx.Close()
		}
	}()
	var errs []error
	for i, c := range s.conds {
		var ok bool
		if f := s.fast[i]; f != nil {
			ok = f.holds(rs.Resource().Attributes(), span.Attributes())
		} else {
			if tCtx == nil {
				tCtx = ottlspan.NewTransformContext(rs, ss, span)
			}
			var err error
			if ok, err = c.Eval(ctx, tCtx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", s.names[i], err))
				continue
			}
		}
		if ok && !matched(i) {
			break
		}
	}
	return errors.Join(errs...)
}
