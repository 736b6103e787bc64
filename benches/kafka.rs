//! Kafka: records/s the kafka source reads from a real broker on loopback,
//! next to what a plain librdkafka consumer (no Arrow, no engine) reads
//! from the same broker the same way, and a whole job (cut, a SQL count,
//! a sink) over the same records.
//!
//! Needs the tansu broker (`bash .ci/run` installs it into
//! `~/.cache/sluice/tools/bin`); without it the bench says so and stops.
//!
//! ```sh
//! cargo bench -p sluice-benches --bench kafka
//! ```

mod common;
#[path = "../crates/sluice-connectors/tests/common/kafka_server.rs"]
mod kafka_server;
#[path = "../crates/sluice-connectors/tests/common/outside.rs"]
mod outside;

use std::time::{Duration, Instant};

use datafusion::prelude::SessionContext;
use kafka_server::KafkaServer;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use sluice_core::sluice_sql::{Location, Options};
use sluice_core::source::{SourceContext, SourceSpec};
use sluice_core::{ClockChoice, StreamingContext};

const RECORDS: usize = 100_000;
const PARTITIONS: i32 = 3;
const RUNS: usize = 5;

fn report(what: &str, samples: Vec<Duration>) {
    let s = common::stats(samples);
    let rate = |d: Duration| RECORDS as f64 / d.as_secs_f64() / 1e3;
    println!(
        "{what:<58} {:>8.1} / {:>8.1} / {:>8.1} ms   {:>6.0} / {:>6.0} / {:>6.0} k records/s",
        common::ms(s.min),
        common::ms(s.median),
        common::ms(s.max),
        rate(s.max),
        rate(s.median),
        rate(s.min),
    );
}

/// A plain consumer reading every record of `topic` once (the payload's
/// length is summed, so each record is touched).
fn plain_consumer(brokers: &str) -> Duration {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-plain")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset("bench", p, Offset::Beginning)
            .expect("partition");
    }
    let start = Instant::now();
    consumer.assign(&list).expect("assign");
    let (mut n, mut bytes) = (0, 0);
    while n < RECORDS {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            bytes += m.payload().map_or(0, <[u8]>::len);
            n += 1;
        }
    }
    let took = start.elapsed();
    assert!(bytes > 0);
    took
}

fn options(pairs: &[(&str, &str)]) -> Options {
    let mut o = Options::new(Location::new(1, 1));
    for (k, v) in pairs {
        o.insert(k, *v, Location::new(1, 1));
    }
    o
}

/// One cut of a fresh kafka source reading every record into Arrow.
async fn source_cut(brokers: &str) -> Duration {
    let spec = SourceSpec {
        name: "bench".into(),
        declared_schema: None,
        options: options(&[
            ("brokers", brokers),
            ("topics", "bench"),
            ("starting_offsets", "earliest"),
        ]),
    };
    let ctx = SourceContext {
        session: SessionContext::new(),
        batch_interval: Duration::from_secs(1),
    };
    let factory = sluice_connectors::registry()
        .source("kafka")
        .expect("kafka source");
    let mut source = factory.create(spec, &ctx).await.expect("source");
    let start = Instant::now();
    let batches = source.cut(1000).await.expect("cut");
    let took = start.elapsed();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, RECORDS);
    took
}

/// A job reading every record in 5 batches (`max_rows_per_partition`),
/// counting each batch's rows in SQL into a sink: start to end.
async fn whole_job(brokers: &str) -> Duration {
    let ssc = StreamingContext::with_registry(
        SessionContext::new(),
        Duration::from_secs(1),
        sluice_connectors::registry(),
    );
    let per_partition = RECORDS / PARTITIONS as usize / 5 + 1;
    ssc.sql(&format!(
        "CREATE SOURCE bench WITH (connector = 'kafka', brokers = '{brokers}', topics = 'bench',
           starting_offsets = 'earliest', max_rows_per_partition = {per_partition});
         CREATE STREAM counts AS SELECT count(*) AS n, sum(length(value)) AS bytes FROM bench;"
    ))
    .await
    .expect("script");
    let total = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let seen = std::sync::Arc::clone(&total);
    ssc.foreach_batch("counts", move |_, batches| {
        for b in &batches {
            let n = b
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .expect("count");
            seen.fetch_add(n.value(0), std::sync::atomic::Ordering::Relaxed);
        }
        async { Ok(()) }
    })
    .await
    .expect("sink");
    ssc.set_clock(ClockChoice::Simulated);
    ssc.set_max_batches(5);
    let start = Instant::now();
    ssc.start().await.expect("start");
    ssc.await_termination().await.expect("run");
    let took = start.elapsed();
    assert_eq!(
        total.load(std::sync::atomic::Ordering::Relaxed),
        RECORDS as i64
    );
    took
}

fn main() {
    let Some(server) = KafkaServer::start() else {
        println!(
            "kafka bench: skipped, the tansu broker is not installed (bash .ci/run installs it)"
        );
        return;
    };
    server.create_topic("bench", PARTITIONS as u32);
    let records: Vec<(i32, String, String)> = (0..RECORDS)
        .map(|i| {
            (
                i as i32 % PARTITIONS,
                format!("key-{i}"),
                format!("value {i}: Hello World Hello Hadoop Hello spark kafka"),
            )
        })
        .collect();
    let start = Instant::now();
    server.produce("bench", &records);
    let produced = start.elapsed();
    println!(
        "kafka bench on {} cores: {RECORDS} records over {PARTITIONS} partitions, tansu 0.6 (sqlite) on loopback; produced in {:.1} s ({:.0} k records/s)",
        common::cores(),
        produced.as_secs_f64(),
        RECORDS as f64 / produced.as_secs_f64() / 1e3
    );
    println!(
        "{:<58} {:>30}   records/s (slowest / median / fastest)",
        "", "min / median / max"
    );
    let brokers = server.brokers();
    let runtime = common::runtime();
    let plain: Vec<Duration> = (0..RUNS).map(|_| plain_consumer(&brokers)).collect();
    report("librdkafka consumer alone (poll every record)", plain);
    let cuts: Vec<Duration> = (0..RUNS)
        .map(|_| runtime.block_on(source_cut(&brokers)))
        .collect();
    report(
        "sluice kafka source: one cut of every record into Arrow",
        cuts,
    );
    let jobs: Vec<Duration> = (0..RUNS)
        .map(|_| runtime.block_on(whole_job(&brokers)))
        .collect();
    report("sluice job: 5 batches, SQL count per batch, a sink", jobs);
}
