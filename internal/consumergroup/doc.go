// Package consumergroup is the sarama.ConsumerGroup enricher hands goka
// (goka.WithConsumerGroupBuilder): the one seam under goka where sessions, claims and offset
// marks pass.
//
// It does four jobs there. Its Consume runs consumer-group sessions back to back until its
// context ends, so goka's rebalance loop, which sleeps a fixed 5 s whenever Consume returns
// nil, never pauses a rebalance; errors still return at once, and goka stops on them. And
// within a session it merges each partition's claims (input and scores) into one stream in
// record-timestamp order, as Kafka Streams does across a task's partitions (max.task.idle.ms,
// KIP-353 and KIP-695): goka consumes each claim in its own goroutine, so without the merge
// whichever fetch returns first is processed first, and a backfill or a replay joins inputs
// with scores from their future.
//
// The merge holds a record back while another topic of its partition may still deliver an
// earlier one: when that topic has records on the broker not yet received (by the claim's
// high-water mark), and, with a positive MaxIdle, for up to MaxIdle when it has none at all.
// Equal timestamps go to Config.First (the scores) first. A record without a timestamp goes
// at once, in its topic's offset order. Each topic keeps its offset order always.
//
// goka marks a record's offset as soon as that record's own writes are acknowledged, and writes
// to different output partitions are acknowledged in any order; sarama keeps the highest mark.
// So every record is noted, per topic and partition, as it reaches goka, and goka sees a
// session whose marks pass through a commit watermark: a position moves only once every
// earlier record of its partition is done (see watermark). A crash then repeats records, but
// never skips one whose output was still on its way.
//
// With a Committer (exactly-once), offsets move only in transactions: goka's marks go through
// the watermark to the session's transaction, not to sarama; every CommitInterval the
// transaction stops handing records to goka, waits until goka has marked every record it was
// handed, and has the Committer commit the marked offsets, fenced by the session's generation
// and member id, with what those records wrote. goka's partition processors run on a context that outlives
// sarama's session by its last commit, so the records they were handed are finished and
// committed, not dropped, when a rebalance ends the session.
package consumergroup
