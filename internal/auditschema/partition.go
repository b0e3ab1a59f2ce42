package auditschema

import (
	"strings"
	"time"
)

// partitionLayout is the hive partition path of an hour, as a time layout: PartitionOf
// writes it and PartitionHour reads it, the only code that does either.
const partitionLayout = "date=2006-01-02/hour=15"

// PartitionOf returns the hive partition path ("date=2026-11-22/hour=04") of a row start
// time, in UTC.
func PartitionOf(t time.Time) string {
	return t.UTC().Format(partitionLayout)
}

// PartitionHour parses a partition path ("date=2026-11-22/hour=04") into the hour whose
// rows it holds, in UTC; false when p is not one (as PartitionOf writes it).
func PartitionHour(p string) (time.Time, bool) {
	t, err := time.Parse(partitionLayout, p)
	if err != nil || t.Format(partitionLayout) != p { // time.Parse also takes "hour=4"
		return time.Time{}, false
	}
	return t.UTC(), true
}

// PartitionOfPath returns the partition ("date=…/hour=…") of a sealed file's path
// ("spans/date=…/hour=…/name", slash-separated, relative or not): the two directories
// above its name, "" when it has fewer.
func PartitionOfPath(path string) string {
	parts := strings.Split(path, "/")
	if len(parts) < 3 {
		return ""
	}
	return strings.Join(parts[len(parts)-3:len(parts)-1], "/")
}
