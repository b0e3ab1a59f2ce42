package auditschema

import (
	"fmt"
	"time"
)

// SpansDir is the directory, under the data directory, that holds the sealed span files.
const SpansDir = "spans"

// PartitionOf returns the hive partition path ("date=2026-11-22/hour=04") of a row start
// time, in UTC.
func PartitionOf(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("date=%s/hour=%02d", t.Format("2006-01-02"), t.Hour())
}
