//! The directory source on real files: listing a directory of 100k files
//! each batch, and reading 1 GiB of CSV or Parquet in one batch, next to
//! DataFusion reading the same files directly.
//!
//! ```text
//! cargo bench -p sluice-benches --bench files            # all
//! cargo bench -p sluice-benches --bench files -- listing # or csv, parquet
//! ```
//!
//! The files are made once under `target/bench-data/files` (or
//! `$SLUICE_BENCH_DATA`) and reused: 100k one-line text files; 8 CSV files
//! of `id BIGINT, user TEXT, amount DOUBLE, flag BOOLEAN` totalling 1 GiB,
//! and the same rows as 8 Parquet files.
//!
//! - listing: `cut` when nothing is new (100k files already taken), `cut`
//!   when 100 new files arrived among them, and object_store's listing of
//!   the same directory (what the source paid before it listed local
//!   directories itself: object_store stats every file).
//! - csv / parquet: one `cut` of a source created with
//!   `include_existing = true` (every column parsed into Arrow), against
//!   `SessionContext::read_csv` / `read_parquet` of the same directory,
//!   collected (every column) on the 2-partition session.

#[allow(dead_code)] // the queue helpers are for the engine benches
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_core::sluice_sql::{Location, Options};
use sluice_core::source::{Source, SourceContext, SourceSpec};

use common::{ms, session, stats, wanted};

const LISTED_FILES: usize = 100_000;
const DATA_FILES: usize = 8;
const DATA_BYTES: u64 = 1 << 30;
const ROWS_PER_CHUNK: usize = 100_000;

fn data_dir() -> PathBuf {
    std::env::var_os("SLUICE_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data/files"))
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("user", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
    ]))
}

fn chunk(rng: &mut StdRng, first_id: i64) -> RecordBatch {
    let ids = Int64Array::from_iter_values(first_id..first_id + ROWS_PER_CHUNK as i64);
    let users = StringArray::from_iter_values(
        (0..ROWS_PER_CHUNK).map(|_| format!("user-{:06}", rng.random_range(0..1_000_000))),
    );
    let amounts = Float64Array::from_iter_values(
        (0..ROWS_PER_CHUNK).map(|_| (rng.random_range(0..10_000_000) as f64) / 100.0),
    );
    let flags = BooleanArray::from_iter((0..ROWS_PER_CHUNK).map(|_| Some(rng.random_bool(0.5))));
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(ids),
            Arc::new(users),
            Arc::new(amounts),
            Arc::new(flags),
        ],
    )
    .expect("chunk")
}

/// 8 CSV files of 1 GiB in all, and the same rows as Parquet; made once.
fn make_data(dir: &Path) -> (PathBuf, PathBuf, u64, u64) {
    let (csv_dir, parquet_dir) = (dir.join("csv"), dir.join("parquet"));
    let done = dir.join(".data-done");
    if !done.exists() {
        eprintln!(
            "making 1 GiB of CSV and its Parquet twin in {}",
            dir.display()
        );
        for d in [&csv_dir, &parquet_dir] {
            let _ = std::fs::remove_dir_all(d);
            std::fs::create_dir_all(d).expect("data dir");
        }
        let mut rng = StdRng::seed_from_u64(7);
        let mut id = 0;
        for f in 0..DATA_FILES {
            let mut csv = std::io::BufWriter::new(
                std::fs::File::create(csv_dir.join(format!("part-{f}.csv"))).expect("csv"),
            );
            let pq = std::fs::File::create(parquet_dir.join(format!("part-{f}.parquet")))
                .expect("parquet");
            let mut pq = parquet::arrow::ArrowWriter::try_new(pq, schema(), None).expect("parquet");
            let mut written = 0u64;
            while written < DATA_BYTES / DATA_FILES as u64 {
                let b = chunk(&mut rng, id);
                id += ROWS_PER_CHUNK as i64;
                let mut text = Vec::new();
                arrow::csv::WriterBuilder::new()
                    .with_header(written == 0)
                    .build(&mut text)
                    .write(&b)
                    .expect("csv");
                std::io::Write::write_all(&mut csv, &text).expect("csv");
                written += text.len() as u64;
                pq.write(&b).expect("parquet");
            }
            drop(csv);
            pq.close().expect("parquet");
        }
        std::fs::write(&done, "").expect("marker");
    }
    let size = |d: &Path| -> u64 {
        std::fs::read_dir(d)
            .expect("dir")
            .map(|e| e.expect("entry").metadata().expect("meta").len())
            .sum()
    };
    let (c, p) = (size(&csv_dir), size(&parquet_dir));
    (csv_dir, parquet_dir, c, p)
}

/// 100k one-line files; made once.
fn make_listing(dir: &Path) -> PathBuf {
    let listing = dir.join("listing");
    let done = dir.join(".listing-done");
    if !done.exists() {
        eprintln!("making {LISTED_FILES} files in {}", listing.display());
        let _ = std::fs::remove_dir_all(&listing);
        std::fs::create_dir_all(&listing).expect("listing dir");
        for i in 0..LISTED_FILES {
            std::fs::write(listing.join(format!("f-{i:06}.txt")), "a line\n").expect("file");
        }
        std::fs::write(&done, "").expect("marker");
    }
    listing
}

async fn directory_source(
    session: &datafusion::prelude::SessionContext,
    declared: Option<SchemaRef>,
    pairs: &[(&str, &str)],
) -> Box<dyn Source> {
    let mut options = Options::new(Location::new(1, 1));
    for (k, v) in pairs {
        options.insert(k, *v, Location::new(1, 1));
    }
    let spec = SourceSpec {
        name: "files".into(),
        declared_schema: declared,
        options,
    };
    let ctx = SourceContext {
        session: session.clone(),
        batch_interval: Duration::from_secs(1),
    };
    sluice_connectors::registry()
        .source("directory")
        .expect("directory")
        .create(spec, &ctx)
        .await
        .expect("source")
}

fn report(what: &str, samples: Vec<Duration>, bytes: Option<u64>) {
    let s = stats(samples);
    let rate = bytes
        .map(|b| {
            format!(
                "  ({:.0} MB/s at the median)",
                b as f64 / 1e6 / s.median.as_secs_f64()
            )
        })
        .unwrap_or_default();
    println!(
        "{what:<58} min {:>9.2} ms  median {:>9.2} ms  max {:>9.2} ms{rate}",
        ms(s.min),
        ms(s.median),
        ms(s.max)
    );
}

/// One cut of `source`: how long it took and the rows it gave.
async fn timed_cut(source: &mut dyn Source, batch_time: i64) -> (Duration, usize) {
    let start = Instant::now();
    let batches = source.cut(batch_time).await.expect("cut");
    let took = start.elapsed();
    (took, batches.iter().map(|b| b.num_rows()).sum())
}

async fn listing(dir: &Path) {
    let listing = make_listing(dir);
    let session = session();
    let path = listing.to_str().expect("utf-8 path");
    let mut source = directory_source(&session, None, &[("path", path)]).await;
    let mut empty = Vec::new();
    for t in 0..10 {
        let (took, rows) = timed_cut(source.as_mut(), t * 1000).await;
        empty.push(took);
        assert_eq!(rows, 0);
    }
    report(
        &format!("listing: cut, nothing new among {LISTED_FILES} files"),
        empty,
        None,
    );

    let mut arrived = Vec::new();
    for t in 0..10 {
        for i in 0..100 {
            std::fs::write(listing.join(format!(".new-{t}-{i}")), "new\n").expect("new");
            std::fs::rename(
                listing.join(format!(".new-{t}-{i}")),
                listing.join(format!("new-{t}-{i:03}.txt")),
            )
            .expect("rename");
        }
        let (took, rows) = timed_cut(source.as_mut(), t * 1000).await;
        arrived.push(took);
        assert_eq!(rows, 100);
    }
    report(
        &format!("listing: cut, 100 new files among {LISTED_FILES}"),
        arrived,
        None,
    );
    for t in 0..10 {
        for i in 0..100 {
            let _ = std::fs::remove_file(listing.join(format!("new-{t}-{i:03}.txt")));
        }
    }

    let at = sluice_connectors::store::resolve(&session, path).expect("store");
    let mut bare = Vec::new();
    for _ in 0..10 {
        let start = Instant::now();
        let listed = at
            .store
            .list_with_delimiter(Some(&at.path))
            .await
            .expect("list");
        bare.push(start.elapsed());
        assert!(listed.objects.len() >= LISTED_FILES);
    }
    report(
        &format!("listing: object_store list of {LISTED_FILES} files"),
        bare,
        None,
    );
}

const RUNS: usize = 5;

/// DataFusion reading the files at `path` itself, every column: `RUNS`
/// timings after a warm-up, each read checked to give `rows` rows.
async fn datafusion_reads(
    session: &datafusion::prelude::SessionContext,
    format: &str,
    path: &str,
    rows: usize,
) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..=RUNS {
        let start = Instant::now();
        let df = match format {
            "csv" => session
                .read_csv(path, CsvReadOptions::new().schema(&schema()))
                .await
                .expect("read_csv"),
            _ => session
                .read_parquet(path, ParquetReadOptions::default())
                .await
                .expect("read_parquet"),
        };
        let batches = df.collect().await.expect("collect");
        times.push(start.elapsed());
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), rows);
    }
    times.remove(0); // the warm-up
    times
}

async fn read_all(format: &str, dir: &Path, bytes: u64) {
    let path = dir.to_str().expect("utf-8 path");
    let session = session();
    let mut sluice_times = Vec::new();
    let mut rows = 0;
    for _ in 0..=RUNS {
        let mut source = directory_source(
            &session,
            Some(schema()),
            &[
                ("path", path),
                ("format", format),
                ("include_existing", "true"),
            ],
        )
        .await;
        let (took, cut_rows) = timed_cut(source.as_mut(), 1000).await;
        sluice_times.push(took);
        rows = cut_rows;
    }
    sluice_times.remove(0); // the warm-up
    let datafusion_times = datafusion_reads(&session, format, path, rows).await;
    // DataFusion reads Parquet strings as Utf8View by default; the source
    // gives the declared Utf8. The same read with Utf8 (in a session of its
    // own), for a like-for-like figure.
    let mut utf8_times = Vec::new();
    if format == "parquet" {
        let plain = common::session();
        plain
            .sql("SET datafusion.execution.parquet.schema_force_view_types = false")
            .await
            .expect("set");
        utf8_times = datafusion_reads(&plain, format, path, rows).await;
    }
    report(
        &format!("{format}: sluice directory source, one cut, {rows} rows"),
        sluice_times,
        Some(bytes),
    );
    report(
        &format!("{format}: DataFusion read_{format}().collect(), same files"),
        datafusion_times,
        Some(bytes),
    );
    if !utf8_times.is_empty() {
        report(
            &format!("{format}: DataFusion, strings as Utf8 (not Utf8View)"),
            utf8_times,
            Some(bytes),
        );
    }
}

fn main() {
    let want = wanted();
    let dir = data_dir();
    std::fs::create_dir_all(&dir).expect("bench data dir");
    println!(
        "files bench on {} cores, data in {}",
        common::cores(),
        dir.display()
    );
    let runtime = common::runtime();
    runtime.block_on(async {
        if want("listing") {
            listing(&dir).await;
        }
        if want("csv") || want("parquet") {
            let (csv, parquet, csv_bytes, parquet_bytes) = make_data(&dir);
            if want("csv") {
                read_all("csv", &csv, csv_bytes).await;
            }
            if want("parquet") {
                read_all("parquet", &parquet, parquet_bytes).await;
            }
        }
    });
}
