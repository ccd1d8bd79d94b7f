// Command orders embeds enricher in a program of its own: it enriches orders with their
// customer's tier, in a record format of its own, using only enricher's public packages
// (processor, codecs and topology).
//
// Orders are keyed by customer on the "orders" topic; tiers, keyed by customer too, on
// "customer-tiers" (a JSON number: 1 bronze, 2 silver, 3 gold); each order comes out on
// "orders-with-tier" with its customer's tier, or "none" while the customer has none:
//
//	orders           {"id":"o-1","customer":"c-7","amount_cents":1250}
//	customer-tiers   3
//	orders-with-tier {"id":"o-1","customer":"c-7","amount_cents":1250,"tier":"gold"}
//
// Run it against any Kafka cluster, as many processes as there are partitions:
//
//	go run . -brokers 127.0.0.1:9092 -state-dir ./state
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/enricher/enricher/processor"
	"github.com/enricher/enricher/topology"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("orders", flag.ContinueOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka brokers, comma-separated")
	stateDir := fs.String("state-dir", "./state", "directory of the local tier table")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := enrich(ctx, config(strings.Split(*brokers, ","), *stateDir, log)); err != nil {
		log.Error("orders stopped", "error", err.Error())
		var cfgErr *processor.ConfigError
		if errors.As(err, &cfgErr) {
			return 2
		}
		return 1
	}
	return 0
}

// config is the processor's configuration: the topics of this program, its format, and topics
// created when missing.
func config(brokers []string, stateDir string, log *slog.Logger) processor.Config {
	return processor.Config{
		Cluster: topology.Cluster{Brokers: brokers, ClientID: "orders"},
		Topics: topology.Topics{Group: "orders-enricher", Input: "orders", Scores: "customer-tiers",
			Output: "orders-with-tier"},
		CreateTopics: true,
		StateDir:     stateDir,
		Format:       orderFormat(),
		Logger:       log,
	}
}

// enrich runs the processor until ctx ends.
func enrich(ctx context.Context, cfg processor.Config) error {
	p, err := processor.New(cfg)
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	return p.Run(ctx)
}
