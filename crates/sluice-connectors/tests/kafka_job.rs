//! Kafka jobs end to end, against real servers on 127.0.0.1: when they fail,
//! a broker down at the start or mid-stream (the batch waits and is read
//! whole once it is back; no record lost or read twice), Redis down while
//! offsets are stored (the job waits, and the offsets are there once it is
//! back), a stop while the broker is away, and a job's offset ranges as
//! SQL (`offsets(<source>)`) and as Rust (`foreach_batch_with_offsets`).

mod common;
#[path = "common/kafka_server.rs"]
mod kafka_server;
#[path = "common/outside.rs"]
mod outside;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use datafusion::prelude::SessionContext;
use kafka_server::{KafkaServer, records};
use redis_server::RedisServer;
use sluice_core::offsets::OffsetRange;
use sluice_core::source::Source;
use sluice_core::{ClockChoice, StreamingContext};

/// The values of a batch's rows.
fn values(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let v = b.column(1).as_string::<i32>();
            (0..b.num_rows())
                .map(|i| v.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Cuts batch `t` while the broker is down: the cut is still waiting 2 s
/// later; the broker is started again, and the cut's rows returned.
async fn cut_while_down(
    server: &mut KafkaServer,
    mut source: Box<dyn Source>,
    t: i64,
) -> (Box<dyn Source>, Vec<String>) {
    let waiting = tokio::spawn(async move {
        let rows = values(&source.cut(t).await.unwrap());
        (source, rows)
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !waiting.is_finished(),
        "the batch waits while the broker is down"
    );
    server.restart();
    waiting.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_at_the_start_or_mid_stream_makes_the_batch_wait() {
    let Some(mut server) = KafkaServer::start() else {
        return;
    };
    server.create_topic("events", 2);
    server.produce("events", &records("v", 200, 2));
    server.stop();
    let session = SessionContext::new();
    let brokers = server.brokers();
    let source = common::source_of(
        &session,
        "kafka",
        None,
        &[
            ("brokers", &brokers),
            ("topics", "events"),
            ("starting_offsets", "earliest"),
            ("max_rows_per_partition", "40"),
            ("kafka.reconnect.backoff.max.ms", "500"),
        ],
    )
    .await
    .unwrap();
    let mut seen = Vec::new();

    // Down at the start: the first batch waits for the broker.
    let (mut source, rows) = cut_while_down(&mut server, source, 1000).await;
    assert_eq!(rows.len(), 80, "40 of each partition");
    seen.extend(rows);
    seen.extend(values(&source.cut(2000).await.unwrap()));

    // Down mid-stream: the same.
    server.stop();
    let (mut source, rows) = cut_while_down(&mut server, source, 3000).await;
    assert_eq!(rows.len(), 40, "the last 20 of each partition");
    seen.extend(rows);
    assert!(values(&source.cut(4000).await.unwrap()).is_empty());

    seen.sort();
    let mut expected: Vec<String> = (0..200).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(seen, expected, "every record once");
}

/// A context with 1-second batches on the simulated clock, `script` run.
async fn job(script: &str) -> StreamingContext {
    let ssc = StreamingContext::with_registry(
        SessionContext::new(),
        Duration::from_secs(1),
        sluice_connectors::registry(),
    );
    ssc.set_clock(ClockChoice::Simulated);
    ssc.sql(script).await.unwrap();
    ssc
}

/// A batch's time, values, and when it was written.
type Written = (i64, Vec<String>, Instant);

/// A job over `events` with offsets in Redis, collecting each batch's
/// values and when it was written.
async fn redis_job(
    brokers: &str,
    redis: &str,
    batches: u64,
    on_batch: impl Fn(i64) + Send + Sync + 'static,
) -> Vec<Written> {
    let ssc = job(&format!(
        "CREATE SOURCE events WITH (connector = 'kafka', brokers = '{brokers}', topics = 'events',
           starting_offsets = 'earliest', max_rows_per_partition = 20, group_id = 'g',
           offset_store = 'redis', redis = '{redis}')"
    ))
    .await;
    let got: Arc<Mutex<Vec<Written>>> = Arc::default();
    let sink = Arc::clone(&got);
    ssc.foreach_batch("events", move |t, batches| {
        sink.lock()
            .unwrap()
            .push((t, values(&batches), Instant::now()));
        on_batch(t);
        async { Ok(()) }
    })
    .await
    .unwrap();
    ssc.set_max_batches(batches);
    ssc.start().await.unwrap();
    ssc.await_termination().await.unwrap();
    got.lock().unwrap().clone()
}

async fn stored(redis: &str) -> BTreeMap<String, String> {
    let client = redis::Client::open(redis).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HGETALL")
        .arg("kafka:topic:events:g")
        .query_async(&mut c)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_while_offsets_are_stored_holds_the_job_and_loses_no_offset() {
    let Some(server) = KafkaServer::start() else {
        return;
    };
    let Some(redis) = RedisServer::start() else {
        return;
    };
    server.create_topic("events", 2);
    server.produce("events", &records("v", 120, 2));
    let url = redis.url();
    let redis = Arc::new(Mutex::new(redis));
    let back_at: Arc<Mutex<Option<Instant>>> = Arc::default();

    // Redis stops while batch 2 is written, and is back (empty: no
    // persistence) 2 s later.
    let (r, b) = (Arc::clone(&redis), Arc::clone(&back_at));
    let got = redis_job(&server.brokers(), &url, 4, move |t| {
        if t == 2000 {
            r.lock().unwrap().stop();
            let (r, b) = (Arc::clone(&r), Arc::clone(&b));
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(2));
                *b.lock().unwrap() = Some(Instant::now());
                r.lock().unwrap().restart();
            });
        }
    })
    .await;
    let back = back_at.lock().unwrap().expect("Redis was restarted");
    assert_eq!(
        got.iter()
            .map(|(t, rows, _)| (*t, rows.len()))
            .collect::<Vec<_>>(),
        vec![(1000, 40), (2000, 40), (3000, 40), (4000, 0)]
    );
    assert!(
        got[2].2 >= back,
        "batch 3 waited until batch 2's offsets were stored"
    );
    let mut all: Vec<String> = got.into_iter().flat_map(|(_, rows, _)| rows).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 120, "every record once");
    assert_eq!(
        stored(&url).await,
        BTreeMap::from([("0".into(), "60".into()), ("1".into(), "60".into())]),
        "every partition's next offset, written again once Redis was back"
    );

    // A new job goes on from there, even with Redis not answering at its
    // start (frozen, its data kept) for longer than a command may take.
    server.produce("events", &records("v", 10, 2));
    redis.lock().unwrap().pause();
    let r = Arc::clone(&redis);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(6));
        r.lock().unwrap().resume();
    });
    let started = Instant::now();
    let resumed = redis_job(&server.brokers(), &url, 1, |_| {}).await;
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "the job waited for Redis"
    );
    let mut rows = resumed[0].1.clone();
    rows.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(rows, expected, "only the records produced since");
}

/// `offsets(<source>)` in SQL and `foreach_batch_with_offsets` in Rust see
/// the same ranges each batch: contiguous from batch to batch, as long as
/// what the batch read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_batchs_offset_ranges_in_sql_and_in_rust() {
    let Some(server) = KafkaServer::start() else {
        return;
    };
    server.create_topic("events", 3);
    server.produce("events", &records("v", 300, 3));
    let ssc = job(&format!(
        "CREATE SOURCE events WITH (connector = 'kafka', brokers = '{}', topics = 'events',
           starting_offsets = 'earliest', max_rows_per_partition = 40);
         CREATE STREAM per_partition AS
           SELECT partition, count(*) AS n, min(\"offset\") AS first FROM events GROUP BY partition;
         CREATE STREAM ranges AS
           SELECT topic, partition, from_offset, until_offset, batch_time FROM offsets(events)
           ORDER BY partition;
         CREATE SOURCE ticks WITH (connector = 'rate', rows_per_second = 5);
         CREATE STREAM doubled AS SELECT value * 2 AS v FROM ticks;",
        server.brokers()
    ))
    .await;
    type Seen = Arc<Mutex<Vec<(i64, Vec<OffsetRange>)>>>;
    let in_sql: Seen = Arc::default();
    let in_rust: Seen = Arc::default();
    // (batch, partition) -> (rows, first offset)
    type Counts = BTreeMap<(i64, i32), (i64, i64)>;
    let counts: Arc<Mutex<Counts>> = Arc::default();
    let sink = Arc::clone(&in_sql);
    ssc.foreach_batch("ranges", move |t, batches| {
        let mut ranges = Vec::new();
        for b in &batches {
            let topics = b.column(0).as_string::<i32>();
            let partitions = b.column(1).as_primitive::<arrow::datatypes::Int32Type>();
            let from = b.column(2).as_primitive::<arrow::datatypes::Int64Type>();
            let until = b.column(3).as_primitive::<arrow::datatypes::Int64Type>();
            let times = b
                .column(4)
                .as_primitive::<arrow::datatypes::TimestampMillisecondType>();
            for i in 0..b.num_rows() {
                assert_eq!(times.value(i), t, "batch_time is the batch's");
                ranges.push(OffsetRange {
                    source: "events".into(),
                    topic: topics.value(i).into(),
                    partition: partitions.value(i),
                    from_offset: from.value(i),
                    until_offset: until.value(i),
                });
            }
        }
        sink.lock().unwrap().push((t, ranges));
        async { Ok(()) }
    })
    .await
    .unwrap();
    let (sink, count_sink) = (Arc::clone(&in_rust), Arc::clone(&counts));
    ssc.foreach_batch_with_offsets("per_partition", move |t, batches, offsets| {
        for b in &batches {
            let p = b.column(0).as_primitive::<arrow::datatypes::Int32Type>();
            let n = b.column(1).as_primitive::<arrow::datatypes::Int64Type>();
            let first = b.column(2).as_primitive::<arrow::datatypes::Int64Type>();
            for i in 0..b.num_rows() {
                count_sink
                    .lock()
                    .unwrap()
                    .insert((t, p.value(i)), (n.value(i), first.value(i)));
            }
        }
        sink.lock().unwrap().push((t, offsets));
        async { Ok(()) }
    })
    .await
    .unwrap();
    // A stream that reads no Kafka source gets no ranges.
    let elsewhere: Arc<Mutex<Vec<OffsetRange>>> = Arc::default();
    let sink = Arc::clone(&elsewhere);
    ssc.foreach_batch_with_offsets("doubled", move |_, _, offsets| {
        sink.lock().unwrap().extend(offsets);
        async { Ok(()) }
    })
    .await
    .unwrap();
    ssc.set_max_batches(4);
    ssc.start().await.unwrap();
    ssc.await_termination().await.unwrap();
    assert_eq!(*elsewhere.lock().unwrap(), vec![]);

    let in_sql = in_sql.lock().unwrap().clone();
    assert_eq!(
        in_sql,
        *in_rust.lock().unwrap(),
        "SQL and Rust see the same ranges"
    );
    assert_eq!(in_sql.len(), 4);
    let counts = counts.lock().unwrap();
    for p in 0..3 {
        let mut next = 0;
        for (t, ranges) in &in_sql {
            let r = ranges.iter().find(|r| r.partition == p).unwrap();
            assert_eq!((r.source.as_str(), r.topic.as_str()), ("events", "events"));
            assert_eq!(
                r.from_offset, next,
                "batch {t} partition {p} goes on from the last"
            );
            let read = counts.get(&(*t, p)).copied();
            if r.until_offset > r.from_offset {
                assert_eq!(read, Some((r.until_offset - r.from_offset, r.from_offset)));
            } else {
                assert_eq!(read, None);
            }
            next = r.until_offset;
        }
        assert_eq!(next, 100, "all of partition {p} in 3 batches of at most 40");
    }
}

/// A job whose batch waits for a broker that is down stops when told,
/// without waiting for the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_the_wait_for_a_broker() {
    let Some(mut server) = KafkaServer::start() else {
        return;
    };
    server.create_topic("events", 1);
    server.stop();
    let ssc = job(&format!(
        "CREATE SOURCE events WITH (connector = 'kafka', brokers = '{}', topics = 'events')",
        server.brokers()
    ))
    .await;
    ssc.foreach_batch("events", |_, _| async { Ok(()) })
        .await
        .unwrap();
    ssc.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ssc.completed_batches(), 0, "the first batch waits");
    tokio::time::timeout(Duration::from_secs(3), ssc.stop(true))
        .await
        .expect("stopped without the broker")
        .unwrap();
    ssc.await_termination().await.unwrap();
}
