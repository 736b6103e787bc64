//! Checkpoints: what saving keyed state costs, and what a checkpoint adds
//! to each batch of a running job.
//!
//! ```text
//! cargo bench -p sluice-benches --bench checkpoint
//! ```
//!
//! - `snapshot`: a state store of 10M keys (a count per key, as `GROUP BY k
//!   EMIT CHANGES` keeps): the full snapshot a checkpoint writes every
//!   `checkpoint_interval` (take the rows, encode Arrow IPC, write and fsync
//!   the file), reading it back into a fresh store (a restart), and the
//!   delta of a batch touching 10k keys.
//! - `overhead`: a `rate` source of 100k rows a batch into `GROUP BY k EMIT
//!   CHANGES` over 10k keys, 60 batches back to back, without and with
//!   `SET checkpoint` on the local disk (manifest, delta, full snapshot every
//!   10 batches): wall time per batch.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use sluice_core::StreamingContext;
use sluice_core::checkpoint::state::{decode, encode};
use sluice_core::state::StateStore;

use common::{ms, stats};

const KEYS: i64 = 10_000_000;
const TOUCHED: i64 = 10_000;
const RUNS: usize = 5;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, true),
        Field::new("n", DataType::Int64, true),
        Field::new("rows", DataType::Int64, false),
    ]))
}

fn rows(keys: impl Iterator<Item = i64> + Clone) -> RecordBatch {
    let n = keys.clone().count();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(keys)),
        Arc::new(Int64Array::from(vec![1i64; n])),
        Arc::new(Int64Array::from(vec![1i64; n])),
    ];
    RecordBatch::try_new(schema(), columns).expect("batch")
}

fn write_synced(path: &std::path::Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(path).expect("create");
    f.write_all(bytes).expect("write");
    f.sync_all().expect("fsync");
}

fn snapshot() {
    let dir = tempfile_dir();
    let mut store = StateStore::new(schema(), 1).expect("store");
    store.record_changes();
    for chunk in 0..(KEYS / 1_000_000) {
        store
            .upsert(&rows(chunk * 1_000_000..(chunk + 1) * 1_000_000))
            .expect("fill");
    }
    store.take_changes().expect("drop the fill's log");
    let path = dir.join("full.arrow");
    let (mut take, mut write, mut restore) = (Vec::new(), Vec::new(), Vec::new());
    let mut bytes = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let full = store.full_changes().expect("full");
        let body = encode(&full.schema(), &[full]).expect("encode");
        take.push(started.elapsed());
        let started = Instant::now();
        write_synced(&path, &body);
        write.push(started.elapsed());
        bytes = body.len();
        let started = Instant::now();
        let read = bytes::Bytes::from(std::fs::read(&path).expect("read"));
        let mut fresh = StateStore::new(schema(), 1).expect("store");
        for b in decode(&read).expect("decode") {
            fresh.apply_changes(&b).expect("apply");
        }
        restore.push(started.elapsed());
        assert_eq!(fresh.len(), KEYS as usize);
    }
    let mut delta = Vec::new();
    for round in 0..RUNS as i64 {
        let touched = rows((0..TOUCHED).map(|i| i * (KEYS / TOUCHED) + round));
        store.upsert(&touched).expect("touch");
        let started = Instant::now();
        let changes = store.take_changes().expect("delta");
        let body = encode(&changes.schema(), &[changes]).expect("encode");
        write_synced(&dir.join("delta.arrow"), &body);
        delta.push(started.elapsed());
    }
    for (what, samples) in [
        ("snapshot: take + encode", take),
        ("snapshot: write + fsync", write),
        ("restore: read + decode + apply", restore),
        ("delta of 10k keys: take + encode + write + fsync", delta),
    ] {
        let s = stats(samples);
        println!(
            "checkpoint/{what:<50} {KEYS} keys: min {:.1} ms  median {:.1} ms  max {:.1} ms",
            ms(s.min),
            ms(s.median),
            ms(s.max)
        );
    }
    println!("checkpoint/snapshot file: {:.0} MB", bytes as f64 / 1e6);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-bench-checkpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const BATCHES: u64 = 60;

async fn job(checkpoint: Option<&std::path::Path>) -> Duration {
    let ssc = StreamingContext::with_registry(
        common::session(),
        Duration::from_secs(1),
        sluice_connectors::registry(),
    );
    if let Some(dir) = checkpoint {
        ssc.checkpoint(&dir.display().to_string())
            .await
            .expect("checkpoint");
    }
    ssc.sql("CREATE SOURCE numbers WITH (connector = 'rate', rows_per_second = 100000)")
        .await
        .expect("source");
    ssc.sql("CREATE STREAM counts AS SELECT value % 10000 AS k, count(*) AS n FROM numbers GROUP BY value % 10000 EMIT CHANGES")
        .await
        .expect("stream");
    ssc.foreach_batch("counts", |_, _| async { Ok(()) })
        .await
        .expect("sink");
    ssc.set_clock(sluice_core::ClockChoice::Simulated);
    ssc.set_max_batches(BATCHES);
    let started = Instant::now();
    ssc.start().await.expect("start");
    ssc.await_termination().await.expect("run");
    started.elapsed() / BATCHES as u32
}

async fn overhead() {
    let mut without = Vec::new();
    let mut with = Vec::new();
    for _ in 0..RUNS {
        without.push(job(None).await);
        let dir = tempfile_dir().join("ck");
        with.push(job(Some(&dir)).await);
        let _ = std::fs::remove_dir_all(&dir);
    }
    for (what, samples) in [("without", without), ("with checkpoint", with)] {
        let s = stats(samples);
        println!(
            "checkpoint/overhead: per batch {what:<16} min {:.2} ms  median {:.2} ms  max {:.2} ms (100k rows, 10k keys, {BATCHES} batches, {RUNS} runs)",
            ms(s.min),
            ms(s.median),
            ms(s.max)
        );
    }
}

fn main() {
    let wants = common::wanted();
    println!("machine: {} cores", common::cores());
    if wants("snapshot") {
        snapshot();
    }
    if wants("overhead") {
        common::runtime().block_on(overhead());
    }
}
