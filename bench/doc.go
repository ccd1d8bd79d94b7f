// Command bench measures enricher side by side with the systems users choose between, on one
// broker, in one run, with one workload: a franz-go consume -> map -> produce loop (the
// raw-client ceiling), Kafka Streams (KStream.leftJoin(KTable)) and Apache Flink (the seed's
// connect/keyBy/ValueState job on a local MiniCluster). Every system runs as its own OS process
// on fresh topics. For each it measures end-to-end throughput, latency percentiles and the rate
// achieved at 25, 50 and 90% of its peak, the longest output gap while a second replica joins,
// cold restore from the changelog, warm restart and peak RSS. Every output is checked for the
// right score: a run that loses or corrupts a record fails.
//
//	go run ./bench --brokers 127.0.0.1:PORT [--systems enricher,loop,kstreams,flink] [--quick]
//
// scripts/bench.sh starts a broker with scripts/kafka.sh and runs it.
package main
