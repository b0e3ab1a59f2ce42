package audittrailextension

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelaudit/otelcol-audit/internal/ledger"
	"github.com/otelaudit/otelcol-audit/internal/origin"
)

// The ledger's tallies count every row sealed as accepted in its filing hour, every row
// refused under back-pressure, and the refusals noted by a writer that refused records
// before they reached the trail; the trail then verifies complete.
func TestTalliesCountAcceptedAndRefused(t *testing.T) {
	dir := t.TempDir()
	e := startedTrail(t, dir, func(c *Config) {
		c.MaxFileRows = 10
		c.MaxFileAge = time.Hour
		c.Compaction.Enabled = false
	})
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	e.sealMu.Lock() // sealing lags: nothing is sealed while held
	require.NoError(t, e.pushTraces(ctx, spansAt(now, 10, 1)))
	e.mu.Lock()
	require.NoError(t, e.rotateLocked())
	e.mu.Unlock()
	require.NoError(t, e.pushTraces(ctx, spansAt(now, 10, 2)))
	err := e.pushTraces(ctx, spansAt(now, 3, 3))
	require.True(t, errors.Is(err, errBackPressure), "push with 20 rows waiting = %v", err)
	e.sealMu.Unlock()

	refusedAt := time.Date(2026, 11, 22, 4, 30, 0, 0, time.UTC)
	e.NoteRefusal(origin.Refusal{RecordType: "event", Reason: "invalid", Records: 2, At: refusedAt})
	require.NoError(t, e.Shutdown(ctx))

	rep, err := ledger.Verify(dir, ledger.VerifyOptions{})
	require.NoError(t, err)
	require.True(t, rep.Intact, "findings: %v", rep.Findings)
	byHour := map[time.Time]ledger.HourCompleteness{}
	for _, h := range rep.Completeness {
		byHour[h.Hour] = h
	}
	assert.Equal(t, map[string]int64{"span": 20}, byHour[now].Accepted)
	assert.Equal(t, map[string]int64{refusedBackPressure: 3}, byHour[now].Refused)
	assert.Equal(t, int64(20), byHour[now].Stored)
	assert.Equal(t, map[string]int64{"invalid": 2}, byHour[refusedAt.Truncate(time.Hour)].Refused)
}
