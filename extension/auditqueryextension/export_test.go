package auditqueryextension

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"
)

func export(t *testing.T, base, query string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/export?" + query)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body) // trailers are set once the body is read
	require.NoError(t, err)
	return resp, b
}

// Each format holds every matching row (not a page), and the trailers give the row
// count and the SHA-256 of exactly the bytes received.
func TestExportFormats(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, nil)
	for _, tc := range []struct {
		query string
		rows  int
	}{
		{"format=json&limit=1", 5},
		{"format=jsonl&category=llm", 3},
		{"format=csv&provider=openai&sort=cost", 2},
		{"format=json&tenant=nobody", 0},
	} {
		resp, body := export(t, base, tc.query)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", tc.query, body)
		sum := sha256.Sum256(body)
		assert.Equal(t, hex.EncodeToString(sum[:]), resp.Trailer.Get(trailerSHA256), tc.query)
		assert.Equal(t, strconv.Itoa(tc.rows), resp.Trailer.Get(trailerRows), tc.query)
		assert.Contains(t, resp.Header.Get("Content-Disposition"), "attachment")
		var got int
		switch resp.Header.Get("Content-Type") {
		case "application/json":
			var rows []map[string]any
			require.NoError(t, json.Unmarshal(body, &rows), "%s", body)
			got = len(rows)
		case "application/x-ndjson":
			sc := bufio.NewScanner(bytes.NewReader(body))
			for sc.Scan() {
				var row map[string]any
				require.NoError(t, json.Unmarshal(sc.Bytes(), &row))
				assert.Equal(t, "llm", row["category"])
				got++
			}
		default:
			recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
			require.NoError(t, err)
			assert.Equal(t, resultColumns, recs[0], "the header names the columns")
			got = len(recs) - 1
		}
		assert.Equal(t, tc.rows, got, tc.query)
	}
}

func TestExportRejectsBadRequests(t *testing.T) {
	base := startExtension(t, t.TempDir(), nil)
	for query, want := range map[string]string{
		"format=xml":           "format",
		"":                     "format",
		"format=csv&colour=1":  "colour: unknown parameter",
		"format=csv&sort=size": "sort",
	} {
		resp, body := export(t, base, query)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, query)
		assert.Contains(t, string(body), want, query)
	}
	resp, body := export(t, base, "format=json")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "[]\n", string(body), "an empty trail exports an empty array")
}

func TestExportXLSX(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, nil)
	resp, body := export(t, base, "format=xlsx&sort=cost")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	sum := sha256.Sum256(body)
	assert.Equal(t, hex.EncodeToString(sum[:]), resp.Trailer.Get(trailerSHA256))
	assert.Equal(t, "5", resp.Trailer.Get(trailerRows))
	book, err := excelize.OpenReader(bytes.NewReader(body))
	require.NoError(t, err)
	defer book.Close()
	rows, err := book.GetRows("Sheet1")
	require.NoError(t, err)
	require.Len(t, rows, 6, "a header and five rows")
	assert.Equal(t, resultColumns[:len(rows[0])], rows[0])
	col := -1
	for i, c := range rows[0] {
		if c == "cost_usd" {
			col = i
		}
	}
	require.GreaterOrEqual(t, col, 0)
	assert.Equal(t, "0.4", rows[1][col], "sorted by cost, as a number")
	// The workbook's parts are dated when the export ran (zip's default reads as 1980).
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	require.NoError(t, err)
	require.NotEmpty(t, zr.File)
	for _, f := range zr.File {
		assert.WithinDuration(t, time.Now(), f.Modified, 5*time.Minute, f.Name)
	}
}

func TestCutCell(t *testing.T) {
	long := strings.Repeat("é", xlsxCellLimit)
	got := cutCell(long)
	assert.LessOrEqual(t, len(got), xlsxCellLimit)
	assert.True(t, utf8.ValidString(got))
	assert.True(t, strings.HasSuffix(got, "…"))
	assert.Equal(t, "short", cutCell("short"))
}

// An export may run longer than the server's write_timeout (30 s by default, here 1 ms,
// shorter than any query): it is bounded by export_timeout instead, and arrives whole.
func TestExportOutlivesWriteTimeout(t *testing.T) {
	dir := t.TempDir()
	writeRichTrail(t, dir, time.Now().UTC())
	base := startExtension(t, dir, func(c *Config) { c.ServerConfig.WriteTimeout = time.Millisecond })
	for _, format := range []string{"csv", "parquet"} {
		resp, body := export(t, base, "format="+format)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "5", resp.Trailer.Get(trailerRows), format)
		sum := sha256.Sum256(body)
		assert.Equal(t, hex.EncodeToString(sum[:]), resp.Trailer.Get(trailerSHA256), format)
	}
}

// A large export in time order runs as several queries over runs of hour partitions; the
// pieces concatenate to exactly the order of one query, newest or oldest first.
func TestExportInPieces(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, true)
	base := startExtension(t, dir, nil)
	keys := func(query string) []string {
		resp, body := export(t, base, "format=jsonl&"+query)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
			var row map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &row))
			out = append(out, row["trace_id"].(string)+"/"+row["span_id"].(string))
		}
		return out
	}
	whole := keys("")
	asc := keys("order=asc")
	require.Equal(t, newestFirst(fixture), whole)
	defer func(n int64) { exportRowsPerQuery = n }(exportRowsPerQuery)
	exportRowsPerQuery = 2 // five partitions of 1 to 3 rows: several pieces, one over the bound
	assert.Equal(t, whole, keys(""), "newest first, in pieces")
	assert.Equal(t, asc, keys("order=asc"), "oldest first, in pieces")
	assert.Equal(t, newestFirst(where(fixture, func(r testRow) bool { return r.model == "gpt-4o" })), keys("model=gpt-4o"))
}
