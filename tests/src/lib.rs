//! # sluice-tests
//!
//! Golden streaming tests: sqllogictest files under `tests/slt/`, run against a
//! real [`StreamingContext`] on a manual clock. A file reads like a session:
//! define sources, streams and sinks; `INSERT INTO` a queue source; then a
//! sluice-specific record cuts the next batch and returns what console sinks printed:
//!
//! ```text
//! statement ok
//! CREATE SOURCE lines (value TEXT) WITH (connector = 'queue')
//!
//! statement ok
//! INSERT INTO lines VALUES ('a b a')
//!
//! query T
//! ADVANCE
//! ----
//! -------------------------------------------
//! Time: 1000 ms
//! -------------------------------------------
//! (a,2)
//! ```
//!
//! `ADVANCE` moves the manual clock one batch interval (`ADVANCE 3`: three
//! batches, their output concatenated) and waits for the batch to complete.
//! The first `ADVANCE` starts the job (first batch at one interval after 0).
//! Blank lines of the console output are dropped (a blank line ends an
//! sqllogictest record); the exact format is pinned by unit tests of
//! `sluice_core::render` and the CLI tests. Any other SQL runs through
//! `StreamingContext::sql`.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use datafusion::prelude::SessionContext;
use sluice_core::{
    ClockChoice, ConsoleOutput, ManualClock, SluiceError, StatementOutput, StreamingContext,
};
use sqllogictest::{DBOutput, DefaultColumnType};

/// One slt file's session.
pub struct SluiceSlt {
    ssc: StreamingContext,
    clock: Arc<ManualClock>,
    printed: Arc<Mutex<String>>,
}

#[derive(Debug)]
pub enum HarnessError {
    Sluice(SluiceError),
    Harness(String),
}

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HarnessError::Sluice(e) => write!(f, "{e}"),
            HarnessError::Harness(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for HarnessError {}

impl SluiceSlt {
    pub async fn new() -> Self {
        let ssc = StreamingContext::with_registry(
            SessionContext::new(),
            Duration::from_secs(1),
            sluice_connectors::registry(),
        );
        let clock = Arc::new(ManualClock::new(0));
        ssc.set_clock(ClockChoice::Manual(Arc::clone(&clock)));
        let (console, printed) = ConsoleOutput::buffer();
        ssc.set_console(console).await;
        Self {
            ssc,
            clock,
            printed,
        }
    }

    async fn advance(&mut self, batches: u64) -> Result<Vec<Vec<String>>, HarnessError> {
        if !self.ssc.is_started().await {
            self.ssc.start().await.map_err(HarnessError::Sluice)?;
        }
        let interval = self.ssc.batch_interval().await.as_millis() as i64;
        for _ in 0..batches {
            let target = self.ssc.completed_batches() + 1;
            self.clock.advance_ms(interval);
            let waited =
                tokio::time::timeout(Duration::from_secs(30), self.ssc.wait_for_batches(target))
                    .await;
            if waited.is_err() {
                return Err(HarnessError::Harness(
                    "batch did not complete within 30 s".into(),
                ));
            }
            if self.ssc.completed_batches() < target {
                // The job ended: report why.
                self.ssc
                    .await_termination()
                    .await
                    .map_err(HarnessError::Sluice)?;
                return Err(HarnessError::Harness(
                    "the job stopped before the batch completed".into(),
                ));
            }
        }
        let text = std::mem::take(&mut *self.printed.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| vec![l.to_string()])
            .collect())
    }
}

#[async_trait]
impl sqllogictest::AsyncDB for SluiceSlt {
    type Error = HarnessError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let trimmed = sql.trim().trim_end_matches(';').trim();
        let mut words = trimmed.split_whitespace();
        if words
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("ADVANCE"))
        {
            let n = match words.next() {
                None => 1,
                Some(n) => n
                    .parse()
                    .map_err(|_| HarnessError::Harness(format!("ADVANCE {n}: not a count")))?,
            };
            let rows = self.advance(n).await?;
            return Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Text],
                rows,
            });
        }
        let outputs = self.ssc.sql(sql).await.map_err(HarnessError::Sluice)?;
        match outputs.last() {
            Some(StatementOutput::Rows { batches, .. }) => {
                let rows =
                    format_rows(batches).map_err(|e| HarnessError::Harness(e.to_string()))?;
                let width = batches.first().map(|b| b.num_columns()).unwrap_or(0);
                Ok(DBOutput::Rows {
                    types: vec![DefaultColumnType::Any; width],
                    rows,
                })
            }
            _ => Ok(DBOutput::StatementComplete(0)),
        }
    }

    async fn shutdown(&mut self) {
        let _ = self.ssc.stop(false).await;
    }

    fn engine_name(&self) -> &str {
        "sluice"
    }

    async fn sleep(dur: Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn format_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, arrow::error::ArrowError> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in batches {
        let f = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..b.num_rows() {
            rows.push(f.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    Ok(rows)
}

/// Runs one slt file; the error says which record failed and how.
pub async fn run_slt_file(path: &Path) -> Result<(), String> {
    let mut runner = sqllogictest::Runner::new(|| async { Ok(SluiceSlt::new().await) });
    let result = runner
        .run_file_async(path)
        .await
        .map_err(|e| format!("{}: {}", path.display(), e.display(false)));
    runner.shutdown_async().await;
    result
}
