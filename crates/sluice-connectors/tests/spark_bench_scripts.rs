//! The sluice side of the Spark side-by-side bench (`benches/spark/*.sql`),
//! run as shipped on small random input files and checked, batch by batch,
//! against a naive recomputation: word counts, the 30-batch window, the
//! running-count digest and the blacklist join. The bench itself compares
//! these outputs with Spark's; this keeps the scripts, and the word count's
//! fast paths (one-pass `string_to_array`, the zero-copy unnest, in-place
//! lines), right in every `cargo test`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use datafusion::prelude::SessionContext;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_core::{ClockChoice, StreamingContext};

const WORDS: [&str; 6] = ["a", "bb", "ccc", "é", "spark", "w1"];

fn script(name: &str) -> String {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../benches/spark/{name}.sql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `batches` files of random lines (empty lines and double spaces
/// included) under `dir`, and returns their lines.
fn write_batches(dir: &Path, batches: usize, rng: &mut StdRng) -> Vec<Vec<String>> {
    std::fs::create_dir_all(dir).unwrap();
    (1..=batches)
        .map(|i| {
            let lines: Vec<String> = (0..rng.random_range(0..25))
                .map(|_| {
                    let words: Vec<&str> = (0..rng.random_range(0..4))
                        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
                        .collect();
                    let gap = if rng.random_range(0..10) == 0 {
                        "  "
                    } else {
                        " "
                    };
                    words.join(gap)
                })
                .collect();
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(dir.join(format!("batch-{i:04}.txt")), text).unwrap();
            lines
        })
        .collect()
}

/// Runs a bench script on `data` for `batches` one-second batches.
async fn run(name: &str, data: &Path, out: &Path, extra: &[(&str, &Path)], batches: usize) {
    let mut sql = script(name)
        .replace("{data}", &data.to_string_lossy())
        .replace("{out}", &out.to_string_lossy());
    for (key, path) in extra {
        sql = sql.replace(key, &path.to_string_lossy());
    }
    let ssc = StreamingContext::with_registry(
        SessionContext::new(),
        Duration::from_secs(1),
        sluice_connectors::registry(),
    );
    ssc.sql(&sql).await.unwrap();
    ssc.set_clock(ClockChoice::Simulated);
    ssc.set_max_batches(batches as u64);
    ssc.start().await.unwrap();
    ssc.await_termination().await.unwrap();
}

/// Each batch's output lines, sorted, in batch order.
fn outputs(out: &Path) -> Vec<Vec<String>> {
    let mut dirs: Vec<(i64, PathBuf)> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let ms = p
                .file_name()?
                .to_str()?
                .strip_prefix("batch-")?
                .parse()
                .ok()?;
            Some((ms, p))
        })
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|(_, dir)| {
            let text = std::fs::read_to_string(dir.join("part-00000")).unwrap();
            let mut rows: Vec<String> = text.lines().map(str::to_string).collect();
            rows.sort();
            rows
        })
        .collect()
}

/// A line's words as `string_to_array(line, ' ')` splits them: an empty line
/// has none (Spark's `split(" ")` would give one empty word).
fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split(' ').filter(move |_| !line.is_empty())
}

fn counts_text(counts: &HashMap<&str, i64>) -> Vec<String> {
    let mut rows: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(w, n)| format!("({w},{n})"))
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_and_window_scripts_agree_with_a_naive_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(41);
    let batches = 36;
    let input = write_batches(&dir.path().join("data"), batches, &mut rng);

    let out = dir.path().join("wordcount");
    run("wordcount", &dir.path().join("data"), &out, &[], batches).await;
    let got = outputs(&out);
    assert_eq!(got.len(), batches);
    for (i, lines) in input.iter().enumerate() {
        let mut counts = HashMap::new();
        for word in lines.iter().flat_map(|l| words(l)) {
            *counts.entry(word).or_insert(0) += 1;
        }
        assert_eq!(got[i], counts_text(&counts), "word count, batch {}", i + 1);
    }

    let out = dir.path().join("window");
    run("window", &dir.path().join("data"), &out, &[], batches).await;
    let got = outputs(&out);
    assert_eq!(got.len(), batches);
    for i in 0..batches {
        let mut counts = HashMap::new();
        for lines in &input[i.saturating_sub(29)..=i] {
            for word in lines.iter().flat_map(|l| words(l)) {
                *counts.entry(word).or_insert(0) += 1;
            }
        }
        assert_eq!(got[i], counts_text(&counts), "window, batch {}", i + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_blacklist_scripts_agree_with_a_naive_recomputation() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(43);
    let batches = 6;

    // Running count per key: (keys, sum of counts, sum of key * count).
    let data = dir.path().join("keys");
    std::fs::create_dir_all(&data).unwrap();
    let mut state: BTreeMap<i64, i64> = BTreeMap::new();
    let mut want = Vec::new();
    for i in 1..=batches {
        let keys: Vec<i64> = (0..rng.random_range(1..50))
            .map(|_| rng.random_range(0..40))
            .collect();
        let text: String = keys.iter().map(|k| format!("{k}\n")).collect();
        std::fs::write(data.join(format!("batch-{i:04}.txt")), text).unwrap();
        for k in keys {
            *state.entry(k).or_insert(0) += 1;
        }
        let total: i64 = state.values().sum();
        let checksum: i64 = state.iter().map(|(k, n)| k * n).sum();
        want.push(vec![format!("({},{total},{checksum})", state.len())]);
    }
    let out = dir.path().join("state");
    run("state", &data, &out, &[], batches).await;
    assert_eq!(outputs(&out), want);

    // The blacklist: lines "i word", dropped when their word is flagged true.
    let blacklist = dir.path().join("blacklist.csv");
    std::fs::write(&blacklist, "spark,true\nbb,false\nccc,true\n").unwrap();
    let data = dir.path().join("lines");
    std::fs::create_dir_all(&data).unwrap();
    let mut want = Vec::new();
    for i in 1..=batches {
        let lines: Vec<String> = (0..rng.random_range(0..30))
            .map(|n| format!("{n} {}", WORDS[rng.random_range(0..WORDS.len())]))
            .collect();
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(data.join(format!("batch-{i:04}.txt")), text).unwrap();
        let mut kept: Vec<String> = lines
            .into_iter()
            .filter(|l| !l.ends_with(" spark") && !l.ends_with(" ccc"))
            .collect();
        kept.sort();
        want.push(kept);
    }
    let out = dir.path().join("blacklist");
    run(
        "blacklist",
        &data,
        &out,
        &[("{blacklist}", &blacklist)],
        batches,
    )
    .await;
    assert_eq!(outputs(&out), want);
}
