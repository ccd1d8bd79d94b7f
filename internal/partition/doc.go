// Package partition maps record keys to partitions the way other Kafka clients do, so that
// records enricher writes land where Java, librdkafka and goka consumers expect them, and key
// lookups find keys written by any client.
//
// Three schemes: murmur2 (the Java client and Kafka Streams: murmur2(key) & 0x7fffffff % n),
// fnv1a (goka and sarama's default hash partitioner: |int32(fnv1a(key))| % n) and crc32
// (librdkafka's consistent partitioner: crc32(key) % n, unsigned). The package also adapts a
// scheme to franz-go's Partitioner, honouring a header that pins a record to a partition, and
// to goka's hasher, whose partition arithmetic differs from each scheme's own.
package partition
