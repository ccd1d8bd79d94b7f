package enricher.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;

/**
 * The Kafka Streams peer of enricher's benchmark: {@code KStream.leftJoin(KTable)} with the
 * default RocksDB store and its changelog topic ({@code <app-id>-scores-changelog}), every other
 * setting at Kafka Streams' defaults. Inputs {"key","message"} come out as
 * {"key","message","score"}, score -1 while the key has none.
 *
 * <pre>
 * KStreamsPeer --brokers B --input I --scores S --output O --app-id A --state-dir D [--threads N] [--guarantee at_least_once|exactly_once_v2]
 * </pre>
 */
public final class KStreamsPeer {
  private static final ObjectMapper JSON = new ObjectMapper();

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = parse(argv);
    int threads = Integer.parseInt(args.getOrDefault("threads", String.valueOf(Runtime.getRuntime().availableProcessors())));

    StreamsBuilder builder = new StreamsBuilder();
    KTable<String, String> scores =
        builder.table(args.get("scores"), Consumed.with(Serdes.String(), Serdes.String()), Materialized.as("scores"));
    builder.stream(args.get("input"), Consumed.with(Serdes.String(), Serdes.String()))
        .leftJoin(scores, KStreamsPeer::enrich)
        .to(args.get("output"), Produced.with(Serdes.String(), Serdes.String()));

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, args.get("app-id"));
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args.get("brokers"));
    props.put(StreamsConfig.STATE_DIR_CONFIG, args.get("state-dir"));
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
    props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
    props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    // at_least_once (Kafka Streams' default) or exactly_once_v2, whose commit interval is 100 ms.
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, args.getOrDefault("guarantee", StreamsConfig.AT_LEAST_ONCE));

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch stopped = new CountDownLatch(1);
    int[] exit = {0};
    streams.setStateListener((now, before) -> {
      if (now == KafkaStreams.State.RUNNING) {
        System.out.println("{\"event\":\"running\"}");
        System.out.flush();
      }
      if (now == KafkaStreams.State.ERROR || (now == KafkaStreams.State.NOT_RUNNING && before != KafkaStreams.State.PENDING_SHUTDOWN)) {
        exit[0] = 1;
        stopped.countDown();
      }
    });
    streams.setUncaughtExceptionHandler(e -> {
      System.err.println("kstreams-peer: stream thread failed: " + e);
      return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    streams.setGlobalStateRestoreListener(new StateRestoreListener() {
      @Override public void onRestoreStart(TopicPartition tp, String store, long start, long end) {}
      @Override public void onBatchRestored(TopicPartition tp, String store, long end, long n) {}
      @Override public void onRestoreEnd(TopicPartition tp, String store, long total) {
        System.err.println("restored " + tp + " " + total + " records");
      }
    });
    // Leave the group on a stop, as enricher and the franz-go loop do: without it, a replica
    // started after this one waits out the session timeout (45 s by default) first.
    CloseOptions leave = CloseOptions.timeout(Duration.ofSeconds(30))
        .withGroupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(leave);
      stopped.countDown();
    }));
    streams.start();
    stopped.await();
    if (exit[0] != 0) {
      streams.close(Duration.ofSeconds(30));
      Runtime.getRuntime().halt(1);
    }
  }

  /** The joiner: the input with its key's latest score, or -1. */
  static String enrich(String input, String score) {
    try {
      JsonNode in = JSON.readTree(input);
      long s = -1;
      if (score != null) {
        JsonNode sc = JSON.readTree(score).get("score");
        if (sc != null && sc.canConvertToLong()) {
          s = sc.asLong();
        }
      }
      ObjectNode out = JSON.createObjectNode();
      out.put("key", in.path("key").asText());
      out.put("message", in.path("message").asText());
      out.put("score", s);
      return JSON.writeValueAsString(out);
    } catch (Exception e) {
      System.err.println("kstreams-peer: bad record skipped: " + e.getMessage());
      return null;
    }
  }

  static Map<String, String> parse(String[] argv) {
    Map<String, String> m = new HashMap<>();
    for (int i = 0; i < argv.length; i++) {
      if (!argv[i].startsWith("--") || i + 1 >= argv.length) {
        usage("unexpected argument " + argv[i]);
      }
      m.put(argv[i].substring(2), argv[++i]);
    }
    for (String need : new String[] {"brokers", "input", "scores", "output", "app-id", "state-dir"}) {
      if (!m.containsKey(need)) {
        usage("--" + need + " is required");
      }
    }
    return m;
  }

  static void usage(String why) {
    System.err.println("kstreams-peer: " + why);
    System.exit(2);
  }
}
