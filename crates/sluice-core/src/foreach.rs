//! `foreach_batch`: a sink that calls the application with each batch
//! (Spark's `foreachRDD`). Open connections per batch, never per row.

use arrow::array::RecordBatch;
use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::error::Result;
use crate::sink::Sink;

pub type BatchCallback =
    Box<dyn Fn(i64, Vec<RecordBatch>) -> BoxFuture<'static, Result<()>> + Send + Sync>;

pub struct ForeachBatchSink {
    callback: BatchCallback,
}

impl ForeachBatchSink {
    pub fn new(callback: BatchCallback) -> Self {
        Self { callback }
    }
}

#[async_trait]
impl Sink for ForeachBatchSink {
    async fn write(&mut self, batch_time: i64, batches: &[RecordBatch]) -> Result<()> {
        (self.callback)(batch_time, batches.to_vec()).await
    }
}
