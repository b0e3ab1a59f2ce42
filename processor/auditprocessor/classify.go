package auditprocessor

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Categories of audit.category.
const (
	categoryLLM      = "llm"
	categoryTool     = "tool"
	categoryAgent    = "agent"
	categoryPolicy   = "policy"
	categoryApproval = "approval"
	categorySystem   = "system"
)

// operationClass maps a GenAI operation (gen_ai.operation.name, OpenLLMetry
// traceloop.span.kind or OpenInference openinference.span.kind, lower-cased) to the
// category and action of the audit record.
var operationClass = map[string][2]string{
	"chat":             {categoryLLM, "chat.completion"},
	"text_completion":  {categoryLLM, "text.completion"},
	"completion":       {categoryLLM, "text.completion"},
	"generate_content": {categoryLLM, "generate_content"},
	"embeddings":       {categoryLLM, "embeddings"},
	"embedding":        {categoryLLM, "embeddings"},
	"llm":              {categoryLLM, "chat.completion"},
	"rerank":           {categoryLLM, "rerank"},
	"reranker":         {categoryLLM, "rerank"},
	"execute_tool":     {categoryTool, "tool.execute"},
	"tool":             {categoryTool, "tool.execute"},
	"retriever":        {categoryTool, "retrieve"},
	"invoke_agent":     {categoryAgent, "agent.invoke"},
	"create_agent":     {categoryAgent, "agent.create"},
	"agent":            {categoryAgent, "agent.invoke"},
	"workflow":         {categoryAgent, "workflow.run"},
	"chain":            {categoryAgent, "workflow.run"},
	"task":             {categoryAgent, "task.run"},
	"guardrail":        {categoryPolicy, "guardrail.check"},
	"evaluator":        {categorySystem, "evaluate"},
}

// classification is what classify decides for a span.
type classification struct {
	category, action, result string
}

// classify derives category, action and result from the GenAI operation, the tool and
// model present, the span status and the policy outcome. Blocked, denied and failed
// calls are classified like successful ones: every call stays in the trail.
func classify(span ptrace.Span, operation, model, tool, decision, approval string, f *spanFacts) classification {
	var c classification
	if cls, ok := operationClass[operation]; ok {
		c.category, c.action = cls[0], cls[1]
	} else {
		switch {
		case tool != "":
			c.category, c.action = categoryTool, "tool.execute"
		case model != "":
			c.category, c.action = categoryLLM, "chat.completion"
		default:
			c.category = categorySystem
			c.action = operation
			if c.action == "" {
				c.action = strings.ToLower(span.Kind().String())
			}
		}
	}
	c.result = resultOf(span, decision, approval, f)
	return c
}

// resultOf is the outcome of the call: blocked by policy, denied (authorisation failure
// or rejected approval), failed (error status), or success.
func resultOf(span ptrace.Span, decision, approval string, f *spanFacts) string {
	switch {
	case decision == decisionBlock:
		return "blocked"
	case approval == "rejected":
		return "denied"
	case approval == "timed_out":
		return "timed_out"
	case f.httpDenied:
		// Before the status: the HTTP conventions leave a server span's status unset on 4xx.
		return "denied"
	case span.Status().Code() != ptrace.StatusCodeError:
		return "success"
	case f.errorDenied:
		return "denied"
	}
	return "failed"
}

func deniedError(v pcommon.Value) bool {
	s := strings.ToLower(v.AsString())
	for _, w := range []string{"permission", "unauthorized", "unauthorised", "forbidden", "accessdenied", "access_denied"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
