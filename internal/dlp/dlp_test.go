package dlp

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

const (
	jwtSample  = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	openaiKey  = "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90"
	legacyKey  = "sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij"
	anthKey    = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789-AA"
	awsKey     = "AKIAIOSFODNN7EXAMPLE"
	ghToken    = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
	ghPAT      = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGH"
	slackTok   = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	pemBlock   = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\n-----END RSA PRIVATE KEY-----"
	traceIDHex = "4bf92f3577b34da6a3ce929d0e0e4736"
)

func newMasker(t testing.TB, mod func(*Config)) *Masker {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	m, err := NewMasker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMaskString(t *testing.T) {
	m := newMasker(t, nil)
	tests := []struct {
		name, in, want string
		kinds          string // Findings.Redacted, comma-joined
	}{
		// Payment cards.
		{"card plain", "4111111111111111", "[REDACTED:credit_card]", "credit_card"},
		{"card spaces", "card 4111 1111 1111 1111 ok", "card [REDACTED:credit_card] ok", "credit_card"},
		{"card dashes end of sentence", "pay 4111-1111-1111-1111.", "pay [REDACTED:credit_card].", "credit_card"},
		{"card amex grouping", "3782 822463 10005", "[REDACTED:credit_card]", "credit_card"},
		{"card amex plain", "378282246310005", "[REDACTED:credit_card]", "credit_card"},
		{"card visa 13", "4222222222222", "[REDACTED:credit_card]", "credit_card"},
		{"card visa 19", "4111111111111111110", "[REDACTED:credit_card]", "credit_card"},
		{"card mastercard", "5555555555554444", "[REDACTED:credit_card]", "credit_card"},
		{"card mastercard 2-series", "2223003122003222", "[REDACTED:credit_card]", "credit_card"},
		{"card discover", "6011111111111117", "[REDACTED:credit_card]", "credit_card"},
		{"card jcb", "3530111333300000", "[REDACTED:credit_card]", "credit_card"},
		{"card diners", "30569309025904", "[REDACTED:credit_card]", "credit_card"},
		{"card after digits group", "ref 1234 4111 1111 1111 1111", "ref 1234 [REDACTED:credit_card]", "credit_card"},
		{"card after JSON escape", `line\n4111111111111111`, `line\n[REDACTED:credit_card]`, "credit_card"},
		{"card luhn failure", "4111111111111112", "4111111111111112", ""},
		{"card mixed separators", "4111 1111-1111 1111", "4111 1111-1111 1111", ""},
		{"card too long", "41111111111111111111", "41111111111111111111", ""},
		{"card glued to letters", "id4111111111111111x", "id4111111111111111x", ""},
		{"trace id hex", traceIDHex, traceIDHex, ""},
		{"trace id all digits", "12345678901234567890123456789012", "12345678901234567890123456789012", ""},
		{"trace id with card prefix", "4111111111111111a3ce929d0e0e4736", "4111111111111111a3ce929d0e0e4736", ""},
		{"epoch millis luhn-valid", "ts=1732240000000", "ts=1732240000000", ""},
		{"epoch nanos luhn-valid", "1732240000000005", "1732240000000005", ""},
		{"decimal", "p=0.4111111111111111", "p=0.4111111111111111", ""},
		{"decimal tail", "4111111111111111.5", "4111111111111111.5", ""},
		{"iso timestamp", "2024-11-22T04:05:06.123456789Z", "2024-11-22T04:05:06.123456789Z", ""},

		// US social security numbers.
		{"ssn dashed", "SSN: 123-45-6789.", "SSN: [REDACTED:ssn].", "ssn"},
		{"ssn spaced", "123 45 6789", "[REDACTED:ssn]", "ssn"},
		{"ssn area 000", "000-12-3456", "000-12-3456", ""},
		{"ssn area 666", "666-12-3456", "666-12-3456", ""},
		{"ssn area 9xx", "912-12-3456", "912-12-3456", ""},
		{"ssn group 00", "123-00-4567", "123-00-4567", ""},
		{"ssn serial 0000", "123-45-0000", "123-45-0000", ""},
		{"ssn undashed", "123456789", "123456789", ""},
		{"ssn longer serial", "123-45-67890", "123-45-67890", ""},
		{"date", "2024-11-22", "2024-11-22", ""},

		// E-mail.
		{"email", "mail alice@example.com now", "mail [REDACTED:email] now", "email"},
		{"email plus tag, trailing dot", "Bob.Smith+tag@mail.example.co.uk.", "[REDACTED:email].", "email"},
		{"email in angle-bracket escape", `Alice \u003calice@example.com\u003e`, `Alice \u003c[REDACTED:email]\u003e`, "email"},
		{"email after newline escape", `x\nalice@example.com`, `x\n[REDACTED:email]`, "email"},
		{"email no tld", "root@localhost", "root@localhost", ""},
		{"npm version", "lodash@4.17.21", "lodash@4.17.21", ""},
		{"decorator", "@app.route", "@app.route", ""},

		// Phone numbers.
		{"phone paren", "call (555) 123-4567", "call [REDACTED:phone]", "phone"},
		{"phone dashed", "555-123-4567", "[REDACTED:phone]", "phone"},
		{"phone dotted", "555.123.4567", "[REDACTED:phone]", "phone"},
		{"phone us country code", "1-800-555-1234", "[REDACTED:phone]", "phone"},
		{"phone e164 spaced", "+1 555 123 4567", "[REDACTED:phone]", "phone"},
		{"phone e164 compact", "tel:+14155552671", "tel:[REDACTED:phone]", "phone"},
		{"phone e164 uk", "+44 20 7946 0958", "[REDACTED:phone]", "phone"},
		{"phone e164 paren", "+1 (555) 123-4567", "[REDACTED:phone]", "phone"},
		{"ipv4", "10.0.0.1 and 192.168.100.200", "10.0.0.1 and 192.168.100.200", ""},
		{"versions", "v10.11.12 1.2.3 go1.26.8", "v10.11.12 1.2.3 go1.26.8", ""},
		{"token counts", `"input_tokens": 1234567890, "total": 5551234567`, `"input_tokens": 1234567890, "total": 5551234567`, ""},
		{"time and offset", "12:30:45+05:30", "12:30:45+05:30", ""},
		{"seven digits", "555-1234", "555-1234", ""},
		{"e164 too short", "+1234567", "+1234567", ""},
		{"e164 too long", "+1234567890123456", "+1234567890123456", ""},

		// Credentials.
		{"openai project key", "key " + openaiKey + " end", "key [REDACTED:openai_key] end", "openai_key"},
		{"openai legacy key", legacyKey, "[REDACTED:openai_key]", "openai_key"},
		{"anthropic key", anthKey, "[REDACTED:anthropic_key]", "anthropic_key"},
		{"aws key", "id=" + awsKey + ";", "id=[REDACTED:aws_access_key];", "aws_access_key"},
		{"aws temporary key", "ASIAY34FZKBOKMUTVV7A", "[REDACTED:aws_access_key]", "aws_access_key"},
		{"github token", ghToken, "[REDACTED:github_token]", "github_token"},
		{"github fine-grained", ghPAT, "[REDACTED:github_token]", "github_token"},
		{"slack token", slackTok, "[REDACTED:slack_token]", "slack_token"},
		{"jwt", "t=" + jwtSample, "t=[REDACTED:jwt]", "jwt"},
		{"bearer", "header Bearer abc123def456ghi", "header Bearer [REDACTED:bearer_token]", "bearer_token"},
		{"bearer lower case", "bearer abcdefgh12345678.", "bearer [REDACTED:bearer_token].", "bearer_token"},
		{"bearer jwt", "Bearer " + jwtSample, "Bearer [REDACTED:jwt]", "bearer_token,jwt"},
		{"private key", "k:\n" + pemBlock + "\nafter", "k:\n[REDACTED:private_key]\nafter", "private_key"},
		{"private key unterminated", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk", "[REDACTED:private_key]", "private_key"},
		{"private key escaped", `{"k":"-----BEGIN EC PRIVATE KEY-----\nMHcCAQ\n-----END EC PRIVATE KEY-----\n"}`, `{"k":"[REDACTED:private_key]\n"}`, "private_key"},
		{"slug is no key", "sk-learn-compatible-interface", "sk-learn-compatible-interface", ""},
		{"sk inside a word", "task-1234567890abcdefghijklmn", "task-1234567890abcdefghijklmn", ""},
		{"short sk", "sk-abc123", "sk-abc123", ""},
		{"aws too short", "AKIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPL", ""},
		{"aws too long", "AKIAIOSFODNN7EXAMPLEX", "AKIAIOSFODNN7EXAMPLEX", ""},
		{"github short", "ghp_short", "ghp_short", ""},
		{"bearer prose", "Bearer authentication is required", "Bearer authentication is required", ""},
		{"certificate", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", ""},
		{"jwt header alone", "eyJhbGciOiJIUzI1NiJ9", "eyJhbGciOiJIUzI1NiJ9", ""},

		// Secret key names in text.
		{"json password", `{"user":"bob","password":"hunter2"}`, `{"user":"bob","password":"[REDACTED:secret_key_name]"}`, "secret_key_name"},
		{"query string", "password=hunter2&user=bob", "password=[REDACTED:secret_key_name]&user=bob", "secret_key_name"},
		{"header line", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: [REDACTED:secret_key_name]", "secret_key_name"},
		{"comparison", `if password == "hunter2":`, `if password == "[REDACTED:secret_key_name]":`, "secret_key_name"},
		{"scheme, two spaces", "authorization: Digest  abc", "authorization: [REDACTED:secret_key_name]", "secret_key_name"},
		{"escaped json", `{\"api_key\":\"abc123\"}`, `{\"api_key\":\"[REDACTED:secret_key_name]\"}`, "secret_key_name"},
		{"escaped quote in value", `{"password":"a\"b c"}`, `{"password":"[REDACTED:secret_key_name]"}`, "secret_key_name"},
		{"python dict", `{'client_secret': 'xyz'}`, `{'client_secret': '[REDACTED:secret_key_name]'}`, "secret_key_name"},
		{"yaml in json", `cfg:\n  db_password: s3cr3t\n`, `cfg:\n  db_password: [REDACTED:secret_key_name]\n`, "secret_key_name"},
		{"env with known key", "OPENAI_API_KEY=" + openaiKey, "OPENAI_API_KEY=[REDACTED:openai_key]", "openai_key,secret_key_name"},
		{"url password", "dsn postgres://app:hunter2@db:5432/x", "dsn postgres://app:[REDACTED:secret_key_name]@db:5432/x", "secret_key_name"},
		{"url password, dotted host", "https://bob:s3cret@example.com/p", "https://bob:[REDACTED:secret_key_name]@example.com/p", "secret_key_name"},
		{"url without password", "see https://example.com:8443/a@b", "see https://example.com:8443/a@b", ""},
		{"cookie header line", "Cookie: theme=dark; session=abc123\nHost: x", "Cookie: [REDACTED:secret_key_name]\nHost: x", "secret_key_name"},
		{"logprob token", `{"token": "Hello", "logprob": -0.1}`, `{"token": "Hello", "logprob": -0.1}`, ""},
		{"usage counters", `{"input_tokens": 12, "max_tokens": 100, "token_count": 7}`, `{"input_tokens": 12, "max_tokens": 100, "token_count": 7}`, ""},
		{"null password", `{"password": null}`, `{"password": null}`, ""},
		{"url", "https://example.com:8443/a=b", "https://example.com:8443/a=b", ""},

		// Several matches; placeholders stay as they are.
		{"several", "card 4111111111111111, ssn 123-45-6789, a@b.io",
			"card [REDACTED:credit_card], ssn [REDACTED:ssn], [REDACTED:email]", "credit_card,email,ssn"},
		{"gen_ai messages json", `[{"role":"user","parts":[{"type":"text","content":"card 4111 1111 1111 1111 exp 12/27"}]}]`,
			`[{"role":"user","parts":[{"type":"text","content":"card [REDACTED:credit_card] exp 12/27"}]}]`, "credit_card"},
		{"placeholder", "[REDACTED:ssn] [HMAC:jwt:0123456789abcdef0123456789abcdef]", "[REDACTED:ssn] [HMAC:jwt:0123456789abcdef0123456789abcdef]", ""},
		{"clean prose", "The quick brown fox jumps over the lazy dog.", "The quick brown fox jumps over the lazy dog.", ""},
		{"empty", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, f := m.MaskString(tc.in)
			if got != tc.want {
				t.Errorf("MaskString(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			if f.Redacted.String() != tc.kinds || f.Blocked != 0 {
				t.Errorf("findings = %v / blocked %v, want %q", f.Redacted, f.Blocked, tc.kinds)
			}
			if again, f2 := m.MaskString(got); again != got || !f2.Empty() {
				t.Errorf("second pass changed %q to %q (%v)", got, again, f2.All())
			}
		})
	}
}

func TestSecretKeyNames(t *testing.T) {
	m := newMasker(t, nil)
	for _, k := range []string{
		"authorization", "Authorization", "http.request.header.authorization", "http.response.header.set-cookie",
		"db.password", "user_password", "userPassword", "DB_PASSWORD", "api_key", "apiKey", "APIKey", "x-api-key",
		"http.request.header.x-api-key", "client_secret", "aws.secret_access_key", "access_token", "refreshToken",
		"oauth2Token", "token", "app.config.credentials", "db.connection_string", "Set-Cookie", "private_key",
	} {
		if !m.IsSecretKey(k) {
			t.Errorf("%q is not recognised as a secret key", k)
		}
	}
	for _, k := range []string{
		"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.request.max_tokens", "llm.token_count.prompt",
		"llm.token_count.completion", "gen_ai.usage.cache_read.input_tokens", "inputTokens", "password_hash", "tokenizer",
		"session.id", "user.email", "secretary", "keyboard", "gen_ai.request.model", "", ".", "audit.credential_masked",
	} {
		if m.IsSecretKey(k) {
			t.Errorf("%q is recognised as a secret key", k)
		}
	}
	custom := newMasker(t, func(c *Config) { c.SecretKeyNames = []string{"pin", "X-Internal-Auth"} })
	for k, want := range map[string]bool{"card.pin": true, "x_internal_auth": true, "password": false, "spin": false} {
		if custom.IsSecretKey(k) != want {
			t.Errorf("custom names: IsSecretKey(%q) = %v", k, !want)
		}
	}
}

// testSpan builds a span with one finding in every location MaskSpan walks.
func testSpan() (ptrace.Traces, ptrace.Span, pcommon.Resource) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource()
	res.Attributes().PutStr("service.name", "agent")
	res.Attributes().PutStr("deploy.contact", "ops@example.com")
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetName("lookup 123-45-6789")
	span.Status().SetMessage("failed for " + awsKey)
	a := span.Attributes()
	a.PutStr("gen_ai.request.model", "gpt-4o")
	a.PutInt("gen_ai.usage.input_tokens", 1234)
	a.PutInt("llm.token_count.prompt", 1234)
	a.PutStr("http.request.header.authorization", "Bearer abc123def456ghi")
	a.PutInt("db.password", 1234)
	a.PutStr("cmd", "curl -H 'X-Trace: 1' -H 'Authorization: Bearer abc123def456ghi'")
	nested := a.PutEmptyMap("tool.args")
	nested.PutStr("note", "card 4111 1111 1111 1111")
	deeper := nested.PutEmptySlice("items")
	deeper.AppendEmpty().SetStr("call 555-123-4567")
	deeper.AppendEmpty().SetEmptyMap().PutStr("api_key", "plain-value")
	creds := a.PutEmptyMap("credentials")
	creds.PutStr("user", "bob")
	creds.PutBool("admin", true)
	creds.PutStr(ghToken, "")
	a.PutStr("gen_ai.input.messages", `[{"role":"user","content":"my key is `+openaiKey+`"}]`)
	a.PutInt("payment.number", 4111111111111111)
	a.PutInt("big.counter", 4111111111111112)
	a.PutEmptyMap("usage.by_key").PutInt(legacyKey, 42)
	a.PutEmptyBytes("raw").FromRaw([]byte("token " + ghToken))
	ev := span.Events().AppendEmpty()
	ev.SetName("mail bob@example.org")
	ev.Attributes().PutStr("jwt", jwtSample)
	link := span.Links().AppendEmpty()
	link.Attributes().PutStr("note", slackTok)
	return td, span, res
}

func TestMaskSpanEveryLocation(t *testing.T) {
	m := newMasker(t, nil)
	_, span, res := testSpan()
	r := maskSpan(m, span, res)

	want := []string{"aws_access_key", "bearer_token", "credit_card", "email", "github_token", "jwt", "openai_key",
		"phone", "secret_key_name", "slack_token", "ssn"}
	if !reflect.DeepEqual(r.Redacted, want) || r.Blocked != nil || !r.CredentialMasked {
		t.Fatalf("result = %+v", r)
	}
	checks := map[string]string{
		"name":   span.Name(),
		"status": span.Status().Message(),
		"event":  span.Events().At(0).Name(),
	}
	for where, wantS := range map[string]string{
		"name": "lookup [REDACTED:ssn]", "status": "failed for [REDACTED:aws_access_key]", "event": "mail [REDACTED:email]",
	} {
		if checks[where] != wantS {
			t.Errorf("%s = %q, want %q", where, checks[where], wantS)
		}
	}
	attrs := span.Attributes().AsRaw()
	wantAttrs := map[string]any{
		"gen_ai.request.model":              "gpt-4o",
		"gen_ai.usage.input_tokens":         int64(1234),
		"llm.token_count.prompt":            int64(1234),
		"http.request.header.authorization": "[REDACTED:secret_key_name]",
		"db.password":                       "[REDACTED:secret_key_name]",
		"cmd":                               "curl -H 'X-Trace: 1' -H 'Authorization: [REDACTED:bearer_token]'",
		"tool.args": map[string]any{
			"note":  "card [REDACTED:credit_card]",
			"items": []any{"call [REDACTED:phone]", map[string]any{"api_key": "[REDACTED:secret_key_name]"}},
		},
		"credentials": map[string]any{"user": "[REDACTED:secret_key_name]", "admin": "[REDACTED:secret_key_name]",
			"[REDACTED:github_token]": ""},
		"gen_ai.input.messages": `[{"role":"user","content":"my key is [REDACTED:openai_key]"}]`,
		"raw":                   []byte("token [REDACTED:github_token]"),
		"payment.number":        "[REDACTED:credit_card]",
		"big.counter":           int64(4111111111111112),
		"usage.by_key":          map[string]any{"[REDACTED:openai_key]": int64(42)},
	}
	if !reflect.DeepEqual(attrs, wantAttrs) {
		t.Errorf("attributes\n got %#v\nwant %#v", attrs, wantAttrs)
	}
	if got := span.Events().At(0).Attributes().AsRaw()["jwt"]; got != "[REDACTED:jwt]" {
		t.Errorf("event attribute = %v", got)
	}
	if got := span.Links().At(0).Attributes().AsRaw()["note"]; got != "[REDACTED:slack_token]" {
		t.Errorf("link attribute = %v", got)
	}
	if got := res.Attributes().AsRaw()["deploy.contact"]; got != "[REDACTED:email]" {
		t.Errorf("resource attribute = %v", got)
	}

	// Idempotent: a second pass finds nothing and changes nothing.
	before := span.Attributes().AsRaw()
	if r2 := maskSpan(m, span, res); !r2.Clean() {
		t.Errorf("second pass = %v", r2)
	}
	if !reflect.DeepEqual(before, span.Attributes().AsRaw()) {
		t.Error("second pass changed the attributes")
	}
}

// TestMaskSpanOnly: the span is masked as by MaskSpan, the resource is left to
// MaskResource, and the two results merge into MaskSpan's.
func TestMaskSpanOnly(t *testing.T) {
	m := newMasker(t, nil)
	_, span, res := testSpan()
	_, whole, wholeRes := testSpan()
	r := maskSpanOnly(m, span)
	if got := res.Attributes().AsRaw()["deploy.contact"]; got != "ops@example.com" {
		t.Errorf("resource attribute = %v, want it untouched", got)
	}
	rr := maskResource(m, res)
	if want := maskSpan(m, whole, wholeRes); !reflect.DeepEqual(r.Merge(rr), want) {
		t.Errorf("MaskSpanOnly+MaskResource = %+v, MaskSpan = %+v", r.Merge(rr), want)
	}
	if !reflect.DeepEqual(span.Attributes().AsRaw(), whole.Attributes().AsRaw()) || span.Name() != whole.Name() {
		t.Error("MaskSpanOnly masked the span differently from MaskSpan")
	}
}

// TestResultMoved: Moved says whether values read from the map before masking are still
// where they were — true only when an entry was removed or moved to the end.
func TestResultMoved(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fill  func(pcommon.Map)
		block bool
		moved bool
	}{
		{"clean", func(m pcommon.Map) { m.PutStr("a", "b") }, false, false},
		{"value redacted in place", func(m pcommon.Map) { m.PutStr("a", "x "+openaiKey); m.PutInt("n", 4111111111111111) }, false, false},
		{"secret key name", func(m pcommon.Map) { m.PutStr("db.password", "x") }, false, false},
		{"nested key renamed", func(m pcommon.Map) { m.PutEmptyMap("m").PutStr(ghToken, "v") }, false, false},
		{"key renamed", func(m pcommon.Map) { m.PutStr(ghToken, "v"); m.PutStr("z", "w") }, false, true},
		{"entry blocked", func(m pcommon.Map) { m.PutStr("a", "ssn 123-45-6789"); m.PutStr("z", "w") }, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMasker(t, func(c *Config) {
				if tc.block {
					c.Detectors[KindSSN] = ActionBlock
				}
			})
			span := ptrace.NewSpan()
			tc.fill(span.Attributes())
			res := pcommon.NewResource()
			tc.fill(res.Attributes())
			if got := maskSpanOnly(m, span).Moved; got != tc.moved {
				t.Errorf("MaskSpanOnly: Moved = %v, want %v", got, tc.moved)
			}
			if got := maskResource(m, res).Moved; got != tc.moved {
				t.Errorf("MaskResource: Moved = %v, want %v", got, tc.moved)
			}
		})
	}
}

func TestMaskSpanBlock(t *testing.T) {
	m := newMasker(t, func(c *Config) {
		c.Detectors[KindSSN] = ActionBlock
		c.Detectors[KindCreditCard] = ActionBlock
	})
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	span := spans.AppendEmpty()
	span.SetName("check 123-45-6789 for a@b.io")
	a := span.Attributes()
	a.PutStr("keep", "nothing here")
	a.PutStr("mail", "x@example.com")
	msgs := a.PutEmptySlice("gen_ai.input.messages")
	msg := msgs.AppendEmpty().SetEmptyMap()
	msg.PutStr("role", "user")
	msg.PutEmptySlice("parts").AppendEmpty().SetEmptyMap().PutStr("content", "my card 4111111111111111")
	a.PutStr("ssn", "123-45-6789")
	a.PutStr("keep2", "still here")
	ev := span.Events().AppendEmpty()
	ev.Attributes().PutStr("payload", `{"ssn":"123-45-6789"}`)
	ev.Attributes().PutStr("ok", "fine")

	r := maskSpan(m, span, rs.Resource())
	if got, want := r.String(), "blocked:credit_card,ssn;redacted:email"; got != want {
		t.Errorf("result = %q, want %q", got, want)
	}
	if r.CredentialMasked {
		t.Error("credential_masked set for personal data")
	}
	if spans.Len() != 1 {
		t.Fatal("span dropped")
	}
	if got := span.Name(); got != "[BLOCKED:ssn]" {
		t.Errorf("name = %q", got)
	}
	want := map[string]any{"keep": "nothing here", "mail": "[REDACTED:email]", "keep2": "still here"}
	if got := a.AsRaw(); !reflect.DeepEqual(got, want) {
		t.Errorf("attributes = %#v", got)
	}
	if got := ev.Attributes().AsRaw(); !reflect.DeepEqual(got, map[string]any{"ok": "fine"}) {
		t.Errorf("event attributes = %#v", got)
	}

	// Blocking by key name removes the top-level attribute holding the key.
	kb := newMasker(t, func(c *Config) { c.Detectors[KindSecretKeyName] = ActionBlock })
	s2 := ptrace.NewSpan()
	s2.Attributes().PutEmptyMap("request").PutEmptyMap("headers").PutStr("Authorization", "Basic abc")
	s2.Attributes().PutStr("password", "")
	r2 := maskSpan(kb, s2, pcommon.NewResource())
	if r2.String() != "blocked:secret_key_name" || !r2.CredentialMasked {
		t.Errorf("result = %+v", r2)
	}
	if got := s2.Attributes().AsRaw(); !reflect.DeepEqual(got, map[string]any{"password": ""}) {
		t.Errorf("attributes = %#v", got)
	}
}

func TestMaskSpanDuplicateKeysBlock(t *testing.T) {
	m := newMasker(t, func(c *Config) { c.Detectors[KindSSN] = ActionBlock })
	span := ptrace.NewSpan()
	// OTLP does not forbid duplicate keys; build them through FromRaw on separate maps.
	a := span.Attributes()
	a.PutStr("a", "1")
	a.PutStr("b", "123-45-6789")
	a.PutStr("c", "3")
	a.PutStr("d", "666-45-6789 is no ssn, 078-05-1120 is")
	a.PutStr("e", "5")
	maskSpan(m, span, pcommon.NewResource())
	if got := a.AsRaw(); !reflect.DeepEqual(got, map[string]any{"a": "1", "c": "3", "e": "5"}) {
		t.Errorf("attributes = %#v", got)
	}
}

func TestHMAC(t *testing.T) {
	key1 := []byte(strings.Repeat("k", 32))
	key2 := []byte(strings.Repeat("j", 32))
	m1 := newMasker(t, func(c *Config) { c.HMACKey = key1 })
	m1b := newMasker(t, func(c *Config) { c.HMACKey = append([]byte(nil), key1...) })
	m2 := newMasker(t, func(c *Config) { c.HMACKey = key2 })
	in := "use " + openaiKey + " please"
	a, f := m1.MaskString(in)
	b, _ := m1b.MaskString(in)
	c, _ := m2.MaskString(in)
	if a != b {
		t.Errorf("not deterministic: %q vs %q", a, b)
	}
	if a == c {
		t.Errorf("same output under two keys: %q", a)
	}
	if !f.Redacted.Has(KindOpenAIKey) || !f.CredentialMasked() {
		t.Errorf("findings = %v", f.Redacted)
	}
	if !strings.HasPrefix(a, "use [HMAC:openai_key:") || len(a) != len("use [HMAC:openai_key:] please")+32 {
		t.Errorf("format: %q", a)
	}
	plain := sha256.Sum256([]byte(openaiKey))
	if strings.Contains(a, hex.EncodeToString(plain[:16])) || strings.Contains(a, openaiKey) {
		t.Errorf("output holds the secret or its plain hash: %q", a)
	}
	// Different secrets give different digests; equal ones the same.
	x, _ := m1.MaskString("a@example.com b@example.com a@example.com")
	parts := strings.Fields(x)
	if parts[0] != parts[2] || parts[0] == parts[1] {
		t.Errorf("correlation: %q", x)
	}
	// Values under a secret key are digested too, and stay stable across passes.
	span := ptrace.NewSpan()
	span.Attributes().PutStr("password", "hunter2")
	span.Attributes().PutInt("pin.token", 1234)
	maskSpan(m1, span, pcommon.NewResource())
	pw, _ := span.Attributes().Get("password")
	if !strings.HasPrefix(pw.Str(), "[HMAC:secret_key_name:") {
		t.Errorf("password = %q", pw.Str())
	}
	if r := maskSpan(m1, span, pcommon.NewResource()); !r.Clean() {
		t.Errorf("second pass = %v", r)
	}
	// Blocked matches are never digested.
	mb := newMasker(t, func(c *Config) { c.HMACKey = key1; c.Detectors[KindSSN] = ActionBlock })
	if got, _ := mb.MaskString("ssn 123-45-6789"); got != "ssn [BLOCKED:ssn]" {
		t.Errorf("blocked with HMAC = %q", got)
	}
}

func TestLoadHMACKey(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte("  "+strings.Repeat("x", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadHMACKey(good)
	if err != nil || string(k) != strings.Repeat("x", 32) {
		t.Errorf("LoadHMACKey = %q, %v", k, err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte(strings.Repeat("x", 31)+"\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadHMACKey(short); err == nil || !strings.Contains(err.Error(), short) || !strings.Contains(err.Error(), "at least 32 bytes") {
		t.Errorf("short key error = %v", err)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := LoadHMACKey(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file error = %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	def := DefaultConfig()
	if err := def.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(def.Detectors) != len(Kinds()) {
		t.Errorf("default detectors = %v", def.Detectors)
	}
	cfg := Config{
		Detectors:      map[string]Action{"credit_card": "drop", "iban": ActionRedact, "ssn": ActionBlock},
		SecretKeyNames: []string{"password", "--"},
		PIIExemptKeys:  []string{""},
		HMACKey:        []byte("short"),
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`detectors::credit_card: unknown action "drop", use redact, block or off`,
		`detectors: unknown kind "iban", use one of credit_card, ssn`,
		`secret_key_names[1]: name "--" has no letters or digits`,
		`pii_exempt_keys[0]: key must not be empty`,
		`hmac key: must be at least 32 bytes, got 5`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := NewMasker(cfg); err == nil {
		t.Error("NewMasker accepted an invalid config")
	}
}

func TestActionsAndKinds(t *testing.T) {
	m := newMasker(t, func(c *Config) {
		c.Detectors[KindEmail] = ActionOff
		delete(c.Detectors, KindPhone)
		c.Detectors[KindJWT] = ActionBlock
	})
	for kind, want := range map[string]Action{KindEmail: ActionOff, KindPhone: ActionOff, KindJWT: ActionBlock, KindSSN: ActionRedact, "nope": ActionOff} {
		if got := m.Action(kind); got != want {
			t.Errorf("Action(%s) = %s, want %s", kind, got, want)
		}
	}
	if got, f := m.MaskString("a@example.com 555-123-4567"); got != "a@example.com 555-123-4567" || !f.Empty() {
		t.Errorf("disabled detectors ran: %q", got)
	}
	for _, k := range Kinds() {
		secret := k != KindCreditCard && k != KindSSN && k != KindEmail && k != KindPhone
		if IsSecret(k) != secret {
			t.Errorf("IsSecret(%s) = %v", k, !secret)
		}
	}
	if IsSecret("unknown") {
		t.Error("IsSecret(unknown)")
	}
	none := newMasker(t, func(c *Config) { c.SecretKeyNames = nil })
	if got, _ := none.MaskString("password=hunter2"); got != "password=hunter2" {
		t.Errorf("no key names: %q", got)
	}
}

func TestPIIExemptKeys(t *testing.T) {
	m := newMasker(t, func(c *Config) { c.PIIExemptKeys = []string{"user.email"} })
	span := ptrace.NewSpan()
	span.Attributes().PutStr("user.email", "alice@example.com "+awsKey)
	span.Attributes().PutStr("other", "alice@example.com")
	r := maskSpan(m, span, pcommon.NewResource())
	want := map[string]any{"user.email": "alice@example.com [REDACTED:aws_access_key]", "other": "[REDACTED:email]"}
	if got := span.Attributes().AsRaw(); !reflect.DeepEqual(got, want) {
		t.Errorf("attributes = %#v", got)
	}
	if r.String() != "redacted:aws_access_key,email" || !r.CredentialMasked {
		t.Errorf("result = %+v", r)
	}
}

func TestResult(t *testing.T) {
	for _, tc := range []struct {
		r    Result
		want string
	}{
		{Result{}, "clean"},
		{Result{Redacted: []string{"credit_card", "ssn"}}, "redacted:credit_card,ssn"},
		{Result{Blocked: []string{"ssn"}}, "blocked:ssn"},
		{Result{Blocked: []string{"ssn"}, Redacted: []string{"email"}}, "blocked:ssn;redacted:email"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.r, got, tc.want)
		}
	}
	a := Result{Redacted: []string{"ssn"}}
	b := Result{Redacted: []string{"email", "ssn"}, Blocked: []string{"jwt"}, CredentialMasked: true}
	if got := a.Merge(b); got.String() != "blocked:jwt;redacted:email,ssn" || !got.CredentialMasked {
		t.Errorf("merge = %+v", got)
	}
	if got := a.Merge(Result{}); !reflect.DeepEqual(got, a) {
		t.Errorf("merge with clean = %+v", got)
	}

	// The resource pattern for a ResourceSpans with several spans.
	m := newMasker(t, nil)
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("owner", "ops@example.com")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	spans.AppendEmpty().SetName("one")
	spans.AppendEmpty().SetName("two 123-45-6789")
	rr := maskResource(m, rs.Resource())
	var got []string
	for i := 0; i < spans.Len(); i++ {
		got = append(got, maskSpan(m, spans.At(i), rs.Resource()).Merge(rr).String())
	}
	if want := []string{"redacted:email", "redacted:email,ssn"}; !reflect.DeepEqual(got, want) {
		t.Errorf("per-span results = %v, want %v", got, want)
	}
}

func TestMaskAttributes(t *testing.T) {
	m := newMasker(t, nil)
	attrs := pcommon.NewMap()
	attrs.PutStr("cookie", "sid=abc")
	attrs.PutStr("msg", "ssn 123-45-6789")
	if r := maskAttrs(m, attrs); r.String() != "redacted:secret_key_name,ssn" {
		t.Errorf("result = %v", r)
	}
}

func TestBadInput(t *testing.T) {
	m := newMasker(t, func(c *Config) { c.HMACKey = []byte(strings.Repeat("k", 32)) })
	inputs := []string{
		"\xff\xfe\xfd", "4111\xff1111111111111", "\xff4111111111111111\xff", "a@\xffexample.com", "sk-\xff" + strings.Repeat("a", 30),
		"\xc3", "Bearer \xff\xff", "-----BEGIN \xff PRIVATE KEY-----", `password="\xff`, "[HMAC:", "[REDACTED:", "+", "(", "@", "=", ":",
		"password:", `"password":"`, `"password":\`, "eyJ", "eyJaaaaaaaaaaaaa.", "eyJaaaaaaaaaaaaa.bb.", "1-", "1 (", "+1 (", "ghp_", "xoxb-",
	}
	for _, in := range inputs {
		out, _ := m.MaskString(in)
		if !utf8.ValidString(in) {
			continue
		}
		if !utf8.ValidString(out) {
			t.Errorf("valid input %q gave invalid output %q", in, out)
		}
	}
	if out, _ := m.MaskString("\xff4111111111111111\xff"); strings.Contains(out, "4111111111111111") {
		t.Errorf("card between invalid bytes kept: %q", out)
	}
	span := ptrace.NewSpan()
	span.SetName("\xff\xfe 123-45-6789")
	span.Attributes().PutStr("x", "\xff"+jwtSample+"\xff")
	r := maskSpan(m, span, pcommon.NewResource())
	if r.String() != "redacted:jwt,ssn" {
		t.Errorf("result = %v", r)
	}
}

func TestHugeString(t *testing.T) {
	m := newMasker(t, nil)
	var b strings.Builder
	for b.Len() < 8<<20 {
		b.WriteString(`{"role":"assistant","content":"Lorem ipsum dolor sit amet, 2024-11-22 v1.2.3 10.0.0.1 input_tokens: 42"},`)
	}
	b.WriteString("4111111111111111")
	huge := b.String()
	out, f := m.MaskString(huge)
	if !f.Redacted.Has(KindCreditCard) || !strings.HasSuffix(out, "[REDACTED:credit_card]") {
		t.Errorf("card at the end of a huge string not masked: %v", f.Redacted)
	}
	// Pathological repetitions: every matcher stays linear (a quadratic one would take
	// minutes on 1 MB, where these take milliseconds).
	for _, unit := range []string{
		"password:", "a@", "@a.", "a.b@", "x@a-", "@a-b.", "a:b@", "x://a:b@", "-----BEGIN ", "-----BEGIN RSA PRIVATE KEY-----",
		"eyJ-", "eyJaaaaaaaaaa.", "eyJaaaaaaaaaa.b-", "eyJaaaaaaaaaa.eyJ", "Bearer ", "Bearer aaaa-", "1-", "+1 ", "4111 ", "1111-",
		"(555) ", "[REDACTED:", "[BLOCKED:ssn,", "sk-a-", "sk-proj-", "sk-ant-", "xoxb-a-", "ghp_", "github_pat_-", `"token":"a b `,
		`\"password\":\"\\\"`, `"password":"\\`, "password=Basic ", "authorization: bearer ", "cookie: a", "\\u0000", "=", ":", `"`,
	} {
		m.MaskString(strings.Repeat(unit, (1<<20)/len(unit)))
	}
}

func FuzzMaskString(f *testing.F) {
	for _, s := range []string{
		"4111 1111 1111 1111", "123-45-6789", "a@example.com", "(555) 123-4567", "+1 555 123 4567", openaiKey, anthKey, awsKey,
		ghToken, ghPAT, slackTok, jwtSample, "Bearer abc123def456ghi", pemBlock, `{"password":"x"}`, `{\"api_key\":\"a\\\"b\"}`,
		"Authorization: Basic abc", "[HMAC:jwt:0123456789abcdef0123456789abcdef]", "[REDACTED:ssn,email]", traceIDHex,
		"x4111111111111111@example.com", "1-555-123-4567@a.io", "password=[REDACTED:x]", "\xff\xfe", `\u003ca@b.io`,
	} {
		f.Add(s)
	}
	maskers := []*Masker{
		newMasker(f, nil),
		newMasker(f, func(c *Config) { c.HMACKey = []byte(strings.Repeat("k", 32)) }),
		newMasker(f, func(c *Config) {
			for k := range c.Detectors {
				c.Detectors[k] = ActionBlock
			}
		}),
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i, m := range maskers {
			out, found := m.MaskString(s)
			if found.Empty() != (out == s) {
				t.Fatalf("masker %d: findings %v but output changed=%v", i, found.All(), out != s)
			}
			again, f2 := m.MaskString(out)
			if !f2.Empty() || again != out {
				t.Fatalf("masker %d: second pass found %v in %q (from %q)", i, f2.All(), out, s)
			}
			if utf8.ValidString(s) && !utf8.ValidString(out) {
				t.Fatalf("masker %d: invalid UTF-8 out of %q: %q", i, s, out)
			}
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	m := newMasker(t, func(c *Config) { c.HMACKey = []byte(strings.Repeat("k", 32)) })
	want, _ := m.MaskString("key " + openaiKey + " mail a@example.com")
	done := make(chan string)
	for range 8 {
		go func() {
			var out string
			for range 200 {
				out, _ = m.MaskString("key " + openaiKey + " mail a@example.com")
				_, span, res := testSpan()
				maskSpan(m, span, res)
			}
			done <- out
		}()
	}
	for range 8 {
		if got := <-done; got != want {
			t.Errorf("concurrent output %q, want %q", got, want)
		}
	}
}

// A measurement or a flag under a name that looks like a credential is kept: the GenAI
// timing metrics end in "token"; a string under the same kind of name is still masked.
func TestKeyNameSparesMeasurements(t *testing.T) {
	m := newMasker(t, nil)
	attrs := pcommon.NewMap()
	attrs.PutDouble("gen_ai.server.time_to_first_token", 0.42)
	attrs.PutDouble("gen_ai.server.time_per_output_token", 0.012)
	attrs.PutBool("auth.token", true)
	attrs.PutStr("auth.token", "opaque-session-value")
	attrs.PutInt("api_token", 123456)
	r := maskAttrs(m, attrs)
	if r.String() != "redacted:secret_key_name" {
		t.Errorf("result = %v", r)
	}
	if v, _ := attrs.Get("gen_ai.server.time_to_first_token"); v.Double() != 0.42 {
		t.Errorf("time_to_first_token = %v, want kept", v.AsRaw())
	}
	if v, _ := attrs.Get("gen_ai.server.time_per_output_token"); v.Double() != 0.012 {
		t.Errorf("time_per_output_token = %v, want kept", v.AsRaw())
	}
	for _, k := range []string{"auth.token", "api_token"} {
		if v, _ := attrs.Get(k); strings.Contains(v.AsString(), "opaque") || strings.Contains(v.AsString(), "123456") {
			t.Errorf("%s = %v, want masked", k, v.AsRaw())
		}
	}
}

// A placeholder longer than its match must not push a value past MaxValueBytes; a value
// already longer than it before masking is not cut below its own length.
func TestMaxValueBytes(t *testing.T) {
	m := newMasker(t, func(c *Config) { c.MaxValueBytes = 40 })
	in := strings.Repeat("x", 23) + " 4111111111111111" // 40 bytes
	out, f := m.MaskString(in)
	if !f.Redacted.Has("credit_card") || strings.Contains(out, "4111") {
		t.Fatalf("not masked: %q", out)
	}
	if len(out) != 40 || !strings.HasPrefix(out, strings.Repeat("x", 23)+" [REDACTED") {
		t.Errorf("masked value = %q (%d bytes), want it cut to 40", out, len(out))
	}
	long := strings.Repeat("y", 60) + " 4111111111111111"
	out, _ = m.MaskString(long)
	if len(out) != len(long) || strings.Contains(out, "4111") {
		t.Errorf("masked long value = %q (%d bytes), want %d bytes", out, len(out), len(long))
	}
}
