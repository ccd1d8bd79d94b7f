// Package processor runs enricher's job inside a Go program: it reads the co-partitioned input
// and scores topics of a Kafka cluster, keeps the latest score of every key in a table (a local
// LevelDB store per partition, backed by a compacted changelog topic), and writes one output per
// input with its key's score, or codecs.NoScore while the key has none.
//
// Build a Processor with New and run it with Run until its context ends:
//
//	p, err := processor.New(processor.Config{
//		Cluster:  topology.Cluster{Brokers: []string{"127.0.0.1:9092"}},
//		StateDir: "/var/lib/my-service/enricher",
//	})
//	if err != nil {
//		return err // a *ConfigError: the setting and why
//	}
//	return p.Run(ctx)
//
// Records are read and written by a codecs.Format: codecs.JSON by default, or a format of the
// caller's own (codecs.Typed). Start as many processes with the same Config.Topics.Group as
// there are partitions: Kafka's consumer group spreads the partitions over them, and a partition
// that moves brings its state along, rebuilt from the changelog.
//
// The processor is built on goka (github.com/lovoo/goka). Config.Goka is the one place that
// reaches into it, for callers that want goka's own tools, such as its web monitor.
//
// The enricher command (cmd/enricher) runs the same engine and adds its operator surface: web
// pages, metrics, savepoints and replays.
package processor
