package job

import (
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/enricher/enricher/codecs"
	"github.com/enricher/enricher/topology"
)

// Callbacks are the processor's callbacks for the two input streams. Both streams are decoded
// by the processor itself (goka gets raw bytes), so a malformed record never stops it.
type Callbacks struct {
	Input goka.ProcessCallback
	Score goka.ProcessCallback
	// Table is the group table's codec; nil is codecs.ScoreCodec, the latest score per key.
	Table goka.Codec
}

// Graph is the goka group graph of the job.
func Graph(t topology.Topics, cb Callbacks) *goka.GroupGraph {
	table := cb.Table
	if table == nil {
		table = new(codecs.ScoreCodec)
	}
	return goka.DefineGroup(goka.Group(t.Group),
		goka.Input(goka.Stream(t.Input), new(codec.Bytes), cb.Input),
		goka.Input(goka.Stream(t.Scores), new(codec.Bytes), cb.Score),
		goka.Persist(table),
		goka.Output(goka.Stream(t.Output), new(codecs.OutputCodec)),
		goka.Output(goka.Stream(t.DLQ()), new(codec.Bytes)),
	)
}
