package auditschema

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"math"
	"reflect"
	"sync"
	"time"
	"unsafe"
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
	h := rowHashers.Get().(*rowHasher)
	h.reset()
	row := reflect.ValueOf(r).Elem()
	for i := 0; i < row.NumField(); i++ {
		h.field(row.Field(i))
	}
	sum := h.sum()
	rowHashers.Put(h)
	return sum
}

var rowHashers = sync.Pool{New: func() any { return &rowHasher{h: sha256.New(), b: make([]byte, 0, 4<<10)} }}

// rowHasher feeds the canonical encoding to SHA-256. Small values are gathered in b;
// long strings (the payloads, the JSON documents) go to the hash as they are, without
// being copied first.
type rowHasher struct {
	h hash.Hash
	b []byte
}

// direct is the length from which a string is hashed in place rather than copied to b.
const direct = 256

var timeType = reflect.TypeFor[time.Time]()

func (h *rowHasher) reset() {
	h.h.Reset()
	h.b = h.b[:0]
}

func (h *rowHasher) flush() {
	h.h.Write(h.b)
	h.b = h.b[:0]
}

func (h *rowHasher) sum() [32]byte {
	h.flush()
	var out [32]byte
	h.h.Sum(out[:0])
	return out
}

func (h *rowHasher) str(s string) {
	h.b = binary.AppendUvarint(h.b, uint64(len(s)))
	if len(s) < direct {
		h.b = append(h.b, s...)
		return
	}
	h.flush()
	h.h.Write(unsafe.Slice(unsafe.StringData(s), len(s))) // read only
}

func (h *rowHasher) field(v reflect.Value) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			h.b = append(h.b, 0)
			return
		}
		h.b = append(h.b, 1)
		v = v.Elem()
	}
	switch {
	case v.Type() == timeType:
		h.b = binary.LittleEndian.AppendUint64(h.b, uint64(canonicalTime(v.Interface().(time.Time)).UnixMicro()))
	case v.Kind() == reflect.String:
		h.str(v.String())
	case v.Kind() == reflect.Int64:
		h.b = binary.LittleEndian.AppendUint64(h.b, uint64(v.Int()))
	case v.Kind() == reflect.Float64:
		h.b = binary.LittleEndian.AppendUint64(h.b, math.Float64bits(v.Float()))
	case v.Kind() == reflect.Bool:
		if v.Bool() {
			h.b = append(h.b, 1)
		} else {
			h.b = append(h.b, 0)
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		h.b = binary.AppendUvarint(h.b, uint64(v.Len()))
		for i := 0; i < v.Len(); i++ {
			h.str(v.Index(i).String())
		}
	default:
		panic(fmt.Sprintf("auditschema: RowHash has no encoding for %s", v.Type()))
	}
}

func canonicalTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}
