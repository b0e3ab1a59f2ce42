package auditprocessor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.uber.org/zap"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/dlp"
	"github.com/otelaudit/otelcol-audit/internal/origin"
	"github.com/otelaudit/otelcol-audit/internal/pricing"
	"github.com/otelaudit/otelcol-audit/processor/auditprocessor/internal/metadata"
)

// Cost sources of audit.cost.source.
const (
	costProvider = "provider"
	costComputed = "computed"
	costOverride = "override"
)

// Where audit.policy.decision came from (audit.policy.source).
const (
	policySourceRuntime = "runtime"
	policySourceConfig  = "policy"
)

// Approval statuses of audit.approval.status.
var runtimeApprovals = []string{"approved", "rejected", "timed_out", "pending"}

type auditProcessor struct {
	masker   *dlp.Masker
	reader   *auditschema.Reader
	prices   *pricing.Table
	policies *policyEngine
	limits   LimitsConfig
	logger   *zap.Logger

	// telemetry counts flagged and masked spans and policy errors (metadata.yaml).
	telemetry *metadata.TelemetryBuilder
}

func newAuditProcessor(cfg *Config, set processor.Settings) (*auditProcessor, error) {
	prices := pricing.Default()
	if cfg.Pricing.TableFile != "" {
		t, err := pricing.LoadFile(cfg.Pricing.TableFile)
		if err != nil {
			return nil, fmt.Errorf("processors::audit::pricing::table_file: %w", err)
		}
		prices = t
	}
	if len(cfg.Pricing.Overrides) > 0 {
		t, err := prices.WithOverrides(cfg.Pricing.Overrides)
		if err != nil {
			return nil, fmt.Errorf("processors::audit::pricing::overrides: %w", err)
		}
		prices = t
	}
	policies, err := newPolicyEngine(cfg.Policies, cfg.DefaultDecision, set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	dlpCfg := cfg.DLP.Config
	dlpCfg.MaxValueBytes = cfg.Limits.MaxAttributeBytes
	if cfg.DLP.HMACKeyFile != "" {
		if dlpCfg.HMACKey, err = dlp.LoadHMACKey(cfg.DLP.HMACKeyFile); err != nil {
			return nil, fmt.Errorf("processors::audit::dlp::hmac_key_file: %w", err)
		}
	}
	masker, err := dlp.NewMasker(dlpCfg)
	if err != nil {
		return nil, fmt.Errorf("processors::audit::dlp: %w", err)
	}
	p := &auditProcessor{masker: masker, reader: auditschema.NewReader(cfg.AttributeAliases, extraNames[:]...),
		prices: prices, policies: policies, limits: cfg.Limits, logger: set.Logger}
	if p.telemetry, err = metadata.NewTelemetryBuilder(set.TelemetrySettings); err != nil {
		return nil, err
	}
	set.Logger.Info("Audit processor ready", zap.String("price_table", prices.Version()), zap.Int("policies", len(cfg.Policies)))
	return p, nil
}

// Attributes the processor reads that are not the schema's (those it reads with
// auditschema.Reading.Get), found in the same pass over a span's attributes
// (auditschema.Reading.Extra).
const (
	xPolicySource = iota
	xGuardrailDecision
	xGuardrailAction
	xHTTPStatus
	xHTTPStatusOld
	xErrorType
	numExtra
)

var extraNames = [numExtra]string{
	xPolicySource:      auditschema.AttrPolicySource,
	xGuardrailDecision: "gen_ai.guardrail.decision",
	xGuardrailAction:   "gen_ai.guardrail.action",
	xHTTPStatus:        "http.response.status_code",
	xHTTPStatusOld:     "http.status_code",
	xErrorType:         "error.type",
}

// processTraces turns every span into an audit record. It never drops or reorders a
// span; what it cannot use is listed in audit.flags. Spans whose context carries no
// trusted writer's mark (everything from an OTLP receiver) are kept as plain spans, their
// approval attributes as claims (see untrusted).
func (p *auditProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	var flagged int64
	sc := &scratch{span: p.reader.NewReading(), resource: p.reader.NewReading()}
	_, sc.trusted = origin.TrustedWriter(ctx)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		// The resource is checked, masked and read once; what was found in it concerns
		// all its spans.
		res := sanitizer{limits: p.limits, path: sc.path[:0]}
		sc.resource.Reset()
		res.attributes(rs.Resource().Attributes(), "resource.", sc.resource)
		sc.path = res.path
		rc := resourceChecks{flags: res.flags, reading: sc.resource}
		var moved bool
		rc.masked, moved = p.masker.MaskAttributes(rs.Resource().Attributes())
		if moved {
			sc.resource.Read(rs.Resource().Attributes()) // masking moved what was read
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				if p.enrich(ctx, rs, ss, spans.At(k), rc, sc) {
					flagged++
				}
			}
		}
	}
	if flagged > 0 {
		p.telemetry.AuditSpansFlagged.Add(ctx, flagged)
	}
	if sc.masked > 0 {
		p.telemetry.AuditSpansMasked.Add(ctx, sc.masked)
	}
	return td, nil
}

// scratch is what processTraces reuses from span to span of a batch.
type scratch struct {
	span, resource *auditschema.Reading
	path           []pathElem
	masked         int64 // spans in which DLP found something (otelcol_audit_spans_masked)
	trusted        bool  // the batch comes from a trusted writer (internal/origin)
}

// resourceChecks is what checking, masking and reading a span's resource found.
type resourceChecks struct {
	flags   []string
	masked  dlp.Findings
	reading *auditschema.Reading
}

// spanFacts is what the processor reads from a span, taken from one pass over its
// attributes before it writes any: plain values, valid after the map changes.
type spanFacts struct {
	genai                            auditschema.GenAI
	reportedCost                     float64
	hasReportedCost                  bool
	hasRequest, hasResponse          bool
	indexedPrompt, indexedCompletion bool
	prevMasked, hasDLPResult         bool
	record                           bool
	recordType                       string // audit.record_type as the span carries it
	hasCostSource, hasRiskLevel      bool
	hasCategory                      bool
	runtime                          runtimeVerdict
	approval                         recordedApproval
	httpDenied, errorDenied          bool
}

func (p *auditProcessor) readFacts(rd, resource *auditschema.Reading) spanFacts {
	f := spanFacts{
		genai:             rd.GenAI(resource),
		hasRequest:        rd.HasRequest(),
		hasResponse:       rd.HasResponse(),
		indexedPrompt:     rd.HasIndexedPrompt(),
		indexedCompletion: rd.HasIndexedCompletion(),
	}
	f.reportedCost, f.hasReportedCost = rd.ReportedCost()
	if v, ok := rd.Get(auditschema.NameCredentialMasked); ok && v.Type() == pcommon.ValueTypeBool {
		f.prevMasked = v.Bool()
	}
	_, f.hasDLPResult = rd.Get(auditschema.NameDLPResult)
	if v, ok := rd.Get(auditschema.NameRecordType); ok {
		// An audit record that is not an agent call: an event or an approval from the
		// auditevent receiver.
		f.recordType = v.AsString()
		f.record = f.recordType != auditschema.RecordSpan
	}
	_, f.hasCostSource = rd.Get(auditschema.NameCostSource)
	_, f.hasRiskLevel = rd.Get(auditschema.NameRiskLevel)
	_, f.hasCategory = rd.Get(auditschema.NameCategory)
	f.runtime = runtimeDecision(rd)
	f.approval = approvalOf(rd)
	for _, x := range [...]int{xHTTPStatus, xHTTPStatusOld} {
		if v, ok := rd.Extra(x); ok && deniedStatus(v) {
			f.httpDenied = true
		}
	}
	if v, ok := rd.Extra(xErrorType); ok {
		f.errorDenied = deniedError(v)
	}
	return f
}

// deniedStatus reports whether an HTTP status code, as its text, is 401 or 403; an
// integer is compared as a number, so that it is not formatted.
func deniedStatus(v pcommon.Value) bool {
	if v.Type() == pcommon.ValueTypeInt {
		return v.Int() == 401 || v.Int() == 403
	}
	code := v.AsString()
	return code == "401" || code == "403"
}

// enrich writes the audit.* attributes of one span and reports whether it flagged a
// problem with it (otelcol_audit_spans_flagged). Order matters: the span is repaired,
// then masked, and only then are values derived from it, so nothing derived (model, user,
// the policy's view) ever sees an unmasked secret. The attributes are walked once while
// being repaired, recording where the values the processor reads are; masking changes
// values in place, and the attributes are read again only when it removed or moved
// entries.
func (p *auditProcessor) enrich(ctx context.Context, rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, span ptrace.Span, rc resourceChecks, sc *scratch) bool {
	attrs := span.Attributes()
	rd := sc.span
	rd.Reset()
	san := sanitizer{limits: p.limits, flags: slices.Clip(rc.flags), path: sc.path[:0]}
	san.span(span, rd)
	sc.path = san.path
	flags := san.flags
	masked, moved := p.masker.MaskSpan(span)
	if moved {
		rd.Read(attrs) // what was read has moved; values masked in place are read masked
	}
	f := p.readFacts(rd, rc.reading)
	f.genai.StreamTTFT(span)
	// From here on the map changes: rd is not used again.

	// The new attributes in one allocation rather than as the list grows, sized for
	// what this span can receive rather than for the most any span can.
	attrs.EnsureCapacity(attrs.Len() + p.maxWrites(&f))
	if !sc.trusted {
		flags = append(flags, untrusted(attrs, &f)...)
	}
	if p.recordMasking(attrs, masked.Union(rc.masked), &f) {
		sc.masked++
	}
	// Flattened messages (OpenLLMetry's gen_ai.prompt.N.*) become the request and
	// response the trail shows, when the span has them in no other form.
	if !f.hasRequest && f.indexedPrompt {
		if msgs, ok := auditschema.IndexedMessages(attrs, auditschema.PromptPrefix); ok {
			attrs.PutStr(auditschema.AttrRequest, msgs)
		}
	}
	if !f.hasResponse && f.indexedCompletion {
		if msgs, ok := auditschema.IndexedMessages(attrs, auditschema.CompletionPrefix); ok {
			attrs.PutStr(auditschema.AttrResponse, msgs)
		}
	}

	g := f.genai
	// A value is read as text (a map as its JSON) and some are lower-cased: either can
	// take it past the limit the sanitizer applied. Values are read trimmed, so the cut
	// one is too: a second pass reads back exactly what was written.
	for _, v := range [...]*string{&g.Model, &g.Provider, &g.Operation, &g.AgentName, &g.AgentID, &g.UserID, &g.ToolName} {
		if len(*v) > p.limits.MaxAttributeBytes {
			*v = strings.TrimRightFunc(truncate(*v, p.limits.MaxAttributeBytes), unicode.IsSpace)
		}
	}
	g.Put(attrs)
	flags = append(flags, g.Flags...)
	flags = append(flags, p.cost(span, &g, &f)...)

	decision, configured, pflags := p.policy(ctx, rs, ss, span, &f)
	flags = append(flags, pflags...)
	var approval string
	var aflags []string
	if sc.trusted {
		approval, aflags = p.approval(attrs, decision, f.approval)
	} else {
		approval, aflags = p.claimedApproval(attrs, decision, configured, f.approval)
		if f.approval.status == "rejected" || f.approval.status == "timed_out" {
			// The runtime says the call did not go ahead: its result says so, as for a
			// runtime's own block. A claim can only make a call look less successful.
			approval = f.approval.status
		}
	}
	flags = append(flags, aflags...)

	if !f.hasCategory {
		c := classify(span, g.Operation, g.Model, g.ToolName, decision, approval, &f)
		attrs.PutStr(auditschema.AttrCategory, c.category)
		putStr(attrs, auditschema.AttrAction, c.action)
		attrs.PutStr(auditschema.AttrResult, c.result)
	}
	if len(flags) == 0 {
		return false
	}
	appendFlags(attrs, flags, p.limits.MaxAttributeBytes)
	for _, f := range flags {
		if !costFlag(f) {
			return true
		}
	}
	return false
}

// maxWrites bounds how many attributes enrich adds to a span with these facts, following
// what enrich writes below. It only sizes the list: a wrong guess costs a reallocation.
func (p *auditProcessor) maxWrites(f *spanFacts) int {
	g := &f.genai
	n := 2 // audit.dlp.result, audit.credential_masked
	if !f.hasRequest && f.indexedPrompt {
		n++
	}
	if !f.hasResponse && f.indexedCompletion {
		n++
	}
	n += g.Len()
	switch {
	case f.hasReportedCost:
		n += 2 // cost, source
	case g.Model != "":
		n += 3 // cost, source, price table
	}
	n += 2 // audit.policy.decision, audit.policy.source
	if f.runtime.ok || len(p.policies.rules) > 0 {
		n += 3 // audit.policy.violation, audit.policy.rule, audit.risk_level
	}
	n++ // audit.approval.status
	if f.approval.set {
		n++ // audit.approval.claimed_status
	}
	if !f.hasCategory {
		n += 3 // category, action, result
	}
	return n + 1 // audit.flags
}

// costFlag tells the flags that only say why a span has no cost (unknown model, missing
// token counts): informational, not a problem with the span.
func costFlag(f string) bool {
	return f == pricing.FlagUnknownModel || f == pricing.FlagMissingTokens
}

// recordMasking writes audit.dlp.result and audit.credential_masked, and reports whether
// DLP found something (the span counts in otelcol_audit_spans_masked). A span that an
// earlier pass already masked keeps that result: its placeholders are not found again.
func (p *auditProcessor) recordMasking(attrs pcommon.Map, r dlp.Findings, f *spanFacts) bool {
	if !f.hasDLPResult || !r.Empty() {
		attrs.PutStr(auditschema.AttrDLPResult, r.String())
	}
	attrs.PutBool(auditschema.AttrCredentialMasked, f.prevMasked || r.CredentialMasked())
	return !r.Empty()
}

// cost records audit.cost_usd with its source and price table: the cost the span
// already carries (source provider), or tokens × the price at the span's start time
// (computed, or override when the price came from pricing::overrides). Without a known
// model or without the needed token counts there is no cost — NULL, never 0 — and a flag.
func (p *auditProcessor) cost(span ptrace.Span, g *auditschema.GenAI, f *spanFacts) []string {
	attrs := span.Attributes()
	if f.hasReportedCost {
		attrs.PutDouble(auditschema.AttrCostUSD, f.reportedCost)
		if !f.hasCostSource {
			attrs.PutStr(auditschema.AttrCostSource, costProvider)
		}
		return nil
	}
	hasTokens := g.InputTokens != nil || g.OutputTokens != nil
	if g.Model == "" {
		if hasTokens {
			return []string{pricing.FlagUnknownModel}
		}
		return nil
	}
	price, match, ok := p.prices.LookupAt(g.Provider, g.Model, span.StartTimestamp().AsTime())
	if !ok {
		return []string{pricing.FlagUnknownModel}
	}
	usd, ok, missing := price.Cost(pricing.Usage{
		Input: g.InputTokens, Output: g.OutputTokens, CacheRead: g.CacheReadTokens,
		CacheWrite: g.CacheWriteTokens, Reasoning: g.ReasoningTokens,
	})
	if !ok {
		if g.Operation == "execute_tool" || !hasTokens && g.Operation == "invoke_agent" {
			return nil // not a priced call
		}
		return []string{missing}
	}
	attrs.PutDouble(auditschema.AttrCostUSD, usd)
	source := costComputed
	if match.Source == pricing.SourceOverride {
		source = costOverride
	}
	attrs.PutStr(auditschema.AttrCostSource, source)
	attrs.PutStr(auditschema.AttrPriceTable, p.prices.Version())
	return nil
}

// policy records the decision for the span: the runtime's own verdict when the span
// carries one (audit.policy.decision set by the SDK, or gen_ai.guardrail.*), else the
// configured rules'. audit.policy.violation is true when the configured policy is
// stricter than what the runtime did (e.g. a tool call the policy blocks that ran).
// It returns the decision recorded and the configured policy's own (the matched rule's,
// or default_decision).
func (p *auditProcessor) policy(ctx context.Context, rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, span ptrace.Span, f *spanFacts) (string, string, []string) {
	attrs := span.Attributes()
	var flags []string
	v, err := p.policies.evaluate(ctx, rs, ss, span)
	if err != nil {
		p.telemetry.AuditPolicyErrors.Add(ctx, 1)
		p.logger.Debug("A policy condition failed to evaluate", zap.Error(err))
		flags = append(flags, "policy_error")
	}
	if f.record && v.rule == "" {
		v.decision = decisionNone // events and approvals are not agent calls to allow
	}
	decision, source := v.decision, policySourceConfig
	for _, u := range f.runtime.unknown {
		flags = append(flags, "unknown_runtime_decision:"+u)
	}
	if runtime := f.runtime.decision; f.runtime.ok {
		decision, source = runtime, policySourceRuntime
		// v.decision is the matched rule's, or default_decision (none for records).
		attrs.PutBool(auditschema.AttrPolicyViolation, strictness[v.decision] > strictness[runtime])
	} else if v.rule != "" {
		attrs.PutBool(auditschema.AttrPolicyViolation, false)
	}
	attrs.PutStr(auditschema.AttrPolicyDecision, decision)
	attrs.PutStr(auditschema.AttrPolicySource, source)
	putStr(attrs, auditschema.AttrPolicyRule, v.rule)
	if !f.hasRiskLevel {
		putStr(attrs, auditschema.AttrRiskLevel, v.risk)
	}
	return decision, v.decision, flags
}

// recordedApproval is the approval status the runtime recorded on the span.
type recordedApproval struct {
	status string // lower-cased and trimmed
	known  bool   // one of runtimeApprovals
	set    bool
}

func approvalOf(rd *auditschema.Reading) recordedApproval {
	v, ok := rd.Get(auditschema.NameApprovalStatus)
	if !ok {
		return recordedApproval{}
	}
	s := strings.ToLower(strings.TrimSpace(v.AsString()))
	return recordedApproval{status: s, known: contains(runtimeApprovals, s), set: true}
}

// approval records audit.approval.status: what the runtime recorded, else pending for a
// call that requires approval, else not_required. A later decision arriving through the
// auditevent receiver is joined at query time; this span is never rewritten. A recorded
// status that is not understood is replaced, and kept in the flag
// unknown_approval_status:<value>.
func (p *auditProcessor) approval(attrs pcommon.Map, decision string, rec recordedApproval) (string, []string) {
	var flags []string
	if rec.known {
		attrs.PutStr(auditschema.AttrApprovalStatus, rec.status)
		return rec.status, nil
	}
	if rec.set && rec.status != "" && rec.status != "not_required" { // not_required: this processor's own, from an earlier pass
		flags = append(flags, "unknown_approval_status:"+truncate(rec.status, maxFlagValue))
	}
	status := "not_required"
	if decision == decisionRequireApproval {
		status = "pending"
	}
	attrs.PutStr(auditschema.AttrApprovalStatus, status)
	return status, flags
}

// claimedApproval records audit.approval.status of a span from an untrusted sender:
// what the trail knows, which is pending for a call whose recorded decision is
// require_approval and not_required otherwise. Only a decision posted to
// the auditevent receiver, joined at query time, changes it. What the runtime said about
// the approval is kept by untrusted as audit.approval.claimed_status; a claim of
// approved on a call the configured policy gates (require_approval or block) is flagged
// approval_claim_contradicts_policy.
func (p *auditProcessor) claimedApproval(attrs pcommon.Map, decision, configured string, rec recordedApproval) (string, []string) {
	var flags []string
	gated := configured == decisionRequireApproval || configured == decisionBlock
	if rec.status == "approved" && gated {
		flags = append(flags, auditschema.FlagApprovalClaimContradictsPolicy)
	}
	if rec.set && !rec.known && rec.status != "" && rec.status != "not_required" {
		flags = append(flags, "unknown_approval_status:"+truncate(rec.status, maxFlagValue))
	}
	status := "not_required"
	if decision == decisionRequireApproval {
		status = "pending"
	}
	attrs.PutStr(auditschema.AttrApprovalStatus, status)
	return status, flags
}

// claimedNames maps the approval attributes only the auditevent receiver writes to the
// names under which a span from an untrusted sender keeps them, as claims.
var claimedNames = [...][2]string{
	{auditschema.AttrApprovalStatus, auditschema.AttrClaimedApprovalStatus},
	{auditschema.AttrApprover, auditschema.AttrClaimedApprover},
	{auditschema.AttrApprovalReason, auditschema.AttrClaimedApprovalReason},
}

// untrusted applies the trust boundary to a span from an untrusted sender (any OTLP
// client). A record type other than span (approval, access, event or any other) is set
// only by the collector's trusted components: the span stays a plain span, flagged
// untrusted_record_type:<type>. Its approval status, approver and reason are what the
// runtime claims, never a human decision: they move to audit.approval.claimed_*. A
// status of pending or not_required is what this processor itself writes (a span
// processed twice carries it) and is recomputed, not kept as a claim.
func untrusted(attrs pcommon.Map, f *spanFacts) []string {
	var flags []string
	if f.recordType != "" && f.recordType != auditschema.RecordSpan {
		flags = append(flags, auditschema.FlagUntrustedRecordType+truncate(f.recordType, maxFlagValue))
	}
	// OTLP keeps a key given twice, and Map.Remove takes the first only: every
	// occurrence goes, or a second one would stand in for the first.
	for attrs.Remove(auditschema.AttrRecordType) {
	}
	f.record = false
	own := f.approval.status == "pending" || f.approval.status == "not_required"
	for _, n := range claimedNames {
		if n[0] == auditschema.AttrApprovalStatus && own {
			// Rewritten in place by claimedApproval, once it is the only occurrence.
			keepFirst(attrs, n[0])
			continue
		}
		v, ok := attrs.Get(n[0])
		if !ok {
			continue
		}
		claim := pcommon.NewValueEmpty()
		v.CopyTo(claim)
		for attrs.Remove(n[0]) {
		}
		claim.MoveTo(attrs.PutEmpty(n[1]))
	}
	return flags
}

// keepFirst leaves one occurrence of key, the first, when the map holds several.
func keepFirst(attrs pcommon.Map, key string) {
	n := 0
	for k := range attrs.All() {
		if k == key {
			n++
		}
	}
	if n < 2 {
		return
	}
	v, _ := attrs.Get(key)
	first := pcommon.NewValueEmpty()
	v.CopyTo(first)
	for attrs.Remove(key) {
	}
	first.MoveTo(attrs.PutEmpty(key))
}

// appendFlags adds flags to the audit.flags list, keeping what is there (a string is
// split on commas, as the schema reads it; other values in a list become their text).
// A flag is cut to maxBytes, like any attribute value, so a later pass leaves it as is.
func appendFlags(attrs pcommon.Map, add []string, maxBytes int) {
	var flags pcommon.Slice
	if v, ok := attrs.Get(auditschema.AttrFlags); ok && v.Type() == pcommon.ValueTypeSlice {
		flags = v.Slice()
		for i := 0; i < flags.Len(); i++ {
			if f := flags.At(i); f.Type() != pcommon.ValueTypeStr {
				f.SetStr(truncate(f.AsString(), maxBytes))
			}
		}
	} else {
		var old string
		if ok {
			old = v.AsString()
		}
		flags = attrs.PutEmptySlice(auditschema.AttrFlags)
		for _, f := range strings.Split(old, ",") {
			if f != "" {
				flags.AppendEmpty().SetStr(truncate(f, maxBytes))
			}
		}
	}
	have := make(map[string]bool, flags.Len())
	for i := 0; i < flags.Len(); i++ {
		have[flags.At(i).AsString()] = true
	}
	for _, f := range add {
		f = truncate(f, maxBytes)
		if !have[f] {
			have[f] = true
			flags.AppendEmpty().SetStr(f)
		}
	}
}

func putStr(m pcommon.Map, key, v string) {
	if v != "" {
		m.PutStr(key, v)
	}
}
