package auditqueryextension

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/otelaudit/otelcol-audit/extension/audittrailextension"
	"github.com/otelaudit/otelcol-audit/internal/auditschema"
)

// testRow is the part of a row the tests filter and page on.
type testRow struct {
	start        string // RFC 3339
	trace, span  string
	model, agent string
	user         string
}

// fixture spans two days and five hour partitions, with several rows sharing a start
// time (and two sharing a trace) so that paging has to break ties.
var fixture = []testRow{
	{"2026-11-21T22:10:00Z", "0a", "01", "gpt-4o", "planner", "alice"},
	{"2026-11-21T22:10:00Z", "0b", "02", "claude-sonnet-4", "planner", "bob"},
	{"2026-11-21T23:59:59.999999Z", "0c", "03", "gpt-4o", "researcher", "alice"},
	{"2026-11-22T00:00:00Z", "0d", "04", "claude-sonnet-4", "researcher", "carol"},
	{"2026-11-22T00:30:00Z", "0e", "05", "gpt-4o", "planner", "bob"},
	{"2026-11-22T01:00:00Z", "0f", "06", "", "", "alice"},
	{"2026-11-22T01:00:00Z", "10", "07", "gpt-4o", "coder", "carol"},
	{"2026-11-22T01:00:00Z", "10", "08", "claude-sonnet-4", "coder", "alice"},
	{"2026-11-22T01:45:00.123456Z", "11", "09", "gemini-2.5-pro", "planner", "dave"},
	{"2026-11-22T02:00:00Z", "12", "0a", "gpt-4o", "coder", "bob"},
}

func (r testRow) traceID() string { return fmt.Sprintf("%032s", r.trace) }
func (r testRow) spanID() string  { return fmt.Sprintf("%016s", r.span) }
func (r testRow) key() string     { return r.traceID() + "/" + r.spanID() }
func (r testRow) startTime() time.Time {
	t, err := time.Parse(time.RFC3339Nano, r.start)
	if err != nil {
		panic(err)
	}
	return t
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (r testRow) row() auditschema.Row {
	start := r.startTime()
	rec := auditschema.RecordSpan
	if r.model == "" {
		rec = auditschema.RecordEvent
	}
	return auditschema.Row{
		IngestTime:         start.Add(time.Second),
		StartTime:          start,
		EndTime:            start.Add(250 * time.Millisecond),
		DurationMs:         250,
		TraceID:            r.traceID(),
		SpanID:             r.spanID(),
		Name:               "chat " + r.model,
		Kind:               "client",
		StatusCode:         "ok",
		ServiceName:        strp("agents"),
		RecordType:         rec,
		UserID:             strp(r.user),
		AgentName:          strp(r.agent),
		Model:              strp(r.model),
		Attributes:         `{"gen_ai.request.model":"` + r.model + `"}`,
		ResourceAttributes: `{"service.name":"agents"}`,
	}
}

// writeFixture writes rows as the exporter lays them out: one Parquet file per hour
// partition, except that every partition's rows are split over two files when split is
// set, so that a query has to union files within a partition too.
func writeFixture(t *testing.T, dir string, rows []testRow, split bool) {
	t.Helper()
	parts := map[string][]auditschema.Row{}
	for _, r := range rows {
		row := r.row()
		p := auditschema.PartitionOf(row.StartTime)
		parts[p] = append(parts[p], row)
	}
	for p, prows := range parts {
		chunks := [][]auditschema.Row{prows}
		if split && len(prows) > 1 {
			chunks = [][]auditschema.Row{prows[:1], prows[1:]}
		}
		for i, chunk := range chunks {
			writeRowsFile(t, dir, path.Join(auditschema.SpansDir, p, fmt.Sprintf("test-%06d.parquet", i+1)), chunk)
		}
	}
}

// newestFirst returns the keys of rows in the API's order: start time, trace id and span
// id, all descending.
func newestFirst(rows []testRow) []string {
	sorted := append([]testRow(nil), rows...)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if !a.startTime().Equal(b.startTime()) {
			return a.startTime().After(b.startTime())
		}
		if a.traceID() != b.traceID() {
			return a.traceID() > b.traceID()
		}
		return a.spanID() > b.spanID()
	})
	keys := make([]string, len(sorted))
	for i, r := range sorted {
		keys[i] = r.key()
	}
	return keys
}

func where(rows []testRow, keep func(testRow) bool) []testRow {
	var out []testRow
	for _, r := range rows {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func freeEndpoint(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startExtension starts the real extension over dir and returns its base URL.
func startExtension(t testing.TB, dir string, mutate func(*Config)) string {
	t.Helper()
	base, _ := runExtension(t, dir, componenttest.NewNopHost(), mutate)
	return base
}

// writers are the trails startWriter started, by data directory.
var writers sync.Map

// startTrail starts a real audittrail extension on dir, named audittrail, stopped at
// cleanup.
func startTrail(t testing.TB, dir string, tune func(*audittrailextension.Config)) extension.Extension {
	t.Helper()
	f := audittrailextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*audittrailextension.Config)
	cfg.Directory, cfg.WriterID = dir, "test"
	if tune != nil {
		tune(cfg)
	}
	require.NoError(t, cfg.Validate())
	set := extensiontest.NewNopSettings(f.Type())
	set.ID = component.NewID(f.Type())
	ext, err := f.Create(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { assert.NoError(t, ext.Shutdown(context.Background())) })
	return ext
}

// withTrail is host with the trail of dir as its audittrail extension: the writer
// startWriter started on dir, or else a read-only trail (these tests write their files
// directly).
func withTrail(t testing.TB, host component.Host, dir string) hostWith {
	t.Helper()
	exts := hostWith{}
	for id, ext := range host.GetExtensions() {
		exts[id] = ext
	}
	trail, ok := writers.Load(dir)
	if !ok {
		trail = startTrail(t, dir, func(c *audittrailextension.Config) { c.ReadOnly = true })
		// A read-only trail's reader keeps its own files in the user's cache directory:
		// the test's own.
		if os.Getenv("XDG_CACHE_HOME") == "" || !strings.HasPrefix(os.Getenv("XDG_CACHE_HOME"), os.TempDir()) {
			t.Setenv("XDG_CACHE_HOME", t.TempDir())
		}
	}
	exts[component.MustNewID("audittrail")] = trail.(component.Component)
	return exts
}

// runExtension starts the real extension over dir with host's extensions and returns
// its base URL and a function that shuts it down (also run at cleanup).
func runExtension(t testing.TB, dir string, host component.Host, mutate func(*Config)) (string, func()) {
	t.Helper()
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = freeEndpoint(t)
	cfg.MemoryLimit = "256MB"
	// These tests write their trail files directly, read through a read-only trail;
	// access_test.go runs the extension on a trail it writes (startWriter).
	cfg.RecordAccess = false
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(componentType), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), withTrail(t, host, dir)))
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			assert.NoError(t, ext.Shutdown(ctx))
		})
	}
	t.Cleanup(stop)
	base := "http://" + cfg.ServerConfig.NetAddr.Endpoint

	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			// Behind an authenticator the health check answers 401: the server is up.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return base, stop
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("extension at %s not healthy: %v", base, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type spansPage struct {
	Spans      []map[string]any `json:"spans"`
	NextCursor *string          `json:"next_cursor"`
}

func getJSON(t *testing.T, u string, out any) int {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.NoErrorf(t, json.Unmarshal(body, out), "body %q", body)
	return resp.StatusCode
}

func searchKeys(t *testing.T, base string, q url.Values) ([]string, spansPage) {
	t.Helper()
	var page spansPage
	status := getJSON(t, base+"/api/v1/spans?"+q.Encode(), &page)
	require.Equal(t, http.StatusOK, status, "query %s", q.Encode())
	keys := make([]string, 0, len(page.Spans))
	for _, s := range page.Spans {
		keys = append(keys, s["trace_id"].(string)+"/"+s["span_id"].(string))
	}
	return keys, page
}

func TestHealth(t *testing.T) {
	base := startExtension(t, t.TempDir(), nil)
	var body map[string]string
	assert.Equal(t, http.StatusOK, getJSON(t, base+"/healthz", &body))
	assert.Equal(t, "ok", body["status"])
}

func TestSearchSpans(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, true)
	base := startExtension(t, dir, nil)

	t.Run("all newest first", func(t *testing.T) {
		keys, page := searchKeys(t, base, url.Values{})
		assert.Equal(t, newestFirst(fixture), keys)
		assert.Nil(t, page.NextCursor)

		newest := page.Spans[0]
		assert.Equal(t, "2026-11-22T02:00:00Z", newest["start_time"])
		assert.Equal(t, "2026-11-22T02:00:00.25Z", newest["end_time"])
		assert.Equal(t, "gpt-4o", newest["model"])
		assert.Equal(t, "coder", newest["agent_name"])
		assert.Equal(t, "bob", newest["user_id"])
		// JSON document columns are embedded as JSON, not as strings.
		assert.Equal(t, map[string]any{"gen_ai.request.model": "gpt-4o"}, newest["attributes"])
		assert.NotContains(t, newest, "search_text")

		// Microseconds survive the round trip.
		var found bool
		for _, s := range page.Spans {
			if s["span_id"] == fixture[8].spanID() {
				found = true
				assert.Equal(t, "2026-11-22T01:45:00.123456Z", s["start_time"])
			}
		}
		assert.True(t, found)
		// A NULL column is null, not an empty string.
		for _, s := range page.Spans {
			if s["span_id"] == fixture[5].spanID() {
				assert.Nil(t, s["model"])
				assert.Equal(t, auditschema.RecordEvent, s["record_type"])
			}
		}
	})

	for _, tc := range []struct {
		name  string
		query url.Values
		keep  func(testRow) bool
	}{
		{"model", url.Values{"model": {"gpt-4o"}}, func(r testRow) bool { return r.model == "gpt-4o" }},
		{"models ORed", url.Values{"model": {"gpt-4o", "gemini-2.5-pro"}}, func(r testRow) bool {
			return r.model == "gpt-4o" || r.model == "gemini-2.5-pro"
		}},
		{"agent", url.Values{"agent": {"coder"}}, func(r testRow) bool { return r.agent == "coder" }},
		{"users ORed", url.Values{"user": {"alice", "dave"}}, func(r testRow) bool { return r.user == "alice" || r.user == "dave" }},
		{"fields ANDed", url.Values{"model": {"gpt-4o"}, "user": {"alice"}}, func(r testRow) bool {
			return r.model == "gpt-4o" && r.user == "alice"
		}},
		{"unknown model", url.Values{"model": {"no-such-model"}}, func(testRow) bool { return false }},
		{"window: from inclusive, to exclusive", url.Values{"from": {"2026-11-22T00:00:00Z"}, "to": {"2026-11-22T01:00:00Z"}},
			func(r testRow) bool {
				return !r.startTime().Before(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)) &&
					r.startTime().Before(time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC))
			}},
		{"window across midnight", url.Values{"from": {"2026-11-21T23:00:00Z"}, "to": {"2026-11-22T00:30:00Z"}},
			func(r testRow) bool {
				return !r.startTime().Before(time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC)) &&
					r.startTime().Before(time.Date(2026, 11, 22, 0, 30, 0, 0, time.UTC))
			}},
		{"window in another time zone", url.Values{"from": {"2026-11-22T02:00:00+01:00"}},
			func(r testRow) bool { return !r.startTime().Before(time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)) }},
		{"from only", url.Values{"from": {"2026-11-22T01:00:00Z"}},
			func(r testRow) bool { return !r.startTime().Before(time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)) }},
		{"to only", url.Values{"to": {"2026-11-22T00:00:00Z"}},
			func(r testRow) bool { return r.startTime().Before(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)) }},
		{"window and filter", url.Values{"from": {"2026-11-22T00:00:00Z"}, "agent": {"planner"}},
			func(r testRow) bool {
				return r.agent == "planner" && !r.startTime().Before(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := newestFirst(where(fixture, tc.keep))
			keys, page := searchKeys(t, base, tc.query)
			if len(want) == 0 {
				assert.Empty(t, keys)
				assert.NotNil(t, page.Spans, "an empty result is [], not null")
			} else {
				assert.Equal(t, want, keys)
			}
			assert.Nil(t, page.NextCursor)
		})
	}
}

func TestPagination(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, false)
	base := startExtension(t, dir, nil)

	for _, tc := range []struct {
		name  string
		limit int
		query url.Values
		keep  func(testRow) bool
	}{
		{"limit 1", 1, url.Values{}, func(testRow) bool { return true }},
		{"limit 2", 2, url.Values{}, func(testRow) bool { return true }},
		{"limit 3", 3, url.Values{}, func(testRow) bool { return true }},
		{"limit equal to the total", len(fixture), url.Values{}, func(testRow) bool { return true }},
		{"filtered", 1, url.Values{"user": {"alice"}}, func(r testRow) bool { return r.user == "alice" }},
		{"windowed", 2, url.Values{"from": {"2026-11-21T23:00:00Z"}, "to": {"2026-11-22T01:30:00Z"}},
			func(r testRow) bool {
				return !r.startTime().Before(time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC)) &&
					r.startTime().Before(time.Date(2026, 11, 22, 1, 30, 0, 0, time.UTC))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := newestFirst(where(fixture, tc.keep))
			var got []string
			seen := map[string]int{}
			q := tc.query
			q.Set("limit", fmt.Sprint(tc.limit))
			for pages := 0; ; pages++ {
				require.Less(t, pages, len(fixture)+2, "paging does not terminate")
				keys, page := searchKeys(t, base, q)
				require.LessOrEqual(t, len(keys), tc.limit)
				for _, k := range keys {
					seen[k]++
				}
				got = append(got, keys...)
				if page.NextCursor == nil {
					break
				}
				require.Len(t, keys, tc.limit, "only the last page may be short")
				q.Set("cursor", *page.NextCursor)
			}
			for k, n := range seen {
				assert.Equalf(t, 1, n, "row %s visited %d times", k, n)
			}
			assert.Equal(t, want, got, "every row exactly once, newest first")
		})
	}
}

func TestBadParameters(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture[:2], false)
	base := startExtension(t, dir, func(c *Config) { c.MaxLimit = 50 })

	notCursor := base64.RawURLEncoding.EncodeToString([]byte(`{"x": 1}`))
	for _, tc := range []struct {
		query url.Values
		param string
	}{
		{url.Values{"limit": {"abc"}}, "limit"},
		{url.Values{"limit": {"0"}}, "limit"},
		{url.Values{"limit": {"-3"}}, "limit"},
		{url.Values{"limit": {"51"}}, "limit"},
		{url.Values{"from": {"yesterday"}}, "from"},
		{url.Values{"from": {"2026-11-22"}}, "from"},
		{url.Values{"to": {"2026-13-01T00:00:00Z"}}, "to"},
		{url.Values{"cursor": {"!!not base64!!"}}, "cursor"},
		{url.Values{"cursor": {notCursor}}, "cursor"},
		{url.Values{"cursor": {base64.RawURLEncoding.EncodeToString([]byte("not json"))}}, "cursor"},
	} {
		t.Run(tc.query.Encode(), func(t *testing.T) {
			var body map[string]any
			status := getJSON(t, base+"/api/v1/spans?"+tc.query.Encode(), &body)
			assert.Equal(t, http.StatusBadRequest, status)
			msg, ok := body["error"].(string)
			require.Truef(t, ok, "no error text in %v", body)
			assert.Containsf(t, msg, tc.param+":", "the error names the parameter")
			assert.NotContains(t, body, "spans")
		})
	}

	// The limit bound itself is accepted.
	keys, _ := searchKeys(t, base, url.Values{"limit": {"50"}})
	assert.Len(t, keys, 2)
}

func TestEmptyDataDirectory(t *testing.T) {
	t.Run("no spans directory", func(t *testing.T) {
		base := startExtension(t, t.TempDir(), nil)
		keys, page := searchKeys(t, base, url.Values{})
		assert.Empty(t, keys)
		assert.NotNil(t, page.Spans)
		assert.Nil(t, page.NextCursor)
	})
	t.Run("empty partitions", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(dir, auditschema.SpansDir, "date=2026-11-22", "hour=04"), 0o755))
		base := startExtension(t, dir, nil)
		keys, page := searchKeys(t, base, url.Values{"model": {"gpt-4o"}, "from": {"2026-11-22T00:00:00Z"}})
		assert.Empty(t, keys)
		assert.NotNil(t, page.Spans)
	})
}

func TestStartFailsWhenPortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()

	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = ln.Addr().String()
	cfg.RecordAccess = false
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(componentType), cfg)
	require.NoError(t, err)
	err = ext.Start(context.Background(), withTrail(t, componenttest.NewNopHost(), t.TempDir()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), ln.Addr().String())
	assert.NoError(t, ext.Shutdown(context.Background()))
}

// A second Shutdown, after a start, does nothing.
func TestShutdownTwice(t *testing.T) {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.ServerConfig.NetAddr.Endpoint = freeEndpoint(t)
	cfg.RecordAccess = false
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(componentType), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), withTrail(t, componenttest.NewNopHost(), t.TempDir())))
	require.NoError(t, ext.Shutdown(context.Background()))
	require.NoError(t, ext.Shutdown(context.Background()))
}

func TestShutdownWithoutStart(t *testing.T) {
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(componentType), createDefaultConfig())
	require.NoError(t, err)
	assert.NoError(t, ext.Shutdown(context.Background()))
}

// The embedded DuckDB reads the sealed files and nothing else (not the signing key, the
// WAL, the ledger or exports beside them in the data directory), and its configuration
// cannot be unlocked by a query.
func TestStoreSandbox(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, false)
	st, err := openStore(dir, engineLimits{memory: "256MB", threads: 1, maxTemp: "1GB"})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, st.close()) })
	ctx := context.Background()

	// Two distinct connections: the lockdown must hold for every connection of the pool,
	// not only the one that applied it.
	var conns []*sql.Conn
	for range 2 {
		c, err := st.db.Conn(ctx)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		conns = append(conns, c)
	}

	// A Parquet file outside the data directory: valid, but out of bounds.
	outside := t.TempDir()
	writeFixture(t, outside, fixture[:1], false)
	outsideFile := filepath.Join(outside, auditschema.SpansDir, filepath.FromSlash(auditschema.PartitionOf(fixture[0].startTime())), "test-000001.parquet")
	require.FileExists(t, outsideFile)

	// The data directory's other files, as the exporter and the export jobs lay them out.
	var private []string
	for _, rel := range []string{"keys/ledger.key", "ledger/entries.jsonl", "wal/000001.wal", "exports/job-1.csv", "exports/job-1.parquet"} {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte("secret"), 0o600))
		private = append(private, p)
	}

	for i, c := range conns {
		t.Run(fmt.Sprintf("connection %d", i), func(t *testing.T) {
			// Control: the trail itself is readable.
			var n int
			require.NoError(t, c.QueryRowContext(ctx, "SELECT count(*) FROM "+st.source(window{})).Scan(&n))
			assert.Equal(t, len(fixture), n)

			var mem string
			require.NoError(t, c.QueryRowContext(ctx, "SELECT current_setting('memory_limit')").Scan(&mem))
			assert.Contains(t, mem, "MiB", "memory_limit 256MB is in effect, got %s", mem)

			for _, q := range []string{
				"SELECT * FROM read_csv('/etc/passwd')",
				"SELECT * FROM read_text('/etc/hostname')",
				"SELECT count(*) FROM read_parquet(" + sqlString(outsideFile) + ")",
				"COPY (SELECT 1 AS x) TO " + sqlString(filepath.Join(outside, "leak.csv")),
			} {
				_, err := c.ExecContext(ctx, q)
				if assert.Errorf(t, err, "%s must fail", q) {
					assert.Containsf(t, err.Error(), "Permission Error", "%s fails for the sandbox, not by accident", q)
				}
			}
			assert.NoFileExists(t, filepath.Join(outside, "leak.csv"))
			for _, p := range private {
				for _, q := range []string{"SELECT content FROM read_blob(" + sqlString(p) + ")", "SELECT content FROM read_text(" + sqlString(p) + ")",
					"SELECT count(*) FROM read_parquet(" + sqlString(p) + ")", "SELECT count(*) FROM read_csv(" + sqlString(p) + ")"} {
					_, err := c.ExecContext(ctx, q)
					if assert.Errorf(t, err, "%s must fail", q) {
						assert.Containsf(t, err.Error(), "Permission Error", "%s fails for the sandbox, not by accident", q)
					}
				}
			}

			for _, q := range []string{
				"SET enable_external_access = true",
				"SET lock_configuration = false",
				"SET allowed_directories = ['/']",
				"SET memory_limit = '64GB'",
			} {
				_, err := c.ExecContext(ctx, q)
				if assert.Errorf(t, err, "%s must fail", q) {
					assert.Containsf(t, err.Error(), "lock", "%s: %v", q, err)
				}
			}
		})
	}
}
