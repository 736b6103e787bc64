//! The interactive REPL: statements end with `;` and may span lines; the job
//! starts in the background once a sink exists. Tab completes, history is
//! kept in the user's data directory, backslash commands answer at once.

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};
use sluice_core::sluice_sql::SluiceStatement;
use sluice_core::watch::Watch;
use sluice_core::{StatementOutput, StreamingContext};

use crate::RunFlags;
use crate::helper::{ReplHelper, is_complete};
use crate::runner::{new_context, print_output, start_ui};

const HELP: &str =
    "Statements end with ';' and may span lines. CREATE SOURCE / CREATE STREAM ... AS SELECT /
CREATE SINK define the job; it starts once a sink exists. SELECT over static tables answers at once.
SHOW STREAMS | SOURCES | SINKS | TABLES | BATCHES, DESCRIBE <name>, EXPLAIN <stream>.
  \\d          sources, streams, sinks and tables
  \\d NAME     describe NAME
  \\status     the job in one line
  \\ui ADDR    serve the status page on ADDR (e.g. 127.0.0.1:4040)
  \\q          quit
  \\?          this help
Tab completes keywords and names.";

/// `$XDG_DATA_HOME/sluice/history`, else `~/.local/share/sluice/history`.
fn history_path() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".local/share"))
        })?;
    let dir = base.join("sluice");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}

/// Says so when the job stops on an error (the session goes on; the REPL
/// must be restarted to run a job again).
struct JobErrors;

impl sluice_core::StreamingListener for JobErrors {
    fn on_error(&self, error: &sluice_core::SluiceError) {
        eprintln!(
            "error: the job stopped: {error}\n(streams and sinks no longer run; restart sluice to run the job again)"
        );
    }
}

pub async fn run(flags: &RunFlags) -> Result<(), String> {
    let ssc = new_context(flags);
    ssc.add_listener(std::sync::Arc::new(JobErrors));
    start_ui(&ssc, flags).await?;
    let helper = ReplHelper::default();
    // Tab completes the common prefix, a second Tab lists (as in bash, psql).
    let config = Config::builder()
        .auto_add_history(false)
        .completion_type(CompletionType::List)
        .build();
    let mut editor: Editor<ReplHelper, DefaultHistory> =
        Editor::with_config(config).map_err(|e| e.to_string())?;
    editor.set_helper(Some(helper.clone()));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    helper.set_words(ssc.completion_words().await);
    println!(
        "sluice {} — type \\? for help, \\q to quit",
        env!("CARGO_PKG_VERSION")
    );
    let mut ui_started = flags.ui.is_some();
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "sluice> "
        } else {
            "   ...> "
        };
        let line = match editor.readline(prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.to_string()),
        };
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            match backslash(&ssc, trimmed, &mut ui_started).await {
                Command::Quit => break,
                Command::Done => {}
            }
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !is_complete(&buffer) {
            continue;
        }
        let statements = std::mem::take(&mut buffer);
        let _ = editor.add_history_entry(statements.trim());
        if let Some(h) = &history {
            let _ = editor.save_history(h);
        }
        run_statements(&ssc, &statements).await;
        helper.set_words(ssc.completion_words().await);
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    let _ = ssc.stop(true).await;
    Ok(())
}

/// Runs statements; an error is printed and the session goes on. A
/// `SELECT` over a stream watches it live until Ctrl-C (or its LIMIT, or
/// the job's end).
async fn run_statements(ssc: &StreamingContext, statements: &str) {
    let parsed = match sluice_core::sluice_sql::parse_script(statements) {
        Ok(p) => p,
        Err(_) => {
            // A syntax error: sql() words it as scripts get it.
            if let Err(e) = ssc.sql(statements).await {
                eprintln!("error: {e}");
            }
            return;
        }
    };
    for s in &parsed {
        if matches!(s.statement, SluiceStatement::DataFusion) {
            match ssc.watch(s).await {
                Ok(Some(watch)) => {
                    watch_live(ssc, watch).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    eprintln!("error: {e}");
                    return;
                }
            }
        }
        match ssc.execute_statement(s).await {
            Ok(StatementOutput::Done(what)) => println!("{what}"),
            Ok(rows) => print_output(&rows),
            Err(e) => {
                eprintln!("error: {}", e.in_statement(s.index, s.location));
                return;
            }
        }
    }
    if ssc.has_sinks().await && !ssc.is_started().await {
        if let Err(e) = ssc.start().await {
            eprintln!("error: {e}");
        }
    }
}

/// Prints each batch of `watch` as a boxed table under its batch time.
async fn watch_live(ssc: &StreamingContext, mut watch: Watch) {
    println!("watching (Ctrl-C to stop; the job keeps running)");
    // One listener for the whole watch, so a Ctrl-C while a table prints
    // is not lost.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut rows = 0usize;
    loop {
        tokio::select! {
            biased;
            _ = &mut interrupted => break,
            item = watch.batches.recv() => {
                let Some(item) = item else { break };
                let (t, mut batches) = match item {
                    Ok(batch) => batch,
                    Err(e) => {
                        eprintln!("error: the watch failed (the job goes on): {e}");
                        break;
                    }
                };
                // LIMIT n: no more than n rows in all.
                if let Some(n) = watch.limit {
                    batches = first_rows(batches, n.saturating_sub(rows));
                }
                println!("Time: {t} ms");
                match sluice_core::render::boxed_table(&watch.schema, &batches, usize::MAX) {
                    Ok(table) => println!("{table}"),
                    Err(e) => eprintln!("error: cannot print rows: {e}"),
                }
                rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
                if watch.limit.is_some_and(|n| rows >= n) {
                    break;
                }
            }
            _ = ssc.wait_stopped() => {
                println!("the job has stopped");
                break;
            }
        }
    }
    if let Err(e) = watch.close().await {
        eprintln!("error: closing the watch: {e}");
    }
}

/// The first `n` rows of `batches`.
fn first_rows(
    batches: Vec<arrow::array::RecordBatch>,
    mut n: usize,
) -> Vec<arrow::array::RecordBatch> {
    let mut out = Vec::new();
    for b in batches {
        if n == 0 {
            break;
        }
        let take = b.num_rows().min(n);
        out.push(b.slice(0, take));
        n -= take;
    }
    out
}

enum Command {
    Quit,
    Done,
}

async fn backslash(ssc: &StreamingContext, line: &str, ui_started: &mut bool) -> Command {
    let mut parts = line.split_whitespace();
    let command = parts.next().unwrap_or_default();
    let argument = parts.next();
    match (command, argument) {
        ("\\q", _) => return Command::Quit,
        ("\\?" | "\\h", _) => println!("{HELP}"),
        ("\\d", None) => {
            run_statements(ssc, "SHOW SOURCES; SHOW STREAMS; SHOW SINKS; SHOW TABLES;").await
        }
        ("\\d", Some(name)) => run_statements(ssc, &format!("DESCRIBE {name};")).await,
        ("\\status", _) => println!("{}", status_line(ssc).await),
        ("\\ui", Some(address)) if !*ui_started => {
            match sluice_ui::serve(ssc.clone(), address).await {
                Ok(ui) => {
                    *ui_started = true;
                    println!("status page: http://{}/", ui.address);
                }
                Err(e) => eprintln!("error: \\ui {address}: cannot listen: {e}"),
            }
        }
        ("\\ui", Some(_)) => eprintln!("error: the status page is already served"),
        ("\\ui", None) => eprintln!("error: \\ui needs an address, e.g. \\ui 127.0.0.1:4040"),
        (other, _) => eprintln!("unknown command {other}; \\? lists them"),
    }
    Command::Done
}

/// The job in one line: running or not, batches done, the last batch.
pub async fn status_line(ssc: &StreamingContext) -> String {
    let state = if ssc.has_stopped().await {
        "stopped"
    } else if ssc.is_started().await {
        "running"
    } else if ssc.has_stream_graph().await {
        "defined, not started (it starts with the first sink)"
    } else {
        "no job yet"
    };
    let done = ssc.completed_batches();
    match ssc.batch_infos().last() {
        Some(b) => format!(
            "job {state}; {done} batches; last {} ms: {} rows in, processed in {:.1} ms, total delay {:.1} ms",
            b.batch_time,
            b.total_input_rows(),
            b.processing_time.as_secs_f64() * 1000.0,
            b.total_delay().as_secs_f64() * 1000.0
        ),
        None => format!("job {state}; {done} batches"),
    }
}
