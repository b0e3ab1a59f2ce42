package auditeventreceiver

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelaudit/otelcol-audit/internal/auditschema"
	"github.com/otelaudit/otelcol-audit/receiver/auditeventreceiver/internal/metadata"
)

// event is one audit event as accepted on POST /v1/events.
type event struct {
	Timestamp   time.Time
	Service     string
	Category    string
	Action      string
	Result      string
	ActorID     string
	ActorEmail  string
	ActorType   string
	Resource    map[string]string
	Description string
	IP          string
	UserAgent   string
	TenantID    string
	Reason      string
	Changes     map[string]any
	Request     map[string]any
	Response    any
	Attributes  map[string]any
}

var (
	wordPattern   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	actionPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*([.:-][a-z0-9_]+)*$`)
	actorTypes    = []string{"user", "service", "system"}
)

// fieldErrors collects every problem of a request, each naming its field.
type fieldErrors []string

func (fe *fieldErrors) add(field, format string, args ...any) {
	*fe = append(*fe, field+": "+fmt.Sprintf(format, args...))
}

// rejection is why a request was refused: its HTTP status and every problem found.
type rejection struct {
	status   int
	problems fieldErrors
	// records is how many records the refused request held (1 when it could not be split).
	records int
}

func reject(status int, problems ...string) *rejection {
	return &rejection{status: status, problems: problems}
}

// decodeEvents parses a body holding one event object or an array of them. It returns
// every problem found, each prefixed with the field (and array index) it concerns; when
// any is found, no event is returned, so nothing of a bad request is written.
func decodeEvents(body []byte, now time.Time, maxEvents, maxAttributes int) ([]event, *rejection) {
	return decodeBatch(body, "event", maxEvents, func(raw json.RawMessage, prefix string) (event, fieldErrors) {
		return decodeEvent(raw, now, prefix, maxAttributes)
	})
}

// decodeBatch splits a body holding one JSON object or an array of them (at most max)
// and decodes each with decode; any problem rejects the whole batch.
func decodeBatch[T any](body []byte, what string, max int, decode func(json.RawMessage, string) (T, fieldErrors)) ([]T, *rejection) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, reject(http.StatusBadRequest, fmt.Sprintf("body: empty; send a JSON %s object or an array of them", what))
	}
	var raws []json.RawMessage
	if body[0] == '[' {
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, reject(http.StatusBadRequest, "body: "+jsonProblem(err))
		}
		if len(raws) == 0 {
			return nil, reject(http.StatusBadRequest, fmt.Sprintf("body: the array holds no %s", what))
		}
	} else {
		raws = []json.RawMessage{body}
	}
	if len(raws) > max {
		rej := reject(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("body: %d %ss in one request, at most %d (max_events)", len(raws), what, max))
		rej.records = len(raws)
		return nil, rej
	}
	var errs fieldErrors
	out := make([]T, 0, len(raws))
	for i, raw := range raws {
		prefix := ""
		if body[0] == '[' {
			prefix = fmt.Sprintf("[%d].", i)
		}
		v, vErrs := decode(raw, prefix)
		errs = append(errs, vErrs...)
		out = append(out, v)
	}
	if len(errs) > 0 {
		return nil, &rejection{status: http.StatusBadRequest, problems: errs, records: len(raws)}
	}
	return out, nil
}

func decodeEvent(raw json.RawMessage, now time.Time, prefix string, maxAttributes int) (event, fieldErrors) {
	var errs fieldErrors
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return event{}, fieldErrors{strings.TrimSuffix(prefix, ".") + bodyName(prefix) + ": " + jsonProblem(err)}
	}
	ev := event{Timestamp: now}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := fields[k]
		f := prefix + k
		switch k {
		case "timestamp":
			var s string
			if decodeInto(v, &s, f, "an RFC 3339 time string", &errs) {
				if t, ok := parseEventTime(s, f, &errs); ok {
					ev.Timestamp = t
				}
			}
		case "service":
			decodeInto(v, &ev.Service, f, "a string", &errs)
		case "category":
			if decodeInto(v, &ev.Category, f, "a string", &errs) && !wordPattern.MatchString(ev.Category) {
				errs.add(f, "%q must be one lower-case word, e.g. auth, team, billing, settings, policy", ev.Category)
			}
		case "action":
			if decodeInto(v, &ev.Action, f, "a string", &errs) && !actionPattern.MatchString(ev.Action) {
				errs.add(f, "%q must be lower-case words joined by '.', e.g. login, role.change, policy.update", ev.Action)
			}
		case "result":
			if decodeInto(v, &ev.Result, f, "a string", &errs) && !wordPattern.MatchString(ev.Result) {
				errs.add(f, "%q must be one lower-case word, e.g. success, failed, denied", ev.Result)
			}
		case "actor":
			decodeActor(v, f, &ev, &errs)
		case "resource":
			if decodeInto(v, &ev.Resource, f, "an object of strings, e.g. {\"type\": \"role\", \"id\": \"admin\"}", &errs) {
				for rk := range ev.Resource {
					if rk != "type" && rk != "id" {
						errs.add(f+"."+rk, "unknown field; resource has type and id")
					}
				}
			}
		case "description":
			decodeInto(v, &ev.Description, f, "a string", &errs)
		case "ip":
			decodeInto(v, &ev.IP, f, "a string", &errs)
		case "user_agent":
			decodeInto(v, &ev.UserAgent, f, "a string", &errs)
		case "tenant_id":
			decodeInto(v, &ev.TenantID, f, "a string", &errs)
		case "reason":
			decodeInto(v, &ev.Reason, f, "a string", &errs)
		case "changes":
			decodeInto(v, &ev.Changes, f, "an object, e.g. {\"role\": {\"old\": \"member\", \"new\": \"admin\"}}", &errs)
		case "request":
			decodeInto(v, &ev.Request, f, "an object with method, path and body", &errs)
		case "response":
			decodeInto(v, &ev.Response, f, "any JSON value", &errs)
		case "attributes":
			if decodeInto(v, &ev.Attributes, f, "an object", &errs) {
				if len(ev.Attributes) > maxAttributes {
					errs.add(f, "%d attributes, at most %d (max_attributes)", len(ev.Attributes), maxAttributes)
				}
				for ak := range ev.Attributes {
					if strings.HasPrefix(ak, "audit.") {
						errs.add(f+"."+ak, "the audit.* namespace is reserved for the trail itself")
					}
				}
			}
		default:
			errs.add(f, "unknown field")
		}
	}
	// A null action is as absent as a missing one (decodeInto leaves it empty).
	if a, ok := fields["action"]; !ok || bytes.Equal(bytes.TrimSpace(a), []byte("null")) {
		errs.add(prefix+"action", "required, e.g. \"login\"")
	}
	return ev, errs
}

// parseEventTime reads an RFC 3339 time that a span timestamp can hold.
func parseEventTime(s, field string, errs *fieldErrors) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	switch {
	case err != nil:
		errs.add(field, "%q is not an RFC 3339 time, e.g. 2026-11-22T04:05:06Z", s)
		return t, false
	case !pcommon.NewTimestampFromTime(t).AsTime().Equal(t):
		// A span timestamp is nanoseconds since 1970 in 64 bits; outside 1678..2262
		// it would silently wrap to another time.
		errs.add(field, "%q is out of range", s)
		return t, false
	}
	return t, true
}

func bodyName(prefix string) string {
	if prefix == "" {
		return "body"
	}
	return ""
}

func decodeActor(v json.RawMessage, f string, ev *event, errs *fieldErrors) {
	var actor map[string]json.RawMessage
	if !decodeInto(v, &actor, f, "an object with id, email and type", errs) {
		return
	}
	for k, av := range actor {
		switch k {
		case "id":
			decodeInto(av, &ev.ActorID, f+".id", "a string", errs)
		case "email":
			decodeInto(av, &ev.ActorEmail, f+".email", "a string", errs)
		case "type":
			if decodeInto(av, &ev.ActorType, f+".type", "a string", errs) && !contains(actorTypes, ev.ActorType) {
				errs.add(f+".type", "%q is not one of user, service, system", ev.ActorType)
			}
		default:
			errs.add(f+"."+k, "unknown field; actor has id, email and type")
		}
	}
}

// decodeInto decodes v into dst, recording a type problem under field; null leaves dst.
func decodeInto(v json.RawMessage, dst any, field, want string, errs *fieldErrors) bool {
	if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return false
	}
	if err := json.Unmarshal(v, dst); err != nil {
		errs.add(field, "must be %s", want)
		return false
	}
	return true
}

func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		return fmt.Sprintf("must be a JSON object (or an array of objects), got %s", typ.Value)
	default:
		return "malformed JSON: " + err.Error()
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// An event sent without a category is stored under categoryUncategorized and flagged
// flagMissingCategory.
const (
	categoryUncategorized = "uncategorized"
	flagMissingCategory   = "missing_category"
)

// eventID names an accepted event by the ids of the span that carries it.
type eventID struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
}

// toTraces turns events into one span each (record_type=event, start = end = timestamp),
// so the audit processor and the exporter treat them like any span.
func toTraces(events []event) (ptrace.Traces, []eventID) {
	td := ptrace.NewTraces()
	ids := make([]eventID, 0, len(events))
	byService := map[string]ptrace.SpanSlice{}
	for _, ev := range events {
		service := ev.Service
		if service == "" {
			service = "auditevent"
		}
		spans, ok := byService[service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr(auditschema.AttrServiceName, service)
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(metadata.ScopeName)
			spans = ss.Spans()
			byService[service] = spans
		}
		span := newRecordSpan(spans, pcommon.TraceID{}, ev.Action, ev.Timestamp)
		a := span.Attributes()
		// Free-form attributes first, so that the event's own fields win over a
		// same-named attribute (an attribute cannot pose as the actor or the IP).
		putAttributes(a, ev.Attributes)
		a.PutStr(auditschema.AttrRecordType, auditschema.RecordEvent)
		a.PutStr(auditschema.AttrAction, ev.Action)
		if ev.Category == "" {
			// An audit record without a category would be classified like an
			// uninstrumented span, its action and result replaced; it keeps them, under
			// a category that says so and a flag.
			a.PutStr(auditschema.AttrCategory, categoryUncategorized)
			a.PutEmptySlice(auditschema.AttrFlags).AppendEmpty().SetStr(flagMissingCategory)
		} else {
			a.PutStr(auditschema.AttrCategory, ev.Category)
		}
		putStr(a, auditschema.AttrResult, ev.Result)
		putStr(a, auditschema.AttrUserID, ev.ActorID)
		putStr(a, auditschema.AttrUserEmail, ev.ActorEmail)
		putStr(a, auditschema.AttrActorType, ev.ActorType)
		putStr(a, auditschema.AttrResourceType, ev.Resource["type"])
		putStr(a, auditschema.AttrResourceID, ev.Resource["id"])
		putStr(a, auditschema.AttrDescription, ev.Description)
		putStr(a, auditschema.AttrClientAddr, ev.IP)
		putStr(a, auditschema.AttrUserAgent, ev.UserAgent)
		putStr(a, auditschema.AttrTenantID, ev.TenantID)
		putStr(a, auditschema.AttrReason, ev.Reason)
		putRaw(a, auditschema.AttrChanges, ev.Changes)
		putRaw(a, auditschema.AttrRequest, ev.Request)
		putRaw(a, auditschema.AttrResponse, ev.Response)
		ids = append(ids, eventID{TraceID: span.TraceID().String(), SpanID: span.SpanID().String()})
	}
	return td, ids
}

// newRecordSpan appends the span of an audit record that happened at one instant (start
// = end = at), with a new span id, in trace tid (a new trace when tid is empty).
func newRecordSpan(spans ptrace.SpanSlice, tid pcommon.TraceID, name string, at time.Time) ptrace.Span {
	span := spans.AppendEmpty()
	if tid.IsEmpty() {
		_, _ = rand.Read(tid[:])
	}
	var sid pcommon.SpanID
	_, _ = rand.Read(sid[:])
	span.SetTraceID(tid)
	span.SetSpanID(sid)
	span.SetName(name)
	span.SetKind(ptrace.SpanKindInternal)
	ts := pcommon.NewTimestampFromTime(at)
	span.SetStartTimestamp(ts)
	span.SetEndTimestamp(ts)
	return span
}

func putStr(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

// putAttributes fills the empty map m with the decoded JSON object attrs, leaving out null
// and empty-object values. FromRaw appends the keys without looking each one up (a JSON
// object's keys are already unique), where a Put per key compares it with every key
// before it: n² comparisons for n attributes.
func putAttributes(m pcommon.Map, attrs map[string]any) {
	for k, v := range attrs {
		if skipped(v) {
			delete(attrs, k)
		}
	}
	// A decoded JSON object holds only the types FromRaw takes: it cannot fail.
	_ = m.FromRaw(wholeNumbersAsInts(attrs).(map[string]any))
}

// putRaw stores a decoded JSON value as an attribute, keeping maps and arrays structured
// (so masking by key name reaches nested fields) and whole numbers as integers.
func putRaw(m pcommon.Map, k string, v any) {
	if skipped(v) {
		return
	}
	// A decoded JSON value holds only the types FromRaw takes: it cannot fail.
	_ = m.PutEmpty(k).FromRaw(wholeNumbersAsInts(v))
}

// skipped says whether a decoded JSON value stores nothing: null or an empty object.
func skipped(v any) bool {
	mv, isMap := v.(map[string]any)
	return v == nil || (isMap && len(mv) == 0)
}

// wholeNumbersAsInts replaces, in place, the whole numbers of a decoded JSON value that a
// float64 holds exactly by int64s, so that 3 is stored as the integer it was sent as.
func wholeNumbersAsInts(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = wholeNumbersAsInts(e)
		}
	case []any:
		for i, e := range x {
			x[i] = wholeNumbersAsInts(e)
		}
	}
	return v
}
