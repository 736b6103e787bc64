//! Checkpoint positions: a source stopped after some batches and a new one
//! restored from its position cut, together, what one uninterrupted source
//! cuts (no gap, no duplicate); a position that does not fit is refused by
//! name. Sources that cannot resume say so.

mod common;

use std::path::Path;

use common::{source_of, text};
use datafusion::prelude::SessionContext;
use sluice_core::source::Source;

const CUTS: i64 = 6;
const STOP_AFTER: i64 = 2;

/// Rows of each of `CUTS` batches, `arrive(i)` called before batch i is cut.
/// With `restart`, the source is replaced after `STOP_AFTER` batches by a
/// new one restored from its position (and batch `STOP_AFTER`'s arrivals
/// happen while none runs).
async fn run(
    open: impl AsyncFn() -> Box<dyn Source>,
    arrive: impl Fn(i64),
    restart: bool,
) -> Vec<Vec<String>> {
    let mut s = open().await;
    let mut out = Vec::new();
    for i in 0..CUTS {
        if restart && i == STOP_AFTER {
            let position = s.position().expect("a position");
            // Through its text, as a manifest stores it.
            let position: serde_json::Value = serde_json::from_str(&position.to_string()).unwrap();
            drop(s);
            arrive(i);
            s = open().await;
            s.restore(&position).unwrap();
        } else {
            arrive(i);
        }
        out.push(text(&s.cut((i + 1) * 1000).await.unwrap()));
    }
    out
}

async fn resumes_exactly(
    connector: &str,
    pairs: impl Fn(&Path) -> Vec<(String, String)>,
    arrive: impl Fn(&Path, i64),
) {
    let session = SessionContext::new();
    let mut outputs = Vec::new();
    for restart in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let options = pairs(&d);
        let open = async || {
            let pairs: Vec<(&str, &str)> = options
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            source_of(&session, connector, None, &pairs).await.unwrap()
        };
        outputs.push(run(open, |i| arrive(&d, i), restart).await);
    }
    assert_eq!(
        outputs[0], outputs[1],
        "{connector}: restarted vs uninterrupted"
    );
    assert!(
        outputs[0].iter().filter(|b| !b.is_empty()).count() >= 3,
        "{connector}: the runs saw rows: {:?}",
        outputs[0]
    );
}

fn write(dir: &Path, name: &str, body: &str) {
    let tmp = dir.join(format!(".{name}"));
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(tmp, dir.join(name)).unwrap();
}

#[tokio::test]
async fn directory_replay_rate_words_and_constant_resume_exactly() {
    let path = |d: &Path| vec![("path".to_string(), d.display().to_string())];
    // directory: a file or two arrives before each batch; one was there
    // at the start.
    resumes_exactly(
        "directory",
        |d| {
            write(d, "at-start.txt", "old\n");
            path(d)
        },
        |d, i| {
            write(d, &format!("{i}-a.txt"), &format!("a{i}\n"));
            if i % 2 == 0 {
                write(d, &format!("{i}-b.txt"), &format!("b{i}\nb{i}'\n"));
            }
        },
    )
    .await;
    // replay: each file of the directory (there at the start) is a batch.
    resumes_exactly(
        "replay",
        |d| {
            for i in 0..CUTS - 1 {
                write(d, &format!("{i}.txt"), &format!("line {i}\n"));
            }
            path(d)
        },
        |_, _| {},
    )
    .await;
    // rate: the values go on counting.
    resumes_exactly(
        "rate",
        |_| vec![("rows_per_second".into(), "3".into())],
        |_, _| {},
    )
    .await;
    resumes_exactly("words", |_| vec![("seed".into(), "3".into())], |_, _| {}).await;
    resumes_exactly(
        "constant",
        |_| vec![("query".into(), "SELECT 1 AS one".into())],
        |_, _| {},
    )
    .await;
}

#[tokio::test]
async fn positions_that_do_not_fit_are_refused() {
    let session = SessionContext::new();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "only.txt", "x\n");
    let d = dir.path().display().to_string();
    let mut replay = source_of(&session, "replay", None, &[("path", &d)])
        .await
        .unwrap();
    let err = replay
        .restore(&serde_json::json!({ "files_taken": 2, "last": "gone.txt" }))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "replay source 'files': the file the checkpoint took last, gone.txt, is no longer in the directory"
    );
    // A file that sorts before the last one taken does not shift the
    // position: the restart goes on after the last one.
    write(dir.path(), "zz.txt", "after\n");
    let mut first = source_of(&session, "replay", None, &[("path", &d)])
        .await
        .unwrap();
    assert_eq!(text(&first.cut(1000).await.unwrap()), ["x"]);
    let position = first.position().unwrap();
    write(dir.path(), "aa.txt", "early\n");
    let mut again = source_of(&session, "replay", None, &[("path", &d)])
        .await
        .unwrap();
    again.restore(&position).unwrap();
    assert_eq!(text(&again.cut(2000).await.unwrap()), ["after"]);
    let mut directory = source_of(&session, "directory", None, &[("path", &d)])
        .await
        .unwrap();
    let err = directory
        .restore(&serde_json::json!({ "files": [] }))
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no list of taken files"), "{err}");
    let mut rate = source_of(&session, "rate", None, &[]).await.unwrap();
    assert!(
        rate.restore(&serde_json::json!({ "next_value": -1, "carry_millirows": 0 }))
            .is_err()
    );

    // The socket source cannot resume yet (its lines need a write-ahead log).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let socket = source_of(
        &session,
        "socket",
        None,
        &[("host", "127.0.0.1"), ("port", &port)],
    )
    .await
    .unwrap();
    assert!(socket.position().is_none());
}
