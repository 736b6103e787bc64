//! What a source is to the engine: something that, when batch `T` is cut,
//! hands over the rows that arrived in `[T - interval, T)` as Arrow batches.
//!
//! Connectors implement [`Source`] and register a [`SourceFactory`] under their
//! connector name (`connector = 'words'`); see `sluice-connectors`.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::prelude::SessionContext;
use sluice_sql::Options;

use crate::error::Result;
use crate::queue::QueueHandle;

/// A running source.
#[async_trait]
pub trait Source: Send + std::fmt::Debug {
    /// The schema of every batch this source hands over.
    fn schema(&self) -> SchemaRef;

    /// The rows of batch `batch_time` (those that arrived in `[T - interval, T)`).
    /// Called once per batch, in batch-time order, when the batch is cut.
    async fn cut(&mut self, batch_time: i64) -> Result<Vec<RecordBatch>>;

    /// Where the source stands after its last cut, for a checkpoint: a new
    /// instance with the same options, given this in [`Source::restore`],
    /// cuts the batches that follow exactly as this one would. `None` (the
    /// default): it cannot resume (what it received would be lost or read
    /// twice), so a checkpointed job refuses it.
    fn position(&self) -> Option<serde_json::Value> {
        None
    }

    /// Continues after `position`, as [`Source::position`] gave it.
    fn restore(&mut self, _position: &serde_json::Value) -> Result<()> {
        Err(crate::error::SluiceError::Config(
            "this source cannot resume from a checkpoint".into(),
        ))
    }

    /// For a source that receives what no one can send again (a socket): a
    /// checkpoint gives it the local directory `dir` for a write-ahead log,
    /// after which it reports a position. `false` (the default): it keeps
    /// no log.
    fn keep_log(&mut self, _dir: &std::path::Path) -> Result<bool> {
        Ok(false)
    }

    /// Whether the source keeps its own record of how far the job got (Kafka
    /// offsets in the consumer group or in Redis): it then reports a
    /// position after every cut, checkpoint or not, and is told in
    /// [`Source::done`] when the batch is.
    fn stores_positions(&self) -> bool {
        false
    }

    /// The batch that left the source at `position` is done: every sink
    /// wrote it, and the checkpoint (if any) committed it. A source may now
    /// store the position (a Kafka source's offsets) or drop what it kept
    /// to cut the batch again (the socket's log). An error is retried.
    async fn done(&mut self, _position: &serde_json::Value) -> Result<()> {
        Ok(())
    }

    /// For a source that reads a log (Kafka): the offset ranges its last cut
    /// read, one per partition; `offsets(<source>)` shows them. Such a
    /// source returns `Some` (empty before its first cut) from the start.
    /// `None` (the default): the source has no offsets.
    fn offset_ranges(&self) -> Option<Vec<crate::offsets::OffsetRange>> {
        None
    }

    /// The push handle, for sources that the application (or `INSERT INTO`) feeds.
    fn queue_handle(&self) -> Option<QueueHandle> {
        None
    }
}

/// What a source is created from: `CREATE SOURCE name [(columns)] WITH (options)`.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub name: String,
    /// The columns, when the statement declares them.
    pub declared_schema: Option<SchemaRef>,
    pub options: Options,
}

/// What the engine offers a source when creating it.
#[derive(Clone)]
pub struct SourceContext {
    pub session: SessionContext,
    pub batch_interval: Duration,
}

/// Creates sources of one connector.
#[async_trait]
pub trait SourceFactory: Send + Sync {
    /// The connector name (`connector = '...'`).
    fn name(&self) -> &'static str;
    /// The options this connector accepts (besides `connector`).
    fn option_names(&self) -> &'static [&'static str];
    async fn create(&self, spec: SourceSpec, ctx: &SourceContext) -> Result<Box<dyn Source>>;
}

pub type SourceFactoryRef = Arc<dyn SourceFactory>;
