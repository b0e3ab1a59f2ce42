package pricing

import "math"

// Flags the processor records when it cannot compute a cost; the cost stays NULL.
const (
	// FlagUnknownModel: the model resolves to no table entry and no override.
	FlagUnknownModel = "unknown_model"
	// FlagMissingTokens: the span lacks a token count the cost needs (see [Price.Cost]).
	FlagMissingTokens = "missing_tokens"
)

// Price is what one token of each kind costs, in USD, for one model at one time.
//
// A Has field is false when the table lists no price for that kind of token. How
// such tokens are billed is part of [Price.Cost]: cache tokens without a price of their
// own cost what input tokens cost, reasoning tokens without one cost what output tokens
// cost, and input or output tokens without a price cost nothing (the feed lists free
// models with no prices, and embedding models with no output price).
type Price struct {
	Input, Output, CacheRead, CacheWrite, Reasoning                float64
	HasInput, HasOutput, HasCacheRead, HasCacheWrite, HasReasoning bool
}

// Usage is the token counts of one request, as the GenAI semantic conventions define
// them. A nil count was not reported.
//
//   - Input is gen_ai.usage.input_tokens: ALL input tokens, including those read from
//     and written to the provider's cache.
//   - CacheRead is gen_ai.usage.cache_read.input_tokens and CacheWrite is
//     gen_ai.usage.cache_creation.input_tokens: parts of Input.
//   - Output is gen_ai.usage.output_tokens, including reasoning tokens.
//   - Reasoning is gen_ai.usage.reasoning.output_tokens: a part of Output.
type Usage struct {
	Input, Output, CacheRead, CacheWrite, Reasoning *int64
}

// Cost returns the USD cost of u at price p, or ok=false and the flag to record when it
// cannot be computed.
//
// Input tokens are always needed; output tokens are needed unless the model has no
// output price (embedding models). A nil or negative count of either gives
// [FlagMissingTokens]. Cache and reasoning counts are optional: without them every input
// token is billed at the input price and every output token at the output price.
//
// Because the conventions count cached tokens inside the input count, they are taken out
// of it before pricing, so nothing is billed twice:
//
//	input  = (Input - CacheRead - CacheWrite) × p.Input
//	       + CacheRead × p.CacheRead + CacheWrite × p.CacheWrite
//	output = (Output - Reasoning) × p.Output + Reasoning × p.Reasoning
//
// If the parts exceed their total (CacheRead+CacheWrite > Input, or Reasoning > Output),
// the instrumentation evidently reported the total without them, as Anthropic's API does
// for cache tokens; the total is then billed whole and the parts on top. A part reported
// inside a total cannot otherwise be told from one reported beside it.
func (p Price) Cost(u Usage) (usd float64, ok bool, missing string) {
	if !present(u.Input) || (p.HasOutput && !present(u.Output)) {
		return 0, false, FlagMissingTokens
	}
	in, out := *u.Input, count(u.Output)
	cacheRead, cacheWrite, reasoning := count(u.CacheRead), count(u.CacheWrite), count(u.Reasoning)

	uncached := in - cacheRead - cacheWrite
	if uncached < 0 {
		uncached = in
	}
	plain := out - reasoning
	if plain < 0 {
		plain = out
	}
	usd = float64(uncached)*p.Input +
		float64(cacheRead)*priceOr(p.HasCacheRead, p.CacheRead, p.Input) +
		float64(cacheWrite)*priceOr(p.HasCacheWrite, p.CacheWrite, p.Input) +
		float64(plain)*p.Output +
		float64(reasoning)*priceOr(p.HasReasoning, p.Reasoning, p.Output)
	return roundPico(usd), true, ""
}

// roundPico rounds a cost to 10⁻¹² USD, far below any price's precision: the sum of
// the parts above carries binary rounding (0.011432500000000002 for 0.0114325), which
// would otherwise be stored and shown. An integer divided by the exact 1e12 is the
// double nearest the decimal, which prints as the decimal.
func roundPico(usd float64) float64 {
	return math.Round(usd*1e12) / 1e12
}

func present(n *int64) bool { return n != nil && *n >= 0 }

// count reads an optional count; absent or negative counts count as zero.
func count(n *int64) int64 {
	if n == nil || *n < 0 {
		return 0
	}
	return *n
}

func priceOr(has bool, price, fallback float64) float64 {
	if has {
		return price
	}
	return fallback
}
