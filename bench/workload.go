package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/internal/kafkaconf"
)

// workload is what every system is given: K keys, S score records whose last value per key is
// score(k), and inputs whose message carries a sequence number and the time it was produced.
type workload struct {
	keys, scores, msgBytes, partitions int
	zipf                               bool
	kc                                 kafkaconf.Config
}

func keyName(k int) string { return "key-" + strconv.Itoa(k) }

// keyIndex is keyName's inverse; -1 for a key the workload never wrote.
func keyIndex(key []byte) int {
	s, ok := strings.CutPrefix(string(key), "key-")
	if !ok {
		return -1
	}
	k, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return k
}

// score is every key's final score; decoy is an earlier value that a later record replaces.
func score(k int) int64 { return int64(k)*7 + 1 }
func decoy(k int) int64 { return -score(k) - 1 }

// scoreOf is score record i of w.scores: the first scores-keys records are decoys, the last
// keys records set each key's final score, so every system must keep the latest per key.
func (w workload) scoreOf(i int) (key string, s int64) {
	k := i % w.keys
	s = score(k)
	if i < w.scores-w.keys {
		s = decoy(k)
	}
	return keyName(k), s
}

// keySource picks input keys, uniformly or by a zipf distribution (s = 1.1) over the keys.
type keySource struct {
	rng  *rand.Rand
	zipf *rand.Zipf
	n    int
}

func (w workload) newKeySource(seed uint64) *keySource {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ks := &keySource{rng: rng, n: w.keys}
	if w.zipf {
		ks.zipf = rand.NewZipf(rng, 1.1, 1, uint64(w.keys-1))
	}
	return ks
}

func (ks *keySource) next() int {
	if ks.zipf != nil {
		return int(ks.zipf.Uint64())
	}
	return ks.rng.IntN(ks.n)
}

// message is input seq's message, exactly msgBytes long: "seq;unix-nanos;" padded with x.
func (w workload) message(seq int64, at time.Time) string {
	var b strings.Builder
	b.Grow(w.msgBytes)
	b.WriteString(strconv.FormatInt(seq, 10))
	b.WriteByte(';')
	b.WriteString(strconv.FormatInt(at.UnixNano(), 10))
	b.WriteByte(';')
	for b.Len() < w.msgBytes {
		b.WriteByte('x')
	}
	return b.String()
}

// parseMessage returns the sequence number and produce time a message carries, and fails unless
// m is exactly what message wrote for them (the numbers in their canonical form, the padding all
// x), so an output's message is checked byte for byte without building the expected one.
func parseMessage(m string) (seq int64, at time.Time, err error) {
	s, rest, ok := strings.Cut(m, ";")
	t, pad, ok2 := strings.Cut(rest, ";")
	if !ok || !ok2 {
		return 0, time.Time{}, fmt.Errorf("message %.40q has no sequence and time", m)
	}
	if seq, err = strconv.ParseInt(s, 10, 64); err != nil {
		return 0, time.Time{}, fmt.Errorf("message sequence: %w", err)
	}
	ns, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("message time: %w", err)
	}
	var buf [20]byte
	if string(strconv.AppendInt(buf[:0], seq, 10)) != s || string(strconv.AppendInt(buf[:0], ns, 10)) != t ||
		strings.Trim(pad, "x") != "" {
		return 0, time.Time{}, fmt.Errorf("message %.40q is not one the workload wrote", m)
	}
	return seq, time.Unix(0, ns), nil
}

// input is the JSON value of an input record.
func input(key, message string) []byte {
	v, _ := json.Marshal(codecs.Input{Key: key, Message: message})
	return v
}

// probeKeys returns the keys a readiness probe asks for: in each partition the key whose final
// score was written last (once it is applied, so is every score before it in that partition),
// and a sample of others, for systems that apply one partition's scores in parallel (Flink
// spreads keys over subtasks). A probe is answered only when every key has its final score.
func (w workload) probeKeys() []int {
	last := make([]int, w.partitions)
	for i := range last {
		last[i] = -1
	}
	found := 0
	for k := w.keys - 1; k >= 0 && found < w.partitions; k-- {
		p := w.kc.Partitioner.Partition([]byte(keyName(k)), int32(w.partitions))
		if last[p] < 0 {
			last[p] = k
			found++
		}
	}
	probes := make([]int, 0, w.partitions+probeSample)
	for _, k := range last {
		if k >= 0 {
			probes = append(probes, k)
		}
	}
	step := max(1, w.keys/probeSample)
	for k := step / 2; k < w.keys && len(probes) < cap(probes); k += step {
		probes = append(probes, k)
	}
	return probes
}

// probeSample is how many keys besides each partition's last a probe asks for.
const probeSample = 60
