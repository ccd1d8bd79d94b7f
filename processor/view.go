package processor

import (
	"fmt"
	"log/slog"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/kafkaconf"
	"github.com/enricher/enricher/topology"
)

// NewTableView returns a goka view of the job's score table with enricher's client settings
// and partitioner, holding its copy in memory. Run it, wait on WaitRunning, then Get or iterate.
func NewTableView(kc kafkaconf.Config, topics topology.Topics, partitions int32, log *slog.Logger) (*goka.View, error) {
	consumer, err := kc.Sarama()
	if err != nil {
		return nil, err
	}
	tm, err := kc.Sarama()
	if err != nil {
		return nil, err
	}
	tmc := goka.NewTopicManagerConfig()
	tmc.NoCreate = true
	v, err := goka.NewView(kc.Brokers, goka.Table(topics.Table()), new(codecs.ScoreCodec),
		goka.WithViewStorageBuilder(storage.MemoryBuilder()),
		goka.WithViewConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(consumer)),
		goka.WithViewTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(tm, tmc)),
		goka.WithViewHasher(kc.Partitioner.GokaHasher(partitions)),
		goka.WithViewLogger(gokaLogger{log.With("component", "goka-view")}),
		goka.WithViewClientID(kc.ClientID+"-view"),
	)
	if err != nil {
		return nil, fmt.Errorf("table view of %s: %w", topics.Table(), err)
	}
	return v, nil
}
