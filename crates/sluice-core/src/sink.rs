//! What a sink is to the engine: something that receives each batch of one
//! stream (or source), in batch-time order, once it is computed.
//!
//! Connectors implement [`Sink`] and register a [`SinkFactory`]; the Rust API's
//! `foreach_batch` is a sink too.

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::prelude::SessionContext;
use sluice_sql::Options;

use crate::error::Result;
use crate::offsets::OffsetRange;

/// A running sink.
#[async_trait]
pub trait Sink: Send {
    /// Receives batch `batch_time` of its stream. An error stops the job.
    async fn write(&mut self, batch_time: i64, batches: &[RecordBatch]) -> Result<()>;

    /// Receives the batch with the offset ranges its sources read (Kafka's,
    /// see [`crate::offsets`]). The default ignores them and calls
    /// [`Sink::write`].
    async fn write_with_offsets(
        &mut self,
        batch_time: i64,
        batches: &[RecordBatch],
        _offsets: &[OffsetRange],
    ) -> Result<()> {
        self.write(batch_time, batches).await
    }

    /// Called once when the job stops.
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// What a sink is created from: `CREATE SINK name FROM stream WITH (options)`.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    pub name: String,
    /// The stream (or source) it reads.
    pub from: String,
    /// The schema of the batches it will receive.
    pub schema: SchemaRef,
    pub options: Options,
}

/// What the engine offers a sink when creating it.
#[derive(Clone)]
pub struct SinkContext {
    pub session: SessionContext,
    pub console: ConsoleOutput,
}

/// Creates sinks of one connector.
#[async_trait]
pub trait SinkFactory: Send + Sync {
    fn name(&self) -> &'static str;
    fn option_names(&self) -> &'static [&'static str];
    async fn create(&self, spec: SinkSpec, ctx: &SinkContext) -> Result<Box<dyn Sink>>;
}

pub type SinkFactoryRef = Arc<dyn SinkFactory>;

/// Where console sinks print: standard output, or a buffer (tests, embedding).
#[derive(Clone, Default)]
pub enum ConsoleOutput {
    #[default]
    Stdout,
    Buffer(Arc<Mutex<String>>),
}

impl ConsoleOutput {
    /// A buffer that collects what console sinks print.
    pub fn buffer() -> (Self, Arc<Mutex<String>>) {
        let b = Arc::new(Mutex::new(String::new()));
        (ConsoleOutput::Buffer(Arc::clone(&b)), b)
    }

    /// Writes a whole block at once (a batch is never interleaved with another).
    pub fn write_block(&self, text: &str) -> std::io::Result<()> {
        match self {
            ConsoleOutput::Stdout => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()
            }
            ConsoleOutput::Buffer(b) => {
                b.lock().unwrap_or_else(|e| e.into_inner()).push_str(text);
                Ok(())
            }
        }
    }
}

impl std::fmt::Debug for ConsoleOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConsoleOutput::Stdout => write!(f, "Stdout"),
            ConsoleOutput::Buffer(_) => write!(f, "Buffer"),
        }
    }
}
