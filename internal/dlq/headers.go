package dlq

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers enricher writes. Outputs and dead letters name their source record, so a consumer can
// drop the duplicates an at-least-once restart may produce, and a dead letter can be redriven to
// where it came from.
const (
	HeaderSourceTopic     = "enricher-source-topic"
	HeaderSourcePartition = "enricher-source-partition"
	HeaderSourceOffset    = "enricher-source-offset"
	HeaderDLQReason       = "enricher-dlq-reason"
	HeaderDLQError        = "enricher-dlq-error"
	// HeaderDLQTruncated holds the original length of a dead letter whose value was cut to fit
	// Kafka's message size limit; the whole record stays in its source topic.
	HeaderDLQTruncated = "enricher-dlq-truncated"
)

// Mark makes a record a dead letter: it appends to h (which holds the source headers) the
// reason and the error, and cuts value to limit bytes, naming the original length in a header
// when it does. It returns the headers and the value to write.
func Mark(h []kgo.RecordHeader, value []byte, reason, errText string, limit int) ([]kgo.RecordHeader, []byte) {
	h = append(h,
		kgo.RecordHeader{Key: HeaderDLQReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderDLQError, Value: []byte(errText)})
	if len(value) > limit {
		h = append(h, kgo.RecordHeader{Key: HeaderDLQTruncated, Value: []byte(strconv.Itoa(len(value)))})
		value = value[:limit]
	}
	return h, value
}
