// Package auditschema is the row schema of the audit trail: the column names, the Go row
// type written to Parquet, and the mapping from an OpenTelemetry span to a row. It is the
// only package that knows both span attribute names and column names.
package auditschema

// Attributes written by the audit components, in the audit.* namespace. The processor and
// the event receiver set them; FromSpan reads them before any raw instrumentation name.
const (
	AttrRecordType       = "audit.record_type"
	AttrCategory         = "audit.category"
	AttrAction           = "audit.action"
	AttrResult           = "audit.result"
	AttrModel            = "audit.model"
	AttrProvider         = "audit.provider"
	AttrOperation        = "audit.operation"
	AttrAgentName        = "audit.agent.name"
	AttrAgentID          = "audit.agent.id"
	AttrUserID           = "audit.user.id"
	AttrToolName         = "audit.tool.name"
	AttrInputTokens      = "audit.usage.input_tokens"
	AttrOutputTokens     = "audit.usage.output_tokens"
	AttrCacheReadTokens  = "audit.usage.cache_read_tokens"
	AttrCacheWriteTokens = "audit.usage.cache_write_tokens"
	AttrReasoningTokens  = "audit.usage.reasoning_tokens"
	AttrTTFTMs           = "audit.ttft_ms"
	AttrCostUSD          = "audit.cost_usd"
	AttrCostSource       = "audit.cost.source"
	AttrPriceTable       = "audit.price_table"
	AttrPolicyDecision   = "audit.policy.decision"
	AttrPolicyRule       = "audit.policy.rule"
	AttrPolicyViolation  = "audit.policy.violation"
	AttrPolicySource     = "audit.policy.source"
	AttrApprovalID       = "audit.approval.id"
	AttrApprovalStatus   = "audit.approval.status"
	AttrApprover         = "audit.approval.approver"
	AttrApprovalReason   = "audit.approval.reason"
	AttrDLPResult        = "audit.dlp.result"
	AttrCredentialMasked = "audit.credential_masked"
	AttrRiskLevel        = "audit.risk_level"
	AttrDryRun           = "audit.dry_run"
	AttrRequest          = "audit.request"
	AttrResponse         = "audit.response"
	AttrFlags            = "audit.flags"
	AttrTenantID         = "audit.tenant_id"
	AttrSessionID        = "audit.session.id"
	AttrExecutionID      = "audit.execution.id"
	AttrIdempotencyKey   = "audit.idempotency_key"

	// Event-only attributes set by the auditevent receiver.
	AttrActorType    = "audit.actor.type"
	AttrResourceType = "audit.resource.type"
	AttrResourceID   = "audit.resource.id"
	AttrDescription  = "audit.description"
	AttrReason       = "audit.reason"
	AttrChanges      = "audit.changes"
)

// Standard OpenTelemetry attribute names the schema reads for context columns.
const (
	AttrServiceName = "service.name"
	AttrUserEmail   = "user.email"
	AttrClientAddr  = "client.address"
	AttrUserAgent   = "user_agent.original"
	AttrTenantStd   = "tenant.id"
)

// Record types of the record_type column.
const (
	RecordSpan     = "span"
	RecordEvent    = "event"
	RecordApproval = "approval"
	RecordAccess   = "access"
)

// Precedence lists: for each canonical value, the attribute names that may carry it, the
// first present wins. The audit.* name comes first so that a value the processor already
// resolved is never resolved again differently; after it, the current GenAI semantic
// conventions, then their deprecated names, then OpenInference and OpenLLMetry names.
var (
	modelKeys = []string{AttrModel, "gen_ai.response.model", "gen_ai.request.model",
		"llm.model_name", "embedding.model_name", "llm.response.model", "llm.request.model"}
	providerKeys = []string{AttrProvider, "gen_ai.provider.name", "gen_ai.system",
		"llm.provider", "llm.system"}
	operationKeys = []string{AttrOperation, "gen_ai.operation.name", "llm.request.type",
		"traceloop.span.kind", "openinference.span.kind"}
	agentNameKeys = []string{AttrAgentName, "gen_ai.agent.name", "agent.name"}
	agentIDKeys   = []string{AttrAgentID, "gen_ai.agent.id", "agent.id"}
	userIDKeys    = []string{AttrUserID, "user.id", "enduser.id", "gen_ai.user.id"}
	toolNameKeys  = []string{AttrToolName, "gen_ai.tool.name", "tool.name"}

	inputTokenKeys = []string{AttrInputTokens, "gen_ai.usage.input_tokens",
		"gen_ai.usage.prompt_tokens", "llm.token_count.prompt", "llm.usage.prompt_tokens"}
	outputTokenKeys = []string{AttrOutputTokens, "gen_ai.usage.output_tokens",
		"gen_ai.usage.completion_tokens", "llm.token_count.completion", "llm.usage.completion_tokens"}
	cacheReadTokenKeys = []string{AttrCacheReadTokens, "gen_ai.usage.cache_read.input_tokens",
		"gen_ai.usage.cache_read_input_tokens", "llm.token_count.prompt_details.cache_read"}
	cacheWriteTokenKeys = []string{AttrCacheWriteTokens, "gen_ai.usage.cache_creation.input_tokens",
		"gen_ai.usage.cache_creation_input_tokens", "llm.token_count.prompt_details.cache_write"}
	reasoningTokenKeys = []string{AttrReasoningTokens, "gen_ai.usage.reasoning.output_tokens",
		"gen_ai.usage.reasoning_tokens", "llm.token_count.completion_details.reasoning"}

	// Time to first token: audit.ttft_ms in milliseconds; the others in seconds (see
	// ttftSeconds). gen_ai.response.time_to_first_chunk is the GenAI conventions' span
	// attribute (semantic-conventions model/gen-ai registry, now in
	// semantic-conventions-genai); gen_ai.server.time_to_first_token is their metric's
	// name, which OpenLIT also sets on the span (openlit semcov GEN_AI_SERVER_TTFT).
	ttftKeys = []string{AttrTTFTMs, "gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token"}

	costKeys     = []string{AttrCostUSD, "gen_ai.usage.cost", "llm.cost.total"}
	requestKeys  = []string{AttrRequest, "gen_ai.input.messages", "gen_ai.tool.call.arguments", "gen_ai.prompt", "input.value", "traceloop.entity.input"}
	responseKeys = []string{AttrResponse, "gen_ai.output.messages", "gen_ai.tool.call.result", "gen_ai.completion", "output.value", "traceloop.entity.output"}

	tenantKeys = []string{AttrTenantID, AttrTenantStd}

	// The conversation or session a call belongs to: the GenAI conventions'
	// gen_ai.conversation.id, OpenInference's session.id, the session_id association
	// property of OpenLLMetry (Traceloop.set_association_properties) and Langfuse's.
	sessionKeys = []string{AttrSessionID, "gen_ai.conversation.id", "session.id",
		"traceloop.association.properties.session_id", "langfuse.session.id"}
	// The run of a workflow or agent runtime a call was made in (execution.id: the
	// runtime's own id of one run, which a retry of the run keeps).
	executionKeys = []string{AttrExecutionID, "execution.id"}
	// The idempotency key a call was made with: an agent runtime's, or the request's
	// Idempotency-Key header as the HTTP conventions capture it (a list of the header's
	// values, of which the first is read).
	idempotencyKeys = []string{AttrIdempotencyKey, "idempotency.key", "http.request.header.idempotency-key"}
	environmentKeys = []string{"deployment.environment.name", "deployment.environment"}
)
