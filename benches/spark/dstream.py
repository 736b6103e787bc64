"""Spark Streaming's side of sluice's side-by-side benchmark (benches/spark.rs).

Runs each workload in Spark's DStream API on `local[2]`: a queueStream of one
RDD per batch file (`sc.textFile`, so reading the input is part of the batch,
as it is for sluice's replay source), the workload's transformations, and
`saveAsTextFiles` with rows rendered as Scala's tuples (`(a,b)`), the format of
sluice's `text` sink, so that the two outputs can be compared line for line.
A StreamingListener records each batch's processing time (Spark's own
`processingDelay`).

    python dstream.py WORKDIR WORKLOAD:INTERVAL_MS[,WORKLOAD:INTERVAL_MS...]

reads WORKDIR/data/<workload>/batch-*.txt (and WORKDIR/data/blacklist.csv),
writes WORKDIR/out/spark/<workload>/batch-<ms>/part-* and
WORKDIR/out/spark/<workload>.json: {"times_ms": [...]},
one processing time per batch, in batch order.
"""

import json
import os
import shutil
import sys
import time

from pyspark import SparkConf, SparkContext
from pyspark.streaming import StreamingContext
from pyspark.streaming.listener import StreamingListener


class BatchTimes(StreamingListener):
    """Each completed batch's processing time, in ms, in batch order."""

    def __init__(self):
        self.times_ms = []

    def onBatchCompleted(self, batchCompleted):
        self.times_ms.append(batchCompleted.batchInfo().processingDelay())


def tuple_text(row):
    """Scala's Tuple.toString, as sluice's text sink renders a row."""
    return "(" + ",".join(str(v) for v in row) + ")"


def word_count(lines, _ctx):
    # lines.flatMap(_.split(" ")).map((_, 1)).reduceByKey(_ + _)
    return (
        lines.flatMap(lambda line: line.split(" "))
        .map(lambda w: (w, 1))
        .reduceByKey(lambda a, b: a + b)
        .map(tuple_text)
    )


def window(lines, ctx):
    # reduceByKeyAndWindow(_ + _, _ - _, Seconds(30), Seconds(1)), keys whose
    # count fell to 0 filtered out (sluice drops a key with no rows left).
    interval = ctx["interval_s"]
    return (
        lines.flatMap(lambda line: line.split(" "))
        .map(lambda w: (w, 1))
        .reduceByKeyAndWindow(
            lambda a, b: a + b,
            lambda a, b: a - b,
            30 * interval,
            interval,
            filterFunc=lambda kv: kv[1] > 0,
        )
        .map(tuple_text)
    )


def state(lines, _ctx):
    # updateStateByKey running count per key; each batch's output is the
    # whole state, digested as (keys, sum of counts, sum of key * count).
    counts = lines.map(lambda line: (int(line), 1)).updateStateByKey(
        lambda new, old: sum(new) + (old or 0)
    )
    return (
        counts.map(lambda kv: (1, kv[1], kv[0] * kv[1]))
        .reduce(lambda a, b: (a[0] + b[0], a[1] + b[1], a[2] + b[2]))
        .map(tuple_text)
    )


def blacklist(lines, ctx):
    # The tutorial's BlackListFilter: (word, line) leftOuterJoin blacklist,
    # keep the lines whose flag is not true.
    black = ctx["blacklist"]
    return lines.transform(
        lambda rdd: rdd.map(lambda line: (line.split(" ")[1], line))
        .leftOuterJoin(black)
        .filter(lambda kv: not (kv[1][1] or False))
        .map(lambda kv: kv[1][0])
    )


# Each workload's transformation; its batch interval comes from benches/spark.rs.
WORKLOADS = {
    "wordcount": word_count,
    "window": window,
    "state": state,
    "blacklist": blacklist,
    "tiny": word_count,
}


def run(sc, workdir, name, interval):
    transform = WORKLOADS[name]
    data = os.path.join(workdir, "data", name)
    files = sorted(f for f in os.listdir(data) if f.startswith("batch-"))
    out = os.path.join(workdir, "out", "spark", name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    ssc = StreamingContext(sc, interval)
    if name in ("window", "state"):
        # Needed by the inverse window and by updateStateByKey; not set for
        # the others (a transform that holds an RDD cannot be checkpointed).
        ssc.checkpoint(os.path.join(workdir, "spark-checkpoint", name))
    listener = BatchTimes()
    ssc.addStreamingListener(listener)
    rdds = [sc.textFile(os.path.join(data, f)) for f in files]
    lines = ssc.queueStream(rdds, oneAtATime=True)
    ctx = {"interval_s": interval}
    if name == "blacklist":
        pairs = sc.textFile(os.path.join(workdir, "data", "blacklist.csv")).map(
            lambda line: (line.split(",")[0], line.split(",")[1] == "true")
        )
        ctx["blacklist"] = pairs.cache()
    transform(lines, ctx).saveAsTextFiles(os.path.join(out, "batch"))
    ssc.start()
    while len(listener.times_ms) < len(files):
        time.sleep(0.05)
    ssc.stop(stopSparkContext=False, stopGraceFully=False)
    with open(out + ".json", "w") as f:
        json.dump({"times_ms": listener.times_ms[: len(files)]}, f)
    print(f"spark {name}: {len(files)} batches done", file=sys.stderr, flush=True)


def main():
    workdir, workloads = sys.argv[1], [w.split(":") for w in sys.argv[2].split(",")]
    conf = (
        SparkConf()
        .setMaster("local[2]")
        .setAppName("sluice-side-by-side")
        .set("spark.ui.enabled", "false")
        .set("spark.ui.showConsoleProgress", "false")
        .set("spark.driver.memory", "4g")
    )
    sc = SparkContext(conf=conf)
    sc.setLogLevel("ERROR")
    try:
        for name, interval_ms in workloads:
            run(sc, workdir, name, int(interval_ms) / 1000)
    finally:
        sc.stop()


if __name__ == "__main__":
    main()
