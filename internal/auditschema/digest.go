package auditschema

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"sync"
	"time"
)

// RowHash is the SHA-256 of a row's canonical encoding. It is the same for a row as
// written and as read back from Parquet (times at microsecond precision in UTC, an empty
// flag list the same as none), which lets the ledger's content digests prove that a
// compaction kept every row.
//
// The encoding walks the Row fields in schema order; per field it writes a presence byte
// for pointers, then the value: strings and string lists length-prefixed, times as Unix
// microseconds, numbers as 8 bytes. A new column changes every hash, which is why the
// schema has a version.
func RowHash(r *Row) [32]byte {
	bp := hashBufs.Get().(*[]byte)
	b := appendCanonical((*bp)[:0], reflect.ValueOf(r).Elem())
	sum := sha256.Sum256(b)
	*bp = b
	hashBufs.Put(bp)
	return sum
}

var hashBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

var timeType = reflect.TypeFor[time.Time]()

func appendCanonical(b []byte, row reflect.Value) []byte {
	for i := 0; i < row.NumField(); i++ {
		b = appendField(b, row.Field(i))
	}
	return b
}

func appendField(b []byte, v reflect.Value) []byte {
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
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		b = binary.AppendUvarint(b, uint64(v.Len()))
		for i := 0; i < v.Len(); i++ {
			s := v.Index(i).String()
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
		return b
	default:
		panic(fmt.Sprintf("auditschema: RowHash has no encoding for %s", v.Type()))
	}
}

func canonicalTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
