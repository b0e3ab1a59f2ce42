package auditqueryextension

import (
	"net/http"

	"github.com/otelaudit/otelcol-audit/internal/httpjson"
)

// openAPI is the OpenAPI 3 description of this API, served at /api/v1/openapi.json. The
// search parameters come from the same tables the parser uses.
func openAPI() map[string]any {
	searchParams := []any{}
	for _, p := range equalityParams {
		schema := map[string]any{"type": "string"}
		if p.allowed != nil {
			schema["enum"] = p.allowed
		}
		desc := "matches the " + p.column + " column; repeat to match any of several values"
		if isContextColumn[p.column] {
			desc = "matches the effective " + p.column + ": the span's own, else its run's (the nearest ancestor in its trace that has one, named in context_source); repeat to match any of several values"
		}
		searchParams = append(searchParams, queryParam(p.param, desc, schema, true))
	}
	descriptions := map[string]string{
		"q":         "free text, case-insensitive, over name, status message, request, response, attributes, events, category, action, result, model, tool_name, agent_name, user_id, policy_rule, approver, approval_reason, dlp_result, risk_level, session_id, execution_id, idempotency_key, resource_type and resource_id",
		"verb":      "a word of the action or the tool name: words are separated by . _ : / - or a space, in any case, or are the words of a camel-case name, so verb=delete matches document.delete, delete_document, DELETE_DOCUMENT, deleteDocument and bulkDeleteDocuments (not undelete or DELETED); repeat to match any of several",
		"dry_run":   "dry_run is true or false",
		"from":      "RFC 3339 time: start_time >= from",
		"to":        "RFC 3339 time: start_time < to",
		"last":      "instead of from: a duration such as 1h, 24h, 7d, 30d",
		"min_cost":  "cost_usd >= min_cost (USD)",
		"max_cost":  "cost_usd <= max_cost (USD)",
		"violation": "policy_violation is true or false",
		"dlp":       "clean or flagged",
		"flag":      "a flag of the row, by name (duplicate_conflict, start_time_far_from_ingest, untrusted_record_type) or in full (untrusted_record_type:approval); repeat to match any of several",
		"sort":      "time (default), cost, latency or tokens",
		"order":     "desc (default) or asc",
		"limit":     "rows per page (default 100)",
		"cursor":    "the next_cursor of the previous page",
	}
	for _, name := range otherParams {
		searchParams = append(searchParams, queryParam(name, descriptions[name], map[string]any{"type": "string"}, name == "q"))
	}
	jsonResponse := func(desc string) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
	}
	errors := map[string]any{
		"400": jsonResponse(`bad parameter: {"error": "..."} naming it`),
		"401": jsonResponse("no or bad credentials (with an authenticator configured)"),
		"403": jsonResponse("the caller's role does not allow this, or a page of another site sent the request"),
		"421": jsonResponse("the Host header is no name of this endpoint (allowed_hosts)"),
		"503": jsonResponse("query timed out, the engine is unavailable, the read could not be recorded in the trail, or (with Retry-After) the tables reads join are still being built after a start"),
	}
	const notJSON = "the body was not sent as Content-Type: application/json"
	op := func(summary string, params []any, ok string) map[string]any {
		responses := map[string]any{"200": jsonResponse(ok)}
		for k, v := range errors {
			responses[k] = v
		}
		return map[string]any{"get": map[string]any{"summary": summary, "parameters": params, "responses": responses}}
	}
	formats := []string{"csv", "json", "jsonl", "xlsx", "parquet"}
	formatParam := map[string]any{"name": "format", "in": "query", "required": true, "description": "csv, json, jsonl, xlsx or parquet",
		"schema": map[string]any{"type": "string", "enum": formats}}
	jobID := pathParam("id", "the job id (32 hex digits)")
	waitParam := queryParam("wait", "when the export is (or becomes) a job: wait up to this long (a duration such as 90s or 5m, at most 10m) for it to finish and answer its file; still running then: 202 with the job and Retry-After", map[string]any{"type": "string"}, false)
	jobShape := `{"id":...,"status":"queued|running|done|failed|expired","rows_written":n,"rows_expected":n,"sha256":...,"download_url":...,"provenance":{"tree_size":n,"root_hash":...,"file_count":n,"files_sha256":...,"rows":n,"sha256":...,...} once done}`
	traceID := pathParam("trace_id", "32 hex digits")
	spanID := pathParam("span_id", "16 hex digits")
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":   "otelcol-audit query API",
			"version": "1",
			"description": "Search, inspect, replay and verify the audit trail written by the auditparquet exporter. " +
				"Errors are JSON {\"error\": \"...\"}, a method a path does not take (405, with Allow) included.",
		},
		"paths": map[string]any{
			"/healthz":                           op("liveness of the query engine", []any{}, `{"status":"ok"}`),
			"/api/v1/spans":                      op("search the trail, newest first; agent_name, agent_id, user_id, user_email and tenant_id are a span's effective context: its own, else its run's", searchParams, `{"spans":[...],"total":n,"next_cursor":...} (+ skipped_file_count, skipped_files when unreadable files were left out); a span inheriting context has context_source: {"user_id":"<span id it comes from>",...}, null when every value is its own`),
			"/api/v1/spans/{trace_id}/{span_id}": op("one span in full, with its approval record and where its inherited context comes from (context_source)", []any{traceID, spanID}, `{"span":{...,"context_source":{"agent_name":"<span id>","user_id":"<span id>",...}|null}}`),
			"/api/v1/traces/{trace_id}":          op("replay of one agent run with totals", []any{traceID}, `{"trace_id":...,"spans":[...],"totals":{...}}`),
			"/api/v1/stats":                      op("totals, rates and breakdowns for the same filters as the search; for an admin also the trail's completeness per filing hour of from..to (default: the last 48 hours), from the ledger's signed tallies, whatever the other filters", searchParams, `{"total":{...},"by_model":[...],...,"completeness":{"from":...,"to":...,"accepted":n,"refused":{"back_pressure":n,"invalid":n,...},"stored":n,"expected":n,"hours":[{"hour":...,"accepted":{"span":n,"event":n},"refused":{...},"stored":n,"expected":n,"removed_by_retention":bool}]}}`),
			"/api/v1/export": withResponse(op("every row the filters select, streamed as CSV, JSON, JSON lines, XLSX or Parquet; trailers give the row count, the SHA-256 and the trail state it was read from (X-Audit-Export-Tree-Size, X-Audit-Export-Root-Hash, X-Audit-Export-Provenance: base64 of the provenance JSON for auditctl export verify)",
				append([]any{formatParam, waitParam}, searchParams...), "the rows"), "202", jsonResponse("over exports::max_direct_rows (and not done within wait): an export job (see /api/v1/exports/{id}); Location names it")),
			"/api/v1/exports": map[string]any{"get": op("the caller's export jobs, newest first: every job for an admin, its own for a member or tenant admin", []any{}, `{"jobs":[`+jobShape+`,...]}`)["get"], "post": map[string]any{
				"summary":    "start an export job of every row the filters select",
				"parameters": []any{waitParam},
				"requestBody": map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{
					"schema": map[string]any{"type": "object", "required": []string{"format"},
						"properties": map[string]any{
							"format":  map[string]any{"type": "string", "enum": formats},
							"name":    map[string]any{"type": "string"},
							"filters": map[string]any{"type": "object", "description": "search parameters: a string or an array of strings each"},
						}}}}},
				"responses": merge(errors, map[string]any{"200": map[string]any{"description": "with wait: the job's file, done in time"}, "202": jsonResponse(jobShape), "415": jsonResponse(notJSON), "429": jsonResponse("too many jobs waiting; Retry-After says when to try again"),
					"507": jsonResponse("the files of export jobs take exports::max_bytes_per_caller or exports::max_bytes_total; the error names which")}),
			}},
			"/api/v1/exports/{id}": op("an export job's status and progress", []any{jobID}, jobShape),
			"/api/v1/exports/{id}/download": withResponse(op("a finished export job's file (409 while running, 410 once expired)", []any{jobID, waitParam}, "the file"),
				"202", jsonResponse("with wait: the job, still running when the wait ended; Retry-After says when to try again")),
			"/api/v1/verify":       op("verify the trail against its signed ledger: the full report for an admin, the verdict for a member or tenant admin", []any{}, `{"intact":true,"findings":[...],...} or {"intact":true,"checked_at":"..."}`),
			"/api/v1/openapi.json": op("this document", []any{}, "OpenAPI 3 document"),
			"/api/v1/query": map[string]any{"post": map[string]any{
				"summary": "one read-only SELECT over the views spans, events, approvals and access",
				"requestBody": map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{
					"schema": map[string]any{"type": "object", "required": []string{"sql"},
						"properties": map[string]any{"sql": map[string]any{"type": "string"}}}}}},
				"responses": map[string]any{
					"200": jsonResponse(`{"columns":[...],"rows":[[...]],"truncated":false}; text/csv with Accept: text/csv`),
					"400": jsonResponse("not a single SELECT, a function outside the allow-list or a relation other than the views (named in the error), or stopped past sql_process_memory"),
					"415": jsonResponse(notJSON),
					"503": errors["503"],
				},
			}},
		},
	}
}

func withResponse(path map[string]any, status string, resp any) map[string]any {
	path["get"].(map[string]any)["responses"].(map[string]any)[status] = resp
	return path
}

func merge(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func queryParam(name, desc string, schema map[string]any, repeatable bool) map[string]any {
	p := map[string]any{"name": name, "in": "query", "description": desc, "schema": schema}
	if repeatable {
		p["schema"] = map[string]any{"type": "array", "items": schema}
		p["style"], p["explode"] = "form", true
	}
	return p
}

func pathParam(name, desc string) map[string]any {
	return map[string]any{"name": name, "in": "path", "required": true, "description": desc, "schema": map[string]any{"type": "string"}}
}

func (e *queryExtension) handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	httpjson.Write(w, http.StatusOK, openAPI())
}
