package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/kafkaconf"
	"github.com/enricher/enricher/topology"
)

func cmdProduce(ctx context.Context, env *environment, args []string) error {
	var key, message, score string
	var tombstone bool
	s := newSetup(env, "produce", "produce input|score [flags] (records from flags, or JSON lines on stdin)")
	fs := s.fs
	fs.StringVar(&key, "key", "", "record key; with it, one record is built from --message or --score instead of reading stdin")
	fs.StringVar(&message, "message", "", "message of the input record (produce input --key K --message M)")
	fs.StringVar(&score, "score", "", "score of the score record (produce score --key K --score N)")
	fs.BoolVar(&tombstone, "tombstone", false, "send a tombstone that deletes the key's score (produce score --key K --tombstone)")
	kind, rest, err := subcommand(fs, args, "input", "score")
	if err != nil {
		return err
	}
	if err := s.parse(rest, 0); err != nil {
		return err
	}
	kc, topics := s.kc, s.topics
	topic := topics.Input
	if kind == "score" {
		topic = topics.Scores
	}

	var records []*kgo.Record
	if key != "" {
		r, err := recordFromFlags(kind, key, message, score, tombstone)
		if err != nil {
			return err
		}
		records = append(records, r)
	}

	cluster, err := kc.Cluster()
	if err != nil {
		return err
	}
	partitions, err := topology.PartitionCount(ctx, cluster, topic)
	if err != nil {
		return err
	}
	cl, err := kc.Client()
	if err != nil {
		return err
	}
	defer cl.Close()
	p := &producer{cl: cl, kc: kc, topic: topic, partitions: partitions}
	if key != "" {
		err = p.send(ctx, records...)
	} else {
		err = p.sendLines(ctx, kind, env.stdin)
	}
	fmt.Fprintf(env.stderr, "produced %d records to %s\n", p.sent, topic)
	return err
}

func recordFromFlags(kind, key, message, score string, tombstone bool) (*kgo.Record, error) {
	r := &kgo.Record{Key: []byte(key)}
	var v any
	switch {
	case kind == "input":
		if score != "" || tombstone {
			return nil, usagef("--score and --tombstone are for `produce score`")
		}
		v = map[string]string{"key": key, "message": message}
	case tombstone:
		if score != "" {
			return nil, usagef("--score and --tombstone exclude each other")
		}
		return r, nil
	default:
		n, err := strconv.ParseInt(score, 10, 64)
		if err != nil {
			return nil, usagef("--score: %q is not an integer", score)
		}
		v = map[string]any{"key": key, "score": n}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	r.Value = b
	return r, nil
}

type producer struct {
	cl         *kgo.Client
	kc         kafkaconf.Config
	topic      string
	partitions int32
	sent       int
}

func (p *producer) send(ctx context.Context, records ...*kgo.Record) error {
	for _, r := range records {
		r.Topic = p.topic
		p.kc.PartitionRecord(r, p.partitions)
	}
	if err := p.cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return fmt.Errorf("produce to %s: %w", p.topic, err)
	}
	p.sent += len(records)
	return nil
}

// sendLines reads JSON lines: each needs a string "key"; the line is sent as the value, except
// a score line with "score": null, which becomes a tombstone.
func (p *producer) sendLines(ctx context.Context, kind string, in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var batch []*kgo.Record
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		r, err := recordFromLine(kind, text)
		if err != nil {
			if ferr := p.send(ctx, batch...); ferr != nil {
				return errors.Join(ferr, fmt.Errorf("line %d: %w", line, err))
			}
			return fmt.Errorf("line %d: %w (the %d lines before it were sent)", line, err, p.sent)
		}
		batch = append(batch, r)
		if len(batch) == 1000 {
			if err := p.send(ctx, batch...); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	return p.send(ctx, batch...)
}

func recordFromLine(kind string, line []byte) (*kgo.Record, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	var key string
	if err := json.Unmarshal(fields["key"], &key); err != nil || key == "" {
		return nil, errors.New(`needs a non-empty string "key"`)
	}
	r := &kgo.Record{Key: []byte(key), Value: append([]byte(nil), line...)}
	if kind == "score" && string(bytes.TrimSpace(fields["score"])) == "null" {
		r.Value = nil
	}
	return r, nil
}
