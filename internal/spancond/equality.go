package spancond

import (
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Most policies and alert rules only compare attributes with strings, e.g.
//
//	attributes["gen_ai.tool.name"] == "run_sql" and resource.attributes["deployment.environment.name"] == "production"
//
// Such a condition is evaluated here on the pdata maps, without an OTTL context: a lookup
// per comparison. It gives what OTTL gives: an attribute equals a string literal only
// when it is a string with exactly that text; a missing attribute, an empty value or one
// of any other type (int 5 against "5", bytes, a map) is not equal, and != is the
// negation of == in every case. Anything else — other paths, operators, literals,
// escapes, or, not, parentheses — is left to OTTL.

// equality is one comparison of an attribute with a string literal.
type equality struct {
	resource bool // resource.attributes, else the span's attributes
	key      string
	value    string
	negated  bool // !=
}

// conjunction is a condition that is equalities joined by and.
type conjunction []equality

// holds reports whether every equality holds for the span's and the resource's attributes.
func (c conjunction) holds(resource, span pcommon.Map) bool {
	for _, e := range c {
		m := span
		if e.resource {
			m = resource
		}
		v, ok := m.Get(e.key)
		equal := ok && v.Type() == pcommon.ValueTypeStr && v.Str() == e.value
		if equal == e.negated {
			return false
		}
	}
	return true
}

// parseConjunction reads condition as equalities joined by and; ok is false for any
// other condition. It only accepts text that OTTL's lexer splits into the same tokens:
// OTTL's whitespace (\s: space, \t, \n, \f, \r) between them, and string literals with no
// backslash, whose value OTTL takes as written (invalid UTF-8 it would replace, so a
// condition with any is left to OTTL).
func parseConjunction(condition string) (c conjunction, ok bool) {
	if !utf8.ValidString(condition) {
		return nil, false
	}
	sc := scanner{rest: condition}
	for {
		var e equality
		sc.space()
		if sc.word("resource") {
			sc.space()
			if !sc.punct(".") {
				return nil, false
			}
			sc.space()
			e.resource = true
		}
		if !sc.word("attributes") {
			return nil, false
		}
		sc.space()
		if !sc.punct("[") {
			return nil, false
		}
		sc.space()
		if e.key, ok = sc.str(); !ok {
			return nil, false
		}
		sc.space()
		if !sc.punct("]") {
			return nil, false
		}
		sc.space()
		switch {
		case sc.punct("=="):
		case sc.punct("!="):
			e.negated = true
		default:
			return nil, false
		}
		sc.space()
		if e.value, ok = sc.str(); !ok {
			return nil, false
		}
		c = append(c, e)
		sc.space()
		if sc.rest == "" {
			return c, true
		}
		if !sc.word("and") {
			return nil, false
		}
	}
}

// scanner walks a condition's text token by token.
type scanner struct{ rest string }

// space skips OTTL's whitespace, the regular expression \s.
func (s *scanner) space() {
	i := 0
	for i < len(s.rest) && isSpace(s.rest[i]) {
		i++
	}
	s.rest = s.rest[i:]
}

// punct consumes p if the text starts with it.
func (s *scanner) punct(p string) bool {
	if !strings.HasPrefix(s.rest, p) {
		return false
	}
	s.rest = s.rest[len(p):]
	return true
}

// word consumes w if the text starts with it as a whole word (not followed by a letter,
// digit or underscore), as OTTL's lexer reads names and keywords.
func (s *scanner) word(w string) bool {
	if !strings.HasPrefix(s.rest, w) {
		return false
	}
	if len(s.rest) > len(w) && isWordByte(s.rest[len(w)]) {
		return false
	}
	s.rest = s.rest[len(w):]
	return true
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\f' || b == '\r'
}

func isWordByte(b byte) bool {
	return b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}

// str consumes a string literal without backslashes and returns its value.
func (s *scanner) str() (string, bool) {
	if !strings.HasPrefix(s.rest, `"`) {
		return "", false
	}
	end := strings.IndexAny(s.rest[1:], `"\`)
	if end < 0 || s.rest[1+end] != '"' {
		return "", false
	}
	v := s.rest[1 : 1+end]
	s.rest = s.rest[2+end:]
	return v, true
}
