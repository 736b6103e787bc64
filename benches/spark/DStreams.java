// Spark Streaming's JVM side of sluice's side-by-side benchmark (benches/spark.rs):
// the same workloads as dstream.py, written against Spark's Java DStream API, so
// that no record goes through Python. Compiled by the bench with javac against the
// jars the PySpark wheel ships (pyspark/jars), run with `java` on local[2].
//
//     java -cp <pyspark/jars/*>:<classes> DStreams WORKDIR WORKLOAD:INTERVAL_MS[,...]
//
// reads WORKDIR/data/<workload>/batch-*.txt (and WORKDIR/data/blacklist.csv), writes
// WORKDIR/out/spark-jvm/<workload>/batch-<ms>/part-* (rows as Scala tuples, as sluice's
// text sink writes them) and WORKDIR/out/spark-jvm/<workload>.json:
// {"times_ms": [...]}, each batch's processing time from a StreamingListener.

import java.io.File;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedList;
import java.util.List;
import java.util.Queue;
import java.util.stream.Collectors;

import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.Optional;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaDStream;
import org.apache.spark.streaming.api.java.JavaPairDStream;
import org.apache.spark.streaming.api.java.JavaStreamingContext;
import org.apache.spark.streaming.scheduler.StreamingListener;
import org.apache.spark.streaming.scheduler.StreamingListenerBatchCompleted;
import scala.Tuple2;

public class DStreams {
    /** Each completed batch's processing time, in ms, in batch order. */
    static class BatchTimes implements StreamingListener {
        final List<Long> times = Collections.synchronizedList(new ArrayList<>());

        @Override
        public void onBatchCompleted(StreamingListenerBatchCompleted completed) {
            times.add((Long) completed.batchInfo().processingDelay().get());
        }
    }

    static JavaPairDStream<String, Integer> pairs(JavaDStream<String> lines) {
        return lines.flatMap(l -> Arrays.asList(l.split(" ")).iterator())
            .mapToPair(w -> new Tuple2<>(w, 1));
    }

    /** The workload's output, one line of text per row. */
    static JavaDStream<String> workload(
            String name, long interval, JavaDStream<String> lines,
            JavaPairRDD<String, Boolean> blacklist) {
        switch (name) {
            case "wordcount":
            case "tiny":
                // lines.flatMap(_.split(" ")).map((_, 1)).reduceByKey(_ + _)
                return pairs(lines).reduceByKey(Integer::sum).map(Tuple2::toString);
            case "window":
                // reduceByKeyAndWindow(_ + _, _ - _, 30 batches, 1 batch), zero counts dropped
                return pairs(lines)
                    .reduceByKeyAndWindow(
                        Integer::sum, (a, b) -> a - b,
                        Durations.milliseconds(30 * interval), Durations.milliseconds(interval),
                        2, kv -> kv._2() > 0)
                    .map(Tuple2::toString);
            case "state":
                // updateStateByKey running count; the whole state digested as
                // (keys, sum of counts, sum of key * count)
                return lines.mapToPair(l -> new Tuple2<>(Long.parseLong(l), 1L))
                    .updateStateByKey((List<Long> news, Optional<Long> old) -> {
                        long sum = old.orElse(0L);
                        for (long n : news) sum += n;
                        return Optional.of(sum);
                    })
                    .map(kv -> new long[] {1, kv._2(), kv._1() * kv._2()})
                    .reduce((a, b) -> new long[] {a[0] + b[0], a[1] + b[1], a[2] + b[2]})
                    .map(d -> "(" + d[0] + "," + d[1] + "," + d[2] + ")");
            case "blacklist":
                // (word, line) leftOuterJoin blacklist, keep the lines not flagged true
                return lines.transform(rdd -> rdd
                    .mapToPair(l -> new Tuple2<>(l.split(" ")[1], l))
                    .leftOuterJoin(blacklist)
                    .filter(kv -> !kv._2()._2().orElse(false))
                    .map(kv -> kv._2()._1()));
            default:
                throw new IllegalArgumentException("no workload " + name);
        }
    }

    static void run(JavaSparkContext sc, String work, String name, long interval) throws Exception {
        File data = new File(work, "data/" + name);
        String[] files = data.list((d, f) -> f.startsWith("batch-"));
        Arrays.sort(files);
        File out = new File(work, "out/spark-jvm/" + name);
        deleteTree(out);
        out.mkdirs();
        JavaStreamingContext ssc = new JavaStreamingContext(sc, Durations.milliseconds(interval));
        if (name.equals("window") || name.equals("state")) {
            ssc.checkpoint(new File(work, "spark-jvm-checkpoint/" + name).getPath());
        }
        BatchTimes listener = new BatchTimes();
        ssc.ssc().addStreamingListener(listener);
        Queue<JavaRDD<String>> queue = new LinkedList<>();
        for (String f : files) queue.add(sc.textFile(new File(data, f).getPath()));
        JavaPairRDD<String, Boolean> blacklist = null;
        if (name.equals("blacklist")) {
            blacklist = sc.textFile(new File(work, "data/blacklist.csv").getPath())
                .mapToPair(l -> new Tuple2<>(l.split(",")[0], l.split(",")[1].equals("true")))
                .cache();
        }
        workload(name, interval, ssc.queueStream(queue, true), blacklist)
            .dstream()
            .saveAsTextFiles(new File(out, "batch").getPath(), null);
        ssc.start();
        while (listener.times.size() < files.length) Thread.sleep(50);
        ssc.stop(false, false);
        List<Long> times = new ArrayList<>(listener.times).subList(0, files.length);
        String json = "{\"times_ms\": ["
            + times.stream().map(String::valueOf).collect(Collectors.joining(", ")) + "]}";
        Files.writeString(new File(work, "out/spark-jvm/" + name + ".json").toPath(), json);
        System.err.println("spark (jvm) " + name + ": " + files.length + " batches done");
    }

    static void deleteTree(File f) {
        File[] children = f.listFiles();
        if (children != null) for (File c : children) deleteTree(c);
        f.delete();
    }

    public static void main(String[] args) throws Exception {
        SparkConf conf = new SparkConf()
            .setMaster("local[2]")
            .setAppName("sluice-side-by-side-jvm")
            .set("spark.ui.enabled", "false")
            .set("spark.ui.showConsoleProgress", "false");
        JavaSparkContext sc = new JavaSparkContext(conf);
        sc.setLogLevel("ERROR");
        try {
            // WORKLOAD:INTERVAL_MS pairs; the intervals come from benches/spark.rs.
            for (String workload : args[1].split(",")) {
                String[] spec = workload.split(":");
                run(sc, args[0], spec[0], Long.parseLong(spec[1]));
            }
        } finally {
            sc.stop();
        }
    }
}
