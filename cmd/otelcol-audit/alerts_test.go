package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"gopkg.in/yaml.v3"
)

// The example alerts configuration, with its listeners moved to free ports: a tool call
// the policy blocks reaches a real webhook as a signed alert, and is in the trail too.
func TestExampleAlertsConfigFiresSignedWebhook(t *testing.T) {
	secret := "an-example-webhook-secret-of-32b"
	secretFile := filepath.Join(t.TempDir(), "webhook.secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	type delivery struct {
		body            []byte
		timestamp, sign string
	}
	var mu sync.Mutex
	var got []delivery
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, delivery{b, r.Header.Get("X-Audit-Timestamp"), r.Header.Get("X-Audit-Signature")})
		mu.Unlock()
	}))
	defer hook.Close()
	t.Setenv("AUDIT_WEBHOOK_URL", hook.URL)
	t.Setenv("AUDIT_WEBHOOK_SECRET_FILE", secretFile)

	raw, err := os.ReadFile(filepath.Join("examples", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The example's processor, webhook and pipeline over the test's listeners and data
	// directory: its receivers, extensions and data directory are left out.
	var example map[string]any
	if err := yaml.Unmarshal(raw, &example); err != nil {
		t.Fatal(err)
	}
	delete(example, "receivers")
	delete(example, "extensions")
	delete(example["exporters"].(map[string]any), "auditparquet")
	delete(example["service"].(map[string]any), "extensions")
	overlay, err := yaml.Marshal(example)
	if err != nil {
		t.Fatal(err)
	}
	c := startCollector(t, string(overlay))
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(c.httpAddr), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	sent := sendAgentRun(t, exp, "sql-agent", [][]attribute.KeyValue{{
		attribute.String("gen_ai.operation.name", "execute_tool"),
		attribute.String("gen_ai.tool.name", "run_sql"),
		attribute.String("gen_ai.tool.call.arguments", `{"sql": "DROP TABLE users"}`),
	}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("webhook received %d requests, want 1", len(got))
	}
	d := got[0]
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%s.%s", d.timestamp, d.body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); d.sign != want {
		t.Errorf("signature %q does not verify with the secret", d.sign)
	}
	var alerts struct {
		Alerts []map[string]any `json:"alerts"`
	}
	if err := json.Unmarshal(d.body, &alerts); err != nil {
		t.Fatal(err)
	}
	if len(alerts.Alerts) != 1 {
		t.Fatalf("alerts: %s", d.body)
	}
	a := alerts.Alerts[0]
	assertFields(t, a, map[string]any{"rule": "blocked_tool_call", "tool": "run_sql", "policy_decision": "block",
		"span_id": sent[0].spanID, "result": "blocked"})
	if strings.Contains(string(d.body), "DROP TABLE") {
		t.Error("the alert carries the tool call's payload")
	}
	waitForSpans(t, c.queryURL, nil, len(sent), 10*time.Second)
}

// With rate_limit_per_actor, a flood of failed logins of one actor uses up that actor's
// limit only: the failed login of another actor, sent after the flood, still alerts.
func TestWebhookRateLimitPerActor(t *testing.T) {
	var mu sync.Mutex
	actors := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Alerts []struct {
				Actor string `json:"actor"`
			} `json:"alerts"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("webhook body %s: %v", b, err)
		}
		mu.Lock()
		for _, a := range body.Alerts {
			actors[a.Actor]++
		}
		mu.Unlock()
	}))
	defer hook.Close()
	c := startCollector(t, fmt.Sprintf(`
exporters:
  auditwebhook:
    endpoint: %q
    rate_limit_per_minute: 2
    rate_limit_per_actor:
      enabled: true
    rules:
      - name: failed_login
        condition: attributes["audit.category"] == "auth" and attributes["audit.result"] == "failed"
service:
  pipelines:
    traces:
      exporters: [auditparquet, auditwebhook]
`, hook.URL))
	var events []string
	for range 10 {
		events = append(events, `{"category":"auth","action":"login","result":"failed","actor":{"id":"decoy"}}`)
	}
	events = append(events, `{"category":"auth","action":"login","result":"failed","actor":{"id":"victim"}}`)
	resp, err := http.Post("http://"+c.eventsAddr+"/v1/events", "application/json", strings.NewReader("["+strings.Join(events, ",")+"]"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := actors["victim"]
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if actors["victim"] != 1 || actors["decoy"] != 2 {
		t.Errorf("alerts by actor %v, want decoy 2 (its limit) and victim 1", actors)
	}
}
