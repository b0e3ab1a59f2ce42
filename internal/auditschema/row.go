package auditschema

import (
	"time"
)

// SchemaVersion is written into the key/value metadata of every Parquet file
// (MetadataSchemaVersion) so that readers can tell formats apart when the row changes.
// Version 2 (2026-12-04): the attributes document leaves out the audit.* attributes a
// column holds as their only source (see Row.Attributes); the columns are those of
// version 1. Version 3 (2026-12-07) adds the columns session_id, execution_id,
// idempotency_key, resource_type and resource_id (see Row); a row read from an older
// file has them NULL, and its hash is the one it was written with (see AppendRow). A
// file compaction writes carries the version of the code that wrote it; its rows keep
// the documents they were written with, and their hashes.
const (
	SchemaVersion         = "3"
	MetadataSchemaVersion = "otelcol_audit.schema_version"
)

// Row is one record of the audit trail: one span, event, approval or access record. A nil
// pointer is a NULL column: "not known", never zero. The parquet tags are the column
// names used by every reader (the query API's field names too).
type Row struct {
	IngestTime   time.Time `parquet:"ingest_time,timestamp(microsecond)"`
	StartTime    time.Time `parquet:"start_time,timestamp(microsecond)"`
	EndTime      time.Time `parquet:"end_time,timestamp(microsecond)"`
	DurationMs   float64   `parquet:"duration_ms"`
	TraceID      string    `parquet:"trace_id"`
	SpanID       string    `parquet:"span_id"`
	ParentSpanID *string   `parquet:"parent_span_id"`
	Name         string    `parquet:"name,dict"`
	Kind         string    `parquet:"kind,dict"`
	StatusCode   string    `parquet:"status_code,dict"`
	StatusMsg    *string   `parquet:"status_message"`
	ServiceName  *string   `parquet:"service_name,dict"`
	Environment  *string   `parquet:"environment,dict"`
	TenantID     *string   `parquet:"tenant_id,dict"`

	RecordType string  `parquet:"record_type,dict"`
	Category   *string `parquet:"category,dict"`
	Action     *string `parquet:"action,dict"`
	Result     *string `parquet:"result,dict"`
	UserID     *string `parquet:"user_id,dict"`
	UserEmail  *string `parquet:"user_email,dict"`
	IP         *string `parquet:"ip"`
	UserAgent  *string `parquet:"user_agent,dict"`

	AgentName *string `parquet:"agent_name,dict"`
	AgentID   *string `parquet:"agent_id,dict"`
	Operation *string `parquet:"operation,dict"`
	Provider  *string `parquet:"provider,dict"`
	Model     *string `parquet:"model,dict"`
	ToolName  *string `parquet:"tool_name,dict"`

	InputTokens      *int64   `parquet:"input_tokens"`
	OutputTokens     *int64   `parquet:"output_tokens"`
	CacheReadTokens  *int64   `parquet:"cache_read_tokens"`
	CacheWriteTokens *int64   `parquet:"cache_write_tokens"`
	ReasoningTokens  *int64   `parquet:"reasoning_tokens"`
	TTFTMs           *float64 `parquet:"ttft_ms"`
	CostUSD          *float64 `parquet:"cost_usd"`
	CostSource       *string  `parquet:"cost_source,dict"`
	PriceTable       *string  `parquet:"price_table,dict"`

	PolicyDecision   *string `parquet:"policy_decision,dict"`
	PolicyRule       *string `parquet:"policy_rule,dict"`
	PolicyViolation  *bool   `parquet:"policy_violation"`
	ApprovalID       *string `parquet:"approval_id"`
	ApprovalStatus   *string `parquet:"approval_status,dict"`
	Approver         *string `parquet:"approver,dict"`
	ApprovalReason   *string `parquet:"approval_reason"`
	DLPResult        *string `parquet:"dlp_result,dict"`
	CredentialMasked *bool   `parquet:"credential_masked"`
	RiskLevel        *string `parquet:"risk_level,dict"`
	DryRun           *bool   `parquet:"dry_run"`

	// Request and Response hold the (masked) input and output as sent: JSON text when the
	// instrumentation sent JSON, plain text otherwise.
	Request  *string `parquet:"request"`
	Response *string `parquet:"response"`
	// Attributes, ResourceAttributes, Events and Links are JSON documents. Attributes holds
	// every span attribute but the one the request and the one the response came from and
	// the audit.* attributes that are their column's only source and whose column holds
	// exactly their value (same type, same value; see heldColumn): each of those is stored
	// once, in its column. Rows written before schema version 2 repeat them in the document.
	Attributes         string   `parquet:"attributes"`
	ResourceAttributes string   `parquet:"resource_attributes,dict"`
	Events             *string  `parquet:"events"`
	Links              *string  `parquet:"links"`
	Flags              []string `parquet:"flags,list"`
	// SearchText is no longer written: it is empty in new files (where it costs a few
	// bytes per row group). Files written before held the lower-cased text of name,
	// status message, request, response, attributes and events — half of every file's
	// bytes — for free-text search, which now matches those columns themselves,
	// case-insensitively, as fast (see the query extension's README). The column stays so
	// that old and new files read as one table and a row's digest is unchanged.
	SearchText string `parquet:"search_text"`

	// Schema version 3. SessionID, ExecutionID and IdempotencyKey are what a call is
	// looked up by across traces: the conversation, the runtime's run, the key a retried
	// call keeps (see sessionKeys, executionKeys, idempotencyKeys). ResourceType and
	// ResourceID name what an event acted on (the auditevent receiver's resource).
	SessionID      *string `parquet:"session_id,dict"`
	ExecutionID    *string `parquet:"execution_id"`
	IdempotencyKey *string `parquet:"idempotency_key"`
	ResourceType   *string `parquet:"resource_type,dict"`
	ResourceID     *string `parquet:"resource_id"`
}

// Columns lists the column names in schema order.
var Columns = []string{
	"ingest_time", "start_time", "end_time", "duration_ms", "trace_id", "span_id",
	"parent_span_id", "name", "kind", "status_code", "status_message", "service_name",
	"environment", "tenant_id", "record_type", "category", "action", "result", "user_id",
	"user_email", "ip", "user_agent", "agent_name", "agent_id", "operation", "provider",
	"model", "tool_name", "input_tokens", "output_tokens", "cache_read_tokens",
	"cache_write_tokens", "reasoning_tokens", "ttft_ms", "cost_usd", "cost_source",
	"price_table", "policy_decision", "policy_rule", "policy_violation", "approval_id",
	"approval_status", "approver", "approval_reason", "dlp_result", "credential_masked",
	"risk_level", "dry_run", "request", "response", "attributes", "resource_attributes",
	"events", "links", "flags", "search_text",
	"session_id", "execution_id", "idempotency_key", "resource_type", "resource_id",
}

// ColumnsV3 are the columns schema version 3 added: files written before lack them.
var ColumnsV3 = Columns[len(Columns)-5:]

// JSONColumns are the string columns that hold JSON documents.
var JSONColumns = map[string]bool{
	"attributes": true, "resource_attributes": true, "events": true, "links": true,
}
