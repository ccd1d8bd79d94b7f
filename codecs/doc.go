// Package codecs defines the records enricher joins and the formats that read and write them.
//
// A Format reads scores, and reads each input and writes the output it becomes with its key's
// score, in one call. JSON is the default format, over the three record types Input{key,
// message}, Score{key, score} and Output{key, message, score}; Typed makes a Format of a record
// type of the caller's own from three functions (decode an input, decode a score, encode an
// output). JSONMerge reads inputs of any JSON shape and writes them back with the score. Avro
// (NewAvro) reads and writes Apache Avro, Protobuf (NewProtobuf) Protocol Buffers, and
// JSONSchema (NewJSONSchema) JSON checked against a JSON Schema, all in the Confluent wire
// format with their schemas in a schema registry (Registry), an output being its input's record
// with the score added.
//
// A record a format cannot read is reported as a *DecodeError carrying a stable Reason (Reasons
// lists them; Reject makes one), never as a panic, so the processor routes it to the dead-letter
// topic and goes on. Any other error from a format is a failure, not bad input.
//
// JSON decoding is strict about what matters and lenient about the rest: the payload must be a
// JSON object whose fields have the right types, the payload key must agree with the Kafka
// record key (an empty payload key takes the record key), and unknown fields are ignored.
// Values in the exact layout this package writes are read and written without reflection (a
// quarter of the processor's CPU went to encoding/json); any other layout takes encoding/json,
// and fuzz targets check both paths give the same result byte for byte.
//
// ScoreCodec and VersionsCodec encode the values of the group table (its changelog is JSON, so
// any client can read it), and OutputCodec the JSON outputs; each has goka's Codec method set.
package codecs
