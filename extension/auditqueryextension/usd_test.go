package auditqueryextension

import (
	"io"
	"math/big"
	"net/http"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

func TestUSDText(t *testing.T) {
	for dec, want := range map[string]usd{
		"0.414000000000": "0.414", "12.000000000000": "12", "0.000000000000": "0",
		"-0.000000000000": "0", "-1.250000000000": "-1.25", "7": "7",
	} {
		assert.Equal(t, want, usdOf(dec), dec)
	}
	for n, want := range map[int64]usd{
		0: "0", 1: "0.000000000001", 11432500000: "0.0114325", 3_000_000_000_000: "3", -2_500_000_000_000: "-2.5",
	} {
		assert.Equal(t, want, usdOfPico(big.NewInt(n)), n)
	}
}

// Costs are answered as the decimals they are, whatever binary rounding a stored double
// carries: a row's cost, a trace's total (summed exactly) and the CSV export.
func TestCostsWithoutFloatArtefacts(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	costs := []float64{0.1, 0.2, 0.011432500000000002} // the last as 1200×2.5e-6 + 340×2.5e-5 sums in float64
	var rows []auditschema.Row
	for i, c := range costs {
		c := c
		rows = append(rows, auditschema.Row{
			IngestTime: start, StartTime: start.Add(time.Duration(i) * time.Second), EndTime: start.Add(time.Duration(i+1) * time.Second),
			TraceID: strings.Repeat("ab", 16), SpanID: strings.Repeat("0", 15) + string(rune('1'+i)), Name: "chat", Kind: "client",
			StatusCode: "ok", RecordType: "span", Category: strp("llm"), CostUSD: &c, Attributes: "{}", ResourceAttributes: "{}",
		})
	}
	writeRowsFile(t, dir, path.Join(auditschema.SpansDir, auditschema.PartitionOf(start), "costs.parquet"), rows)
	base := startExtension(t, dir, nil)

	body := func(u string) string {
		t.Helper()
		resp, err := http.Get(base + u)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		return string(b)
	}
	spans := body("/api/v1/spans")
	assert.Contains(t, spans, `"cost_usd":0.0114325`)
	assert.NotContains(t, spans, "0.011432500000000002")
	trace := body("/api/v1/traces/" + strings.Repeat("ab", 16))
	assert.Contains(t, trace, `"cost_usd":0.3114325`, "0.1 + 0.2 + 0.0114325, not 0.30000000000000004 + …")
	stats := body("/api/v1/stats")
	assert.Contains(t, stats, `"cost_usd":0.3114325`)
	csv := body("/api/v1/export?format=csv")
	assert.Contains(t, csv, ",0.0114325,")
	assert.NotContains(t, csv, "0.011432500000000002")
}
