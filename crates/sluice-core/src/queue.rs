//! The queue source (Spark's `queueStream`): the application pushes Arrow
//! batches; each batch cut takes the oldest one (`one_at_a_time`, the default)
//! or all of them. From SQL: `CREATE SOURCE s (value TEXT) WITH (connector =
//! 'queue')`, fed by `INSERT INTO s VALUES ...` (one INSERT, one queued item).
//!
//! ```
//! # tokio_test_shim::run(async {
//! use std::sync::Arc;
//! use arrow::array::{Int64Array, RecordBatch};
//! use sluice_core::queue::QueueSource;
//! use sluice_core::source::Source;
//! let batch = RecordBatch::try_from_iter(vec![("v", Arc::new(Int64Array::from(vec![1, 2])) as _)]).unwrap();
//! let mut source = QueueSource::new(batch.schema(), true);
//! source.queue_handle().unwrap().push(batch).unwrap();
//! assert_eq!(source.cut(1000).await.unwrap()[0].num_rows(), 2);
//! assert!(source.cut(2000).await.unwrap().is_empty());
//! # });
//! # mod tokio_test_shim { pub fn run<F: std::future::Future>(f: F) -> F::Output {
//! #   tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f) } }
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

use crate::error::{Result, SluiceError};
use crate::source::{Source, SourceContext, SourceFactory, SourceSpec};

/// Pushes batches into a [`QueueSource`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct QueueHandle {
    schema: SchemaRef,
    items: Arc<Mutex<VecDeque<Vec<RecordBatch>>>>,
}

impl QueueHandle {
    /// Queues one item (one batch's worth when `one_at_a_time`).
    pub fn push(&self, batch: RecordBatch) -> Result<()> {
        self.push_all(vec![batch])
    }

    /// Queues several record batches as one item.
    pub fn push_all(&self, batches: Vec<RecordBatch>) -> Result<()> {
        for b in &batches {
            if b.schema().fields() != self.schema.fields() {
                return Err(SluiceError::Config(format!(
                    "pushed batch has schema {:?}, the queue's is {:?}",
                    b.schema(),
                    self.schema
                )));
            }
        }
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(batches);
        Ok(())
    }

    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Items pushed and not yet taken by a batch.
    pub fn len(&self) -> usize {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct QueueSource {
    handle: QueueHandle,
    one_at_a_time: bool,
}

impl QueueSource {
    pub fn new(schema: SchemaRef, one_at_a_time: bool) -> Self {
        Self {
            handle: QueueHandle {
                schema,
                items: Default::default(),
            },
            one_at_a_time,
        }
    }

    pub(crate) fn queue_handle_inner(&self) -> QueueHandle {
        self.handle.clone()
    }
}

#[async_trait]
impl Source for QueueSource {
    fn schema(&self) -> SchemaRef {
        self.handle.schema()
    }

    async fn cut(&mut self, _batch_time: i64) -> Result<Vec<RecordBatch>> {
        let mut items = self.handle.items.lock().unwrap_or_else(|e| e.into_inner());
        Ok(if self.one_at_a_time {
            items.pop_front().unwrap_or_default()
        } else {
            items.drain(..).flatten().collect()
        })
    }

    fn queue_handle(&self) -> Option<QueueHandle> {
        Some(self.handle.clone())
    }
}

/// `connector = 'queue'`: needs declared columns; option `one_at_a_time` (default true).
pub struct QueueSourceFactory;

#[async_trait]
impl SourceFactory for QueueSourceFactory {
    fn name(&self) -> &'static str {
        "queue"
    }

    fn option_names(&self) -> &'static [&'static str] {
        &["one_at_a_time"]
    }

    async fn create(&self, spec: SourceSpec, _ctx: &SourceContext) -> Result<Box<dyn Source>> {
        let Some(schema) = spec.declared_schema else {
            return crate::plan_err!(
                "queue source '{}' needs its columns declared: CREATE SOURCE {} (value TEXT) WITH (connector = 'queue')",
                spec.name,
                spec.name
            );
        };
        let one = spec.options.get_bool("one_at_a_time")?.unwrap_or(true);
        Ok(Box::new(QueueSource::new(schema, one)))
    }
}
