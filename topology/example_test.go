package topology_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/enricher/enricher/topology"
)

// A job's topics: the table and the dead-letter topic take their names from the group.
func ExampleTopics() {
	t := topology.Topics{Group: "orders-enricher", Input: "orders", Scores: "tiers", Output: "orders-with-tier"}
	fmt.Println(t.Table(), t.DLQ(), t.Validate())
	t.Output = t.Input
	fmt.Println(t.Validate())
	// Output:
	// orders-enricher-table orders-enricher-dlq <nil>
	// input and output topics are both "orders"
}

// Creating what is missing and checking the rest before a processor starts.
func ExampleEnsure() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cluster := topology.Cluster{Brokers: []string{"127.0.0.1:9092"}}
	layout, err := topology.Ensure(ctx, cluster, topology.DefaultTopics(),
		topology.Spec{Partitions: 12, ReplicationFactor: 3, CreateStreams: true})
	switch {
	case errors.Is(err, topology.ErrNotCopartitioned):
		fmt.Println("input and scores differ in partitions:", err)
	case err != nil:
		fmt.Println(err)
	default:
		fmt.Println("partitions:", layout.Partitions)
	}
}
