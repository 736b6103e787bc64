//! `foreach_batch`: a sink that calls the application with each batch
//! (Spark's `foreachRDD`). Open connections per batch, never per row.
//! `foreach_batch_with_offsets` also hands over the batch's Kafka offset
//! ranges (Spark's `HasOffsetRanges`), e.g. to store them with the output.

use arrow::array::RecordBatch;
use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::error::Result;
use crate::offsets::OffsetRange;
use crate::sink::Sink;

pub type BatchCallback =
    Box<dyn Fn(i64, Vec<RecordBatch>) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// A callback that also gets the batch's offset ranges.
pub type OffsetsCallback = Box<
    dyn Fn(i64, Vec<RecordBatch>, Vec<OffsetRange>) -> BoxFuture<'static, Result<()>> + Send + Sync,
>;

pub struct ForeachBatchSink {
    callback: OffsetsCallback,
}

impl ForeachBatchSink {
    pub fn new(callback: BatchCallback) -> Self {
        Self::with_offsets(Box::new(move |t, batches, _| callback(t, batches)))
    }

    pub fn with_offsets(callback: OffsetsCallback) -> Self {
        Self { callback }
    }
}

#[async_trait]
impl Sink for ForeachBatchSink {
    async fn write(&mut self, batch_time: i64, batches: &[RecordBatch]) -> Result<()> {
        (self.callback)(batch_time, batches.to_vec(), Vec::new()).await
    }

    async fn write_with_offsets(
        &mut self,
        batch_time: i64,
        batches: &[RecordBatch],
        offsets: &[OffsetRange],
    ) -> Result<()> {
        (self.callback)(batch_time, batches.to_vec(), offsets.to_vec()).await
    }
}
