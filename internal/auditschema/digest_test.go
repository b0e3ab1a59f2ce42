package auditschema

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/otelaudit/otelcol-audit/internal/genaitest"
)

// canonicalEncoding is the row encoding RowHash is defined by (see its doc comment),
// written plainly: the hashes of sealed files depend on it never changing.
func canonicalEncoding(b []byte, v reflect.Value) []byte {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return append(b, 0)
		}
		b = append(b, 1)
		v = v.Elem()
	}
	switch {
	case v.Type() == timeType:
		return binary.LittleEndian.AppendUint64(b, uint64(canonicalTime(v.Interface().(time.Time)).UnixMicro()))
	case v.Kind() == reflect.String:
		b = binary.AppendUvarint(b, uint64(v.Len()))
		return append(b, v.String()...)
	case v.Kind() == reflect.Int64:
		return binary.LittleEndian.AppendUint64(b, uint64(v.Int()))
	case v.Kind() == reflect.Float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(v.Float()))
	case v.Kind() == reflect.Bool:
		if v.Bool() {
			return append(b, 1)
		}
		return append(b, 0)
	case v.Kind() == reflect.Struct:
		// The columns of schema version 3, the last fields, follow only when one is set.
		n := v.NumField()
		if v.Type() == reflect.TypeFor[Row]() {
			v3 := false
			for i := n - len(ColumnsV3); i < n; i++ {
				v3 = v3 || !v.Field(i).IsNil()
			}
			if !v3 {
				n -= len(ColumnsV3)
			}
		}
		for i := 0; i < n; i++ {
			b = canonicalEncoding(b, v.Field(i))
		}
		return b
	default: // []string
		b = binary.AppendUvarint(b, uint64(v.Len()))
		for i := 0; i < v.Len(); i++ {
			s := v.Index(i).String()
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
		return b
	}
}

var timeType = reflect.TypeFor[time.Time]()

// fullRow has every column set, each to a value of its own.
func fullRow() Row {
	var r Row
	v := reflect.ValueOf(&r).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() == reflect.Pointer {
			f.Set(reflect.New(f.Type().Elem()))
			f = f.Elem()
		}
		switch {
		case f.Type() == timeType:
			f.Set(reflect.ValueOf(time.Date(2026, 11, 22, 4, i, 0, i*1000, time.UTC)))
		case f.Kind() == reflect.String:
			f.SetString(strings.Repeat(string(rune('a'+i%26)), i+1))
		case f.Kind() == reflect.Int64:
			f.SetInt(int64(1000 + i))
		case f.Kind() == reflect.Float64:
			f.SetFloat(float64(i) + 0.25)
		case f.Kind() == reflect.Bool:
			f.SetBool(i%3 == 0)
		case f.Kind() == reflect.Slice:
			f.Set(reflect.ValueOf([]string{"flag", v.Type().Field(i).Name}))
		default:
			panic("fullRow: no value for " + f.Type().String())
		}
	}
	return r
}

func TestRowHashIsSHA256OfCanonicalEncoding(t *testing.T) {
	td := genaitest.New(7, time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)).Traces(300)
	var rows []Row
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				rows = append(rows, FromSpan(rss.At(i).Resource(), spans.At(k), time.Now()))
			}
		}
	}
	long := strings.Repeat("x", 300)
	rows = append(rows, Row{}, Row{Name: long[:127], Attributes: long, Flags: []string{"", long, "short"}, Request: &long}, fullRow())
	for i := range rows {
		enc := canonicalEncoding(nil, reflect.ValueOf(rows[i]))
		if got := AppendRow(nil, &rows[i]); string(got) != string(enc) {
			t.Fatalf("row %d: AppendRow differs from the canonical encoding", i)
		}
		if got := RowHash(&rows[i]); got != sha256.Sum256(enc) {
			t.Fatalf("row %d: RowHash differs from the SHA-256 of the canonical encoding", i)
		}
	}
}

// DecodeRow reads back what AppendRow wrote, and refuses every cut-short or lengthened
// encoding rather than return a different row.
func TestDecodeRowRoundTrip(t *testing.T) {
	td := genaitest.New(9, time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)).Traces(200)
	var rows []Row
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				rows = append(rows, FromSpan(rss.At(i).Resource(), spans.At(k), time.Now()))
			}
		}
	}
	v3only := Row{ResourceID: new(string)}
	rows = append(rows, Row{}, fullRow(), v3only)
	for i := range rows {
		got, err := DecodeRow(AppendRow(nil, &rows[i]))
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if RowHash(&got) != RowHash(&rows[i]) {
			t.Fatalf("row %d decoded differently", i)
		}
		if !reflect.DeepEqual(normalise(got), normalise(rows[i])) {
			t.Fatalf("row %d decoded differently:\n got %+v\nwant %+v", i, got, rows[i])
		}
	}

	// Cut just before its version 3 columns, a row's encoding is that of the row without
	// them (which is how an older row keeps its hash): the log's frames, length-prefixed
	// and checksummed, tell that cut apart. Every other cut is refused.
	for _, r := range []Row{fullRow(), {}, v3only} {
		enc := AppendRow(nil, &r)
		older := r
		older.SessionID, older.ExecutionID, older.IdempotencyKey, older.ResourceType, older.ResourceID = nil, nil, nil, nil, nil
		for n := range len(enc) {
			if _, err := DecodeRow(enc[:n]); err == nil && n != len(AppendRow(nil, &older)) {
				t.Fatalf("an encoding cut to %d of %d bytes decoded", n, len(enc))
			}
		}
		if _, err := DecodeRow(append(enc, 0)); err == nil {
			t.Fatalf("an encoding with a byte after it decoded")
		}
	}
	// The columns of version 3 are written only when one is set: all of them NULL after
	// the others is not an encoding.
	if _, err := DecodeRow(append(AppendRow(nil, &Row{}), 0, 0, 0, 0, 0)); err == nil {
		t.Fatal("a row with its version 3 columns written NULL decoded")
	}
}

// A row without the columns of schema version 3, such as every row of an older file,
// keeps the hash it was written with: its encoding is that of version 2.
func TestRowHashOfOlderRowsUnchanged(t *testing.T) {
	v2 := fullRow()
	v2.SessionID, v2.ExecutionID, v2.IdempotencyKey, v2.ResourceType, v2.ResourceID = nil, nil, nil, nil, nil
	enc := AppendRow(nil, &v2)
	// The encoding of version 2 ends with the search text.
	tail := appendStr(nil, v2.SearchText)
	if string(enc[len(enc)-len(tail):]) != string(tail) {
		t.Fatal("a row without the version 3 columns does not end with its search text")
	}
	v3 := v2
	v3.SessionID = new(string)
	if RowHash(&v3) == RowHash(&v2) {
		t.Fatal("a session id, even empty, does not change the hash")
	}
}

// FuzzDecodeRow: arbitrary bytes never panic DecodeRow, and whatever it accepts encodes
// back to exactly those bytes.
func FuzzDecodeRow(f *testing.F) {
	full := fullRow()
	f.Add(AppendRow(nil, &full))
	f.Add(AppendRow(nil, &Row{}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRow(b)
		if err != nil {
			return
		}
		if string(AppendRow(nil, &r)) != string(b) {
			t.Fatalf("decoded row encodes to other bytes than those it was read from")
		}
	})
}
