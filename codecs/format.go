package codecs

// Format is a wire format of the job's records: it reads scores, and reads each input and writes
// the output it becomes, in one call, so a format keeps any fast path (such as JSON's splice of
// the input's bytes) inside that call. The processor calls a Format from its callbacks, for
// several partitions at once: an implementation must be safe for concurrent use.
//
// A record a Format cannot read is bad input: it returns a *DecodeError (see Reject), and the
// processor sends the record to the dead-letter topic with its Reason and goes on. Any other
// error is a failure, such as a schema registry that cannot be reached: the processor stops, is
// started again with backoff, and reads the record again. A format must therefore never report
// a failure of its own as bad input, or good records would be dead-lettered.
type Format interface {
	// Score returns the score a score record's value carries; key is the Kafka record key.
	// Tombstones never reach it: they delete the key's score.
	Score(key string, value []byte) (int64, error)
	// Enrich decodes an input record's value (key is the Kafka record key) and appends to dst
	// the value of the output it becomes with score, NoScore while its key has none. On an
	// error it returns dst as it was.
	Enrich(dst []byte, key string, value []byte, score int64) ([]byte, error)
}

// JSON is the default Format: Input{key, message} and Score{key, score} in, Output{key,
// message, score} out, as JSON objects (see DecodeInput, DecodeScore and Encode). Its zero value
// accepts values of any size.
type JSON struct {
	Limits
}

// Score decodes a Score and returns its score.
func (j JSON) Score(key string, value []byte) (int64, error) {
	s, err := j.DecodeScore(key, value)
	return s.Score, err
}

// Enrich is AppendEnriched.
func (j JSON) Enrich(dst []byte, key string, value []byte, score int64) ([]byte, error) {
	return j.AppendEnriched(dst, key, value, score)
}

// Typed is a Format for a record type of the caller's, In, made of three functions: decode an
// input, decode a score, and encode an output. Every function must be set.
type Typed[In any] struct {
	// DecodeInput decodes an input record's value; key is the Kafka record key.
	DecodeInput func(key string, value []byte) (In, error)
	// DecodeScore returns the score a score record's value carries.
	DecodeScore func(key string, value []byte) (int64, error)
	// EncodeOutput appends to dst the output value of in enriched with score.
	EncodeOutput func(dst []byte, in In, score int64) ([]byte, error)
}

// Score calls DecodeScore.
func (t Typed[In]) Score(key string, value []byte) (int64, error) { return t.DecodeScore(key, value) }

// Enrich calls DecodeInput, then EncodeOutput.
func (t Typed[In]) Enrich(dst []byte, key string, value []byte, score int64) ([]byte, error) {
	in, err := t.DecodeInput(key, value)
	if err != nil {
		return dst, err
	}
	out, err := t.EncodeOutput(dst, in, score)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// Split is a Format whose score records are in one format and whose inputs, and so outputs, are
// in another: scores written as JSON by a batch job beside Avro inputs, for example. Both must
// be set.
type Split struct {
	// Inputs reads inputs and writes their outputs.
	Inputs Format
	// Scores reads score records.
	Scores Format
}

// Score calls Scores.Score.
func (s Split) Score(key string, value []byte) (int64, error) { return s.Scores.Score(key, value) }

// Enrich calls Inputs.Enrich.
func (s Split) Enrich(dst []byte, key string, value []byte, score int64) ([]byte, error) {
	return s.Inputs.Enrich(dst, key, value, score)
}

// RegistryState reports the state of the registry of Inputs or Scores, whichever waits (the
// zero state when neither reads schemas from a registry).
func (s Split) RegistryState() RegistryState {
	var out RegistryState
	for _, f := range []Format{s.Inputs, s.Scores} {
		r, ok := f.(RegistryReporter)
		if !ok {
			continue
		}
		st := r.RegistryState()
		out.Failures += st.Failures
		if st.Waiting != nil && out.Waiting == nil {
			out.Waiting, out.Since = st.Waiting, st.Since
		}
	}
	return out
}
