package auditeventreceiver

import (
	"net/http"
	"testing"
	"time"
)

func FuzzDecodeEvents(f *testing.F) {
	for _, seed := range []string{
		loginEvent,
		`{"action": "login"}`,
		`[{"action": "login"}, {"action": "logout", "actor": {"type": "service"}}]`,
		`[{"action": "login"}, {"action": 7}]`,
		`{"action": null}`,
		`{"action": "login", "timestamp": "0001-01-01T00:00:00Z"}`,
		`{"action": "login", "attributes": {"audit.x": 1, "n": 1.5, "l": [1, {"a": null}]}}`,
		`[null]`,
		`null`,
		`[]`,
		`{`,
		``,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		const maxEvents = 5
		events, rej := decodeEvents(body, now, maxEvents, 128)
		if rej != nil {
			if events != nil {
				t.Fatalf("rejected (%v) but returned %d events", rej.problems, len(events))
			}
			if rej.status != http.StatusBadRequest && rej.status != http.StatusRequestEntityTooLarge {
				t.Fatalf("rejection status %d", rej.status)
			}
			if len(rej.problems) == 0 {
				t.Fatal("rejection names no problem")
			}
			return
		}
		if len(events) == 0 || len(events) > maxEvents {
			t.Fatalf("accepted %d events", len(events))
		}
		for i, ev := range events {
			if ev.Action == "" {
				t.Fatalf("event %d accepted without an action", i)
			}
			if ev.Timestamp.IsZero() {
				t.Fatalf("event %d accepted without a timestamp", i)
			}
		}
		// Whatever was accepted must turn into spans without panicking, one per event.
		td, ids := toTraces(events)
		if td.SpanCount() != len(events) || len(ids) != len(events) {
			t.Fatalf("%d events became %d spans and %d ids", len(events), td.SpanCount(), len(ids))
		}
	})
}
