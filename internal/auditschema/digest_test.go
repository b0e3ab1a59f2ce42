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
		for i := 0; i < v.NumField(); i++ {
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

// DecodeRow reads back what AppendRow wrote, row after row, and refuses every cut-short
// or altered encoding rather than return a different row.
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
	rows = append(rows, Row{}, fullRow())
	var b []byte
	for i := range rows {
		b = AppendRow(b, &rows[i])
	}
	rest := b
	for i := range rows {
		got, after, err := DecodeRow(rest)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if RowHash(&got) != RowHash(&rows[i]) {
			t.Fatalf("row %d decoded differently", i)
		}
		if !reflect.DeepEqual(normalise(got), normalise(rows[i])) {
			t.Fatalf("row %d decoded differently:\n got %+v\nwant %+v", i, got, rows[i])
		}
		rest = after
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left after the last row", len(rest))
	}

	full := fullRow()
	enc := AppendRow(nil, &full)
	for n := range len(enc) {
		if _, _, err := DecodeRow(enc[:n]); err == nil {
			t.Fatalf("an encoding cut to %d of %d bytes decoded", n, len(enc))
		}
	}
}

// FuzzDecodeRow: arbitrary bytes never panic DecodeRow, and whatever it accepts encodes
// back to exactly the bytes it consumed.
func FuzzDecodeRow(f *testing.F) {
	full := fullRow()
	f.Add(AppendRow(nil, &full))
	f.Add(AppendRow(nil, &Row{}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, rest, err := DecodeRow(b)
		if err != nil {
			return
		}
		if consumed := b[:len(b)-len(rest)]; string(AppendRow(nil, &r)) != string(consumed) {
			t.Fatalf("decoded row encodes to other bytes than those it was read from")
		}
	})
}
