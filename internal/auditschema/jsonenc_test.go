package auditschema

import (
	"encoding/json"
	"math"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// The hand-written encoder must agree with encoding/json on everything JSON can hold.
func TestAppendMapMatchesEncodingJSON(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr("plain", "hello")
	m.PutStr("escapes", "quote\" backslash\\ newline\n tab\t cr\r nul\x00 bell\x07 AT&T <b>")
	m.PutStr("unicode", "naïve – 日本語 😀")
	m.PutStr("line-sep", "a\u2028b\u2029c")
	m.PutInt("int", -42)
	m.PutDouble("double", 3.25)
	m.PutDouble("big", 1e21)
	m.PutBool("bool", true)
	m.PutEmptyBytes("bytes").FromRaw([]byte{0, 1, 2, 250})
	nested := m.PutEmptyMap("nested")
	nested.PutStr("z", "last")
	nested.PutStr("a", "first")
	sl := m.PutEmptySlice("slice")
	sl.AppendEmpty().SetInt(1)
	sl.AppendEmpty().SetStr("two")
	sl.AppendEmpty().SetEmptyMap().PutBool("three", false)
	m.PutEmpty("empty")

	got := appendMap(nil, m)
	var gotV, wantV any
	if err := json.Unmarshal(got, &gotV); err != nil {
		t.Fatalf("not valid JSON: %v\n%s", err, got)
	}
	want, err := json.Marshal(m.AsRaw())
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(want, &wantV); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(gotV)
	wb, _ := json.Marshal(wantV)
	if string(gb) != string(wb) {
		t.Errorf("appendMap differs from encoding/json:\n got %s\nwant %s", gb, wb)
	}
}

func TestAppendStringInvalidUTF8AndSpecialDoubles(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr("bad", "a\xffb")
	m.PutDouble("inf", math.Inf(-1))
	var v map[string]any
	if err := json.Unmarshal(appendMap(nil, m), &v); err != nil {
		t.Fatal(err)
	}
	if v["bad"] != "a\ufffdb" {
		t.Errorf("invalid UTF-8 not replaced: %q", v["bad"])
	}
	if v["inf"] != "-Inf" {
		t.Errorf("-Inf written as %v, want the string -Inf", v["inf"])
	}
}
