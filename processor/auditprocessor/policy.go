package auditprocessor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/internal/spancond"
)

// Policy decisions, from least to most restrictive.
const (
	decisionAllow           = "allow"
	decisionRequireApproval = "require_approval"
	decisionBlock           = "block"
	decisionNone            = "none"
)

var strictness = map[string]int{decisionNone: 0, decisionAllow: 1, decisionRequireApproval: 2, decisionBlock: 3}

// PolicyRule is one entry of `policies:`.
type PolicyRule struct {
	// Name identifies the rule in audit.policy.rule.
	Name string `mapstructure:"name"`
	// Condition is an OTTL condition over the span (the language of the filter and
	// transform processors), e.g. attributes["gen_ai.tool.name"] == "refund_payment".
	Condition string `mapstructure:"condition"`
	// Decision is allow, block or require_approval.
	Decision string `mapstructure:"decision"`
	// RiskLevel is recorded in audit.risk_level: low, medium, high or critical.
	RiskLevel string `mapstructure:"risk_level"`
}

var riskLevels = []string{"", "low", "medium", "high", "critical"}

func validDecision(d string) bool {
	return d == decisionAllow || d == decisionRequireApproval || d == decisionBlock
}

// validatePolicies checks every rule, parsing its condition; errors name the rule.
func validatePolicies(rules []PolicyRule, defaultDecision string) error {
	var errs []error
	seen := map[string]bool{}
	for i, r := range rules {
		where := fmt.Sprintf("policies[%d]", i)
		if r.Name != "" {
			where += fmt.Sprintf(" (%s)", r.Name)
		}
		switch {
		case strings.TrimSpace(r.Name) == "":
			errs = append(errs, fmt.Errorf("%s: name must be set", where))
		case seen[r.Name]:
			errs = append(errs, fmt.Errorf("%s: name %q is used by an earlier rule", where, r.Name))
		}
		seen[r.Name] = true
		if !validDecision(r.Decision) {
			errs = append(errs, fmt.Errorf("%s: decision %q must be allow, block or require_approval", where, r.Decision))
		}
		if !contains(riskLevels, r.RiskLevel) {
			errs = append(errs, fmt.Errorf("%s: risk_level %q must be low, medium, high or critical", where, r.RiskLevel))
		}
		if strings.TrimSpace(r.Condition) == "" {
			errs = append(errs, fmt.Errorf("%s: condition must be set, e.g. attributes[\"gen_ai.tool.name\"] == \"refund_payment\"", where))
		} else if err := spancond.Check(r.Condition); err != nil {
			errs = append(errs, fmt.Errorf("%s: condition is not valid OTTL: %w", where, err))
		}
	}
	if !validDecision(defaultDecision) {
		errs = append(errs, fmt.Errorf("default_decision %q must be allow, block or require_approval", defaultDecision))
	}
	return errors.Join(errs...)
}

// policyEngine evaluates the configured rules, first match wins.
type policyEngine struct {
	rules           []PolicyRule
	conds           *spancond.Set
	defaultDecision string
}

func newPolicyEngine(rules []PolicyRule, defaultDecision string, set component.TelemetrySettings) (*policyEngine, error) {
	named := make([]spancond.Named, len(rules))
	for i, r := range rules {
		named[i] = spancond.Named{Name: "policy " + r.Name, Condition: r.Condition}
	}
	conds, err := spancond.Compile(named, set)
	if err != nil {
		return nil, err
	}
	return &policyEngine{rules: rules, conds: conds, defaultDecision: defaultDecision}, nil
}

// verdict is the outcome of the configured policy for one span.
type verdict struct {
	decision, rule, risk string
}

func (pe *policyEngine) evaluate(ctx context.Context, rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, span ptrace.Span) (verdict, error) {
	v := verdict{decision: pe.defaultDecision}
	err := pe.conds.Eval(ctx, rs, ss, span, func(i int) bool {
		r := pe.rules[i]
		v = verdict{decision: r.Decision, rule: r.Name, risk: r.RiskLevel}
		return false // first match wins
	})
	return v, err
}

// runtimeVerdict is a decision the agent runtime recorded itself.
type runtimeVerdict struct {
	decision string
	ok       bool     // false: there is none
	unknown  []string // values present but not understood, key=value
}

// runtimeDecisionNames are the attributes runtimeDecision reads, in order.
var runtimeDecisionNames = [3]string{auditschema.AttrPolicyDecision, extraNames[xGuardrailDecision], extraNames[xGuardrailAction]}

// runtimeDecision reads a decision the agent runtime recorded itself: audit.policy.decision
// set by the SDK, or a GenAI guardrail verdict. Values that are present but not
// understood are listed in unknown (key=value), and the next key is read.
func runtimeDecision(rd *auditschema.Reading) runtimeVerdict {
	var values [3]pcommon.Value
	var found [3]bool
	values[0], found[0] = rd.Get(auditschema.NamePolicyDecision)
	if src, set := rd.Extra(xPolicySource); set && src.Str() == policySourceConfig {
		found[0] = false // the decision is this processor's own, from an earlier pass
	}
	values[1], found[1] = rd.Extra(xGuardrailDecision)
	values[2], found[2] = rd.Extra(xGuardrailAction)
	var r runtimeVerdict
	for i, v := range values {
		if !found[i] {
			continue
		}
		switch d := strings.ToLower(strings.TrimSpace(v.AsString())); d {
		case "allow", "allowed", "pass", "passed", "approve", "approved":
			r.decision, r.ok = decisionAllow, true
		case "block", "blocked", "deny", "denied", "reject", "rejected", "refuse", "refused":
			r.decision, r.ok = decisionBlock, true
		case "require_approval", "approval_required", "escalate", "review", "hold":
			r.decision, r.ok = decisionRequireApproval, true
		default:
			r.unknown = append(r.unknown, runtimeDecisionNames[i]+"="+truncate(d, maxFlagValue))
			continue
		}
		return r
	}
	return r
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
