//! The REPL as a person uses it, in a real terminal (tmux): a statement
//! typed over two lines, Tab completing a source's name, `\status`, the job
//! starting with its sink and printing batches, `SHOW BATCHES`, `DESCRIBE`,
//! an error that leaves the session going, `\q`, and the history kept; a
//! live `SELECT` ended by Ctrl-C, and one ended by its LIMIT.
//!
//! Needs tmux (`.ci/run` installs it and sets `SLUICE_TTY_TESTS=required`);
//! elsewhere the test is skipped with a message.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-200", "-t", "repl"])
    }

    fn keys(&self, keys: &[&str]) {
        self.run(&[&["send-keys", "-t", "repl"][..], keys].concat());
    }

    /// Types `text` literally, then the named keys. (A `;` goes as its
    /// code: tmux reads an argument's trailing `;` as a command separator.)
    fn type_line(&self, text: &str, then: &[&str]) {
        for (i, part) in text.split(';').enumerate() {
            if i > 0 {
                self.run(&["send-keys", "-t", "repl", "-H", "3b"]);
            }
            if !part.is_empty() {
                self.run(&["send-keys", "-t", "repl", "-l", part]);
            }
        }
        if !then.is_empty() {
            self.keys(then);
        }
    }

    /// Waits until the screen shows `text` `times` times.
    fn wait_for(&self, text: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= times {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no '{text}' (x{times}) on the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn has_tmux() -> bool {
    let has = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        assert!(
            std::env::var("SLUICE_TTY_TESTS").as_deref() != Ok("required"),
            "SLUICE_TTY_TESTS=required but tmux is missing"
        );
        eprintln!("skipped: tmux is not installed");
    }
    has
}

/// `sluice` with `flags` in a new tmux session, its history under `home`.
fn start(name: &str, home: &Path, flags: &str) -> Tmux {
    let tmux = Tmux {
        socket: format!("sluice-{name}-{}", std::process::id()),
    };
    let command = format!(
        "cd {} && env XDG_DATA_HOME={} {} {flags}",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../.."),
        home.display(),
        env!("CARGO_BIN_EXE_sluice")
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "repl",
        "-x",
        "200",
        "-y",
        "60",
        &command,
    ]);
    tmux.wait_for("sluice> ", 1);
    tmux
}

/// Quits with \q and waits for the session to end.
fn quit(tmux: &Tmux) {
    tmux.type_line("\\q", &["Enter"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tmux.run(&["list-sessions"]).contains("repl:") {
        assert!(Instant::now() < deadline, "\\q did not end the session");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A live SELECT over a running job (real time, 100 ms batches): Ctrl-C ends
/// the watch, not the session or the job; LIMIT ends one by itself.
#[test]
fn watching_a_stream_until_ctrl_c() {
    if !has_tmux() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let tmux = start("watch", home.path(), "");
    tmux.type_line(
        "SET batch_interval = '100 ms'; CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 2, seed = 3);",
        &["Enter"],
    );
    tmux.wait_for("source lines", 1);
    tmux.type_line("SELECT upper(value) AS shout FROM lines;", &["Enter"]);
    tmux.wait_for("watching (Ctrl-C to stop", 1);
    tmux.wait_for("| shout", 2);
    tmux.keys(&["C-c"]);
    // Back at the prompt, the job still running.
    tmux.type_line("\\status", &["Enter"]);
    tmux.wait_for("job running;", 1);
    // A watch that fails when run ends itself, not the job.
    tmux.type_line("SELECT CAST(value AS INT) AS x FROM lines;", &["Enter"]);
    tmux.wait_for("error: the watch failed (the job goes on)", 1);
    tmux.type_line("\\status", &["Enter"]);
    tmux.wait_for("job running;", 2);
    tmux.type_line("SELECT value FROM lines LIMIT 3;", &["Enter"]);
    tmux.wait_for("watching (Ctrl-C to stop", 2);
    // It ends by itself: a prompt comes back after its rows.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let screen = tmux.screen();
        let after = screen.rsplit("| value").next().unwrap_or_default();
        if screen.contains("| value") && after.contains("sluice> ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "LIMIT 3 did not end the watch:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    quit(&tmux);
}

#[test]
fn a_session_in_a_terminal() {
    if !has_tmux() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let tmux = start("session", home.path(), "--clock simulated --batches 3");

    tmux.type_line(
        "CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 2, seed = 1);",
        &["Enter"],
    );
    tmux.wait_for("source lines", 1);

    // Two lines: the first has no ';', so the editor asks for more.
    tmux.type_line("CREATE STREAM words AS", &["Enter"]);
    tmux.type_line(
        "SELECT unnest(string_to_array(value, ' ')) AS word FROM lin",
        &["Tab"],
    );
    tmux.wait_for("FROM lines", 1);
    tmux.type_line(";", &["Enter"]);
    tmux.wait_for("stream words", 1);

    tmux.type_line("\\status", &["Enter"]);
    tmux.wait_for(
        "job defined, not started (it starts with the first sink); 0 batches",
        1,
    );

    // An error names its place and the session goes on.
    tmux.type_line("CREATE STREAM bad AS SELECT wrd FROM words;", &["Enter"]);
    tmux.wait_for("No field named wrd", 1);

    tmux.type_line(
        "CREATE SINK out FROM words WITH (connector = 'console', rows = 2);",
        &["Enter"],
    );
    tmux.wait_for("Time: ", 3);

    tmux.type_line("SHOW BATCHES;", &["Enter"]);
    let screen = tmux.wait_for("scheduling_delay_ms", 1);
    for t in ["1000", "2000", "3000"] {
        assert!(
            screen.lines().any(|l| l.starts_with(&format!("| {t} "))),
            "batch {t}:\n{screen}"
        );
    }
    tmux.type_line("DESCRIBE words;", &["Enter"]);
    tmux.wait_for("| read by    | out", 1);

    // A watch after the job's last batch says so and returns.
    tmux.type_line("SELECT word FROM words;", &["Enter"]);
    tmux.wait_for("the job has stopped", 1);
    tmux.type_line("\\status", &["Enter"]);
    tmux.wait_for("job stopped; 3 batches", 1);

    quit(&tmux);
    let history = std::fs::read_to_string(home.path().join("sluice/history")).unwrap();
    assert!(history.contains("CREATE STREAM words AS"), "{history}");
}
