package enricher.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.api.common.serialization.SimpleStringSchema;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.co.KeyedCoProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;

/**
 * The Flink peer of enricher's benchmark: the seed's job, {@code input.connect(scores)} keyed by
 * key with the latest score in a {@code ValueState}, on a local MiniCluster in this JVM with
 * Flink's Kafka source and sink (at least once, checkpoints every 10 s). Inputs
 * {"key","message"} come out as {"key","message","score"}, score -1 while the key has none.
 *
 * <pre>
 * FlinkPeer --brokers B --input I --scores S --output O --group G --checkpoint-dir D [--parallelism N]
 * </pre>
 */
public final class FlinkPeer {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** An input record. */
  public static class Input {
    public String key;
    public String message;
  }

  /** A score record. */
  public static class Score {
    public String key;
    public long score;
  }

  /** An enriched input. */
  public static class Output {
    public String key;
    public String message;
    public long score;
  }

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = parse(argv);
    int parallelism = Integer.parseInt(args.getOrDefault("parallelism", String.valueOf(Runtime.getRuntime().availableProcessors())));

    Configuration conf = new Configuration();
    // Checkpoints go to files: the default in-memory checkpoint storage refuses state over 5 MB.
    conf.set(CheckpointingOptions.CHECKPOINT_STORAGE, "filesystem");
    conf.set(CheckpointingOptions.CHECKPOINTS_DIRECTORY, Path.of(args.get("checkpoint-dir")).toUri().toString());
    StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
    env.setParallelism(parallelism);
    env.enableCheckpointing(10_000);

    DataStream<Input> inputs = env.fromSource(source(args, "input"), WatermarkStrategy.noWatermarks(), "input")
        .uid("input").map(FlinkPeer::parseInput).uid("parse-input").name("parse input");
    DataStream<Score> scores = env.fromSource(source(args, "scores"), WatermarkStrategy.noWatermarks(), "scores")
        .uid("scores").map(FlinkPeer::parseScore).uid("parse-scores").name("parse scores");

    inputs.connect(scores)
        .keyBy(in -> in.key, sc -> sc.key, Types.STRING)
        .process(new Enrich()).uid("enrich").name("enrich")
        .sinkTo(KafkaSink.<Output>builder()
            .setBootstrapServers(args.get("brokers"))
            .setRecordSerializer(KafkaRecordSerializationSchema.<Output>builder()
                .setTopic(args.get("output"))
                .setKeySerializationSchema(new OutputKey())
                .setValueSerializationSchema(new OutputValue())
                .build())
            .setDeliveryGuarantee(DeliveryGuarantee.AT_LEAST_ONCE)
            .build())
        .uid("output").name("output");

    JobClient job = env.executeAsync("enricher-bench-flink");
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      try {
        job.cancel().get(30, TimeUnit.SECONDS);
      } catch (Exception e) {
        // the job has ended already
      }
    }));
    while (job.getJobStatus().get() != JobStatus.RUNNING) {
      if (job.getJobStatus().get().isGloballyTerminalState()) {
        break;
      }
      Thread.sleep(20);
    }
    System.out.println("{\"event\":\"running\"}");
    System.out.flush();
    try {
      job.getJobExecutionResult().get();
    } catch (Exception e) {
      if (job.getJobStatus().get() != JobStatus.CANCELED) {
        System.err.println("flink-peer: the job failed: " + e);
        Runtime.getRuntime().halt(1);
      }
    }
  }

  /** Keeps the latest score per key and enriches each input with it. */
  static final class Enrich extends KeyedCoProcessFunction<String, Input, Score, Output> {
    private transient ValueState<Long> score;

    @Override
    public void open(OpenContext ctx) {
      score = getRuntimeContext().getState(new ValueStateDescriptor<>("score", Types.LONG));
    }

    @Override
    public void processElement1(Input in, Context ctx, Collector<Output> out) throws Exception {
      Output o = new Output();
      o.key = in.key;
      o.message = in.message;
      Long s = score.value();
      o.score = s == null ? -1 : s;
      out.collect(o);
    }

    @Override
    public void processElement2(Score sc, Context ctx, Collector<Output> out) throws Exception {
      score.update(sc.score);
    }
  }

  static KafkaSource<String> source(Map<String, String> args, String topic) {
    return KafkaSource.<String>builder()
        .setBootstrapServers(args.get("brokers"))
        .setTopics(args.get(topic))
        .setGroupId(args.get("group"))
        .setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
        .setValueOnlyDeserializer(new SimpleStringSchema())
        .build();
  }

  static Input parseInput(String value) throws Exception {
    JsonNode n = JSON.readTree(value);
    Input in = new Input();
    in.key = n.path("key").asText();
    in.message = n.path("message").asText();
    return in;
  }

  static Score parseScore(String value) throws Exception {
    JsonNode n = JSON.readTree(value);
    Score s = new Score();
    s.key = n.path("key").asText();
    s.score = n.path("score").asLong(-1);
    return s;
  }

  /** The output record's key. */
  static final class OutputKey implements SerializationSchema<Output> {
    @Override
    public byte[] serialize(Output o) {
      return o.key.getBytes(StandardCharsets.UTF_8);
    }
  }

  /** The output record's value: {"key","message","score"}. */
  static final class OutputValue implements SerializationSchema<Output> {
    @Override
    public byte[] serialize(Output o) {
      ObjectNode n = JSON.createObjectNode();
      n.put("key", o.key);
      n.put("message", o.message);
      n.put("score", o.score);
      try {
        return JSON.writeValueAsBytes(n);
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
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
    for (String need : new String[] {"brokers", "input", "scores", "output", "group", "checkpoint-dir"}) {
      if (!m.containsKey(need)) {
        usage("--" + need + " is required");
      }
    }
    return m;
  }

  static void usage(String why) {
    System.err.println("flink-peer: " + why);
    System.exit(2);
  }
}
