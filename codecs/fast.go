package codecs

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The fast paths below handle the exact JSON layout this package writes, which is what nearly
// every record in a pipeline looks like, without encoding/json's reflection: under the
// benchmark, JSON was a quarter of the processor's CPU. A value in any other layout (other
// field order or spacing, escapes, extra fields) takes the encoding/json path, so results are
// the same either way; the fuzz targets check that byte for byte.

// plainString reports whether s may be copied into JSON between quotes as it is, and read back
// from there as it is: printable ASCII without '"', '\\' or the characters encoding/json
// escapes for HTML ('<', '>', '&').
func plainString[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// cutPlain expects b to start with prefix, then a plain string and its closing quote; it
// returns the string and the rest after the quote, both within b.
func cutPlain(b []byte, prefix string) ([]byte, []byte, bool) {
	rest, ok := bytes.CutPrefix(b, []byte(prefix))
	if !ok {
		return nil, nil, false
	}
	end := bytes.IndexByte(rest, '"')
	if end < 0 || !plainString(rest[:end]) {
		return nil, nil, false
	}
	return rest[:end], rest[end+1:], true
}

// cutField is cutPlain with the string copied out.
func cutField(b []byte, prefix string) (string, []byte, bool) {
	s, rest, ok := cutPlain(b, prefix)
	return string(s), rest, ok
}

// fastInput reads `{"key":"K","message":"M"}`.
func fastInput(b []byte) (wireInput, bool) {
	key, msg, rest, ok := cutKeyMessage(b)
	if !ok || string(rest) != "}" {
		return wireInput{}, false
	}
	return wireInput{Key: &key, Message: &msg}, true
}

// fastOutput reads `{"key":"K","message":"M","score":N}` with N an integer as encoding/json
// writes it.
func fastOutput(b []byte) (Output, bool) {
	key, msg, rest, ok := cutKeyMessage(b)
	if !ok {
		return Output{}, false
	}
	n, ok := cutScore(rest)
	return Output{Key: key, Message: msg, Score: n}, ok
}

// cutKeyMessage reads `{"key":"K","message":"M"` and returns K, M and the rest after them.
func cutKeyMessage(b []byte) (key, msg string, rest []byte, ok bool) {
	if key, rest, ok = cutField(b, `{"key":"`); !ok {
		return "", "", nil, false
	}
	msg, rest, ok = cutField(rest, `,"message":"`)
	return key, msg, rest, ok
}

// cutScore reads `,"score":N}` with N an integer as encoding/json writes it, and nothing after
// the brace.
func cutScore(b []byte) (int64, bool) {
	num, ok := bytes.CutPrefix(b, []byte(`,"score":`))
	if !ok || len(num) < 2 || num[len(num)-1] != '}' {
		return 0, false
	}
	num = num[:len(num)-1]
	digits := bytes.TrimPrefix(num, []byte("-"))
	if len(digits) == 0 || len(digits) > 19 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(num), 10, 64)
	return n, err == nil
}

// spliceOutput appends the Output of input value with score to dst when value is
// `{"key":"K","message":"M"}` with K equal to recordKey: that Output's JSON is value without its
// closing brace, then the score. It reports false, having appended nothing, for any other value.
func spliceOutput(dst []byte, recordKey string, value []byte, score int64) ([]byte, bool) {
	key, rest, ok := cutPlain(value, `{"key":"`)
	if !ok || string(key) != recordKey {
		return dst, false
	}
	if _, rest, ok = cutPlain(rest, `,"message":"`); !ok || string(rest) != "}" {
		return dst, false
	}
	dst = append(dst, value[:len(value)-1]...)
	dst = append(dst, `,"score":`...)
	dst = strconv.AppendInt(dst, score, 10)
	return append(dst, '}'), true
}

// fastScore reads `{"key":"K","score":N}` with N an integer as encoding/json writes it.
func fastScore(b []byte) (wireScore, bool) {
	key, rest, ok := cutField(b, `{"key":"`)
	if !ok {
		return wireScore{}, false
	}
	n, ok := cutScore(rest)
	if !ok {
		return wireScore{}, false
	}
	return wireScore{Key: &key, Score: &n}, true
}

// appendString appends s as encoding/json writes a string.
func appendString(b []byte, s string) []byte {
	if plainString(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// AppendOutput appends what json.Marshal writes for o to b.
func AppendOutput(b []byte, o Output) []byte {
	b = append(b, `{"key":`...)
	b = appendString(b, o.Key)
	b = append(b, `,"message":`...)
	b = appendString(b, o.Message)
	b = append(b, `,"score":`...)
	b = strconv.AppendInt(b, o.Score, 10)
	return append(b, '}')
}

// appendScore and appendInput write what json.Marshal writes for the structs.
func appendScore(b []byte, s Score) []byte {
	b = append(b, `{"key":`...)
	b = appendString(b, s.Key)
	b = append(b, `,"score":`...)
	b = strconv.AppendInt(b, s.Score, 10)
	return append(b, '}')
}

func appendInput(b []byte, in Input) []byte {
	b = append(b, `{"key":`...)
	b = appendString(b, in.Key)
	b = append(b, `,"message":`...)
	b = appendString(b, in.Message)
	return append(b, '}')
}
