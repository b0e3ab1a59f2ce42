package auditschema

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// GenAI is the canonical reading of the GenAI attributes of one span, whatever
// instrumentation produced them. Empty strings and nil counts mean "not present".
type GenAI struct {
	Model, Provider, Operation string
	AgentName, AgentID         string
	UserID, ToolName           string
	InputTokens                *int64
	OutputTokens               *int64
	CacheReadTokens            *int64
	CacheWriteTokens           *int64
	ReasoningTokens            *int64
	// TTFTMs is the time to first token in milliseconds, from the attributes (ttftKeys)
	// or, with StreamTTFT, from the span's first streamed-chunk event.
	TTFTMs *float64
	// Flags lists values that were present but unusable, e.g. "invalid_tokens:gen_ai.usage.input_tokens".
	Flags []string
}

// FlagInvalidTTFT prefixes the attribute or event name of a time to first token that is
// negative, not a number, or longer than MaxTTFT.
const FlagInvalidTTFT = "invalid_ttft:"

// MaxTTFT bounds a time to first token: a first token later than this is a wrong unit or
// clock, not a measurement.
const MaxTTFT = time.Hour

func validTTFT(ms float64) bool {
	return ms >= 0 && ms <= float64(MaxTTFT/time.Millisecond) && !math.IsNaN(ms)
}

// firstChunkEvents are the span events instrumentations add when a streamed response's
// chunk arrives, with no time to first token of their own: OpenInference adds "First
// Token Stream Event" on the first chunk (openinference-instrumentation-openai
// _stream.py, _Stream._process_chunk), OpenLLMetry "llm.content.completion.chunk" on
// every chunk (opentelemetry-instrumentation-openai chat_wrappers, _process_chunk;
// SpanAttributes.LLM_CONTENT_COMPLETION_CHUNK in opentelemetry-semantic-conventions-ai).
var firstChunkEvents = []string{"First Token Stream Event", "llm.content.completion.chunk"}

// StreamTTFT sets TTFTMs, when the attributes carry none, to the time from the span's
// start to its earliest first-chunk event (firstChunkEvents). A chunk before the start
// or later than MaxTTFT after it is flagged invalid_ttft:<event name>.
func (g *GenAI) StreamTTFT(span ptrace.Span) {
	if g.TTFTMs != nil {
		return
	}
	var first pcommon.Timestamp
	name := ""
	evs := span.Events()
	for i := range evs.Len() {
		ev := evs.At(i)
		if t := ev.Timestamp(); slices.Contains(firstChunkEvents, ev.Name()) && (name == "" || t < first) {
			first, name = t, ev.Name()
		}
	}
	if name == "" {
		return
	}
	ms := float64(int64(first)-int64(span.StartTimestamp())) / float64(time.Millisecond)
	if !validTTFT(ms) {
		g.Flags = append(g.Flags, FlagInvalidTTFT+name)
		return
	}
	g.TTFTMs = &ms
}

// ResolveGenAI reads the GenAI attributes of a span (falling back to its resource for
// user and agent identity) using the documented precedence of each value, then aliases.
// It reads each map once; to resolve many spans, keep a Reader and Readings instead.
func ResolveGenAI(span, resource pcommon.Map, aliases Aliases) GenAI {
	r := defaultReader
	if len(aliases) > 0 {
		r = NewReader(aliases)
	}
	var s, res Reading
	s.init(r)
	res.init(r)
	s.Read(span)
	res.Read(resource)
	return s.GenAI(&res)
}

// lookup returns the first attribute present under any of keys, searching each map in
// order for each key (so a span attribute wins over the same name on the resource).
func lookup(keys []string, maps ...pcommon.Map) (pcommon.Value, string, bool) {
	for _, k := range keys {
		for _, m := range maps {
			if v, ok := m.Get(k); ok && v.Type() != pcommon.ValueTypeEmpty {
				return v, k, true
			}
		}
	}
	return pcommon.Value{}, "", false
}

func lookupFloat(keys []string, maps ...pcommon.Map) *float64 {
	v, _, ok := lookup(keys, maps...)
	if !ok {
		return nil
	}
	f, ok := asFloat(v)
	if !ok {
		return nil
	}
	return &f
}

// asCount reads a token count. A count must be a non-negative whole number, sent as an
// int, a whole double or a decimal string; anything else is flagged and left NULL.
func asCount(v pcommon.Value) (int64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), v.Int() >= 0
	case pcommon.ValueTypeDouble:
		d := v.Double()
		// float64(math.MaxInt64) rounds up to 2^63, which int64 cannot hold.
		if d < 0 || d != math.Trunc(d) || d >= math.MaxInt64 {
			return 0, false
		}
		return int64(d), true
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(strings.TrimSpace(v.Str()), 10, 64)
		return n, err == nil && n >= 0
	default:
		return 0, false
	}
}

// asFloat reads a non-negative number sent as an int, a double or a decimal string.
func asFloat(v pcommon.Value) (float64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return float64(v.Int()), v.Int() >= 0
	case pcommon.ValueTypeDouble:
		d := v.Double()
		return d, d >= 0 && !math.IsInf(d, 0) && !math.IsNaN(d)
	case pcommon.ValueTypeStr:
		d, err := strconv.ParseFloat(strings.TrimSpace(v.Str()), 64)
		return d, err == nil && d >= 0 && !math.IsInf(d, 0) && !math.IsNaN(d)
	default:
		return 0, false
	}
}

func asBool(v pcommon.Value) (bool, bool) {
	switch v.Type() {
	case pcommon.ValueTypeBool:
		return v.Bool(), true
	case pcommon.ValueTypeStr:
		b, err := strconv.ParseBool(strings.TrimSpace(v.Str()))
		return b, err == nil
	default:
		return false, false
	}
}

// Aliases are extra attribute names, configured by users, read after the standard names
// of a value. Keys are AliasFields.
type Aliases map[string][]string

// AliasFields are the values that accept user-configured attribute aliases.
var AliasFields = []string{"model", "provider", "operation", "agent_name", "agent_id", "user_id", "tool_name"}

// ReportedCost returns a cost in USD the span already carries — reported by the provider
// or the instrumentation, or set by an earlier audit processor — read with the same
// precedence as the cost_usd column.
func ReportedCost(attrs pcommon.Map) (float64, bool) {
	c := lookupFloat(costKeys, attrs)
	if c == nil {
		return 0, false
	}
	return *c, true
}

// IndexedMessages assembles the flattened messages of OpenLLMetry and older GenAI
// conventions — gen_ai.prompt.0.role, gen_ai.prompt.0.content, gen_ai.prompt.1.… under
// prefix "gen_ai.prompt." — into a JSON array of {role, content, ...} objects in index
// order. ok is false when the span has none.
func IndexedMessages(attrs pcommon.Map, prefix string) (string, bool) {
	msgs := map[int]map[string]any{}
	maxIdx := -1
	for k, v := range attrs.All() {
		rest, found := strings.CutPrefix(k, prefix)
		if !found {
			continue
		}
		idxStr, field, found := strings.Cut(rest, ".")
		if !found || field == "" {
			continue
		}
		idx, err := strconv.Atoi(idxStr)
		if err != nil || idx < 0 || idx > 10_000 {
			continue
		}
		if msgs[idx] == nil {
			msgs[idx] = map[string]any{}
		}
		msgs[idx][field] = v.AsRaw()
		maxIdx = max(maxIdx, idx)
	}
	if maxIdx < 0 {
		return "", false
	}
	list := make([]map[string]any, 0, len(msgs))
	for i := 0; i <= maxIdx; i++ {
		if m, ok := msgs[i]; ok {
			list = append(list, m)
		}
	}
	b, err := json.Marshal(list)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// HasRequest and HasResponse report whether the span carries its input or output under
// one of the names the request and response columns read.
func HasRequest(attrs pcommon.Map) bool {
	_, _, ok := lookup(requestKeys, attrs)
	return ok
}

// HasResponse: see HasRequest.
func HasResponse(attrs pcommon.Map) bool {
	_, _, ok := lookup(responseKeys, attrs)
	return ok
}
