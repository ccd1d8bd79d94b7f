package codecs

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/bufbuild/protocompile"
	"github.com/jhump/protoreflect/v2/protoprint"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// ProtobufConfig configures a Protobuf format.
type ProtobufConfig struct {
	// Registry is where the schemas are.
	Registry Registry
	// OutputSubject is the subject output schemas are registered under: with the
	// TopicNameStrategy that Confluent's serializers use by default, "<output topic>-value".
	// Required.
	OutputSubject string
	// ScoreField is the field of a score message that holds the score, of an integer type;
	// empty is "score".
	ScoreField string
	// OutputScoreField is the int64 field an output adds to its input's message, with the next
	// free field number; empty is "score".
	OutputScoreField string
	// Limits bound the values read.
	Limits
}

// Protobuf is the Format of Protocol Buffers records in the Confluent wire format (a zero byte,
// the 4-byte schema ID, the message indexes that name the message type within its schema, then
// the message), as Confluent's and Apicurio's Protobuf serializers write them. An input of any
// message type becomes an output of the same message with one more field, OutputScoreField
// (int64, numbered after the message's highest field number, reserved ranges included), whose
// schema is the input's .proto file with that field added, registered under OutputSubject. As a
// message's fields may come in any order, the output's bytes are the input's followed by the
// field: the input is parsed once, to check it, and never written again. A score message is any
// message with an integer ScoreField; where the field has no presence (proto3's plain fields), an
// absent field reads as 0, as every proto3 reader reads it.
//
// Proto3 has no field defaults, so an output's score is always written, -1 while the key has no
// score; a proto2 schema gets [default = -1] too. Imports resolve to the schema's registry
// references, by their import paths, and to Google's well-known types; the output schema carries
// the input's references. Build one with NewProtobuf.
type Protobuf struct {
	cfg ProtobufConfig
	reg *registryClient

	inputs schemaCache[protoKey, *protoInput]
	scores schemaCache[protoKey, *protoScore]
}

// protoKey names a message type: a schema ID and the message indexes within its file.
type protoKey struct {
	id    int
	index string // the indexes, as decimal numbers joined by dots
}

// protoInput is an input message type and what its outputs need.
type protoInput struct {
	msg   protoreflect.MessageDescriptor
	num   protowire.Number // the output's score field
	outID int
}

// protoScore is a score message type and its score field.
type protoScore struct {
	msg   protoreflect.MessageDescriptor
	field protoreflect.FieldDescriptor // nil: the type has no score field
}

// maxIndexes bounds the message indexes read from a value: a crafted count must not allocate.
const maxIndexes = 64

// NewProtobuf returns a Protobuf format; it does not reach the registry until the first record.
func NewProtobuf(cfg ProtobufConfig) (*Protobuf, error) {
	reg, err := newRegistryFormat("protobuf", cfg.Registry, cfg.OutputSubject, &cfg.ScoreField, &cfg.OutputScoreField)
	if err != nil {
		return nil, err
	}
	return &Protobuf{cfg: cfg, reg: reg}, nil
}

// Score reads ScoreField of a score message.
func (p *Protobuf) Score(_ string, value []byte) (int64, error) {
	key, index, body, err := p.header(value)
	if err != nil {
		return 0, err
	}
	s, err := p.scores.get(key, func() (*protoScore, error) {
		msg, _, err := p.message(key, index)
		if err != nil {
			return nil, err
		}
		return &protoScore{msg: msg, field: msg.Fields().ByName(protoreflect.Name(p.cfg.ScoreField))}, nil
	})
	if err != nil {
		return 0, err
	}
	m, err := parse(s.msg, key.id, body)
	if err != nil {
		return 0, err
	}
	f := s.field
	if f == nil || f.Cardinality() == protoreflect.Repeated || (f.HasPresence() && !m.Has(f)) {
		return 0, Reject(ReasonMissingField, "score message %s of schema %d has no %s", s.msg.FullName(), key.id, p.cfg.ScoreField)
	}
	v := m.Get(f)
	switch f.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.Int64Kind,
		protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return v.Int(), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if v.Uint() > math.MaxInt64 {
			return 0, Reject(ReasonWrongType, "%s is %d, past an int64", p.cfg.ScoreField, v.Uint())
		}
		return int64(v.Uint()), nil
	}
	return 0, Reject(ReasonWrongType, "%s is a %s, not an integer", p.cfg.ScoreField, f.Kind())
}

// Enrich appends to dst the output of an input: its message with OutputScoreField.
func (p *Protobuf) Enrich(dst []byte, _ string, value []byte, score int64) ([]byte, error) {
	key, index, body, err := p.header(value)
	if err != nil {
		return dst, err
	}
	in, err := p.inputs.get(key, func() (*protoInput, error) {
		msg, schema, err := p.message(key, index)
		if err != nil {
			return nil, err
		}
		return p.outputSchema(key, index, msg, schema)
	})
	if err != nil {
		return dst, err
	}
	if _, err := parse(in.msg, key.id, body); err != nil {
		return dst, err
	}
	var h sr.ConfluentHeader
	out, err := h.AppendEncode(dst, in.outID, index)
	if err != nil {
		return dst, err
	}
	out = append(out, body...)
	out = protowire.AppendTag(out, in.num, protowire.VarintType)
	return protowire.AppendVarint(out, uint64(score)), nil // int64 on the wire: two's complement
}

// header checks a value's size and wire-format header and returns its message type's key, the
// message indexes and the message's bytes.
func (p *Protobuf) header(value []byte) (protoKey, []int, []byte, error) {
	if err := checkSize(value, p.cfg.MaxValueBytes); err != nil {
		return protoKey{}, nil, nil, err
	}
	var h sr.ConfluentHeader
	id, rest, err := h.DecodeID(value)
	if err != nil {
		return protoKey{}, nil, nil, Reject(ReasonNotWireFormat, "%v", err)
	}
	index, body, err := h.DecodeIndex(rest, maxIndexes)
	if err != nil {
		return protoKey{}, nil, nil, Reject(ReasonNotWireFormat, "message indexes: %v", err)
	}
	parts := make([]string, len(index))
	for i, n := range index {
		parts[i] = strconv.Itoa(n)
	}
	return protoKey{id: id, index: strings.Join(parts, ".")}, index, body, nil
}

// parse reads body as one message of msg.
func parse(msg protoreflect.MessageDescriptor, id int, body []byte) (protoreflect.Message, error) {
	m := dynamicpb.NewMessage(msg)
	if err := proto.Unmarshal(body, m); err != nil {
		return nil, Reject(ReasonSchemaMismatch, "%s of schema %d cannot read the value: %v", msg.FullName(), id, err)
	}
	return m, nil
}

// message fetches and compiles the schema of key and returns the message type its indexes
// name, and the file.
func (p *Protobuf) message(key protoKey, index []int) (protoreflect.MessageDescriptor, *protoSchema, error) {
	st, err := p.reg.fetch(context.Background(), key.id, sr.TypeProtobuf)
	if err != nil {
		return nil, nil, err
	}
	file, err := compileProtoRefs(key.id, st)
	if err != nil {
		return nil, nil, err
	}
	msgs := file.Messages()
	var msg protoreflect.MessageDescriptor
	for _, i := range index {
		if i < 0 || i >= msgs.Len() {
			return nil, nil, Reject(ReasonSchemaMismatch, "schema %d has no message at indexes %s", key.id, key.index)
		}
		msg = msgs.Get(i)
		msgs = msg.Messages()
	}
	return msg, &protoSchema{file: file, references: st.references}, nil
}

// protoSchema is a compiled .proto file from the registry and its references.
type protoSchema struct {
	file       protoreflect.FileDescriptor
	references []sr.SchemaReference
}

// Bounds on compiling a schema from the registry, which is input the job does not control: a
// crafted .proto file once made protocompile's parser take seconds (bufbuild/protocompile#343).
const (
	maxProtoSchemaBytes = 1 << 20
	protoCompileTimeout = 30 * time.Second
)

// compileProto compiles a .proto file that imports nothing but Google's well-known types.
func compileProto(id int, text string) (protoreflect.FileDescriptor, error) {
	return compileProtoRefs(id, schemaText{text: text})
}

// compileProtoRefs compiles a .proto file from the registry. Its imports resolve to the schemas
// it references, by their names (Confluent's serializers name a reference by its import path),
// and to the compiler's own copies of Google's well-known types; any other import fails, as the
// resolver serves these texts and never a file.
func compileProtoRefs(id int, st schemaText) (protoreflect.FileDescriptor, error) {
	name := fmt.Sprintf("registry-schema-%d.proto", id)
	sources := map[string]string{name: st.text}
	size := len(st.text)
	for _, r := range st.refs {
		sources[r.name] = r.text
		size += len(r.text)
	}
	if size > maxProtoSchemaBytes {
		return nil, Reject(ReasonSchemaMismatch, "schema %d and its references are %d bytes, over the %d a .proto schema may have", id, size, maxProtoSchemaBytes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), protoCompileTimeout)
	defer cancel()
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(sources),
	}), SourceInfoMode: protocompile.SourceInfoStandard} // the comments, for the output schema
	files, err := c.Compile(ctx, name)
	if err != nil {
		return nil, Reject(ReasonSchemaMismatch, "schema %d: %v", id, err)
	}
	return files[0], nil
}

// outputSchema makes the output schema of the message type at index in file: the file with
// OutputScoreField added to that message, printed as .proto text and registered under
// OutputSubject.
func (p *Protobuf) outputSchema(key protoKey, index []int, msg protoreflect.MessageDescriptor, schema *protoSchema) (*protoInput, error) {
	file := schema.file
	name := protoreflect.Name(p.cfg.OutputScoreField)
	if msg.Fields().ByName(name) != nil || msg.Oneofs().ByName(name) != nil {
		return nil, Reject(ReasonSchemaMismatch, "%s of schema %d already has a field %s", msg.FullName(), key.id, name)
	}
	num := nextFieldNumber(msg)
	if !num.IsValid() {
		return nil, Reject(ReasonSchemaMismatch, "%s of schema %d has no free field number left", msg.FullName(), key.id)
	}
	fdp := protodesc.ToFileDescriptorProto(file)
	mp := fdp.MessageType[index[0]]
	for _, i := range index[1:] {
		mp = mp.NestedType[i]
	}
	field := &descriptorpb.FieldDescriptorProto{
		Name:   proto.String(string(name)),
		Number: proto.Int32(int32(num)),
		Label:  descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
		Type:   descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum(),
	}
	if file.Syntax() == protoreflect.Proto2 {
		field.DefaultValue = proto.String(strconv.FormatInt(NoScore, 10))
	}
	mp.Field = append(mp.Field, field) // the source info stays: it carries the input's comments

	deps := new(protoregistry.Files)
	if err := registerImports(deps, file); err != nil {
		return nil, err
	}
	out, err := protodesc.NewFile(fdp, deps)
	if err != nil {
		return nil, fmt.Errorf("output schema of %d: %w", key.id, err)
	}
	var text bytes.Buffer
	if err := (&protoprint.Printer{}).PrintProtoFile(out, &text); err != nil {
		return nil, fmt.Errorf("output schema of %d: %w", key.id, err)
	}
	// The output imports what the input imported, so it carries the same references.
	outID, err := p.reg.registerOutput(context.Background(), p.cfg.OutputSubject,
		sr.Schema{Schema: text.String(), Type: sr.TypeProtobuf, References: schema.references}, key.id)
	if err != nil {
		return nil, err
	}
	return &protoInput{msg: msg, num: num, outID: outID}, nil
}

// nextFieldNumber is the number after msg's highest field, reserved and extension number: a
// number no earlier version of the message can have used. It skips the range Protocol Buffers
// keeps for itself.
func nextFieldNumber(msg protoreflect.MessageDescriptor) protowire.Number {
	var top protoreflect.FieldNumber
	for i := 0; i < msg.Fields().Len(); i++ {
		top = max(top, msg.Fields().Get(i).Number())
	}
	for i := 0; i < msg.ReservedRanges().Len(); i++ {
		top = max(top, msg.ReservedRanges().Get(i)[1]-1) // ranges end exclusive
	}
	for i := 0; i < msg.ExtensionRanges().Len(); i++ {
		top = max(top, msg.ExtensionRanges().Get(i)[1]-1)
	}
	next := protowire.Number(top + 1)
	if next >= protowire.FirstReservedNumber && next <= protowire.LastReservedNumber {
		next = protowire.LastReservedNumber + 1
	}
	return next
}

// registerImports adds the files file imports, and theirs, to files.
func registerImports(files *protoregistry.Files, file protoreflect.FileDescriptor) error {
	imports := file.Imports()
	for i := 0; i < imports.Len(); i++ {
		imp := imports.Get(i).FileDescriptor
		if _, err := files.FindFileByPath(imp.Path()); err == nil {
			continue
		}
		if err := registerImports(files, imp); err != nil {
			return err
		}
		if err := files.RegisterFile(imp); err != nil {
			return fmt.Errorf("import %s: %w", imp.Path(), err)
		}
	}
	return nil
}

// RegistryState reports the outcome of the format's registry requests.
func (p *Protobuf) RegistryState() RegistryState { return p.reg.registryState() }
