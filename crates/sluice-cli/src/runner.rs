//! Running a script: every statement is parsed first (a syntax error stops
//! before anything runs), then applied in order (a planning error stops before
//! the first batch), then the job runs until Ctrl-C, `--batches N`, or an error.

use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::runtime_env::RuntimeEnv;
use sluice_connectors::store::OpeningObjectStores;

use datafusion::prelude::{SessionConfig, SessionContext};
use sluice_core::render::boxed_table;
use sluice_core::{ClockChoice, StatementOutput, StreamingContext};

use crate::{ClockFlag, RunFlags};

/// The DataFusion session every entry point uses: `s3://` and `memory://`
/// URLs open on first use, in any statement.
pub fn session() -> SessionContext {
    let config = SessionConfig::new().with_information_schema(true);
    let runtime = Arc::new(RuntimeEnv {
        object_store_registry: Arc::new(OpeningObjectStores::default()),
        ..RuntimeEnv::default()
    });
    SessionContext::new_with_config_rt(config, runtime)
}

/// The context every entry point uses: all connectors, 1 s batches by default.
pub fn new_context(flags: &RunFlags) -> StreamingContext {
    let ssc = StreamingContext::with_registry(
        session(),
        Duration::from_secs(1),
        sluice_connectors::registry(),
    );
    if flags.clock == ClockFlag::Simulated {
        ssc.set_clock(ClockChoice::Simulated);
    }
    if let Some(n) = flags.batches {
        ssc.set_max_batches(n);
    }
    if let Some(t) = flags.start_ms {
        ssc.set_start_ms(t);
    }
    ssc
}

/// Starts the status page if `--ui` asks for it.
pub async fn start_ui(ssc: &StreamingContext, flags: &RunFlags) -> Result<(), String> {
    if let Some(address) = &flags.ui {
        let ui = sluice_ui::serve(ssc.clone(), address)
            .await
            .map_err(|e| format!("--ui {address}: cannot listen: {e}"))?;
        eprintln!("status page: http://{}/", ui.address);
    }
    Ok(())
}

/// Prints what a statement returned (rows of a static query).
pub fn print_output(output: &StatementOutput) {
    if let StatementOutput::Rows { schema, batches } = output {
        match boxed_table(schema, batches, usize::MAX) {
            Ok(t) => println!("{t}"),
            Err(e) => eprintln!("error: cannot print rows: {e}"),
        }
    }
}

pub async fn run_script(name: &str, text: &str, flags: &RunFlags) -> Result<(), String> {
    let ssc = new_context(flags);
    let outputs = ssc.sql(text).await.map_err(|e| format!("{name}: {e}"))?;
    for o in &outputs {
        print_output(o);
    }
    if !ssc.has_stream_graph().await {
        return Ok(());
    }
    start_ui(&ssc, flags).await?;
    // Listen for Ctrl-C before the first batch, so an early one is not lost.
    let mut interrupts =
        Interrupts::listen().map_err(|e| format!("cannot listen for Ctrl-C: {e}"))?;
    ssc.start().await.map_err(|e| format!("{name}: {e}"))?;
    if let Some(r) = ssc.resumed() {
        eprintln!(
            "resuming from the checkpoint after batch {} ms ({} batches done){}",
            r.batch_time,
            r.batches,
            match flags.batches {
                Some(n) if n <= r.batches => format!(
                    "; --batches {n} are done already: nothing to run (remove the checkpoint directory to start over)"
                ),
                _ => String::new(),
            }
        );
    }
    let stopper = ssc.clone();
    tokio::spawn(async move {
        if interrupts.next().await {
            eprintln!("stopping after the batch in progress (Ctrl-C again to quit now)");
            // stop() waits for the batch; listen for a second Ctrl-C meanwhile.
            tokio::spawn(async move {
                let _ = stopper.stop(true).await;
            });
            if interrupts.next().await {
                std::process::exit(130);
            }
        }
    });
    ssc.await_termination()
        .await
        .map_err(|e| format!("{name}: {e}"))
}

/// Ctrl-C (SIGINT), registered as soon as this is created.
struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
            Ok(Self { signal })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Waits for the next Ctrl-C; false if none can come.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            self.signal.recv().await.is_some()
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}
