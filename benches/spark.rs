//! sluice side by side with Spark Streaming on the same machine, in one run.
//!
//! ```text
//! cargo bench -p sluice-benches --bench spark                      # every workload, both engines
//! cargo bench -p sluice-benches --bench spark -- wordcount tiny    # some workloads
//! cargo bench -p sluice-benches --bench spark -- --no-spark        # sluice and the baselines only
//! cargo bench -p sluice-benches --bench spark -- --sluice-only     # sluice alone (for profiling)
//! cargo bench -p sluice-benches --bench spark -- --sluice-only --batches=2000 tiny  # more batches
//! bash benches/spark/profile.sh blacklist                              # a flamegraph of sluice's run
//! ```
//!
//! 1. Writes the input batches once, as files (`target/spark-bench/data/<workload>/batch-NNNN.txt`).
//! 2. Runs each workload in sluice: the SQL script `benches/spark/<workload>.sql`, a `replay`
//!    source over those files (one file per batch), the simulated clock, a `text` sink.
//!    A batch's time is the engine's own: reading its file (`BatchInfo::input_time`) plus
//!    processing it (`BatchInfo::processing_time`: every stream, the sink's file written).
//! 3. For word count, the references on the same files: a hand-written single-thread Rust
//!    loop (read, split, `HashMap`, write) and DataFusion running the same SQL directly.
//! 4. Runs the same workloads in Spark Streaming 4.3's DStream API, twice: on the JVM
//!    (`benches/spark/DStreams.java`, compiled with `javac` against the jars the PySpark
//!    wheel ships) and in PySpark (`benches/spark/dstream.py`). Both: `queueStream` of one
//!    `textFile` RDD per batch, `local[2]`, a StreamingListener's processing time per
//!    batch, `saveAsTextFiles`.
//! 5. Checks that every engine wrote the same rows for every batch, and prints the table of
//!    per-batch min / median / max, rows/s and Spark ÷ sluice (also written to
//!    `target/spark-bench/results.md`).
//!
//! The venv is `$SLUICE_SPARK_VENV` (default `~/.cache/sluice/spark-venv`); it is created,
//! and `pyspark==4.3.0` installed into it, when it lacks pyspark. Java 17 (`java`, `javac`)
//! must be on the PATH.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_connectors::replay::{lines_batch, text_schema};
use sluice_connectors::words::WordsSource;
use sluice_core::{ClockChoice, StreamingContext};

use common::{Stats, WORDCOUNT_SQL, ms, session, stats};

const PYSPARK: &str = "pyspark==4.3.0";
const VOCABULARY: usize = 100_000;
const STATE_KEYS: usize = 1_000_000;

/// One workload: its input, and which batches are timed.
#[derive(Clone)]
struct Workload {
    name: &'static str,
    /// The sluice script (`benches/spark/<script>.sql`).
    script: &'static str,
    interval: Duration,
    /// Input lines per timed batch.
    lines: usize,
    batches: usize,
    /// Batches before the timed ones (JIT warm-up for Spark, a window filling).
    untimed: usize,
    what: &'static str,
}

const WORKLOADS: [Workload; 5] = [
    Workload {
        name: "wordcount",
        script: "wordcount",
        interval: Duration::from_secs(1),
        lines: 200_000,
        batches: 13,
        untimed: 3,
        what: "word count per batch, 200k lines of 2 words (Zipf over 100k words)",
    },
    Workload {
        name: "window",
        script: "window",
        interval: Duration::from_secs(1),
        lines: 100_000,
        batches: 40,
        untimed: 30,
        what: "reduceByKeyAndWindow with inverse, window 30 batches, slide 1; 100k lines of 2 words",
    },
    Workload {
        name: "state",
        script: "state",
        interval: Duration::from_secs(1),
        lines: 100_000,
        batches: 12,
        untimed: 2,
        what: "updateStateByKey running count, 1M keys in state, 100k keys per batch",
    },
    Workload {
        name: "blacklist",
        script: "blacklist",
        interval: Duration::from_secs(1),
        lines: 200_000,
        batches: 13,
        untimed: 3,
        what: "blacklist left join (1,000 words) and filter, 200k lines per batch",
    },
    Workload {
        name: "tiny",
        script: "wordcount",
        interval: Duration::from_millis(250),
        lines: 10,
        batches: 60,
        untimed: 10,
        what: "per-batch floor: word count on 10-line batches",
    },
];

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("spark")
}

fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("spark-bench")
}

fn batch_file(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("batch-{i:04}.txt"))
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    for line in lines {
        writeln!(out, "{line}").expect("write");
    }
    out.flush().expect("flush");
}

/// The lines the words generator makes for batch `i`.
fn generated_lines(source: &WordsSource, i: usize) -> Vec<String> {
    let batch = source.generate(i as i64 * 1000).expect("generate");
    let values = batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .expect("text");
    values.iter().map(|v| v.unwrap_or("").to_string()).collect()
}

/// Writes the workload's input files (the same for every engine).
fn generate(w: &Workload, data: &Path) {
    let dir = data.join(w.name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("data dir");
    let vocabulary: Vec<String> = (0..VOCABULARY).map(|i| format!("w{i}")).collect();
    match w.name {
        "state" => {
            // Batch 1 puts every key in state; then random keys over the whole state.
            write_lines(&batch_file(&dir, 1), (0..STATE_KEYS).map(|k| k.to_string()));
            let mut rng = StdRng::seed_from_u64(17);
            for i in 2..=w.batches {
                let keys: Vec<String> = (0..w.lines)
                    .map(|_| rng.random_range(0..STATE_KEYS).to_string())
                    .collect();
                write_lines(&batch_file(&dir, i), keys.into_iter());
            }
        }
        "blacklist" => {
            // 1,000 of the most frequent words (w0, w3, ..., w2997); every other one flagged.
            write_lines(
                &data.join("blacklist.csv"),
                (0..1000).map(|i| format!("w{},{}", i * 3, i % 2 == 0)),
            );
            let source = WordsSource::new(23, w.lines, 1, vocabulary, Some(1.0)).expect("words");
            for i in 1..=w.batches {
                let first = (i - 1) * w.lines;
                write_lines(
                    &batch_file(&dir, i),
                    generated_lines(&source, i)
                        .into_iter()
                        .enumerate()
                        .map(|(n, word)| format!("{} {word}", first + n)),
                );
            }
        }
        _ => {
            let source = WordsSource::new(7, w.lines, 2, vocabulary, Some(1.0)).expect("words");
            for i in 1..=w.batches {
                write_lines(
                    &batch_file(&dir, i),
                    generated_lines(&source, i).into_iter(),
                );
            }
        }
    }
}

/// Writes out the page cache's dirty pages (`sync`), so that the kernel's
/// write-back of the input files just generated (about 100 MB) or of the
/// previous engine's output does not run on the cores the next one is timed on.
fn settle_disk() {
    let _ = std::process::Command::new("sync").status();
}

/// Moves the chosen workloads' input and every engine's output of them from
/// an earlier run aside, into `old/`, before anything is written and timed;
/// `main` removes `old/` once every engine has run and been checked. They
/// are not removed first because, on a file system like this machine's
/// (ext4 without a journal), making a file skips every inode freed in the
/// last 5 s (300 s while its inode table block is unwritten) at a lookup
/// each: an engine timed right after a few thousand files were removed paid
/// for each file it made several times over (10-line batches took 1.5–2 ms
/// instead of 0.3). A run started within minutes of another's end still
/// meets the inodes that one freed.
fn set_aside_previous_run(chosen: &[&Workload], work: &Path) {
    let old = work.join("old").join(std::process::id().to_string());
    std::fs::create_dir_all(&old).expect("old/");
    for w in chosen {
        let _ = std::fs::rename(
            work.join("data").join(w.name),
            old.join(format!("data-{}", w.name)),
        );
        for engine in ["sluice", "loop", "datafusion"]
            .into_iter()
            .chain(SPARK_SIDES.map(|(side, _)| side))
        {
            let _ = std::fs::rename(
                work.join("out").join(engine).join(w.name),
                old.join(format!("{engine}-{}", w.name)),
            );
        }
    }
}

/// One engine's timings for one workload.
struct Measured {
    engine: String,
    times: Vec<Duration>,
}

impl Measured {
    /// The times of the batches after the workload's untimed ones.
    fn timed(&self, w: &Workload) -> &[Duration] {
        &self.times[w.untimed.min(self.times.len())..]
    }
}

/// Runs the workload's script in sluice; per batch: reading + processing.
async fn run_sluice(w: &Workload, work: &Path) -> Measured {
    let out = work.join("out").join("sluice").join(w.name);
    let _ = std::fs::remove_dir_all(&out);
    let script = std::fs::read_to_string(bench_dir().join(format!("{}.sql", w.script)))
        .expect("script")
        .replace("{data}", &work.join("data").join(w.name).to_string_lossy())
        .replace(
            "{blacklist}",
            &work.join("data").join("blacklist.csv").to_string_lossy(),
        )
        .replace("{out}", &out.to_string_lossy());
    let ssc = StreamingContext::with_registry(session(), w.interval, sluice_connectors::registry());
    ssc.sql(&script).await.expect("script");
    ssc.set_clock(ClockChoice::Simulated);
    ssc.set_max_batches(w.batches as u64);
    let cpu_before = cpu_time();
    perf_control("enable");
    ssc.start().await.expect("start");
    ssc.await_termination().await.expect("run");
    perf_control("disable");
    let cpu = cpu_time().saturating_sub(cpu_before);
    let infos = ssc.batch_infos();
    assert_eq!(infos.len(), w.batches, "sluice ran every batch");
    let timed = &infos[w.untimed.min(infos.len())..];
    println!(
        "sluice {}: median reading {:.3} ms, processing {:.3} ms per batch; {:.3} ms of CPU per batch (every thread, every batch)",
        w.name,
        ms(stats(timed.iter().map(|b| b.input_time).collect()).median),
        ms(stats(timed.iter().map(|b| b.processing_time).collect()).median),
        ms(cpu) / w.batches as f64,
    );
    Measured {
        engine: "sluice".into(),
        times: infos
            .iter()
            .map(|b| b.input_time + b.processing_time)
            .collect(),
    }
}

/// Turns the sampling of `perf record -D -1 --control fifo:<fifo>` on or off
/// when `SLUICE_PERF_CTL=<fifo>` (benches/spark/profile.sh), so a profile
/// holds sluice's run (its untimed batches too) and not the input's
/// generation or the comparisons.
fn perf_control(command: &str) {
    let Some(fifo) = std::env::var_os("SLUICE_PERF_CTL") else {
        return;
    };
    let sent = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .and_then(|mut f| f.write_all(format!("{command}\n").as_bytes()));
    if let Err(e) = sent {
        eprintln!("SLUICE_PERF_CTL={}: {e}", fifo.to_string_lossy());
    }
}

/// The CPU time this process's live threads have run so far (Linux's
/// per-thread `schedstat`; zero elsewhere). Unlike a batch's wall time it
/// does not move with how the two cores are shared, so it shows a change's
/// effect through this machine's noise.
fn cpu_time() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// Writes rows as the text sink does: `(a,b)` per line, in `batch-<ms>/part-00000`.
fn write_batch_output(out: &Path, i: usize, text: &str) {
    let dir = out.join(format!("batch-{}", i * 1000));
    std::fs::create_dir_all(&dir).expect("out dir");
    std::fs::write(dir.join("part-00000"), text).expect("write");
}

/// The hardware reference: one thread reads each batch file, splits it, counts
/// words in a `HashMap` and writes the counts.
fn run_loop(w: &Workload, work: &Path) -> Measured {
    let data = work.join("data").join(w.name);
    let out = work.join("out").join("loop").join(w.name);
    let _ = std::fs::remove_dir_all(&out);
    let mut times = Vec::with_capacity(w.batches);
    for i in 1..=w.batches {
        let started = Instant::now();
        let text = std::fs::read_to_string(batch_file(&data, i)).expect("read");
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for line in text.lines() {
            for word in line.split(' ') {
                *counts.entry(word).or_insert(0) += 1;
            }
        }
        let mut rendered = String::with_capacity(counts.len() * 16);
        for (word, n) in &counts {
            let _ = writeln!(rendered, "({word},{n})");
        }
        write_batch_output(&out, i, &rendered);
        times.push(started.elapsed());
    }
    Measured {
        engine: "hand-written Rust loop, 1 thread".into(),
        times,
    }
}

/// DataFusion directly: each batch file read into Arrow (as the replay source
/// does), registered as a 2-partition table, the same SQL planned and run,
/// the rows written as the text sink writes them.
async fn run_datafusion(w: &Workload, work: &Path) -> Measured {
    let data = work.join("data").join(w.name);
    let out = work.join("out").join("datafusion").join(w.name);
    let _ = std::fs::remove_dir_all(&out);
    let ctx = session();
    let schema = text_schema();
    let mut times = Vec::with_capacity(w.batches);
    for i in 1..=w.batches {
        let started = Instant::now();
        let text = std::fs::read_to_string(batch_file(&data, i)).expect("read");
        let batch = lines_batch(&schema, text).expect("lines");
        let rows = common::datafusion_on_halves(&ctx, &batch, WORDCOUNT_SQL).await;
        let mut rendered = String::new();
        sluice_core::render::push_spark_rows(&rows, usize::MAX, &mut rendered).expect("render");
        write_batch_output(&out, i, &rendered);
        times.push(started.elapsed());
    }
    Measured {
        engine: "DataFusion directly, same SQL".into(),
        times,
    }
}

/// The venv's python, with pyspark installed in it (installed now if missing).
fn spark_python() -> PathBuf {
    let venv = std::env::var_os("SLUICE_SPARK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache").join("sluice").join("spark-venv")
        });
    let python = venv.join("bin").join("python");
    let has_pyspark = |p: &Path| {
        Command::new(p)
            .args(["-c", "import pyspark"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has_pyspark(&python) {
        eprintln!("installing {PYSPARK} into {}", venv.display());
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .expect("python3 -m venv");
        assert!(made.success(), "python3 -m venv {} failed", venv.display());
        let pip = Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", PYSPARK])
            .status()
            .expect("pip");
        assert!(pip.success(), "pip install {PYSPARK} failed");
    }
    python
}

/// The Spark sides: the directory under `out/` each writes to, and its label.
const SPARK_SIDES: [(&str, &str); 2] = [
    (
        "spark-jvm",
        "Spark Streaming 4.3, JVM (Java DStream API, local[2])",
    ),
    (
        "spark",
        "Spark Streaming 4.3, PySpark (Python DStream API, local[2])",
    ),
];

/// The JVM options Spark's own launcher passes on Java 17 (its
/// `JavaModuleOptions`), for a plain `java` command.
const JAVA_OPENS: [&str; 16] = [
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.invoke=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.cs=ALL-UNNAMED",
    "--add-opens=java.base/sun.security.action=ALL-UNNAMED",
    "--add-opens=java.base/sun.util.calendar=ALL-UNNAMED",
    "-Djdk.reflect.useDirectMethodHandle=false",
    "-Dio.netty.tryReflectionSetAccessible=true",
];

/// Runs the workloads in Spark Streaming, on the JVM (DStreams.java, compiled
/// against the PySpark wheel's jars) and in PySpark (dstream.py); per side and
/// workload, each batch's processing time as its StreamingListener saw it.
fn run_spark(chosen: &[&Workload], work: &Path) -> HashMap<(String, String), Measured> {
    let python = spark_python();
    // Both sides take `name:interval_ms` pairs: the intervals are this file's.
    let workloads: Vec<String> = chosen
        .iter()
        .map(|w| format!("{}:{}", w.name, w.interval.as_millis()))
        .collect();
    let workloads = workloads.join(",");
    let jars = Command::new(&python)
        .args([
            "-c",
            "import os, pyspark; print(os.path.dirname(pyspark.__file__))",
        ])
        .output()
        .expect("pyspark's location");
    let jars = PathBuf::from(String::from_utf8_lossy(&jars.stdout).trim()).join("jars");
    let classpath = format!("{}/*", jars.display());
    let classes = work.join("java-classes");
    let javac = Command::new("javac")
        .args(["-nowarn", "-d"])
        .arg(&classes)
        .arg("-cp")
        .arg(&classpath)
        .arg(bench_dir().join("DStreams.java"))
        .status()
        .expect("javac (Java 17 must be on the PATH)");
    assert!(javac.success(), "javac DStreams.java failed");
    settle_disk();
    let jvm = Command::new("java")
        .arg("-Xmx4g")
        .args(JAVA_OPENS)
        .arg("-cp")
        .arg(format!("{classpath}:{}", classes.display()))
        .arg("DStreams")
        .arg(work)
        .arg(&workloads)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .status()
        .expect("java");
    assert!(jvm.success(), "the Spark JVM side failed: {jvm}");
    settle_disk();
    let pyspark = Command::new(&python)
        .arg(bench_dir().join("dstream.py"))
        .arg(work)
        .arg(&workloads)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .env("PYSPARK_PYTHON", &python)
        .env("PYTHONWARNINGS", "ignore::FutureWarning")
        .status()
        .expect("spark");
    assert!(pyspark.success(), "the PySpark side failed: {pyspark}");
    let mut measured = HashMap::new();
    for (side, label) in SPARK_SIDES {
        for w in chosen {
            let name = w.name;
            let path = work.join("out").join(side).join(format!("{name}.json"));
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("spark times"))
                    .expect("json");
            let times = json["times_ms"]
                .as_array()
                .expect("times")
                .iter()
                .map(|t| Duration::from_millis(t.as_u64().expect("ms")))
                .collect();
            let engine = label.to_string();
            measured.insert(
                (side.to_string(), name.to_string()),
                Measured { engine, times },
            );
        }
    }
    measured
}

/// The first `n` batches' output rows, sorted, in batch order:
/// `<dir>/batch-<ms>/part-*`. (Spark goes on cutting empty batches after its
/// queue runs dry, until it is stopped; those are not compared.)
fn outputs(dir: &Path, n: usize) -> Vec<Vec<String>> {
    let mut batches: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let ms = name.strip_prefix("batch-")?.parse::<i64>().ok()?;
                    e.path().is_dir().then_some((ms, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    batches.sort();
    batches
        .into_iter()
        .take(n)
        .map(|(_, path)| {
            let mut rows = Vec::new();
            let mut parts: Vec<PathBuf> = std::fs::read_dir(&path)
                .expect("batch dir")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("part-"))
                })
                .collect();
            parts.sort();
            for part in parts {
                let text = std::fs::read_to_string(&part).expect("part");
                rows.extend(text.lines().map(str::to_string));
            }
            rows.sort_unstable();
            rows
        })
        .collect()
}

/// "identical" or where the two engines' outputs first differ.
fn compare(w: &Workload, work: &Path, engine: &str) -> Result<String, String> {
    let name = w.name;
    let ours = outputs(&work.join("out").join("sluice").join(name), w.batches);
    let theirs = outputs(&work.join("out").join(engine).join(name), w.batches);
    if ours.len() != w.batches || ours.len() != theirs.len() {
        return Err(format!(
            "{name}: {} batches ran; sluice wrote {}, {engine} {}",
            w.batches,
            ours.len(),
            theirs.len()
        ));
    }
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        if a != b {
            let first = a.iter().zip(b).position(|(x, y)| x != y);
            let detail = match first {
                Some(p) => format!("first difference: sluice '{}', {engine} '{}'", a[p], b[p]),
                None => format!("sluice {} rows, {engine} {} rows", a.len(), b.len()),
            };
            return Err(format!("{name}, batch {}: outputs differ; {detail}", i + 1));
        }
    }
    let rows: usize = ours.iter().map(Vec::len).sum();
    Ok(format!(
        "{name}: sluice and {engine} wrote the same {rows} rows over {} batches",
        ours.len()
    ))
}

fn row(table: &mut String, what: &str, m: &Measured, w: &Workload, sluice_median: Duration) {
    let timed = m.timed(w);
    if timed.is_empty() {
        let _ = writeln!(table, "| {what} | {} | no timed batches | | |", m.engine);
        return;
    }
    let s: Stats = stats(timed.to_vec());
    let rate = w.lines as f64 / s.median.as_secs_f64();
    let ratio = s.median.as_secs_f64() / sluice_median.as_secs_f64();
    let _ = writeln!(
        table,
        "| {what} | {} | {:.3} / **{:.3}** / {:.3} ms | {} | {ratio:.1}× |",
        m.engine,
        ms(s.min),
        ms(s.median),
        ms(s.max),
        per_second(rate),
    );
}

fn per_second(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1} k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}

fn median(m: &Measured, w: &Workload) -> Duration {
    stats(m.timed(w).to_vec()).median
}

fn main() {
    let wants = common::wanted();
    let sluice_only = std::env::args().any(|a| a == "--sluice-only");
    let no_spark = sluice_only || std::env::args().any(|a| a == "--no-spark");
    // `--batches=N`: N batches a workload instead of its own count (a longer
    // run to profile; the untimed ones stay as they are).
    let batches =
        std::env::args().find_map(|a| a.strip_prefix("--batches=")?.parse::<usize>().ok());
    let chosen: Vec<Workload> = WORKLOADS
        .iter()
        .filter(|w| wants(w.name))
        .map(|w| Workload {
            batches: batches.map_or(w.batches, |n| n.max(w.untimed + 1)),
            ..w.clone()
        })
        .collect();
    let chosen: Vec<&Workload> = chosen.iter().collect();
    let work = work_dir();
    let data = work.join("data");
    println!(
        "machine: {} cores; work directory {}",
        common::cores(),
        work.display()
    );

    set_aside_previous_run(&chosen, &work);
    for w in &chosen {
        generate(w, &data);
    }
    let runtime = common::runtime();
    let mut results: Vec<(&Workload, Vec<Measured>)> = Vec::new();
    runtime.block_on(async {
        for w in &chosen {
            settle_disk();
            let mut measured = vec![run_sluice(w, &work).await];
            if w.name == "wordcount" && !sluice_only {
                settle_disk();
                measured.push(run_loop(w, &work));
                settle_disk();
                measured.push(run_datafusion(w, &work).await);
            }
            println!(
                "sluice {}: median {:.3} ms per batch",
                w.name,
                ms(median(&measured[0], w))
            );
            results.push((w, measured));
        }
    });
    if !no_spark {
        let mut spark = run_spark(&chosen, &work);
        for (w, measured) in &mut results {
            for (side, _) in SPARK_SIDES {
                if let Some(m) = spark.remove(&(side.to_string(), w.name.to_string())) {
                    measured.push(m);
                }
            }
        }
    }

    let mut table = String::from(
        "| workload | engine | per batch min / median / max | input rows/s (median) | ÷ sluice (median) |\n|---|---|---|---|---|\n",
    );
    let mut checks = Vec::new();
    for (w, measured) in &results {
        let ours = median(&measured[0], w);
        for m in measured {
            row(&mut table, w.name, m, w, ours);
        }
        let mut references = Vec::new();
        if w.name == "wordcount" && !sluice_only {
            references.extend(["loop", "datafusion"]);
        }
        if !no_spark {
            references.extend(SPARK_SIDES.map(|(side, _)| side));
        }
        for engine in references {
            checks.push(compare(w, &work, engine));
        }
    }
    println!();
    for w in &chosen {
        println!(
            "{}: {} ({} batches, the first {} not timed)",
            w.name, w.what, w.batches, w.untimed
        );
    }
    println!();
    print!("{table}");
    println!();
    let mut all_same = true;
    for check in &checks {
        match check {
            Ok(s) => println!("same output: {s}"),
            Err(e) => {
                all_same = false;
                println!("DIFFERENT OUTPUT: {e}");
            }
        }
    }
    std::fs::write(work.join("results.md"), &table).expect("results.md");
    // Everything timed: see `set_aside_previous_run`.
    let _ = std::fs::remove_dir_all(work.join("old"));
    assert!(all_same, "the engines' outputs differ (above)");
}
