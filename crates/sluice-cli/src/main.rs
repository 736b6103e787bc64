//! The `sluice` command: run a script (`sluice run script.sql`), statements
//! from the command line (`sluice -c "..."`), or the interactive REPL (`sluice`).
//!
//! ```text
//! sluice run sql-examples/word_count.sql --clock simulated --batches 3
//! ```

mod helper;
mod repl;
mod runner;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "Columnar SQL over streams: Spark Streaming's model on Arrow and DataFusion"
)]
struct Cli {
    /// Run these statements (separated by ';') instead of a script or the REPL.
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    command: Option<String>,

    #[command(flatten)]
    flags: RunFlags,

    #[command(subcommand)]
    sub: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a script of CREATE SOURCE / CREATE STREAM / CREATE SINK statements until Ctrl-C.
    Run {
        /// The script.
        script: PathBuf,
    },
    /// Look into a checkpoint directory.
    #[command(subcommand)]
    Checkpoint(CheckpointCommand),
    /// Helpers for trying sluice out.
    #[command(subcommand)]
    Tools(Tool),
}

#[derive(Subcommand, Debug)]
enum CheckpointCommand {
    /// List the last completed batch, each source's position, each
    /// stateful stream's saved state and sizes, and write-ahead logs.
    Inspect {
        /// The checkpoint: a local path or an object store URL.
        location: String,
    },
}

#[derive(Subcommand, Debug)]
enum Tool {
    /// Serve lines of random words over TCP (the tutorial's SocketLikeNC),
    /// for `connector = 'socket'` sources; runs until Ctrl-C.
    SocketWords {
        /// The port to listen on.
        #[arg(long, default_value_t = 9999)]
        port: u16,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Lines sent to each client per second.
        #[arg(long, default_value_t = 10)]
        lines_per_second: u64,
        /// Seed of the random words.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

/// How batches are cut.
#[derive(Args, Debug, Clone, Default)]
pub struct RunFlags {
    /// `system` (wall clock, the default) or `simulated` (batches back to back,
    /// time advancing by the interval without waiting).
    #[arg(long, value_enum, global = true, default_value_t = ClockFlag::System)]
    pub clock: ClockFlag,
    /// Stop after N batches.
    #[arg(long, value_name = "N", global = true)]
    pub batches: Option<u64>,
    /// The first batch time, in ms since the epoch (a multiple of the batch interval).
    #[arg(long = "start-ms", value_name = "T", global = true)]
    pub start_ms: Option<i64>,
    /// Serve the status page on this address (e.g. 127.0.0.1:4040): charts,
    /// the stream graph, recent batches; /api/batches, /api/streams, /metrics.
    #[arg(long, value_name = "ADDR", global = true)]
    pub ui: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClockFlag {
    #[default]
    System,
    Simulated,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match (cli.sub, cli.command) {
            (Some(Command::Run { script }), _) => {
                let text = std::fs::read_to_string(&script)
                    .map_err(|e| format!("cannot read {}: {e}", script.display()))?;
                runner::run_script(&script.display().to_string(), &text, &cli.flags).await
            }
            (Some(Command::Checkpoint(CheckpointCommand::Inspect { location })), _) => {
                let session = runner::session();
                let report = sluice_core::checkpoint::inspect::describe(&session, &location)
                    .await
                    .map_err(|e| e.to_string())?;
                print!("{report}");
                Ok(())
            }
            (Some(Command::Tools(Tool::SocketWords {
                port,
                host,
                lines_per_second,
                seed,
            })), _) => {
                let server = sluice_connectors::word_server::WordServer::bind(
                    &format!("{host}:{port}"),
                    lines_per_second,
                    seed,
                )
                .await
                .map_err(|e| format!("socket-words: cannot listen on {host}:{port}: {e}"))?;
                let address = server.address().map_err(|e| e.to_string())?;
                eprintln!("serving words on {address} ({lines_per_second} lines/s per client); Ctrl-C stops");
                server.serve().await.map_err(|e| format!("socket-words: {e}"))
            }
            (None, Some(sql)) => runner::run_script("-c", &sql, &cli.flags).await,
            (None, None) => repl::run(&cli.flags).await,
        }
    });
    // Sources and sinks may hold blocking work; do not wait for it at exit.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
