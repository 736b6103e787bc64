//! The interactive REPL: statements end with `;` and may span lines; the job
//! starts in the background once a sink exists. `\q` quits, `\?` helps.

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::RunFlags;
use crate::runner::{new_context, print_output, start_ui};

const HELP: &str = "Statements end with ';'. CREATE SOURCE / CREATE STREAM ... AS SELECT / CREATE SINK define the job;
it starts once a sink exists. SELECT over static tables answers at once.
  \\q   quit
  \\?   this help";

pub async fn run(flags: &RunFlags) -> Result<(), String> {
    let ssc = new_context(flags);
    start_ui(&ssc, flags).await?;
    let mut editor = DefaultEditor::new().map_err(|e| e.to_string())?;
    println!(
        "sluice {} — type \\? for help, \\q to quit",
        env!("CARGO_PKG_VERSION")
    );
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
            match trimmed {
                "\\q" => break,
                "\\?" | "\\h" => println!("{HELP}"),
                other => eprintln!("unknown command {other}; \\? lists them"),
            }
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let _ = editor.add_history_entry(buffer.trim());
        let statements = std::mem::take(&mut buffer);
        match ssc.sql(&statements).await {
            Ok(outputs) => {
                for o in &outputs {
                    match o {
                        sluice_core::StatementOutput::Done(what) => println!("{what}"),
                        rows => print_output(rows),
                    }
                }
            }
            Err(e) => eprintln!("error: {e}"),
        }
        if ssc.has_sinks().await && !ssc.is_started().await {
            if let Err(e) = ssc.start().await {
                eprintln!("error: {e}");
            }
        }
    }
    let _ = ssc.stop(true).await;
    Ok(())
}
