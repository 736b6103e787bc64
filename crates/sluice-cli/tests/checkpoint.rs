//! Checkpoints as a user meets them: a job killed with `kill -9` at random
//! moments and restarted writes what an uninterrupted run writes, windows
//! and keyed state included; script changes that keep the checkpoint and
//! those that cannot; damaged checkpoints.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{batches, stderr, stdout};

/// Every file under `dir`, by relative path, with its contents.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    walk(dir)
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(dir.join(&f)).unwrap();
            (f, text)
        })
        .collect()
}

/// Every file under `dir`, relative, with `/` separators.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

const CHECKPOINTED: &str = "
SET checkpoint = 'ck';
CREATE SOURCE files WITH (connector = 'replay', path = 'in');
CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM files;
CREATE STREAM counts AS SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY word;
CREATE SINK saved FROM counts WITH (connector = 'text', path = 'out/counts');
CREATE SINK show FROM words WITH (connector = 'console', rows = 100000);
";

/// A job directory: the script, 12 input files (one batch each).
fn checkpointed_job() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("job.sql"), CHECKPOINTED).unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    for f in 0..12 {
        // 40,000 words a batch: its console output (> 64 KiB) fills the
        // pipe, so a job whose output is not read blocks mid-batch.
        let lines: Vec<String> = (0..20_000)
            .map(|i| format!("w{} w{}", (i * (f + 1)) % 37, (i + f) % 11))
            .collect();
        std::fs::write(dir.path().join(format!("in/{f:02}.txt")), lines.join("\n")).unwrap();
    }
    dir
}

/// `sluice run --clock simulated --batches N job.sql` in `dir`.
fn sluice_in(dir: &Path, batches: u64) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
    c.args(["run", "--clock", "simulated", "--batches"])
        .arg(batches.to_string())
        .arg("job.sql")
        .current_dir(dir);
    c
}

#[test]
fn killed_at_random_and_restarted_the_output_is_an_uninterrupted_runs() {
    let whole = checkpointed_job();
    let o = sluice_in(whole.path(), 12).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = tree(&whole.path().join("out"));
    assert_eq!(
        expected.len(),
        24,
        "12 batches: part-00000 and _SUCCESS each"
    );

    // Console output is not read past the kill point, so the job blocks on
    // its pipe a batch or two later: the kill lands mid-run.
    for kill_after in [1i64, 4, 7, 10] {
        let job = checkpointed_job();
        let mut child = sluice_in(job.path(), 12)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        let mark = format!("Time: {} ms", kill_after * 1000);
        for line in lines.by_ref() {
            if line.unwrap() == mark {
                break;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the job ended before the kill (after batch {kill_after})"
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        drop(lines);
        let again = sluice_in(job.path(), 12).output().unwrap();
        assert!(again.status.success(), "{}", stderr(&again));
        // The restart went on from the batch being written at the kill (its
        // console sink had not finished, so it was not committed) or a later
        // one: it did not start over.
        let resumed_from = batches(&stdout(&again)).first().map(|b| b.0);
        assert!(
            resumed_from.is_some_and(|t| t >= kill_after * 1000),
            "killed after batch {kill_after}, resumed from {resumed_from:?}"
        );
        assert_eq!(
            tree(&job.path().join("out")),
            expected,
            "killed after batch {kill_after}"
        );
        // Run once more: the stream has had its 12 batches.
        let done = sluice_in(job.path(), 12).output().unwrap();
        assert!(done.status.success(), "{}", stderr(&done));
        assert_eq!(stdout(&done), "");
        assert!(
            stderr(&done).contains("resuming from the checkpoint after batch 12000 ms (12 batches done); --batches 12 are done already: nothing to run (remove the checkpoint directory to start over)"),
            "{}",
            stderr(&done)
        );
    }
}

#[test]
fn checkpoints_refuse_what_they_cannot_resume() {
    let job = checkpointed_job();
    // A source whose options changed does not take the old position.
    std::fs::write(job.path().join("job.sql"), CHECKPOINTED).unwrap();
    let o = sluice_in(job.path(), 2).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::rename(job.path().join("in"), job.path().join("input")).unwrap();
    std::fs::write(
        job.path().join("job.sql"),
        CHECKPOINTED.replace("path = 'in'", "path = 'input'"),
    )
    .unwrap();
    let o = sluice_in(job.path(), 12).output().unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("checkpoint ck: source 'files' was replay WITH (connector = 'replay', path = 'in') and is now replay WITH (connector = 'replay', path = 'input'); its position does not apply; to start from scratch instead, remove or rename the checkpoint directory ck"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(job.path().join("ck")).unwrap();
    std::fs::remove_dir_all(job.path().join("out")).unwrap();
    std::fs::rename(job.path().join("input"), job.path().join("in")).unwrap();
    // A damaged manifest stops the job before anything runs.
    std::fs::write(job.path().join("job.sql"), CHECKPOINTED).unwrap();
    std::fs::create_dir_all(job.path().join("ck")).unwrap();
    std::fs::write(
        job.path().join("ck/manifest-00000000000000003000.json"),
        "{\"vers",
    )
    .unwrap();
    let o = sluice_in(job.path(), 12).output().unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("checkpoint ck: manifest-00000000000000003000.json is damaged"),
        "{}",
        stderr(&o)
    );
    assert!(!job.path().join("out").exists(), "nothing ran");
}

/// Windows (incremental, recomputed, sliding), running totals with
/// `EMIT CHANGES` and a timeout, and `EMIT SNAPSHOT`, each into a
/// batch-named text sink; keyed state saved whole every 3 batches.
const STATEFUL: &str = "
SET checkpoint = 'ck';
SET checkpoint_interval = '3 seconds';
CREATE SOURCE files WITH (connector = 'replay', path = 'in');
CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM files;
CREATE STREAM recent AS
  SELECT word, count(*) AS n FROM window(words, '3 seconds', '1 second') GROUP BY word ORDER BY word;
CREATE STREAM longer AS
  SELECT word, count(*) AS n, max(length(word)) AS longest
  FROM window(words, '4 seconds', '2 seconds') GROUP BY word ORDER BY word;
CREATE STREAM kinds AS SELECT count(DISTINCT word) AS kinds FROM window(words, '5 seconds', '1 second');
CREATE STREAM totals WITH (state_timeout = '3 seconds') AS
  SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY word EMIT CHANGES;
CREATE STREAM everything AS
  SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY word EMIT SNAPSHOT;
CREATE SINK a FROM recent WITH (connector = 'text', path = 'out/recent');
CREATE SINK b FROM longer WITH (connector = 'text', path = 'out/longer');
CREATE SINK c FROM kinds WITH (connector = 'text', path = 'out/kinds');
CREATE SINK d FROM totals WITH (connector = 'text', path = 'out/totals');
CREATE SINK e FROM everything WITH (connector = 'text', path = 'out/everything');
";

/// A job directory with `script` and 12 replay files whose words come and
/// go (so keys time out, leave windows and come back).
fn stateful_job(script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("job.sql"), script).unwrap();
    std::fs::create_dir(dir.path().join("in")).unwrap();
    for f in 0..12u64 {
        let lines: Vec<String> = (0..300u64)
            .map(|i| format!("w{} v{}", f * 2 + i % 5 + (i % 7) / 3, (i + f * 7) % 13))
            .collect();
        std::fs::write(dir.path().join(format!("in/{f:02}.txt")), lines.join("\n")).unwrap();
    }
    dir
}

/// A small deterministic random number source (no dependency).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// Runs the job in `dir` to its end through up to four `kill -9`s after
/// random delays up to `within`; returns how many landed mid-run after a
/// first commit.
fn run_through_kills(dir: &Path, batches: u64, rng: &mut Lcg, within: Duration) -> usize {
    let (mut kills, mut attempts) = (0, 0);
    while attempts < 4 {
        let mut child = sluice_in(dir, batches)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = Duration::from_micros(rng.below(within.as_micros() as u64));
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "the job failed after {kills} kills");
                return kills;
            }
            None => {
                // Only kills after a batch was committed count: one before
                // tests a fresh start, not a resume.
                let committed = dir.join("ck").exists()
                    && walk(&dir.join("ck"))
                        .iter()
                        .any(|f| f.starts_with("manifest-"));
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += usize::from(committed);
                attempts += 1;
            }
        }
    }
    let last = sluice_in(dir, batches).output().unwrap();
    assert!(last.status.success(), "{}", stderr(&last));
    kills
}

#[test]
fn stateful_jobs_killed_at_random_resume_exactly() {
    let whole = stateful_job(STATEFUL);
    let started = Instant::now();
    let o = sluice_in(whole.path(), 12).output().unwrap();
    let duration = started.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = tree(&whole.path().join("out"));
    // recent, kinds, totals, everything: 12 batches; longer: 6 slides.
    assert_eq!(expected.len(), 2 * (4 * 12 + 6), "{:?}", expected.keys());
    assert!(
        expected
            .iter()
            .any(|(f, rows)| f.starts_with("totals-") && rows.contains(",true)")),
        "keys timed out"
    );
    let data = whole.path().join("ck/data");
    for kind in ["input/words/", "everything/full-", "everything/delta-"] {
        assert!(
            walk(&data).iter().any(|f| f.contains(kind)),
            "{kind} files in {:?}",
            walk(&data)
        );
    }

    // What the checkpoint holds, as `sluice checkpoint inspect` tells it.
    let inspect = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["checkpoint", "inspect", "ck"])
        .current_dir(whole.path())
        .output()
        .unwrap();
    assert!(inspect.status.success(), "{}", stderr(&inspect));
    let report = stdout(&inspect);
    for line in [
        "last completed batch: 12000 ms (12 batches since the stream's first)",
        "  files: replay WITH (connector = 'replay', path = 'in')",
        "  recent: 3 part(s), 1800 rows,",
        "    window: window(words, '3 seconds', '1 second')",
        "    input at 12000 ms: 600 rows,",
        "    full at 10000 ms: ",
        "    delta at 12000 ms: ",
    ] {
        assert!(report.contains(line), "{line:?} not in:\n{report}");
    }

    let mut rng = Lcg(42);
    let mut landed = 0;
    for round in 0..20 {
        let job = stateful_job(STATEFUL);
        landed += run_through_kills(job.path(), 12, &mut rng, duration);
        assert_eq!(
            tree(&job.path().join("out")),
            expected,
            "round {round}: the output differs from an uninterrupted run's"
        );
    }
    assert!(landed >= 10, "only {landed} kills landed mid-run");
}

#[test]
fn script_changes_keep_state_or_are_refused_by_name() {
    let whole = stateful_job(STATEFUL);
    let o = sluice_in(whole.path(), 8).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = tree(&whole.path().join("out"));

    // Four batches, then a new stream and sink, and a changed stateless
    // stream (same words): the state carries on.
    let job = stateful_job(STATEFUL);
    let o = sluice_in(job.path(), 4).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let changed = STATEFUL
        .replace(
            "AS word FROM files;",
            "AS word FROM files WHERE value IS NOT NULL;\nCREATE STREAM loud AS SELECT upper(word) AS w FROM words;\nCREATE SINK f FROM loud WITH (connector = 'text', path = 'extra/loud');",
        );
    std::fs::write(job.path().join("job.sql"), &changed).unwrap();
    let o = sluice_in(job.path(), 8).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(tree(&job.path().join("out")), expected);
    assert_eq!(
        walk(&job.path().join("extra")).len(),
        8,
        "the new sink saw batches 5 to 8: {:?}",
        walk(&job.path().join("extra"))
    );

    // What cannot go on from the saved state is refused by name.
    let refused = [
        (
            STATEFUL.replace(
                "SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY word EMIT SNAPSHOT",
                "SELECT lower(word) AS word, count(*) AS n FROM words GROUP BY lower(word) ORDER BY word EMIT SNAPSHOT",
            ),
            "stream 'everything' keeps state, and its key changed from `words.word` to `lower(words.word)`",
        ),
        (
            STATEFUL.replace(
                "SELECT word, count(*) AS n FROM words GROUP BY word ORDER BY word EMIT SNAPSHOT",
                "SELECT word, max(word) AS n FROM words GROUP BY word ORDER BY word EMIT SNAPSHOT",
            ),
            "stream 'everything' keeps state, and its aggregates changed from `count(Int64(1))` to `max(words.word)`",
        ),
        (
            STATEFUL.replace("window(words, '3 seconds', '1 second')", "window(words, '2 seconds', '1 second')"),
            "stream 'recent' keeps state, and its window changed from `window(words, '3 seconds', '1 second')` to `window(words, '2 seconds', '1 second')`",
        ),
    ];
    for (script, message) in refused {
        std::fs::write(job.path().join("job.sql"), &script).unwrap();
        let o = sluice_in(job.path(), 12).output().unwrap();
        assert!(!o.status.success(), "{message}");
        assert!(
            stderr(&o).contains(message)
                && stderr(&o).contains(
                    "to start from scratch instead, remove or rename the checkpoint directory ck"
                ),
            "wanted {message:?} in:\n{}",
            stderr(&o)
        );
    }

    // A data file the last manifest needs (the newest input) is gone:
    // refused, naming it.
    let gone = walk(&job.path().join("ck/data"))
        .into_iter()
        .rev()
        .find(|f| f.starts_with("input/words/"))
        .unwrap();
    std::fs::remove_file(job.path().join("ck/data").join(&gone)).unwrap();
    std::fs::write(job.path().join("job.sql"), STATEFUL).unwrap();
    let o = sluice_in(job.path(), 12).output().unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("needs data/{gone}, which is missing")),
        "{}",
        stderr(&o)
    );
}

/// Lines `line-<n>` under `dir` (the csv sink's files), in batch order.
fn received_lines(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut files = walk(dir);
    files.sort_by_key(|f| {
        f.trim_start_matches("batch-")
            .trim_end_matches(".csv")
            .parse::<i64>()
            .unwrap_or(i64::MAX)
    });
    files
        .iter()
        .filter(|f| f.ends_with(".csv"))
        .flat_map(|f| {
            std::fs::read_to_string(dir.join(f))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("line-"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Lines in the socket source's write-ahead log (open and cut segments).
fn logged_lines(dir: &Path) -> Vec<String> {
    walk(dir)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(dir.join(f))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_socket_job_killed_mid_receipt_loses_and_repeats_no_logged_line() {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    const LINES: u64 = 4000;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    // Sends line-1 .. line-4000, a few at a time, to whoever connects; a
    // line written to a connection that breaks is lost (never read).
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            loop {
                let n = counter.load(Ordering::SeqCst);
                if n >= LINES {
                    std::thread::sleep(Duration::from_millis(20));
                    if conn.write_all(b"").is_err() {
                        break;
                    }
                    continue;
                }
                let batch: String = (n + 1..=(n + 5).min(LINES))
                    .map(|i| format!("line-{i}\n"))
                    .collect();
                if conn.write_all(batch.as_bytes()).is_err() {
                    break;
                }
                counter.store((n + 5).min(LINES), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.sql"),
        format!(
            "SET checkpoint = 'ck';
CREATE SOURCE lines WITH (connector = 'socket', host = '127.0.0.1', port = {port});
CREATE SINK saved FROM lines WITH (connector = 'csv', path = 'out');"
        ),
    )
    .unwrap();
    let start = || {
        sluice_in(dir.path(), 1_000_000)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sent.load(Ordering::SeqCst) < LINES / 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    first.kill().unwrap(); // SIGKILL, mid-receipt
    first.wait().unwrap();
    assert!(
        sent.load(Ordering::SeqCst) < LINES,
        "killed before all was sent"
    );
    // What the source had read: in the log or already written out.
    let mut acknowledged = logged_lines(&dir.path().join("ck/wal/lines"));
    acknowledged.extend(received_lines(&dir.path().join("out")));
    assert!(!acknowledged.is_empty(), "nothing was read before the kill");

    let mut second = start();
    let last = format!("line-{LINES}");
    while !received_lines(&dir.path().join("out")).contains(&last) {
        assert!(Instant::now() < deadline, "the last line never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    second.kill().unwrap();
    second.wait().unwrap();

    let out = received_lines(&dir.path().join("out"));
    let mut seen = std::collections::HashSet::new();
    for l in &out {
        assert!(seen.insert(l), "{l} was written twice");
    }
    for l in &acknowledged {
        assert!(
            seen.contains(l),
            "{l} was read before the kill and then lost"
        );
    }
    // In order: each connection's lines arrive in the order sent.
    let numbers: Vec<u64> = out
        .iter()
        .map(|l| l["line-".len()..].parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "out of order");
}

/// The newest `manifest-<ms>.json` in `ck`, as a batch time.
fn last_manifest(ck: &Path) -> Option<i64> {
    walk(ck)
        .iter()
        .filter_map(|f| {
            f.strip_prefix("manifest-")?
                .strip_suffix(".json")?
                .parse()
                .ok()
        })
        .max()
}

#[test]
fn ctrl_c_commits_the_batch_in_progress_and_a_restart_goes_on() {
    const BATCHES: u64 = 300;
    let whole = stateful_job(STATEFUL);
    let o = sluice_in(whole.path(), BATCHES).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = tree(&whole.path().join("out"));

    let job = stateful_job(STATEFUL);
    let mut child = sluice_in(job.path(), BATCHES)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ck = job.path().join("ck");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(ck.exists() && last_manifest(&ck).is_some_and(|t| t >= 20_000)) {
        assert!(Instant::now() < deadline, "no batch committed");
        std::thread::sleep(Duration::from_millis(5));
    }
    let interrupt = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    assert!(child.wait().unwrap().success(), "a graceful stop exits 0");
    // The last batch written is the last committed one.
    let stopped_at = last_manifest(&ck).unwrap();
    assert!(
        stopped_at < BATCHES as i64 * 1000,
        "stopped before the end, at {stopped_at}"
    );
    let last_written = walk(&job.path().join("out"))
        .iter()
        .filter_map(|f| {
            f.strip_prefix("everything-")?
                .split('/')
                .next()?
                .parse::<i64>()
                .ok()
        })
        .max();
    assert_eq!(last_written, Some(stopped_at));

    let again = sluice_in(job.path(), BATCHES).output().unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(tree(&job.path().join("out")), expected);
}

/// Copies the files under `from` into `to` (made as needed).
fn copy_tree(from: &Path, to: &Path) {
    for f in walk(from) {
        let target = to.join(&f);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&f), target).unwrap();
    }
}

/// Upgrade: a checkpoint an earlier sluice wrote (manifest format 1, the
/// stateful job after 6 batches, kept in `tests/data/checkpoint-v1` with
/// its script and input) resumes in this one: batches 7 to 12 are what an
/// uninterrupted run of this version writes.
#[test]
fn a_checkpoint_written_by_an_earlier_version_resumes() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/checkpoint-v1");
    let whole = tempfile::tempdir().unwrap();
    copy_tree(&fixture, whole.path());
    std::fs::remove_dir_all(whole.path().join("ck")).unwrap();
    let o = sluice_in(whole.path(), 12).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let expected: BTreeMap<String, String> = tree(&whole.path().join("out"))
        .into_iter()
        .filter(|(f, _)| {
            let t: i64 = f
                .split('/')
                .next()
                .and_then(|d| d.rsplit('-').next())
                .and_then(|t| t.parse().ok())
                .unwrap();
            t > 6000
        })
        .collect();
    assert_eq!(expected.len(), 2 * (4 * 6 + 3), "{:?}", expected.keys());

    let job = tempfile::tempdir().unwrap();
    copy_tree(&fixture, job.path());
    let o = sluice_in(job.path(), 12).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("resuming from the checkpoint after batch 6000 ms (6 batches done)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(tree(&job.path().join("out")), expected);
}
