// Package codecs defines enricher's three record types (Input, Score, Output), their JSON wire
// format, and the goka codecs built on them.
//
// Decoding is strict about what matters and lenient about the rest: the payload must be a JSON
// object whose fields have the right types, the payload key must agree with the Kafka record key
// (an empty payload key takes the record key), and unknown fields are ignored. A bad record is
// reported as a *DecodeError carrying a stable Reason, never as a panic, so the processor can
// route it to the dead-letter topic and go on.
//
// Values in the exact layout this package writes are read and written without reflection (a
// quarter of the processor's CPU went to encoding/json); any other layout takes encoding/json,
// and fuzz targets check both paths give the same result byte for byte.
package codecs
