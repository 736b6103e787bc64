//! The status page as a person opens it: the real `sluice` REPL with `--ui`
//! runs the seed's word count; headless Chromium (Debian's `chromium`) loads
//! the page, whose four charts must have a point per batch and whose graph
//! must show the job; a screenshot is saved. The JSON the page reads is
//! checked too.
//!
//! Needs `/usr/bin/chromium` (`.ci/run` installs it and sets
//! `SLUICE_BROWSER_TESTS=required`); elsewhere the browser part is skipped
//! with a message.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BATCHES: u64 = 5;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

fn chromium(args: &[&str], profile: &Path) -> std::process::Output {
    // A hung browser must not hang the suite.
    Command::new("timeout")
        .args(["120", "/usr/bin/chromium"])
        .args([
            "--headless",
            "--disable-dev-shm-usage",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs")
}

#[test]
fn status_page_of_the_word_count_in_a_real_browser() {
    let port = free_port();
    let mut repl = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["--ui", &format!("127.0.0.1:{port}"), "--clock", "simulated"])
        .args(["--batches", &BATCHES.to_string()])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = repl.stdin.take().unwrap();
    // Drain the console sink's output so the REPL never blocks on a full pipe.
    let mut stdout = repl.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    writeln!(
        stdin,
        "SET batch_interval = '1 second';
         CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 10, seed = 7);
         CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines;
         CREATE STREAM counts AS SELECT word, count(*) AS n FROM words GROUP BY word;
         CREATE SINK out FROM counts WITH (connector = 'console');"
    )
    .unwrap();

    // The job runs its batches; the REPL (and the page) stay up.
    let deadline = Instant::now() + Duration::from_secs(60);
    let api = loop {
        if let Some(body) = get(port, "/api/batches") {
            let api: serde_json::Value = serde_json::from_str(&body).unwrap();
            if api["completed"] == BATCHES {
                break api;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the job did not finish its batches"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let batches = api["batches"].as_array().unwrap();
    assert_eq!(batches.len() as u64, BATCHES);
    // 10 lines a batch from the words generator.
    assert!(batches.iter().all(|b| b["total_input_rows"] == 10), "{api}");

    let browser = Path::new("/usr/bin/chromium").exists();
    let required = std::env::var("SLUICE_BROWSER_TESTS").as_deref() == Ok("required");
    if browser {
        let profile = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{port}/");
        let dom = chromium(&["--dump-dom", &url], profile.path());
        let dom = String::from_utf8_lossy(&dom.stdout).to_string();
        for chart in [
            "input-rate",
            "scheduling-delay",
            "processing-time",
            "total-delay",
        ] {
            let want = format!("id=\"{chart}\" class=\"timeline\" data-points=\"{BATCHES}\"");
            assert!(dom.contains(&want), "no '{want}' in the page:\n{dom}");
        }
        // The input rate's average: 10 rows a 1-second batch.
        assert!(
            dom.contains("id=\"input-rate-avg\" data-average=\"10\""),
            "{dom}"
        );
        for node in [
            "source\" data-name=\"lines",
            "stream\" data-name=\"words",
            "stream\" data-name=\"counts",
            "sink\" data-name=\"out",
        ] {
            assert!(
                dom.contains(&format!("class=\"node {node}\"")),
                "no node {node} in:\n{dom}"
            );
        }
        assert!(
            dom.contains(&format!("{BATCHES} batches completed")),
            "{dom}"
        );
        let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
        let _ = std::fs::remove_file(&shot);
        chromium(
            &[
                "--window-size=1200,1100",
                &format!("--screenshot={}", shot.display()),
                &url,
            ],
            profile.path(),
        );
        let png = std::fs::read(&shot).expect("a screenshot");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{} bytes",
            png.len()
        );
        eprintln!("status page screenshot: {}", shot.display());
    } else {
        assert!(
            !required,
            "SLUICE_BROWSER_TESTS=required but /usr/bin/chromium is missing"
        );
        eprintln!("skipped the browser part: /usr/bin/chromium is not installed");
    }

    writeln!(stdin, "\\q").unwrap();
    drop(stdin);
    let status = repl.wait().unwrap();
    let printed = printed.join().unwrap();
    assert!(status.success(), "{printed}");
    assert_eq!(
        printed.matches("Time: ").count() as u64,
        BATCHES,
        "{printed}"
    );
}
