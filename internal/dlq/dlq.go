package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/enricher/enricher/internal/changelog"
	"github.com/enricher/enricher/internal/kafkaconf"
)

// HeaderRedrivenFrom names the dead letter a redriven record came from: "<dlq>/<partition>/<offset>".
const HeaderRedrivenFrom = "enricher-redriven-from"

// Letter is one dead-lettered record.
type Letter struct {
	Partition       int32     `json:"partition"`
	Offset          int64     `json:"offset"`
	Time            time.Time `json:"time"`
	Key             string    `json:"key"`
	Value           []byte    `json:"value"`
	Reason          string    `json:"reason"`
	Error           string    `json:"error"`
	SourceTopic     string    `json:"source_topic"`
	SourcePartition int32     `json:"source_partition"`
	SourceOffset    int64     `json:"source_offset"`
	// Truncated is the original value length when the dead letter holds only its start.
	Truncated int `json:"truncated,omitempty"`
}

// Filter chooses dead letters; zero fields match everything.
type Filter struct {
	Reason string
	// At, when set, are "partition/offset" coordinates in the dead-letter topic.
	At map[string]bool
}

func (f Filter) match(l Letter) bool {
	if f.Reason != "" && l.Reason != f.Reason {
		return false
	}
	if len(f.At) > 0 && !f.At[fmt.Sprintf("%d/%d", l.Partition, l.Offset)] {
		return false
	}
	return true
}

// List reads the dead-letter topic to its current end and returns the letters that match.
func List(ctx context.Context, kc kafkaconf.Config, adm *kadm.Client, topic string, f Filter) ([]Letter, error) {
	var out []Letter
	var perr error
	_, err := changelog.ReadTopic(ctx, kc, adm, topic, nil, nil, func(r *kgo.Record) {
		l, err := parse(r)
		if err != nil {
			if perr == nil {
				perr = fmt.Errorf("%s/%d/%d: %w", topic, r.Partition, r.Offset, err)
			}
			return
		}
		if f.match(l) {
			out = append(out, l)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, perr
}

func parse(r *kgo.Record) (Letter, error) {
	l := Letter{Partition: r.Partition, Offset: r.Offset, Time: r.Timestamp, Key: string(r.Key), Value: r.Value}
	var err error
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderDLQReason:
			l.Reason = v
		case HeaderDLQError:
			l.Error = v
		case HeaderSourceTopic:
			l.SourceTopic = v
		case HeaderSourcePartition:
			var p int64
			p, err = strconv.ParseInt(v, 10, 32)
			l.SourcePartition = int32(p)
		case HeaderSourceOffset:
			l.SourceOffset, err = strconv.ParseInt(v, 10, 64)
		case HeaderDLQTruncated:
			l.Truncated, err = strconv.Atoi(v)
		}
		if err != nil {
			return l, fmt.Errorf("header %s=%q: %w", h.Key, v, err)
		}
	}
	if l.SourceTopic == "" {
		return l, errors.New("no source topic header: not an enricher dead letter")
	}
	return l, nil
}

// Redrive publishes each letter again to its source topic and partition, with its key and its
// whole value, and a header naming the dead letter. It returns how many it published.
func Redrive(ctx context.Context, kc kafkaconf.Config, cl *kgo.Client, dlqTopic string, letters []Letter) (int, error) {
	records := make([]*kgo.Record, 0, len(letters))
	for _, l := range letters {
		value := l.Value
		if l.Truncated > 0 {
			orig, err := fetchOne(ctx, kc, l.SourceTopic, l.SourcePartition, l.SourceOffset)
			if err != nil {
				return 0, fmt.Errorf("dead letter %d/%d was truncated and its source is gone: %w", l.Partition, l.Offset, err)
			}
			value = orig.Value
		}
		var key []byte
		if l.Key != "" {
			key = []byte(l.Key)
		}
		records = append(records, &kgo.Record{
			Topic: l.SourceTopic, Partition: l.SourcePartition, Key: key, Value: value,
			Headers: []kgo.RecordHeader{{Key: HeaderRedrivenFrom, Value: []byte(fmt.Sprintf("%s/%d/%d", dlqTopic, l.Partition, l.Offset))}},
		})
	}
	if len(records) == 0 {
		return 0, nil
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return 0, fmt.Errorf("redrive: %w", err)
	}
	return len(records), nil
}

// fetchOne reads the record at topic/partition/offset.
func fetchOne(ctx context.Context, kc kafkaconf.Config, topic string, partition int32, offset int64) (*kgo.Record, error) {
	cl, err := kc.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(offset)}}),
		kgo.FetchMaxBytes(8<<20), kgo.FetchMaxPartitionBytes(8<<20))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s/%d/%d not found: %w", topic, partition, offset, err)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return nil, fmt.Errorf("read %s/%d/%d: %w", topic, partition, offset, errs[0].Err)
		}
		for _, r := range fs.Records() {
			if r.Offset == offset {
				return r, nil
			}
			if r.Offset > offset {
				return nil, fmt.Errorf("%s/%d/%d is gone (retention)", topic, partition, offset)
			}
		}
	}
}
