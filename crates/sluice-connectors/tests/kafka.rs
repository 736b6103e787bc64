//! The kafka source against a real Kafka-protocol broker (tansu, started on
//! 127.0.0.1): every record read exactly once across batches, in bounded
//! per-partition ranges, and resumed exactly from a saved position.

mod common;
#[path = "common/kafka_server.rs"]
mod kafka_server;
#[path = "common/outside.rs"]
mod outside;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::collections::BTreeSet;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, Int64Type};
use common::{sink, source_of};
use datafusion::prelude::SessionContext;
use kafka_server::{KafkaServer, records};
use redis_server::RedisServer;
use sluice_core::source::Source;

const RECORDS: usize = 10_000;

/// `(partition, offset, value)` of every row.
fn rows(batches: &[RecordBatch]) -> Vec<(i32, i64, String)> {
    let mut out = Vec::new();
    for b in batches {
        let values = b.column(1).as_string::<i32>();
        let partitions = b.column(3).as_primitive::<Int32Type>();
        let offsets = b.column(4).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((
                partitions.value(i),
                offsets.value(i),
                values.value(i).to_string(),
            ));
        }
    }
    out
}

/// A kafka source on `brokers` with `options`.
async fn kafka(
    session: &SessionContext,
    brokers: &str,
    options: &[(&str, &str)],
) -> Box<dyn Source> {
    let mut all = vec![("brokers", brokers)];
    all.extend_from_slice(options);
    source_of(session, "kafka", None, &all).await.unwrap()
}

/// Why a kafka source with `options` is refused when created.
async fn refused(session: &SessionContext, options: &[(&str, &str)]) -> String {
    let mut all = vec![("brokers", "127.0.0.1:1")];
    all.extend_from_slice(options);
    source_of(session, "kafka", None, &all)
        .await
        .unwrap_err()
        .to_string()
}

async fn kafka_source(session: &SessionContext, brokers: &str) -> Box<dyn Source> {
    let options = [
        ("topics", "events"),
        ("starting_offsets", "earliest"),
        ("max_rows_per_partition", "1500"),
    ];
    kafka(session, brokers, &options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_once_in_bounded_ranges_and_resumed_exactly() {
    let Some(server) = KafkaServer::start() else {
        return;
    };
    server.create_topic("events", 3);
    server.produce("events", &records("v", RECORDS, 3));
    let session = SessionContext::new();

    // Uninterrupted: cut until a batch is empty.
    let mut source = kafka_source(&session, &server.brokers()).await;
    let mut all = Vec::new();
    let mut cuts = 0;
    loop {
        cuts += 1;
        let got = rows(&source.cut(cuts * 1000).await.unwrap());
        for p in 0..3 {
            let n = got.iter().filter(|r| r.0 == p).count();
            assert!(n <= 1500, "cut {cuts}: {n} rows of partition {p}");
        }
        if got.is_empty() {
            break;
        }
        all.extend(got);
    }
    assert_eq!(
        cuts, 4,
        "3334 rows a partition, 1500 a batch: 3 batches, then none"
    );
    let values: BTreeSet<&str> = all.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(all.len(), RECORDS, "each record once");
    assert_eq!(values.len(), RECORDS);
    for p in 0..3 {
        let offsets: Vec<i64> = all.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
        assert!(
            offsets.windows(2).all(|w| w[1] == w[0] + 1),
            "partition {p} in order"
        );
    }

    // Stopped after one batch, restored from its position: the same rows.
    let mut first = kafka_source(&session, &server.brokers()).await;
    let mut again = rows(&first.cut(1000).await.unwrap());
    let position = first.position().unwrap();
    drop(first);
    let mut second = kafka_source(&session, &server.brokers()).await;
    second.restore(&position).unwrap();
    for t in 2..=4 {
        again.extend(rows(&second.cut(t * 1000).await.unwrap()));
    }
    assert_eq!(again, all, "restarted vs uninterrupted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_named() {
    let Some(server) = KafkaServer::start() else {
        return;
    };
    let session = SessionContext::new();
    let mut source = kafka(&session, &server.brokers(), &[("topics", "nowhere")]).await;
    let e = source.cut(1000).await.unwrap_err().to_string();
    assert!(e.contains("topic 'nowhere'"), "{e}");
}

/// A source with `offset_store` (and more options), reading `topic`.
async fn stored_source(
    session: &SessionContext,
    brokers: &str,
    topic: &str,
    more: &[(&str, &str)],
) -> Box<dyn Source> {
    let mut options = vec![
        ("topics", topic),
        ("starting_offsets", "earliest"),
        ("max_rows_per_partition", "50"),
        ("group_id", "tracker"),
    ];
    options.extend_from_slice(more);
    kafka(session, brokers, &options).await
}

/// Two batches are read and done (offsets stored), one more is read but
/// not done (a crash): a new source starts where the store says, after the
/// second, and reads the third batch's records again.
async fn resumes_from_the_store(server: &KafkaServer, topic: &str, more: &[(&str, &str)]) {
    server.create_topic(topic, 3);
    server.produce(topic, &records("v", 600, 3));
    let session = SessionContext::new();
    let mut first = stored_source(&session, &server.brokers(), topic, more).await;
    assert!(first.stores_positions());
    let mut seen = Vec::new();
    for t in 1..=2 {
        seen.extend(rows(&first.cut(t * 1000).await.unwrap()));
        let position = first.position().unwrap();
        first.done(&position).await.unwrap();
    }
    let lost_batch = rows(&first.cut(3000).await.unwrap());
    drop(first);
    let mut second = stored_source(&session, &server.brokers(), topic, more).await;
    let again = rows(&second.cut(3000).await.unwrap());
    assert!(!again.is_empty());
    assert_eq!(again, lost_batch, "the batch not done is read again");
    seen.extend(again);
    second.done(&second.position().unwrap()).await.unwrap();
    seen.extend(rows(&second.cut(4000).await.unwrap()));
    second.done(&second.position().unwrap()).await.unwrap();
    let values: BTreeSet<&str> = seen.iter().map(|r| r.2.as_str()).collect();
    assert_eq!((seen.len(), values.len()), (600, 600), "each record once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_in_the_consumer_group() {
    let Some(server) = KafkaServer::start() else {
        return;
    };
    resumes_from_the_store(&server, "grouped", &[("offset_store", "kafka")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_in_redis_in_the_tutorials_layout() {
    let Some(server) = KafkaServer::start() else {
        return;
    };
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    resumes_from_the_store(
        &server,
        "tracked",
        &[("offset_store", "redis"), ("redis", url.as_str())],
    )
    .await;
    // kafka:topic:<topic>:<group_id>, partition -> next offset: every
    // partition's 200 records are done.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let stored: std::collections::BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg("kafka:topic:tracked:tracker")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(
        stored.keys().cloned().collect::<Vec<_>>(),
        vec!["0", "1", "2"],
        "{stored:?}"
    );
    assert!(stored.values().all(|v| v == "200"), "{stored:?}");
}

/// What the kafka sink produces is what a kafka source reads: `key` and
/// `value` columns as they are; other rows as JSON objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_produces_what_the_source_reads() {
    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let Some(server) = KafkaServer::start() else {
        return;
    };
    server.create_topic("pairs", 1);
    server.create_topic("rows", 1);
    let session = SessionContext::new();
    let brokers = server.brokers();

    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, true),
        Field::new("value", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
            Arc::new(StringArray::from(vec![Some("1"), Some("2"), None])),
        ],
    )
    .unwrap();
    let mut out = sink(
        &session,
        "kafka",
        schema,
        &[("brokers", &brokers), ("topic", "pairs")],
    )
    .await
    .unwrap();
    out.write(1000, &[batch]).await.unwrap();

    let schema = Arc::new(Schema::new(vec![
        Field::new("word", DataType::Utf8, false),
        Field::new("n", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec!["x", "y"])),
            Arc::new(Int64Array::from(vec![3, 4])),
        ],
    )
    .unwrap();
    let mut out = sink(
        &session,
        "kafka",
        schema,
        &[("brokers", &brokers), ("topic", "rows")],
    )
    .await
    .unwrap();
    out.write(1000, &[batch]).await.unwrap();

    let read = |topic: &'static str| {
        let session = session.clone();
        let brokers = brokers.clone();
        async move {
            let options = [("topics", topic), ("starting_offsets", "earliest")];
            let mut source = kafka(&session, &brokers, &options).await;
            let batches = source.cut(1000).await.unwrap();
            let b = &batches[0];
            let keys = b.column(0).as_string::<i32>();
            let values = b.column(1).as_string::<i32>();
            (0..b.num_rows())
                .map(|i| {
                    (
                        keys.is_valid(i).then(|| keys.value(i).to_string()),
                        values.is_valid(i).then(|| values.value(i).to_string()),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        read("pairs").await,
        vec![(some("a"), some("1")), (None, some("2")), (some("c"), None)]
    );
    assert_eq!(
        read("rows").await,
        vec![
            (None, some(r#"{"word":"x","n":3}"#)),
            (None, some(r#"{"word":"y","n":4}"#))
        ]
    );
}

/// `(topic, value)` of every row.
fn topics_and_values(batches: &[RecordBatch]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for b in batches {
        let values = b.column(1).as_string::<i32>();
        let topics = b.column(2).as_string::<i32>();
        for i in 0..b.num_rows() {
            out.push((topics.value(i).to_string(), values.value(i).to_string()));
        }
    }
    out.sort();
    out
}

fn pairs(topic: &str, prefix: &str, n: usize) -> Vec<(String, String)> {
    let mut v: Vec<_> = (0..n)
        .map(|i| (topic.to_string(), format!("{prefix}{i}")))
        .collect();
    v.sort();
    v
}

/// A pattern reads every topic whose whole name matches, and a matching
/// topic created between batches from its first record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_picks_up_topics_created_later() {
    let Some(server) = KafkaServer::start() else {
        return;
    };
    server.create_topic("logs-a", 1);
    server.create_topic("logs-a-old", 1);
    server.create_topic("metrics", 1);
    server.produce("logs-a", &records("old", 3, 1));
    let session = SessionContext::new();
    let options = [
        ("topic_pattern", "logs-[a-z]"),
        ("starting_offsets", "latest"),
    ];
    let mut source = kafka(&session, &server.brokers(), &options).await;
    assert_eq!(topics_and_values(&source.cut(1000).await.unwrap()), vec![]);
    server.produce("logs-a", &records("a", 3, 1));
    server.produce("logs-a-old", &records("old", 3, 1));
    server.produce("metrics", &records("m", 3, 1));
    // Created after the first batch: read from its start, although the
    // source starts what it knows at the first batch at the latest offset.
    server.create_topic("logs-b", 1);
    server.produce("logs-b", &records("b", 2, 1));
    let mut expected = pairs("logs-a", "a", 3);
    expected.extend(pairs("logs-b", "b", 2));
    assert_eq!(
        topics_and_values(&source.cut(2000).await.unwrap()),
        expected
    );
    let e = refused(&session, &[("topic_pattern", "logs-(")]).await;
    assert!(
        e.contains("topic_pattern 'logs-(' is not a regular expression"),
        "{e}"
    );
    // Unbalanced, although it would parse once wrapped in `^(?:...)$`.
    let e = refused(&session, &[("topic_pattern", "a)|(b")]).await;
    assert!(e.contains("is not a regular expression"), "{e}");
}

/// `format = 'json'` decodes each value into the declared columns, after
/// the kafka ones; a value that does not decode is left out (and logged),
/// the rest of the batch is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_values_decode_into_declared_columns() {
    let Some(server) = KafkaServer::start() else {
        return;
    };
    server.create_topic("clicks", 1);
    let values = [
        r#"{"user_id": 1, "page": "/a"}"#,
        r#"{"user_id": "not a number"}"#,
        r#"{"user_id": 3, "page": "/c", "ignored": true}"#,
    ];
    let records: Vec<(i32, String, String)> = values
        .iter()
        .map(|v| (0, "k".to_string(), v.to_string()))
        .collect();
    server.produce("clicks", &records);
    let session = SessionContext::new();
    let mut source = source_of(
        &session,
        "kafka",
        Some("SELECT CAST(1 AS BIGINT) AS user_id, 'x' AS page"),
        &[
            ("brokers", &server.brokers()),
            ("topics", "clicks"),
            ("starting_offsets", "earliest"),
            ("format", "json"),
        ],
    )
    .await
    .unwrap();
    let batches = source.cut(1000).await.unwrap();
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(
        b.num_rows(),
        2,
        "the record that does not decode is left out"
    );
    assert_eq!(
        b.schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>(),
        vec![
            "key",
            "value",
            "topic",
            "partition",
            "offset",
            "timestamp",
            "user_id",
            "page"
        ]
    );
    let offsets = b.column(4).as_primitive::<Int64Type>();
    let users = b.column(6).as_primitive::<Int64Type>();
    let pages = b.column(7).as_string::<i32>();
    assert_eq!(
        (0..2)
            .map(|i| (offsets.value(i), users.value(i), pages.value(i)))
            .collect::<Vec<_>>(),
        vec![(0, 1, "/a"), (2, 3, "/c")]
    );

    let e = refused(&session, &[("topics", "clicks"), ("format", "csv")]).await;
    assert!(
        e.contains("format 'csv' decodes each value into declared columns: declare them"),
        "{e}"
    );
}

/// A topic deleted while the job runs is reported and skipped (the batch
/// is empty, not failed); created again, it is read from its start,
/// although the source starts at the latest offsets. (One topic only:
/// `tansu topic delete` drops every topic.)
async fn deleted_and_created_again(what: (&str, &str)) {
    let Some(server) = KafkaServer::start() else {
        return;
    };
    server.create_topic("goes", 1);
    server.produce("goes", &records("before", 3, 1));
    let session = SessionContext::new();
    let options = [what, ("starting_offsets", "latest")];
    let mut source = kafka(&session, &server.brokers(), &options).await;
    assert_eq!(topics_and_values(&source.cut(1000).await.unwrap()), vec![]);
    server.produce("goes", &records("g", 5, 1));
    assert_eq!(
        topics_and_values(&source.cut(1500).await.unwrap()),
        pairs("goes", "g", 5)
    );

    // The client's last fetch (a long poll, at most fetch.wait.max.ms)
    // must be answered first: tansu 0.6 answers a fetch of a topic deleted
    // meanwhile with a null topic name, on which librdkafka 2.12 crashes.
    // A Kafka broker names the topic.
    std::thread::sleep(std::time::Duration::from_secs(1));
    server.delete_topic("goes");
    assert_eq!(topics_and_values(&source.cut(2000).await.unwrap()), vec![]);
    assert_eq!(
        source.position().unwrap()["offsets"]["goes"]["0"],
        8,
        "its offsets are kept"
    );

    server.create_topic("goes", 1);
    server.produce("goes", &records("again", 2, 1));
    assert_eq!(
        topics_and_values(&source.cut(3000).await.unwrap()),
        pairs("goes", "again", 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_topic_is_skipped_until_it_is_back() {
    deleted_and_created_again(("topics", "goes")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_topic_a_pattern_matched_is_skipped_until_it_is_back() {
    deleted_and_created_again(("topic_pattern", "go.*")).await;
}

/// A partition the source has no offset for once it has started (one added
/// to the topic; tansu cannot add partitions, so here one missing from the
/// position it resumed from) is read from its first record, although the
/// source starts at the latest offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_unknown_after_the_start_is_read_from_its_first_record() {
    let Some(server) = KafkaServer::start() else {
        return;
    };
    server.create_topic("grows", 2);
    server.produce("grows", &records("r", 4, 2));
    let session = SessionContext::new();
    let options = [("topics", "grows"), ("starting_offsets", "latest")];
    let mut source = kafka(&session, &server.brokers(), &options).await;
    source
        .restore(&serde_json::json!({"offsets": {"grows": {"0": 2}}}))
        .unwrap();
    assert_eq!(
        topics_and_values(&source.cut(1000).await.unwrap()),
        vec![
            ("grows".to_string(), "r1".to_string()),
            ("grows".to_string(), "r3".to_string())
        ],
        "partition 1 (r1, r3) from its start; partition 0 from where it was"
    );
}
