package changelog

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TopicID returns topic's ID (KIP-516) as text, or "" when the cluster does not give topics IDs.
// Unlike its name, the ID tells a topic apart from one deleted and recreated under that name.
func TopicID(ctx context.Context, adm *kadm.Client, topic string) (string, error) {
	md, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return "", fmt.Errorf("metadata of %q: %w", topic, err)
	}
	d, ok := md[topic]
	if !ok {
		return "", fmt.Errorf("metadata of %q: no such topic", topic)
	}
	if d.Err != nil {
		return "", fmt.Errorf("metadata of %q: %w", topic, d.Err)
	}
	if d.ID == (kadm.TopicID{}) {
		return "", nil
	}
	return d.ID.String(), nil
}

// CompactionLag returns topic's min.compaction.lag.ms: the log cleaner leaves every record
// younger than that alone, so a cut of the changelog taken less than that long ago still holds
// every value it held when it was taken.
func CompactionLag(ctx context.Context, adm *kadm.Client, topic string) (time.Duration, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("describe configs of %q: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return 0, fmt.Errorf("describe configs of %q: %w", topic, err)
	}
	if rc.Err != nil {
		return 0, fmt.Errorf("describe configs of %q: %w", topic, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key != "min.compaction.lag.ms" || c.Value == nil {
			continue
		}
		ms, err := strconv.ParseInt(*c.Value, 10, 64)
		if err != nil || ms < 0 {
			return 0, fmt.Errorf("topic %q: min.compaction.lag.ms=%q is not a number of milliseconds", topic, *c.Value)
		}
		if ms > int64(math.MaxInt64/time.Millisecond) {
			return time.Duration(math.MaxInt64), nil // Long.MAX_VALUE and the like: never compacted
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	return 0, fmt.Errorf("topic %q reports no min.compaction.lag.ms", topic)
}
