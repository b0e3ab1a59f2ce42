package auditschema

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPlace(t *testing.T) {
	ingest := time.Date(2026, 11, 22, 4, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		start time.Time
		far   bool
	}{
		{"an hour late", ingest.Add(-time.Hour), false},
		{"just within a day", ingest.Add(-FarPast), false},
		{"more than a day late", ingest.Add(-FarPast - time.Microsecond), true},
		{"start time 0", time.Unix(0, 0).UTC(), true},
		{"a clock a little ahead", ingest.Add(FarFuture), false},
		{"the year 2262", time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Row{StartTime: tc.start, IngestTime: ingest, Flags: []string{"x"}}
			got := Place(&r)
			assert.True(t, r.StartTime.Equal(tc.start), "the start time is kept")
			assert.True(t, got.Equal(PartitionTime(&r)), "Place and PartitionTime agree")
			if tc.far {
				assert.True(t, got.Equal(ingest))
				assert.Equal(t, []string{"x", FlagFarFromIngest}, r.Flags)
				Place(&r)
				assert.Equal(t, []string{"x", FlagFarFromIngest}, r.Flags, "flagged once")
			} else {
				assert.True(t, got.Equal(tc.start))
				assert.Equal(t, []string{"x"}, r.Flags)
			}
		})
	}
}

func TestDemoteRecordType(t *testing.T) {
	r := Row{RecordType: RecordApproval, Flags: []string{"x"}}
	DemoteRecordType(&r)
	assert.Equal(t, RecordSpan, r.RecordType)
	assert.Equal(t, []string{"x", FlagUntrustedRecordType + "approval"}, r.Flags)
	span := Row{RecordType: RecordSpan}
	DemoteRecordType(&span)
	assert.Empty(t, span.Flags)
}
