package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
)

// secretCorpus are values that must never reach the disk: cards (several separators),
// SSNs, and API keys and tokens of the kinds the DLP step knows.
var secretCorpus = []string{
	"4111111111111111", "4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005",
	"123-45-6789", "219-09-9999",
	"sk-proj-Tq3x9ZbL2mWv8KpR4sYd7NfH1jC6uA0e", "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
	"sk-1234567890abcdefghijklmnopqrstuv", "AKIAIOSFODNN7EXAMPLE", "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
	"xoxb-2048-1024-AbCdEfGhIjKlMnOpQrStUvWx",
	"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVlLWhlcmU",
}

// keyNameSecret has no recognisable shape: only the attribute's name (password) gives
// it away.
const keyNameSecret = "hunter2-correct-horse"

// TestSecretsNeverReachTheDisk sends a corpus of secrets through the real pipeline in
// every place a span carries strings, then searches the raw bytes of everything the
// collector wrote (uncompressed Parquet, write-ahead log, ledger) for each of them.
func TestSecretsNeverReachTheDisk(t *testing.T) {
	const marker = "plain-marker-7f3a9c" // not a secret: must be found, proving the search works
	c := startCollector(t, `
extensions:
  audittrail:
    compression: none
`)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(c.httpAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	var chats [][]attribute.KeyValue
	for i, s := range secretCorpus {
		chats = append(chats, []attribute.KeyValue{
			attribute.String("gen_ai.request.model", "gpt-4o"),
			attribute.String("gen_ai.input.messages", `[{"role":"user","content":"my value is `+s+` thanks, `+marker+`"}]`),
			attribute.String("gen_ai.tool.call.arguments", `{"card":"`+s+`"}`),
			attribute.StringSlice("app.list", []string{"x", "nested " + s}),
			attribute.String("http.request.header.authorization", "Bearer "+s),
			attribute.String("db.password", keyNameSecret),
			attribute.Int("case", i),
		})
	}
	sent := sendAgentRun(t, exp, "leaky-agent", chats)
	waitForSpans(t, c.queryURL, nil, len(sent), 15*time.Second)

	var files []string
	total := 0
	err = filepath.WalkDir(c.dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, filepath.Join(c.dataDir, "keys")) {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, p)
		total += len(b)
		for _, s := range append(secretCorpus, keyNameSecret) {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("secret %q found in %s", s, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range files {
		b, _ := os.ReadFile(f)
		found = found || bytes.Contains(b, []byte(marker))
	}
	if !found {
		t.Fatalf("the marker was found in none of %d files (%d bytes): the search proves nothing", len(files), total)
	}
}

// A password in a settings change, a key in a request body and a secret attribute of an
// audit event are masked like any span attribute: none reaches the disk, while the
// change itself (who, what, old and new role) stays searchable.
func TestEventSecretsNeverReachTheDisk(t *testing.T) {
	c := startCollector(t, `
extensions:
  audittrail:
    compression: none
`)
	const password, apiKey, attr = "Tr0ub4dor-and-3-more", "sk-proj-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Jh0Gf9Ed", "hunter2-attribute-secret"
	body := `[
	 {"category": "settings", "action": "password.change", "actor": {"id": "erin"},
	  "changes": {"password": {"old": "` + password + `-old", "new": "` + password + `"}},
	  "request": {"method": "POST", "path": "/settings", "body": {"api_key": "` + apiKey + `"}},
	  "attributes": {"db.password": "` + attr + `"}},
	 {"category": "team", "action": "role.change", "actor": {"id": "erin"}, "resource": {"type": "member", "id": "frank"},
	  "changes": {"role": {"old": "member", "new": "admin"}}}]`
	resp, err := http.Post("http://"+c.eventsAddr+"/v1/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events: %d", resp.StatusCode)
	}
	waitForSpans(t, c.queryURL, url.Values{"user": {"erin"}}, 2, 15*time.Second)
	role := waitForSpans(t, c.queryURL, url.Values{"category": {"team"}, "action": {"role.change"}}, 1, time.Second).Spans[0]
	attrs, _ := json.Marshal(role["attributes"])
	if !strings.Contains(string(attrs), `"new":"admin"`) || !strings.Contains(string(attrs), `"old":"member"`) {
		t.Errorf("the role change's old and new values are not in the trail: %s", attrs)
	}
	pw := waitForSpans(t, c.queryURL, url.Values{"action": {"password.change"}}, 1, time.Second).Spans[0]
	if pw["credential_masked"] != true {
		t.Errorf("credential_masked = %v on the password change", pw["credential_masked"])
	}
	controlFound := false
	err = filepath.WalkDir(c.dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, filepath.Join(c.dataDir, "keys")) {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, s := range []string{password, apiKey, attr} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("secret %q found in %s", s, p)
			}
		}
		controlFound = controlFound || bytes.Contains(b, []byte("frank"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !controlFound {
		t.Error(`the role change's resource id "frank" is in no file: the search proves nothing`)
	}
}

// TestReadSecretsNeverReachTheDisk makes reads that carry each secret of the corpus —
// free text, filters, a SQL statement, an export job's name and filters, a job id, a
// user agent, an unknown parameter named password — and then searches the raw bytes of
// everything the collector wrote (write-ahead log, uncompressed sealed Parquet, ledger,
// finished export jobs) for each of them: every read is recorded, and its record is
// masked as spans are.
func TestReadSecretsNeverReachTheDisk(t *testing.T) {
	const marker = "plain-read-marker-5e1d" // not a secret: its read must be found sealed
	c := startCollector(t, `
extensions:
  audittrail:
    compression: none
`)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(c.httpAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	sent := sendAgentRun(t, exp, "plain-agent", [][]attribute.KeyValue{{attribute.String("gen_ai.request.model", "gpt-4o")}})
	waitForSpans(t, c.queryURL, nil, len(sent), 15*time.Second)
	read := func(method, path, body string, want int) []byte {
		t.Helper()
		req, err := http.NewRequest(method, c.queryURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", "reviewer-tool "+body+" "+path)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
		return b
	}
	const ssnSQL = "SELECT count(*) AS ssn_hits FROM spans WHERE request LIKE '%078-05-1120%'"
	secrets := append(append([]string{"078-05-1120"}, secretCorpus...), keyNameSecret)
	var jobs []string
	for _, s := range secretCorpus {
		q := url.QueryEscape(s)
		read("GET", "/api/v1/spans?q="+q, "", http.StatusOK)
		read("GET", "/api/v1/spans?user="+q+"&agent="+q, "", http.StatusOK)
		read("GET", "/api/v1/stats?q="+q+"&model="+q, "", http.StatusOK)
		read("GET", "/api/v1/export?format=csv&q="+q, "", http.StatusOK)
		read("POST", "/api/v1/query", `{"sql": "SELECT count(*) AS n FROM spans WHERE request LIKE '%`+s+`%'"}`, http.StatusOK)
		var job struct{ ID string }
		_ = json.Unmarshal(read("POST", "/api/v1/exports", `{"format": "csv", "name": "export of `+s+`", "filters": {"q": "`+s+`", "last": "1h"}}`, http.StatusAccepted), &job)
		jobs = append(jobs, job.ID)
		read("GET", "/api/v1/exports/"+url.PathEscape(s)+"/download", "", http.StatusNotFound)
	}
	read("POST", "/api/v1/query", `{"sql": "`+ssnSQL+`"}`, http.StatusOK)
	read("GET", "/api/v1/spans?password="+keyNameSecret, "", http.StatusBadRequest)
	read("GET", "/api/v1/spans?q="+marker, "", http.StatusOK)
	// A job keeps its filters to run again after a restart, until it finishes.
	for _, id := range jobs {
		deadline := time.Now().Add(20 * time.Second)
		for {
			var j struct{ Status string }
			if getJSONStatus(t, c.queryURL+"/api/v1/exports/"+id, &j) != http.StatusOK {
				t.Fatalf("GET /api/v1/exports/%s failed", id)
			}
			if j.Status == "done" {
				break
			}
			if j.Status != "queued" && j.Status != "running" || time.Now().After(deadline) {
				t.Fatalf("export job %s: %s", id, j.Status)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The statement's hash is of its masked text: a hash of the statement itself would
	// give the SSN away to anyone who tries the 10^9 of them.
	rows := waitForSpans(t, c.queryURL, url.Values{"record_type": {"access"}, "action": {"query"}, "q": {"AS ssn_hits"}}, 1, 15*time.Second).Spans
	var req struct{ SQL string }
	if err := json.Unmarshal([]byte(rows[0]["request"].(string)), &req); err != nil {
		t.Fatal(err)
	}
	attrs, _ := rows[0]["attributes"].(map[string]any)
	if attrs == nil {
		_ = json.Unmarshal([]byte(fmt.Sprint(rows[0]["attributes"])), &attrs)
	}
	masked := sha256.Sum256([]byte(strings.ReplaceAll(ssnSQL, "078-05-1120", "[REDACTED:ssn]")))
	if req.SQL != strings.ReplaceAll(ssnSQL, "078-05-1120", "[REDACTED:ssn]") || attrs["audit.access.sql_sha256"] != hex.EncodeToString(masked[:]) {
		t.Errorf("the SQL read is recorded as %q with sql_sha256 %v, want the masked statement and the SHA-256 of it", req.SQL, attrs["audit.access.sql_sha256"])
	}
	if rows[0]["dlp_result"] != "redacted:ssn" {
		t.Errorf("dlp_result of the SQL read = %v, want redacted:ssn", rows[0]["dlp_result"])
	}

	// Wait until the marker's read is sealed, so the sealed files are searched too, not
	// only the write-ahead log.
	deadline := time.Now().Add(30 * time.Second)
	for {
		sealed := false
		_ = filepath.WalkDir(filepath.Join(c.dataDir, "spans"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
				b, _ := os.ReadFile(p)
				sealed = sealed || bytes.Contains(b, []byte(marker))
			}
			return nil
		})
		if sealed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the marker's read is in no sealed file after 30s: the search proves nothing about them")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var files int
	err = filepath.WalkDir(c.dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, filepath.Join(c.dataDir, "keys")) {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("secret %q found in %s", s, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d reads' records searched in %d files", 7*len(secretCorpus)+3, files)
}
