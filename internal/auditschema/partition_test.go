package auditschema

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The partition path is written by PartitionOf and read back by PartitionHour alone: every
// hour round-trips, whatever the time's zone; anything else is not a partition.
func TestPartitionRoundTrip(t *testing.T) {
	nyc, err := time.LoadLocation("America/New_York")
	if err != nil {
		nyc = time.FixedZone("UTC-5", -5*3600)
	}
	for _, at := range []time.Time{
		time.Date(2026, 11, 22, 4, 59, 59, 999, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 31, 23, 30, 0, 0, nyc), // 2027-01-01 04:30 UTC
	} {
		p := PartitionOf(at)
		hour, ok := PartitionHour(p)
		assert.True(t, ok, p)
		assert.Equal(t, at.UTC().Truncate(time.Hour), hour, p)
		assert.Equal(t, p, PartitionOfPath(SpansDir+"/"+p+"/w-000001.parquet"))
		assert.Equal(t, p, PartitionOfPath("/data/"+SpansDir+"/"+p+"/w-000001.parquet"))
	}
	assert.Equal(t, "date=2027-01-01/hour=04", PartitionOf(time.Date(2026, 12, 31, 23, 30, 0, 0, nyc)))
	for _, bad := range []string{"", "date=2026-11-22", "date=2026-11-22/hour=4", "date=2026-11-22/hour=24",
		"date=2026-13-01/hour=00", "hour=04/date=2026-11-22", "date=2026-11-22/hour=04/x"} {
		_, ok := PartitionHour(bad)
		assert.False(t, ok, bad)
	}
	assert.Empty(t, PartitionOfPath("w-000001.parquet"))
}
