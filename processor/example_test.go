package processor_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/enricher/enricher/processor"
	"github.com/enricher/enricher/topology"
)

// Running the job inside a service until it is interrupted.
func ExampleNew() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	p, err := processor.New(processor.Config{
		Cluster:   topology.Cluster{Brokers: []string{"127.0.0.1:9092"}},
		StateDir:  "/var/lib/my-service/enricher",
		Guarantee: processor.ExactlyOnce,
		Logger:    slog.Default(),
	})
	if err != nil {
		var bad *processor.ConfigError
		if errors.As(err, &bad) {
			fmt.Println("setting", bad.Field, "is wrong:", bad.Err)
		}
		return
	}
	if err := p.Run(ctx); err != nil {
		fmt.Println("stopped:", err)
	}
}

// A setting that cannot work is named by the error.
func ExampleConfig_Validate() {
	err := processor.Config{Cluster: topology.Cluster{Brokers: []string{"127.0.0.1:9092"}}}.Validate()
	fmt.Println(err)
	err = processor.Config{
		Cluster:     topology.Cluster{Brokers: []string{"127.0.0.1:9092"}},
		StateDir:    "./state",
		Partitioner: "random",
	}.Validate()
	fmt.Println(err)
	// Output:
	// StateDir: required
	// Partitioner: unknown partitioner "random" (want murmur2, fnv1a, crc32)
}

// Reading a score from this process's table, and telling why it cannot answer.
func ExampleProcessor_Lookup() {
	p, err := processor.New(processor.Config{
		Cluster:  topology.Cluster{Brokers: []string{"127.0.0.1:9092"}},
		StateDir: os.TempDir(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Asked before Run has recovered the partitions, as a web handler may be.
	score, found, err := p.Lookup(context.Background(), "alice")
	var elsewhere *processor.NotLocalError
	switch {
	case errors.As(err, &elsewhere):
		fmt.Println("partition", elsewhere.Partition, "is owned by another process")
	case errors.Is(err, processor.ErrNotReady):
		fmt.Println("starting or recovering: ask again")
	case err != nil:
		fmt.Println(err)
	case !found:
		fmt.Println("no score yet")
	default:
		fmt.Println("score", score)
	}
	// Output:
	// starting or recovering: ask again
}
