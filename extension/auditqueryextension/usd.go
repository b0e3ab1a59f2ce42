package auditqueryextension

import (
	"math"
	"math/big"
	"strings"
)

// usd is an amount of dollars as a decimal numeral, written into JSON as a number: a sum
// of costs keeps every digit it has, with none of the binary rounding a float64 sum
// carries (0.0114325, not 0.011432500000000002).
type usd string

// usdOf is the amount of a decimal numeral, as DuckDB writes a DECIMAL: trailing zeros of
// the fraction dropped.
func usdOf(dec string) usd {
	if strings.IndexByte(dec, '.') >= 0 {
		dec = strings.TrimRight(strings.TrimRight(dec, "0"), ".")
	}
	if dec == "" || dec == "-" || dec == "-0" {
		dec = "0"
	}
	return usd(dec)
}

// MarshalJSON writes the amount as a JSON number.
func (u usd) MarshalJSON() ([]byte, error) { return []byte(u), nil }

// picoUSD is the number of 10⁻¹² dollars nearest to a cost: the precision costs are
// stored and summed with.
func picoUSD(cost float64) *big.Int {
	b, _ := new(big.Float).SetFloat64(math.Round(cost * 1e12)).Int(nil)
	return b
}

// usdOfPico is the amount of n 10⁻¹² dollars.
func usdOfPico(n *big.Int) usd {
	s := new(big.Int).Abs(n).String()
	if len(s) <= 12 {
		s = strings.Repeat("0", 13-len(s)) + s
	}
	s = s[:len(s)-12] + "." + s[len(s)-12:]
	if n.Sign() < 0 {
		s = "-" + s
	}
	return usdOf(s)
}
