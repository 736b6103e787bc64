//! The kafka source against a real Kafka-protocol broker (tansu, started on
//! 127.0.0.1): every record read exactly once across batches, in bounded
//! per-partition ranges, and resumed exactly from a saved position.

mod common;
#[path = "common/kafka_server.rs"]
mod kafka_server;

use std::collections::BTreeSet;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int32Type, Int64Type};
use common::source_of;
use datafusion::prelude::SessionContext;
use kafka_server::KafkaServer;
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

fn records() -> Vec<(i32, String, String)> {
    (0..RECORDS)
        .map(|i| ((i % 3) as i32, format!("k{i}"), format!("v{i}")))
        .collect()
}

async fn kafka_source(session: &SessionContext, brokers: &str) -> Box<dyn Source> {
    source_of(
        session,
        "kafka",
        None,
        &[
            ("brokers", brokers),
            ("topics", "events"),
            ("starting_offsets", "earliest"),
            ("max_rows_per_partition", "1500"),
        ],
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_once_in_bounded_ranges_and_resumed_exactly() {
    let Some(server) = KafkaServer::start() else {
        return;
    };
    server.create_topic("events", 3);
    server.produce("events", &records());
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
    let mut source = source_of(
        &session,
        "kafka",
        None,
        &[("brokers", &server.brokers()), ("topics", "nowhere")],
    )
    .await
    .unwrap();
    let e = source.cut(1000).await.unwrap_err().to_string();
    assert!(e.contains("topic 'nowhere'"), "{e}");
}
