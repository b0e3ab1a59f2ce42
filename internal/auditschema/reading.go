package auditschema

import (
	mathbits "math/bits"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// A Reading is what one pass over an attribute map found under the names the schema
// reads (the precedence lists in attributes.go), user aliases and names a caller adds.
// Values resolved from it are exactly those the name-by-name lookups give: a map is a
// list that pcommon.Map.Get scans from the start, and the lists name about seventy
// attributes, so a lookup per name costs far more than one pass.
//
// A Reading holds the map's values, not copies: it is valid until the map changes
// (an entry put, removed or set). Build one per goroutine with Reader.NewReading and
// reuse it.
type Reading struct {
	r       *Reader
	present [inlineSlots / 64]uint64
	vals    [inlineSlots]pcommon.Value
	// Slots past inlineSlots (many aliases or extra names).
	more        []pcommon.Value
	morePresent []bool
	// The flattened messages of OpenLLMetry (gen_ai.prompt.N.*, gen_ai.completion.N.*).
	indexedPrompt, indexedCompletion bool
}

// inlineSlots is the number of slots a Reading holds without allocating: the standard
// names take about seventy.
const inlineSlots = 128

// Prefixes of the flattened messages that IndexedMessages assembles.
const (
	PromptPrefix     = "gen_ai.prompt."
	CompletionPrefix = "gen_ai.completion."
)

// field is a value the schema resolves through a precedence list of names.
type field uint8

const (
	fModel field = iota
	fProvider
	fOperation
	fAgentName
	fAgentID
	fUserID
	fToolName
	fTraceloopKind
	fTraceloopEntity
	fInputTokens
	fOutputTokens
	fCacheReadTokens
	fCacheWriteTokens
	fReasoningTokens
	fTTFT
	fCost
	fRequest
	fResponse
	numFields
)

// fieldNames are the standard names of each field, in precedence order.
var fieldNames = [numFields][]string{
	fModel:            modelKeys,
	fProvider:         providerKeys,
	fOperation:        operationKeys,
	fAgentName:        agentNameKeys,
	fAgentID:          agentIDKeys,
	fUserID:           userIDKeys,
	fToolName:         toolNameKeys,
	fTraceloopKind:    {"traceloop.span.kind"},
	fTraceloopEntity:  {"traceloop.entity.name"},
	fInputTokens:      inputTokenKeys,
	fOutputTokens:     outputTokenKeys,
	fCacheReadTokens:  cacheReadTokenKeys,
	fCacheWriteTokens: cacheWriteTokenKeys,
	fReasoningTokens:  reasoningTokenKeys,
	fTTFT:             ttftKeys,
	fCost:             costKeys,
	fRequest:          requestKeys,
	fResponse:         responseKeys,
}

// aliasFields maps the keys of Aliases to the fields they extend.
var aliasFields = map[string]field{
	"model": fModel, "provider": fProvider, "operation": fOperation, "agent_name": fAgentName,
	"agent_id": fAgentID, "user_id": fUserID, "tool_name": fToolName,
}

// A Reader knows which slot of a Reading each attribute name fills. Build it once
// (NewReader) and share it; it is read-only.
type Reader struct {
	index  keyIndex
	fields [numFields][]int // per field, its slots in precedence order
	rows   [numRowNames]int // the slot of each of rowNames
	extra  []int            // slots of the caller's extra names
	names  []string         // name of each slot
}

// NewReader builds a Reader for the standard names (the GenAI values' and the other
// columns', rowNames), the aliases (read after the standard names of their value, see
// Aliases) and extra names, whose values Extra returns by their index in extra.
func NewReader(aliases Aliases, extra ...string) *Reader {
	r := &Reader{}
	slotsOf := map[string][]int{}
	add := func(name string) int {
		slot := len(r.names)
		r.names = append(r.names, name)
		slotsOf[name] = append(slotsOf[name], slot)
		return slot
	}
	for f := range numFields {
		for _, name := range fieldNames[f] {
			r.fields[f] = append(r.fields[f], add(name))
		}
	}
	for i, name := range rowNames {
		r.rows[i] = add(name)
	}
	for _, name := range AliasFields { // in a fixed order, so slots do not depend on map order
		for _, a := range aliases[name] {
			f := aliasFields[name]
			r.fields[f] = append(r.fields[f], add(a))
		}
	}
	for _, name := range extra {
		r.extra = append(r.extra, add(name))
	}
	r.index = newKeyIndex(slotsOf)
	return r
}

// defaultReader reads the standard names, for ResolveGenAI without aliases.
var defaultReader = NewReader(nil)

// NewReading returns an empty Reading for this Reader's names.
func (r *Reader) NewReading() *Reading {
	rd := &Reading{}
	rd.init(r)
	return rd
}

func (rd *Reading) init(r *Reader) {
	rd.r = r
	if n := len(r.names) - inlineSlots; n > 0 {
		rd.more = make([]pcommon.Value, n)
		rd.morePresent = make([]bool, n)
	}
}

// Reset empties the Reading.
func (rd *Reading) Reset() {
	rd.present = [inlineSlots / 64]uint64{}
	clear(rd.morePresent)
	rd.indexedPrompt, rd.indexedCompletion = false, false
}

// release empties the Reading and lets go of the values it held (so that a pooled
// Reading does not keep the batch it read alive).
func (rd *Reading) release() {
	for w, bits := range rd.present {
		for bits != 0 {
			i := w*64 + mathbits.TrailingZeros64(bits)
			rd.vals[i] = pcommon.Value{}
			bits &= bits - 1
		}
	}
	clear(rd.more)
	rd.Reset()
}

// Read resets the Reading and reads every entry of m.
func (rd *Reading) Read(m pcommon.Map) {
	rd.Reset()
	for k, v := range m.All() {
		rd.Observe(k, v)
	}
}

// Observe records one entry of the map being read. Entries must be observed in map
// order: as with pcommon.Map.Get, the first entry under a name wins.
func (rd *Reading) Observe(k string, v pcommon.Value) {
	if len(k) > len(PromptPrefix) && k[0] == 'g' {
		switch {
		case strings.HasPrefix(k, PromptPrefix):
			rd.indexedPrompt = true
		case strings.HasPrefix(k, CompletionPrefix):
			rd.indexedCompletion = true
		}
	}
	for _, slot := range rd.r.index.lookup(k) {
		rd.set(slot, v)
	}
}

func (rd *Reading) set(slot int, v pcommon.Value) {
	if slot < inlineSlots {
		if bit := uint64(1) << (slot & 63); rd.present[slot>>6]&bit == 0 {
			rd.present[slot>>6] |= bit
			rd.vals[slot] = v
		}
		return
	}
	if i := slot - inlineSlots; !rd.morePresent[i] {
		rd.morePresent[i] = true
		rd.more[i] = v
	}
}

func (rd *Reading) get(slot int) (pcommon.Value, bool) {
	if slot < inlineSlots {
		return rd.vals[slot], rd.present[slot>>6]&(1<<(slot&63)) != 0
	}
	i := slot - inlineSlots
	return rd.more[i], rd.morePresent[i]
}

// Get returns the value under one of the schema's names (a Name).
func (rd *Reading) Get(n Name) (pcommon.Value, bool) {
	return rd.get(rd.r.rows[n])
}

// row returns the value under rowNames[i].
func (rd *Reading) row(i int) (pcommon.Value, bool) {
	return rd.get(rd.r.rows[i])
}

// Extra returns the value under the i-th extra name given to NewReader.
func (rd *Reading) Extra(i int) (pcommon.Value, bool) {
	return rd.get(rd.r.extra[i])
}

// HasIndexedPrompt and HasIndexedCompletion report whether an attribute name starts with
// PromptPrefix or CompletionPrefix: only then can IndexedMessages find anything.
func (rd *Reading) HasIndexedPrompt() bool { return rd.indexedPrompt }

// HasIndexedCompletion: see HasIndexedPrompt.
func (rd *Reading) HasIndexedCompletion() bool { return rd.indexedCompletion }

// HasRequest and HasResponse are HasRequest and HasResponse of the map read.
func (rd *Reading) HasRequest() bool {
	_, _, ok := rd.first(fRequest, nil)
	return ok
}

// HasResponse: see HasRequest.
func (rd *Reading) HasResponse() bool {
	_, _, ok := rd.first(fResponse, nil)
	return ok
}

// ReportedCost is ReportedCost of the map read.
func (rd *Reading) ReportedCost() (float64, bool) {
	v, _, ok := rd.first(fCost, nil)
	if !ok {
		return 0, false
	}
	return asFloat(v)
}

// GenAI is ResolveGenAI of the map read, with resource (read by the same Reader, or
// nil) as the resource's attributes.
func (rd *Reading) GenAI(resource *Reading) GenAI {
	return rd.genAI(resource, nil)
}

// genAI is GenAI keeping the counts in counts (allocated when nil and a count is present).
func (rd *Reading) genAI(resource *Reading, counts *[5]int64) GenAI {
	var g GenAI
	g.Model = rd.firstStr(fModel, nil)
	g.Provider = strings.ToLower(rd.firstStr(fProvider, nil))
	g.Operation = strings.ToLower(rd.firstStr(fOperation, nil))
	g.AgentName = rd.firstStr(fAgentName, resource)
	g.AgentID = rd.firstStr(fAgentID, resource)
	g.UserID = rd.firstStr(fUserID, resource)
	g.ToolName = rd.firstStr(fToolName, nil)
	// OpenLLMetry names tools and agents only as the span's entity.
	if kind := rd.firstStr(fTraceloopKind, nil); kind == "tool" || kind == "agent" {
		entity := rd.firstStr(fTraceloopEntity, nil)
		if kind == "tool" && g.ToolName == "" {
			g.ToolName = entity
		}
		if kind == "agent" && g.AgentName == "" {
			g.AgentName = entity
		}
	}
	// The counts present share one allocation.
	g.InputTokens = g.count(rd, fInputTokens, &counts, 0)
	g.OutputTokens = g.count(rd, fOutputTokens, &counts, 1)
	g.CacheReadTokens = g.count(rd, fCacheReadTokens, &counts, 2)
	g.CacheWriteTokens = g.count(rd, fCacheWriteTokens, &counts, 3)
	g.ReasoningTokens = g.count(rd, fReasoningTokens, &counts, 4)
	g.TTFTMs = g.ttft(rd)
	return g
}

// ttft reads the time to first token under the names of ttftKeys, in milliseconds. A
// value that is not a duration a first token can take (see validTTFT) is flagged
// invalid_ttft:<name> and left NULL.
func (g *GenAI) ttft(rd *Reading) *float64 {
	v, key, ok := rd.first(fTTFT, nil)
	if !ok {
		return nil
	}
	ms, ok := asFloat(v)
	if ok && key != AttrTTFTMs {
		ms *= 1000
	}
	if !ok || !validTTFT(ms) {
		g.Flags = append(g.Flags, FlagInvalidTTFT+key)
		return nil
	}
	return &ms
}

// first is lookup over the names of f: the first value present that is not empty, and
// its name, searching fallback (when not nil) after rd for each name.
func (rd *Reading) first(f field, fallback *Reading) (pcommon.Value, string, bool) {
	for _, slot := range rd.r.fields[f] {
		if v, ok := rd.get(slot); ok && v.Type() != pcommon.ValueTypeEmpty {
			return v, rd.r.names[slot], true
		}
		if fallback != nil {
			if v, ok := fallback.get(slot); ok && v.Type() != pcommon.ValueTypeEmpty {
				return v, rd.r.names[slot], true
			}
		}
	}
	return pcommon.Value{}, "", false
}

// firstStr is lookupStr over the names of f: the trimmed text of the first value that
// is not blank, searching fallback (when not nil) after rd for each name.
func (rd *Reading) firstStr(f field, fallback *Reading) string {
	for _, slot := range rd.r.fields[f] {
		if v, ok := rd.get(slot); ok {
			if s := strings.TrimSpace(v.AsString()); s != "" {
				return s
			}
		}
		if fallback != nil {
			if v, ok := fallback.get(slot); ok {
				if s := strings.TrimSpace(v.AsString()); s != "" {
					return s
				}
			}
		}
	}
	return ""
}

// count reads the token count under the names of f: the first value present, kept in
// (*counts)[i] (allocated by the first count present). A count that is not usable (see
// asCount) is flagged invalid_tokens:<name> and left NULL.
func (g *GenAI) count(rd *Reading, f field, counts **[5]int64, i int) *int64 {
	v, key, ok := rd.first(f, nil)
	if !ok {
		return nil
	}
	n, ok := asCount(v)
	if !ok {
		g.Flags = append(g.Flags, "invalid_tokens:"+key)
		return nil
	}
	if *counts == nil {
		*counts = new([5]int64)
	}
	(*counts)[i] = n
	return &(*counts)[i]
}

// keyIndex maps attribute names to slots: an open-addressing hash table over a few
// bytes of the name, which answers the many names it does not hold after one or two
// length comparisons.
type keyIndex struct {
	mask    uint32
	entries []indexEntry
}

type indexEntry struct {
	key   string
	slots []int // nil: an empty entry
}

func newKeyIndex(slotsOf map[string][]int) keyIndex {
	size := 16
	for size < 4*len(slotsOf) {
		size *= 2
	}
	ix := keyIndex{mask: uint32(size - 1), entries: make([]indexEntry, size)}
	for k, slots := range slotsOf {
		i := keyHash(k) & ix.mask
		for ix.entries[i].slots != nil {
			i = (i + 1) & ix.mask
		}
		ix.entries[i] = indexEntry{k, slots}
	}
	return ix
}

func (ix *keyIndex) lookup(k string) []int {
	for i := keyHash(k) & ix.mask; ; i = (i + 1) & ix.mask {
		e := &ix.entries[i]
		if e.slots == nil || e.key == k {
			return e.slots
		}
	}
}

// keyHash mixes the length and three bytes of k: the names differ in length or at
// their end far more often than anywhere else.
func keyHash(k string) uint32 {
	n := len(k)
	h := uint32(n) * 0x9e3779b1
	if n > 0 {
		h ^= uint32(k[n-1]) * 0x85ebca77
		h ^= uint32(k[n/2]) * 0xc2b2ae3d
		h ^= uint32(k[n*3/4]) * 0x27d4eb2f
	}
	return h ^ h>>15
}
