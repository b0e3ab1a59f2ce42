package auditqueryextension

import (
	"fmt"
	"io"
	"reflect"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// parquetRowsPerGroup bounds the rows an export's Parquet writer buffers before it
// writes them out as a row group: memory stays flat whatever the export's size.
const parquetRowsPerGroup = 8192

// exportRowType is the Go type of one exported row: a field per result column, typed as
// the schema types it (every value optional, since joined columns may be null), so that
// parquet-go derives the file's schema and writes rows by reflection.
var exportRowType, exportSetters = func() (reflect.Type, []func(reflect.Value, any) error) {
	timeType := reflect.TypeOf(time.Time{})
	fields := make([]reflect.StructField, len(resultColumns))
	setters := make([]func(reflect.Value, any) error, len(resultColumns))
	for i, col := range resultColumns {
		typ := resultColumnTypes[col]
		tag := col + ",optional"
		if typ.Kind() == reflect.Slice {
			tag = col + ",list"
		}
		if typ == timeType {
			tag += ",timestamp(microsecond)"
		}
		if typ.Kind() != reflect.Slice {
			typ = reflect.PointerTo(typ)
		}
		fields[i] = reflect.StructField{Name: fmt.Sprintf("C%d", i), Type: typ, Tag: reflect.StructTag(`parquet:"` + tag + `"`)}
		setters[i] = setterFor(col, typ)
	}
	return reflect.StructOf(fields), setters
}()

// setterFor converts a value scanned from DuckDB into a field of type typ.
func setterFor(col string, typ reflect.Type) func(reflect.Value, any) error {
	bad := func(v any) error { return fmt.Errorf("export column %s: unexpected %T", col, v) }
	kind := typ.Elem().Kind()
	if typ.Kind() == reflect.Slice {
		kind = reflect.Slice
	}
	switch kind {
	case reflect.String:
		return func(f reflect.Value, v any) error {
			s, ok := v.(string)
			if !ok {
				return bad(v)
			}
			f.Set(reflect.ValueOf(&s))
			return nil
		}
	case reflect.Int64:
		return func(f reflect.Value, v any) error {
			var n int64
			switch x := v.(type) {
			case int64:
				n = x
			case int32:
				n = int64(x)
			default:
				return bad(v)
			}
			f.Set(reflect.ValueOf(&n))
			return nil
		}
	case reflect.Float64:
		return func(f reflect.Value, v any) error {
			x, ok := v.(float64)
			if !ok {
				return bad(v)
			}
			f.Set(reflect.ValueOf(&x))
			return nil
		}
	case reflect.Bool:
		return func(f reflect.Value, v any) error {
			x, ok := v.(bool)
			if !ok {
				return bad(v)
			}
			f.Set(reflect.ValueOf(&x))
			return nil
		}
	case reflect.Struct: // time.Time
		return func(f reflect.Value, v any) error {
			x, ok := v.(time.Time)
			if !ok {
				return bad(v)
			}
			x = x.UTC()
			f.Set(reflect.ValueOf(&x))
			return nil
		}
	case reflect.Slice: // []string
		return func(f reflect.Value, v any) error {
			list, ok := v.([]any)
			if !ok {
				return bad(v)
			}
			out := make([]string, 0, len(list))
			for _, e := range list {
				s, ok := e.(string)
				if !ok {
					return bad(e)
				}
				out = append(out, s)
			}
			f.Set(reflect.ValueOf(out))
			return nil
		}
	default:
		panic(fmt.Sprintf("export column %s: no conversion to %s", col, typ))
	}
}

// parquetRowWriter writes export rows as a zstd-compressed Parquet file.
type parquetRowWriter struct {
	w    *parquet.Writer
	row  reflect.Value
	rows int
}

func newParquetRowWriter(out io.Writer) (*parquetRowWriter, error) {
	schema := parquet.SchemaOf(reflect.New(exportRowType).Interface())
	w := parquet.NewWriter(out, schema, parquet.Compression(&zstd.Codec{}),
		parquet.CreatedBy("otelcol-audit export", "1", ""))
	return &parquetRowWriter{w: w, row: reflect.New(exportRowType)}, nil
}

func (p *parquetRowWriter) write(vals []any) error {
	row := p.row.Elem()
	row.SetZero()
	for i, v := range vals {
		if v == nil {
			continue
		}
		if err := exportSetters[i](row.Field(i), v); err != nil {
			return err
		}
	}
	if err := p.w.Write(p.row.Interface()); err != nil {
		return err
	}
	p.rows++
	if p.rows%parquetRowsPerGroup == 0 {
		return p.w.Flush()
	}
	return nil
}

func (p *parquetRowWriter) close() error { return p.w.Close() }
