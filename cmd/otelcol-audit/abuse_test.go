package main

import (
	"bytes"
	"compress/gzip"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostileRequest is one request of the abuse corpus.
type hostileRequest struct {
	name, path  string
	contentType string
	// host replaces the Host header; header adds headers, as a browser would send them.
	host    string
	header  map[string]string
	gzipped bool
	// body makes a fresh body; size -1 sends it chunked, without a length.
	body func() io.Reader
	size int64
}

func fixedBody(b []byte) (func() io.Reader, int64) {
	return func() io.Reader { return bytes.NewReader(b) }, int64(len(b))
}

// repeatReader yields n bytes of pattern, again and again.
type repeatReader struct {
	pattern []byte
	n, off  int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	var done int
	for done < len(p) && r.n > 0 {
		k := copy(p[done:], r.pattern[r.off%int64(len(r.pattern)):])
		k = int(min(int64(k), r.n))
		done += k
		r.off += int64(k)
		r.n -= int64(k)
	}
	return done, nil
}

func gzipOf(t *testing.T, r io.Reader) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := io.Copy(zw, r); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// abuseCorpus is the hostile requests for the auditevent receiver and OTLP/HTTP: every
// one must be refused with a 4xx, and none may write anything.
func abuseCorpus(t *testing.T) []hostileRequest {
	t.Helper()
	var c []hostileRequest
	add := func(name, path, contentType string, body []byte) {
		f, n := fixedBody(body)
		c = append(c, hostileRequest{name: name, path: path, contentType: contentType, body: f, size: n})
	}
	const jsonCT, protoCT = "application/json", "application/x-protobuf"
	nested := func(depth int, open, close, leaf string) string {
		return strings.Repeat(open, depth) + leaf + strings.Repeat(close, depth)
	}
	bigString := strings.Repeat("A", 8<<20)
	zeros := gzipOf(t, &repeatReader{pattern: make([]byte, 4096), n: 256 << 20})
	endless := func() io.Reader {
		return &repeatReader{pattern: []byte(`{"category":"auth","action":"login"},`), n: 64 << 20}
	}

	for _, path := range []string{"/v1/events", "/v1/approvals"} {
		add("oversized body "+path, path, jsonCT, []byte(`{"category":"auth","action":"login","description":"`+bigString+`"}`))
		c = append(c, hostileRequest{name: "64 MiB chunked body without length " + path, path: path, contentType: jsonCT,
			body: func() io.Reader { return io.MultiReader(strings.NewReader("["), endless()) }, size: -1})
		f, n := fixedBody(zeros)
		c = append(c, hostileRequest{name: "gzip bomb (256 MiB of zeros) " + path, path: path, contentType: jsonCT, gzipped: true, body: f, size: n})
		add("deeply nested arrays "+path, path, jsonCT, []byte(`{"category":"auth","action":"login","changes":`+nested(100000, "[", "]", "1")+`}`))
		add("deeply nested objects "+path, path, jsonCT, []byte(`{"category":"auth","action":"login","attributes":`+nested(100000, `{"a":`, "}", "1")+`}`))
		add("nesting as the whole body "+path, path, jsonCT, []byte(nested(200000, "[", "]", "")))
		add("too many records "+path, path, jsonCT, []byte("["+strings.TrimSuffix(strings.Repeat(`{"category":"auth","action":"login"},`, 1001), ",")+"]"))
		add("truncated JSON "+path, path, jsonCT, []byte(`{"category":"auth","action":"lo`))
		add("not JSON "+path, path, jsonCT, []byte("\x00\x01\x02 DROP TABLE spans; --"))
		add("empty body "+path, path, jsonCT, nil)
		add("JSON null "+path, path, jsonCT, []byte("null"))
		add("JSON string "+path, path, jsonCT, []byte(`"login"`))
		add("array of numbers "+path, path, jsonCT, []byte(`[1,2,3]`))
		add("empty array "+path, path, jsonCT, []byte(`[]`))
		add("duplicate keys of wrong types "+path, path, jsonCT, []byte(`{"category":"auth","category":{"x":1},"action":"login"}`))
	}
	// What a web page open in a browser on this machine can send: valid records, refused
	// for how they came (see internal/browserguard).
	for path, valid := range map[string]string{
		"/v1/events":    `{"category":"auth","action":"login","actor":{"id":"forged"}}`,
		"/v1/approvals": `{"approval_id":"apr-forged","status":"approved","approver":"attacker@example.com"}`,
	} {
		body, n := fixedBody([]byte(valid))
		c = append(c,
			hostileRequest{name: "valid record as text/plain " + path, path: path, contentType: "text/plain", body: body, size: n},
			hostileRequest{name: "valid record as a form " + path, path: path, contentType: "application/x-www-form-urlencoded", body: body, size: n},
			hostileRequest{name: "valid record without content type " + path, path: path, body: body, size: n},
			hostileRequest{name: "valid record for another host (DNS rebinding) " + path, path: path, contentType: jsonCT, host: "attacker.example", body: body, size: n},
			hostileRequest{name: "valid record from another site " + path, path: path, contentType: jsonCT,
				header: map[string]string{"Origin": "https://attacker.example", "Sec-Fetch-Site": "cross-site"}, body: body, size: n},
			hostileRequest{name: "valid record from another port of this machine " + path, path: path, contentType: jsonCT,
				header: map[string]string{"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-site"}, body: body, size: n},
		)
	}
	for name, body := range map[string]string{
		"category a number":      `{"category":5,"action":"login"}`,
		"action an array":        `{"category":"auth","action":["login"]}`,
		"timestamp a number":     `{"category":"auth","action":"login","timestamp":1795330000}`,
		"timestamp out of range": `{"category":"auth","action":"login","timestamp":"99999-13-45T25:61:61Z"}`,
		"actor a string":         `{"category":"auth","action":"login","actor":"alice"}`,
		"actor id an object":     `{"category":"auth","action":"login","actor":{"id":{"$ne":null}}}`,
		"unknown actor type":     `{"category":"auth","action":"login","actor":{"id":"a","type":"root"}}`,
		"ip an array":            `{"category":"auth","action":"login","ip":["192.0.2.1"]}`,
		"resource a number":      `{"category":"auth","action":"login","resource":7}`,
		"action with SQL":        `{"category":"auth","action":"login'; DROP TABLE spans; --"}`,
		"action with a path":     `{"category":"auth","action":"../../etc/passwd"}`,
		"one bad record of two":  `[{"category":"auth","action":"login"},{"category":"auth","action":7}]`,
		"huge number":            `{"category":"auth","action":"login","timestamp":1e999999}`,
	} {
		add("event: "+name, "/v1/events", jsonCT, []byte(body))
	}
	for name, body := range map[string]string{
		"trace id a number":       `{"trace_id":123,"span_id":"eee19b7ec3c1b174","status":"approved","approver":"m"}`,
		"trace id not hex":        `{"trace_id":"zz8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","status":"approved","approver":"m"}`,
		"all-zero ids":            `{"trace_id":"00000000000000000000000000000000","span_id":"0000000000000000","status":"approved","approver":"m"}`,
		"unknown status":          `{"approval_id":"apr-1","status":"maybe","approver":"m"}`,
		"status a bool":           `{"approval_id":"apr-1","status":true,"approver":"m"}`,
		"no target":               `{"status":"approved","approver":"m"}`,
		"approval id with a path": `{"approval_id":"../../../etc/passwd\u0000","status":"approved","approver":"m"}`,
	} {
		add("approval: "+name, "/v1/approvals", jsonCT, []byte(body))
	}

	// OTLP/HTTP.
	add("OTLP oversized protobuf", "/v1/traces", protoCT, bytes.Repeat([]byte{0x0a, 0xff, 0xff, 0xff, 0x07}, 5<<20))
	f, n := fixedBody(zeros)
	c = append(c, hostileRequest{name: "OTLP gzip bomb", path: "/v1/traces", contentType: protoCT, gzipped: true, body: f, size: n})
	c = append(c, hostileRequest{name: "OTLP 64 MiB chunked JSON", path: "/v1/traces", contentType: jsonCT,
		body: func() io.Reader { return io.MultiReader(strings.NewReader(`{"resourceSpans":[`), endless()) }, size: -1})
	add("OTLP garbage protobuf", "/v1/traces", protoCT, []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	add("OTLP truncated protobuf", "/v1/traces", protoCT, []byte{0x0a, 0x80, 0x01, 0x0a})
	add("OTLP JSON resourceSpans a string", "/v1/traces", jsonCT, []byte(`{"resourceSpans":"x"}`))
	add("OTLP JSON trace id a number", "/v1/traces", jsonCT, []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":123,"spanId":"eee19b7ec3c1b174","name":"x"}]}]}]}`))
	add("OTLP JSON trace id not hex", "/v1/traces", jsonCT, []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"eee19b7ec3c1b174","name":"x"}]}]}]}`))
	add("OTLP JSON start time a word", "/v1/traces", jsonCT, []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","startTimeUnixNano":"soon"}]}]}]}`))
	add("OTLP JSON nesting as the whole body", "/v1/traces", jsonCT, []byte(nested(200000, "[", "]", "")))
	add("OTLP unsupported content type", "/v1/traces", "text/plain", []byte("hello"))
	return c
}

// TestReceiverAbuse sends the abuse corpus to the real collector process, on the
// distribution's default configuration (its listeners and directory moved): every request
// is refused with a 4xx, the collector stays up with bounded memory, and nothing is
// written. Then requests that are hostile but valid are kept, sanitised: invalid UTF-8
// (bad bytes replaced) and deeply nested OTLP attribute values (flattened, flagged
// too_deep); every column of every row reads back. Once, 20 rounds with
// OTELCOL_AUDIT_SOAK.
func TestReceiverAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("the abuse corpus takes a while")
	}
	dataDir := t.TempDir()
	grpcAddr, httpAddr, eventsAddr, queryAddr := freePort(t), freePort(t), freePort(t), freePort(t)
	defaults := filepath.Join(t.TempDir(), "default.yaml")
	if err := os.WriteFile(defaults, []byte(defaultConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	overlay := writeConfig(t, `
receivers:
  otlp:
    protocols:
      grpc: {endpoint: %q}
      http: {endpoint: %q}
  auditevent:
    endpoint: %q
extensions:
  audittrail:
    directory: %q
  auditquery:
    endpoint: %q
service:
  telemetry:
    metrics: {level: none}
`, grpcAddr, httpAddr, eventsAddr, dataDir, queryAddr)
	p := startCollectorProcess(t, []string{defaults, overlay}, filepath.Join(t.TempDir(), "collector.log"), httpAddr, eventsAddr)
	startRSS := p.peakRSS(t)
	client := &http.Client{Timeout: time.Minute}
	send := func(h hostileRequest) (int, error) {
		base := "http://" + eventsAddr
		if h.path == "/v1/traces" {
			base = "http://" + httpAddr
		}
		req, err := http.NewRequest(http.MethodPost, base+h.path, h.body())
		if err != nil {
			return 0, err
		}
		req.ContentLength = h.size
		if h.contentType != "" {
			req.Header.Set("Content-Type", h.contentType)
		}
		if h.host != "" {
			req.Host = h.host
		}
		for k, v := range h.header {
			req.Header.Set(k, v)
		}
		if h.gzipped {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	corpus := abuseCorpus(t)
	peak := startRSS
	rounds := 1
	if soak() {
		rounds = 20
	}
	var mu sync.Mutex
	statuses := map[int]int{}
	var closed int
	check := func(h hostileRequest) {
		code, err := send(h)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil && (h.size > 1<<20 || h.size < 0):
			// The collector may close the connection on an oversized body before the
			// client has written it all; the client then sees no status.
			closed++
		case err != nil:
			t.Errorf("%s: %v", h.name, err)
		case code < 400 || code > 499:
			t.Errorf("%s: status %d, want a 4xx", h.name, code)
		default:
			statuses[code]++
		}
	}
	for round := 0; round < rounds; round++ {
		for _, h := range corpus {
			check(h)
		}
		// The heavy ones again, eight at a time, one kind after the other.
		for _, h := range corpus {
			if h.size >= 0 && h.size < 1<<20 && !h.gzipped {
				continue
			}
			resetPeakRSS(p)
			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() { defer wg.Done(); check(h) }()
			}
			wg.Wait()
			peak = max(peak, p.peakRSS(t))
		}
	}
	select {
	case err := <-p.exited:
		t.Fatalf("the collector exited under abuse: %v\n%s", err, p.logs())
	default:
	}
	peak = max(peak, p.peakRSS(t))
	var codes []string
	for code, n := range statuses {
		codes = append(codes, fmt.Sprintf("%d×%d", n, code))
	}
	sort.Strings(codes)
	t.Logf("%d hostile requests refused (%d kinds × %d rounds, the heavy ones also 8 at a time): statuses %s, %d connections closed mid-body; collector peak RSS %d MiB (%d MiB at start), the heaviest wave 8 requests at the body limit",
		sumValues(statuses)+closed, len(corpus), rounds, strings.Join(codes, " "), closed, peak>>20, startRSS>>20)
	if peak-startRSS > 768<<20 {
		t.Errorf("peak RSS grew by %d MiB under abuse, want under 768 MiB", (peak-startRSS)>>20)
	}

	// Still serving, and what is hostile but valid is kept, sanitised.
	now := time.Now().UnixNano()
	otlpSpan := func(spanID, name, attrs string) string {
		return fmt.Sprintf(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"%s","name":"%s","startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[%s]}]}]}]}`,
			spanID, name, now, now+1000, attrs)
	}
	kept := []hostileRequest{
		{name: "valid event", path: "/v1/events", contentType: "application/json"},
		{name: "event with invalid UTF-8", path: "/v1/events", contentType: "application/json"},
		{name: "OTLP JSON span with invalid UTF-8", path: "/v1/traces", contentType: "application/json"},
		{name: "OTLP JSON attribute nested 100000 deep", path: "/v1/traces", contentType: "application/json"},
		{name: "OTLP protobuf attribute nested 100000 deep", path: "/v1/traces", contentType: "application/x-protobuf"},
		// Overflowed the audit processor's stack before its too-deep subtrees were
		// rendered without recursion. (Near 1.2M levels the upstream pdata decoder
		// overflows first: keep max_request_body_size down where that matters.)
		{name: "OTLP protobuf attribute nested 800000 deep", path: "/v1/traces", contentType: "application/x-protobuf"},
	}
	kept[0].body, kept[0].size = fixedBody([]byte(`{"category":"auth","action":"login","actor":{"id":"after-abuse"}}`))
	kept[1].body, kept[1].size = fixedBody([]byte("{\"category\":\"auth\",\"action\":\"login\",\"actor\":{\"id\":\"mallory\xff\xfe\"},\"description\":\"x\xc3\x28y\"}"))
	kept[2].body, kept[2].size = fixedBody([]byte(otlpSpan("eee19b7ec3c1b174", "bad \xff utf8", "{\"key\":\"user.id\",\"value\":{\"stringValue\":\"mallory\xc3\x28\"}}")))
	kept[3].body, kept[3].size = fixedBody([]byte(otlpSpan("eee19b7ec3c1b175", "deep json",
		`{"key":"k","value":`+strings.Repeat(`{"arrayValue":{"values":[`, 100000)+`{"stringValue":"leaf"}`+strings.Repeat("]}}", 100000)+`}`)))
	kept[4].body, kept[4].size = fixedBody(deepOTLPProtobuf(100000))
	kept[5].body, kept[5].size = fixedBody(deepOTLPProtobuf(800000))
	resetPeakRSS(p)
	for _, h := range kept {
		code, err := send(h)
		if err != nil {
			t.Fatalf("%s: %v\n%s", h.name, err, p.logs())
		}
		if code < 200 || code > 299 {
			t.Errorf("%s: status %d, want it kept", h.name, code)
		}
	}
	t.Logf("%d hostile but valid requests kept; collector peak RSS while keeping them %d MiB", len(kept), p.peakRSS(t)>>20)
	p.stop(t)

	// Only what was kept is in the trail, and every column of every row reads back
	// (DuckDB refuses invalid UTF-8 in a VARCHAR).
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all, err := db.Query(fmt.Sprintf("SELECT * FROM read_parquet('%s')", filepath.Join(dataDir, "spans", "*", "*", "*.parquet")))
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := all.Columns()
	rows := map[string]map[string]any{} // by name
	for all.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := all.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]any{}
		for i, col := range cols {
			row[col] = vals[i]
		}
		rows[fmt.Sprint(row["name"], "/", row["user_id"])] = row
	}
	if err := all.Err(); err != nil {
		t.Fatalf("reading the trail after abuse: %v", err)
	}
	all.Close()
	var names []string
	for name, row := range rows {
		names = append(names, fmt.Sprintf("%s %v", name, row["flags"]))
	}
	sort.Strings(names)
	t.Logf("the trail holds: %s", strings.Join(names, "; "))
	if len(rows) != len(kept) {
		t.Errorf("the trail holds %d rows, want the %d kept", len(rows), len(kept))
	}
	for name, row := range rows {
		if strings.Contains(name, "mallory") && !strings.Contains(name, "mallory\uFFFD") {
			t.Errorf("row %q: invalid UTF-8 not replaced", name)
		}
		if strings.HasPrefix(name, "deep") && !strings.Contains(fmt.Sprint(row["flags"]), "too_deep") {
			t.Errorf("row %q: flags %v, want too_deep", name, row["flags"])
		}
	}
}

// resetPeakRSS makes the collector's VmHWM start again from its current RSS, where the
// kernel allows it, so that each wave of requests reports its own peak.
func resetPeakRSS(p *collectorProcess) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0)
}

func sumValues(m map[int]int) int {
	var n int
	for _, v := range m {
		n += v
	}
	return n
}

// deepOTLPProtobuf is an OTLP/protobuf export request of one span whose attribute value
// nests depth arrays deep, built from the inside out (no recursion).
func deepOTLPProtobuf(depth int) []byte {
	// Encoded back to front: each step prefixes a field tag and the length of what follows.
	buf := make([]byte, 0, depth*12+256)
	rev := func(b ...byte) { // append in reverse, for a back-to-front buffer
		for i := len(b) - 1; i >= 0; i-- {
			buf = append(buf, b[i])
		}
	}
	varint := func(v int) []byte {
		var out []byte
		for v >= 0x80 {
			out = append(out, byte(v)|0x80)
			v >>= 7
		}
		return append(out, byte(v))
	}
	field := func(tag byte, inner int) { // prefix tag+len(inner) to the last inner bytes
		l := varint(inner)
		rev(l...)
		rev(tag)
	}
	rev([]byte("leaf")...)
	field(0x0a, 4) // AnyValue.string_value
	for i := 0; i < depth; i++ {
		field(0x0a, len(buf)) // ArrayValue.values
		field(0x2a, len(buf)) // AnyValue.array_value
	}
	field(0x12, len(buf)) // KeyValue.value
	rev(0x0a, 1, 'k')     // KeyValue.key
	field(0x4a, len(buf)) // Span.attributes
	name := fmt.Sprintf("deep %d", depth)
	rev(append([]byte{0x2a, byte(len(name))}, name...)...)
	rev(append([]byte{0x12, 8}, bytes.Repeat([]byte{0xee}, 8)...)...)
	rev(append([]byte{0x0a, 16}, bytes.Repeat([]byte{0x5b}, 16)...)...)
	field(0x12, len(buf)) // ScopeSpans.spans
	field(0x12, len(buf)) // ResourceSpans.scope_spans
	field(0x0a, len(buf)) // ExportTraceServiceRequest.resource_spans
	for i, j := 0, len(buf)-1; i < j; i, j = i+1, j-1 {
		buf[i], buf[j] = buf[j], buf[i]
	}
	return buf
}
