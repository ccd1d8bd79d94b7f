package codecs

import (
	"github.com/hamba/avro/v2"
)

// skimAvro reads one value of schema s from r without building it: the checks hamba's decoder
// makes on the way (lengths and counts not negative nor over bound, union and enum indexes in
// range, no read past the end), with hamba's own Reader doing every read, so a value skimAvro
// accepts is one hamba reads, and the other way round (FuzzAvroSkimMatchesDecode holds it to
// that). A failure is left in r.Error. Reading the input in full into Go values was most of
// the Avro format's cost: 26 allocations an order.
func skimAvro(r *avro.Reader, s avro.Schema, bound int) {
	switch s := s.(type) {
	case *avro.RecordSchema:
		for _, f := range s.Fields() {
			if skimAvro(r, f.Type(), bound); r.Error != nil {
				return
			}
		}
	case *avro.NullSchema:
	case *avro.RefSchema:
		skimAvro(r, s.Schema(), bound)
	case *avro.PrimitiveSchema:
		skimPrimitive(r, s.Type(), bound)
	case *avro.ArraySchema:
		items := 0
		for r.Error == nil {
			n, _ := r.ReadBlockHeader()
			if n == 0 {
				return
			}
			if items += int(n); n > int64(bound) || items > bound {
				r.ReportError("skim array", "more items than the value size bound")
				return
			}
			for i := int64(0); i < n && r.Error == nil; i++ {
				skimAvro(r, s.Items(), bound)
			}
		}
	case *avro.MapSchema:
		for r.Error == nil {
			n, _ := r.ReadBlockHeader()
			if n == 0 {
				return
			}
			for i := int64(0); i < n && r.Error == nil; i++ {
				skimPrimitive(r, avro.String, bound) // the key
				skimAvro(r, s.Values(), bound)
			}
		}
	case *avro.UnionSchema:
		types := s.Types()
		i := r.ReadLong()
		if r.Error == nil && (i < 0 || i >= int64(len(types))) {
			r.ReportError("skim union", "unknown union type")
			return
		}
		if r.Error == nil {
			skimAvro(r, types[i], bound)
		}
	case *avro.EnumSchema:
		i := r.ReadInt()
		if r.Error == nil && (i < 0 || int(i) >= len(s.Symbols())) {
			r.ReportError("skim enum", "unknown enum symbol")
		}
	case *avro.FixedSchema:
		skimBytes(r, s.Size())
	default:
		r.ReportError("skim", "unexpected schema type "+string(s.Type()))
	}
}

// skimPrimitive reads one value of primitive type t.
func skimPrimitive(r *avro.Reader, t avro.Type, bound int) {
	switch t {
	case avro.Null:
	case avro.Boolean:
		r.ReadBool()
	case avro.Int:
		r.ReadInt()
	case avro.Long:
		r.ReadLong()
	case avro.Float:
		skimBytes(r, 4)
	case avro.Double:
		skimBytes(r, 8)
	case avro.String, avro.Bytes:
		n := r.ReadLong()
		switch {
		case r.Error != nil:
		case n < 0:
			r.ReportError("skim "+string(t), "invalid "+string(t)+" length")
		case n > int64(bound):
			r.ReportError("skim "+string(t), "size is greater than the value size bound")
		default:
			skimBytes(r, int(n))
		}
	default:
		r.ReportError("skim", "unexpected primitive type "+string(t))
	}
}

// skimBytes reads n bytes, failing as a read would when fewer are left.
func skimBytes(r *avro.Reader, n int) {
	r.SkipNBytes(n)
}
