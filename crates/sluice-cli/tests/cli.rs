//! The `sluice` binary as a user runs it: the shipped examples give Spark's
//! answers, errors name their place and stop before the first batch, flags
//! work, Ctrl-C stops after a whole batch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;
use common::{DASHES, batches, stderr, stdout};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

fn sluice(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("sluice runs")
}

/// `sluice run --clock simulated --batches N [extra flags] SCRIPT`.
fn run_simulated(batches: u64, extra: &[&str], script: &str) -> Output {
    let n = batches.to_string();
    let mut args = vec!["run", "--clock", "simulated", "--batches", &n];
    args.extend_from_slice(extra);
    args.push(script);
    sluice(&args)
}

fn pair(row: &str) -> (String, i64) {
    let inner = row
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .expect("a (k,v) row");
    let (k, v) = inner.rsplit_once(',').expect("two fields");
    (k.to_string(), v.parse().expect("a count"))
}

#[test]
fn rdd_queue_example_counts_value_mod_10_per_batch() {
    let o = run_simulated(6, &[], "sql-examples/rdd_queue.sql");
    assert!(o.status.success(), "{}", stderr(&o));
    let got = batches(&stdout(&o));
    assert_eq!(got.len(), 6);
    for (i, (time, rows)) in got.iter().enumerate().take(5) {
        let i = i as i64 + 1;
        assert_eq!(*time, i * 1000);
        // Recompute the tutorial's answer: (1 to 100).map(_ * i), counted by % 10.
        let mut expected: BTreeMap<i64, i64> = BTreeMap::new();
        for k in 1..=100 {
            *expected.entry((k * i) % 10).or_default() += 1;
        }
        let rows: BTreeMap<i64, i64> = rows
            .iter()
            .map(|r| pair(r))
            .map(|(k, v)| (k.parse().unwrap(), v))
            .collect();
        assert_eq!(rows, expected, "batch {i}");
    }
    assert_eq!(
        got[5],
        (6000, vec![]),
        "after the last file, batches are empty"
    );
}

#[test]
fn blacklist_example_three_ways_agree() {
    let o = run_simulated(2, &[], "sql-examples/blacklist_filter.sql");
    assert!(o.status.success(), "{}", stderr(&o));
    let got = batches(&stdout(&o));
    assert_eq!(got.len(), 6, "three sinks, two batches");
    let words = "Hello World Hello scala Hadoop Hello spark kafka hive zookeeper hbase flume sqoop";
    let expected: Vec<String> = words
        .split(' ')
        .enumerate()
        .filter(|(_, w)| *w != "spark")
        .map(|(i, w)| format!("{i} {w}"))
        .collect();
    for (time, rows) in &got {
        assert!(*time == 1000 || *time == 2000);
        let mut rows = rows.clone();
        rows.sort_by_key(|r| r.split(' ').next().and_then(|n| n.parse::<i64>().ok()));
        assert_eq!(rows, expected);
    }
}

#[test]
fn word_count_example_counts_every_word_of_each_batch() {
    let o = run_simulated(3, &[], "sql-examples/word_count.sql");
    assert!(o.status.success(), "{}", stderr(&o));
    let got = batches(&stdout(&o));
    assert_eq!(
        got.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![1000, 2000, 3000]
    );
    let vocabulary = [
        "Hello",
        "World",
        "Hadoop",
        "spark",
        "kafka",
        "hive",
        "zookeeper",
        "hbase",
        "flume",
        "sqoop",
    ];
    for (_, rows) in &got {
        let counts: Vec<(String, i64)> = rows.iter().map(|r| pair(r)).collect();
        assert!(
            counts.iter().all(|(w, _)| vocabulary.contains(&w.as_str())),
            "{counts:?}"
        );
        assert_eq!(
            counts.iter().map(|(_, n)| n).sum::<i64>(),
            20,
            "10 lines of 2 words"
        );
        assert!(
            counts.windows(2).all(|w| w[0].1 >= w[1].1),
            "sorted by count: {counts:?}"
        );
    }
}

#[test]
fn start_ms_sets_the_first_batch_time_and_must_be_aligned() {
    let o = run_simulated(2, &["--start-ms", "5000"], "sql-examples/rdd_queue.sql");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        batches(&stdout(&o)).iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![5000, 6000]
    );

    let o = run_simulated(2, &["--start-ms", "1500"], "sql-examples/rdd_queue.sql");
    assert!(!o.status.success());
    assert!(
        stderr(&o)
            .contains("start time 1500 ms is not a multiple of the batch interval (1 second)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn script_errors_name_statement_line_and_column_before_any_batch() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "SET batch_interval = '1 second';\nCREATE SOURCE s WITH (connector = 'words');\nCREATE STREAM w AS SELEC value FROM s;\nCREATE SINK o FROM w WITH (connector = 'console');",
            "statement 3 at line 3, column 20: Expected: SELECT, VALUES, or a subquery in the query body, found: SELEC",
        ),
        (
            "CREATE SOURCE s WITH (connector = 'words');\nCREATE STREAM w AS\n  SELECT valu FROM s;\nCREATE SINK o FROM w WITH (connector = 'console');",
            "statement 2 at line 3, column 10: Schema error: No field named valu.",
        ),
        (
            "CREATE SOURCE s WITH (connector = 'words');\nCREATE STREAM w AS SELECT value FROM lines;\nCREATE SINK o FROM w WITH (connector = 'console');",
            "statement 2 at line 2, column 38: Error during planning: table 'datafusion.public.lines' not found",
        ),
        (
            "CREATE SOURCE s WITH (connector = 'words');\nCREATE STREAM w AS SELECT value FROM s;",
            "no sink: nothing would be computed. Add a sink, e.g. CREATE SINK out FROM w WITH (connector = 'console')",
        ),
        (
            "CREATE SOURCE s WITH (connector = 'sockets', port = 9);",
            "statement 1 at line 1, column 35: unknown source connector 'sockets'",
        ),
    ];
    for (i, (script, message)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.sql"));
        std::fs::write(&path, script).unwrap();
        let o = run_simulated(1, &[], path.to_str().unwrap());
        assert!(!o.status.success(), "case {i} should fail");
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!("error: {}: ", path.display())),
            "case {i}: {err}"
        );
        assert!(
            err.contains(message),
            "case {i}: expected {message:?} in {err:?}"
        );
        assert!(
            !stdout(&o).contains("Time:"),
            "case {i} ran a batch: {}",
            stdout(&o)
        );
    }
}

#[test]
fn dash_c_runs_statements_and_prints_static_queries() {
    let o = sluice(&[
        "-c",
        "CREATE TABLE t (k INT) AS VALUES (1), (2); SELECT sum(k) AS total FROM t",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "+-------+\n| total |\n+-------+\n| 3     |\n+-------+\n"
    );

    let o = sluice(&[
        "-c",
        "CREATE SOURCE n (v BIGINT) WITH (connector = 'queue'); CREATE SINK o FROM n WITH (connector = 'console');",
        "--clock",
        "simulated",
        "--batches",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("{DASHES}\nTime: 1000 ms\n{DASHES}\n\n{DASHES}\nTime: 2000 ms\n{DASHES}\n\n")
    );
}

#[test]
fn text_sink_writes_one_directory_per_batch_named_like_save_as_text_files() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("out").join("words");
    let script = format!(
        "CREATE TABLE d (w TEXT, n BIGINT) AS VALUES ('a', 1), (NULL, 2);
         CREATE SOURCE s WITH (connector = 'constant', table = 'd');
         CREATE SINK save FROM s WITH (connector = 'text', path = '{}', suffix = 'txt');",
        prefix.display()
    );
    let o = sluice(&["-c", &script, "--clock", "simulated", "--batches", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for t in [1000, 2000] {
        let batch_dir = PathBuf::from(format!("{}-{t}.txt", prefix.display()));
        let part = std::fs::read_to_string(batch_dir.join("part-00000")).expect("part file");
        assert_eq!(part, "(a,1)\n(null,2)\n");
        assert!(batch_dir.join("_SUCCESS").exists());
    }
}

#[test]
fn ctrl_c_stops_after_a_whole_batch() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "--clock", "simulated", "sql-examples/word_count.sql"])
        .current_dir(repo_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Wait for the first batch to be printed, then interrupt.
    use std::io::Read;
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("Time: 2000 ms") {
        let n = out.read(&mut buf).expect("read");
        assert!(n > 0, "sluice ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    out.read_to_end(&mut seen).expect("read rest");
    let status = child.wait().expect("wait");
    assert!(status.success(), "graceful stop exits 0");
    let text = String::from_utf8_lossy(&seen);
    let got = batches(&text); // panics on a half-printed batch
    let times: Vec<i64> = got.iter().map(|b| b.0).collect();
    assert!(
        times.windows(2).all(|w| w[1] == w[0] + 1000),
        "no batch skipped: {times:?}"
    );
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("stopping after the batch in progress"),
        "{err}"
    );
}

#[test]
fn the_ui_flag_says_when_it_cannot_listen() {
    // A port already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let o = sluice(&["run", "--ui", &address, "sql-examples/word_count.sql"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("--ui {address}: cannot listen:")),
        "{}",
        stderr(&o)
    );
}

/// HotWordStats: counts over the last 20 s every 10 s (5 s batches) equal the
/// per-batch counts of the same generated lines, summed over each window.
#[test]
fn hot_words_example_counts_the_last_20_seconds_every_10() {
    let _ = std::fs::remove_dir_all(repo_root().join("target/sql-examples/hot_words"));
    let o = run_simulated(6, &[], "sql-examples/hot_words.sql");
    assert!(o.status.success(), "{}", stderr(&o));
    let windows = batches(&stdout(&o));
    assert_eq!(
        windows.iter().map(|w| w.0).collect::<Vec<_>>(),
        vec![10_000, 20_000, 30_000]
    );

    // The same lines counted per batch.
    let dir = tempfile::tempdir().unwrap();
    let per_batch = dir.path().join("per_batch.sql");
    std::fs::write(
        &per_batch,
        "SET batch_interval = '5 seconds';
         CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 10, seed = 7);
         CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines;
         CREATE STREAM counts AS SELECT word, count(*) AS n FROM words GROUP BY word;
         CREATE SINK show FROM counts WITH (connector = 'console', rows = 100);",
    )
    .unwrap();
    let o = run_simulated(6, &[], per_batch.to_str().unwrap());
    assert!(o.status.success(), "{}", stderr(&o));
    let per_batch: Vec<(i64, Vec<String>)> = batches(&stdout(&o));

    for (t, rows) in &windows {
        let mut expected: BTreeMap<String, i64> = BTreeMap::new();
        for (bt, counts) in &per_batch {
            if *bt <= *t && *bt > t - 20_000 {
                for (w, n) in counts.iter().map(|r| pair(r)) {
                    *expected.entry(w).or_default() += n;
                }
            }
        }
        let got: BTreeMap<String, i64> = rows
            .iter()
            .map(|r| {
                let (k, n) = pair(r);
                let (end, word) = k.split_once(',').expect("window_end,word");
                assert_eq!(end, format!("1970-01-01T00:00:{:02}", t / 1000));
                (word.to_string(), n)
            })
            .collect();
        assert_eq!(got, expected, "window at {t} ms");
        // Ordered by count, descending.
        let ns: Vec<i64> = rows.iter().map(|r| pair(r).1).collect();
        assert!(ns.windows(2).all(|w| w[0] >= w[1]), "{ns:?}");
    }
}

/// StateTracker1 (updateStateByKey): every batch prints every word's count
/// over the stream so far (10 lines of 2 words a batch), and saves it.
#[test]
fn state_tracker1_example_counts_every_word_so_far() {
    let out = repo_root().join("target/sql-examples/state_tracker1");
    let _ = std::fs::remove_dir_all(&out);
    let o = run_simulated(3, &[], "sql-examples/state_tracker1.sql");
    assert!(o.status.success(), "{}", stderr(&o));
    let got = batches(&stdout(&o));
    assert_eq!(
        got.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![5000, 10000, 15000]
    );
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for (i, (t, rows)) in got.iter().enumerate() {
        let counts = word_counts(rows);
        assert_eq!(
            counts.values().sum::<i64>(),
            20 * (i as i64 + 1),
            "batch {t}"
        );
        // A word's count never drops and no word disappears.
        for (w, n) in &last {
            assert!(counts.get(w).is_some_and(|m| m >= n), "{w} at {t}");
        }
        let saved = std::fs::read_to_string(out.join(format!("output-{t}/part-00000"))).unwrap();
        assert_eq!(
            saved.lines().collect::<Vec<_>>(),
            rows.iter().map(String::as_str).collect::<Vec<_>>()
        );
        last = counts;
    }
    // Run again to 5 batches: the checkpoint resumes after batch 3, with
    // the counts so far.
    let o = run_simulated(5, &[], "sql-examples/state_tracker1.sql");
    assert!(o.status.success(), "{}", stderr(&o));
    let resumed = batches(&stdout(&o));
    assert_eq!(
        resumed.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![20000, 25000]
    );
    for (i, (t, rows)) in resumed.iter().enumerate() {
        let counts = word_counts(rows);
        assert_eq!(
            counts.values().sum::<i64>(),
            20 * (i as i64 + 4),
            "batch {t}"
        );
        for (w, n) in &last {
            assert!(counts.get(w).is_some_and(|m| m >= n), "{w} at {t}");
        }
        last = counts;
    }
}

/// StateTracker2 (mapWithState + stateSnapshots): the snapshot holds every
/// word so far; the changes list only this batch's words, with the same
/// running counts.
#[test]
fn state_tracker2_example_changes_agree_with_snapshots() {
    let _ = std::fs::remove_dir_all(repo_root().join("target/sql-examples/state_tracker2"));
    let o = run_simulated(4, &[], "sql-examples/state_tracker2.sql");
    assert!(o.status.success(), "{}", stderr(&o));
    let got = batches(&stdout(&o));
    assert_eq!(got.len(), 8, "a snapshot and a change list per batch");
    for (i, pair_of) in got.chunks(2).enumerate() {
        let (snapshot, changes) = (&pair_of[0], &pair_of[1]);
        assert_eq!(snapshot.0, (i as i64 + 1) * 1000);
        let all = word_counts(&snapshot.1);
        assert_eq!(all.values().sum::<i64>(), 10 * (i as i64 + 1));
        assert!(!changes.1.is_empty() && changes.1.len() <= all.len());
        for (w, n) in changes.1.iter().map(|r| pair(r)) {
            assert_eq!(all.get(&w), Some(&n), "{w} at batch {}", i + 1);
        }
    }
}

/// `(word,n)` console rows as a map.
fn word_counts(rows: &[String]) -> BTreeMap<String, i64> {
    rows.iter().map(|r| pair(r)).collect()
}

#[test]
fn parquet_archive_example_writes_each_batch_to_its_own_file() {
    let dir = repo_root().join("target/sql-examples/parquet_archive/counts");
    let _ = std::fs::remove_dir_all(&dir);
    let o = run_simulated(3, &[], "sql-examples/parquet_archive.sql");
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = batches(&stdout(&o));
    assert_eq!(printed.len(), 3);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (time, rows) in &printed {
        let file = dir.join(format!("batch-{time}.parquet"));
        let read = runtime.block_on(async {
            let ctx = datafusion::prelude::SessionContext::new();
            ctx.read_parquet(file.to_str().unwrap(), Default::default())
                .await
                .unwrap()
                .collect()
                .await
                .unwrap()
        });
        let mut saved = BTreeMap::new();
        for b in &read {
            let words =
                arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
            let words = arrow::array::AsArray::as_string::<i32>(&words)
                .iter()
                .map(|w| w.unwrap().to_string());
            let counts =
                arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(b.column(1));
            for (w, n) in words.zip(counts.values().iter()) {
                saved.insert(w, *n);
            }
        }
        assert_eq!(saved, word_counts(rows), "batch {time}");
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "batch-1000.parquet",
            "batch-2000.parquet",
            "batch-3000.parquet"
        ],
        "no temporary files left"
    );
}

#[path = "../../sluice-connectors/tests/common/outside.rs"]
mod outside;
#[path = "../../sluice-connectors/tests/common/postgres_server.rs"]
mod postgres_server;

#[test]
fn postgres_example_keeps_running_totals_and_a_rerun_changes_nothing() {
    let Some(pg) = postgres_server::PgServer::start() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime.block_on(pg.client());
    runtime
        .block_on(
            client.batch_execute(
                "CREATE TABLE word_totals (word TEXT PRIMARY KEY, n BIGINT NOT NULL)",
            ),
        )
        .unwrap();
    // The example as shipped, pointed at this server.
    let shipped =
        std::fs::read_to_string(repo_root().join("sql-examples/postgres_word_count.sql")).unwrap();
    assert!(shipped.contains("postgres://sluice@127.0.0.1:5432/sluice"));
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        script.path(),
        shipped.replace("postgres://sluice@127.0.0.1:5432/sluice", &pg.url()),
    )
    .unwrap();
    let table = || -> BTreeMap<String, i64> {
        runtime
            .block_on(client.query("SELECT word, n FROM word_totals", &[]))
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    let o = run_simulated(3, &[], script.path().to_str().unwrap());
    assert!(o.status.success(), "{}", stderr(&o));
    // The table holds each word's latest total, as printed batch by batch.
    let mut expected = BTreeMap::new();
    for (_, rows) in batches(&stdout(&o)) {
        expected.extend(word_counts(&rows));
    }
    assert!(!expected.is_empty());
    assert_eq!(table(), expected);
    // The same batches again (as after a restart without a checkpoint):
    // upserts, so the table is unchanged.
    let again = run_simulated(3, &[], script.path().to_str().unwrap());
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(table(), expected);
    // A batch the table refuses stops the job, naming the sink and batch once.
    runtime
        .block_on(
            client.batch_execute(
                "ALTER TABLE word_totals ADD CONSTRAINT small CHECK (n < 2) NOT VALID",
            ),
        )
        .unwrap();
    let refused = run_simulated(3, &[], script.path().to_str().unwrap());
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert_eq!(
        err.matches("sink 'db', batch 1000 ms: ").count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("violates check constraint \"small\" (SQLSTATE 23514)")
            && err.contains("(nothing of this batch was committed)"),
        "{err}"
    );
    assert_eq!(table(), expected);
}
