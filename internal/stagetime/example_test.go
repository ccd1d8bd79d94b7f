package stagetime_test

import (
	"fmt"
	"time"

	"github.com/enricher/enricher/internal/stagetime"
)

func ExampleTracker() {
	tr := stagetime.New("orders", 1)
	ts := time.Now().Add(-20 * time.Millisecond) // the input's record timestamp
	tr.Received("orders", 0, 42)                 // the consumer received it
	tr.Handed("orders", 0, 42)                   // and handed it to goka
	span := tr.Start(0, 42, ts)                  // its callback started
	span.Sent()                                  // its output was sent
	span.Acked()                                 // and acknowledged
	for _, b := range tr.Bands() {
		if b.Outputs > 0 {
			fmt.Println(b.Label(), b.Outputs, b.Time[stagetime.Fetch] >= 20*time.Millisecond)
		}
	}
	// Output: 10ms-25ms 1 true
}
