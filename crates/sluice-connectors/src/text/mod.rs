//! `connector = 'text'`: Spark's `saveAsTextFiles(prefix, suffix)`. Each batch
//! goes to the directory `<path>-<batch ms>[.<suffix>]` as `part-00000` (rows
//! rendered as `print` shows them) and an empty `_SUCCESS` written last, so a
//! reader that waits for `_SUCCESS` never sees half a batch. A rerun of the
//! same batch overwrites its directory.
//!
//! ```
//! assert_eq!(sluice_connectors::text::batch_dir_name("data/output/", None, 1000), "data/output/-1000");
//! assert_eq!(sluice_connectors::text::batch_dir_name("out/words", Some("txt"), 5000), "out/words-5000.txt");
//! ```

use arrow::array::RecordBatch;
use async_trait::async_trait;
use datafusion::prelude::SessionContext;
use sluice_core::render::push_spark_rows;
use sluice_core::sink::{Sink, SinkContext, SinkFactory, SinkSpec};
use sluice_core::{Result, SluiceError};

use crate::store::resolve;

/// Spark's `rddToFileName`: `prefix-<ms>`, plus `.suffix` when given.
pub fn batch_dir_name(prefix: &str, suffix: Option<&str>, batch_time: i64) -> String {
    match suffix {
        Some(s) if !s.is_empty() => format!("{prefix}-{batch_time}.{s}"),
        _ => format!("{prefix}-{batch_time}"),
    }
}

pub struct TextSinkFactory;

#[async_trait]
impl SinkFactory for TextSinkFactory {
    fn name(&self) -> &'static str {
        "text"
    }

    fn option_names(&self) -> &'static [&'static str] {
        &["path", "suffix"]
    }

    async fn create(&self, spec: SinkSpec, ctx: &SinkContext) -> Result<Box<dyn Sink>> {
        let prefix = spec.options.require("path", "the 'text' sink")?.to_string();
        let suffix = spec.options.get("suffix").map(str::to_string);
        // Resolve now so a bad URL fails before the first batch.
        resolve(&ctx.session, &batch_dir_name(&prefix, suffix.as_deref(), 0))?;
        Ok(Box::new(TextSink {
            session: ctx.session.clone(),
            name: spec.name,
            prefix,
            suffix,
        }))
    }
}

pub struct TextSink {
    session: SessionContext,
    name: String,
    prefix: String,
    suffix: Option<String>,
}

#[async_trait]
impl Sink for TextSink {
    async fn write(&mut self, batch_time: i64, batches: &[RecordBatch]) -> Result<()> {
        let dir = batch_dir_name(&self.prefix, self.suffix.as_deref(), batch_time);
        let location = resolve(&self.session, &dir)?;
        let mut text = String::new();
        push_spark_rows(batches, usize::MAX, &mut text)?;
        // `_SUCCESS` last.
        let files = vec![("part-00000", text.into_bytes()), ("_SUCCESS", Vec::new())];
        location
            .put_all_whole(files)
            .await
            .map_err(|e| SluiceError::Sink {
                name: self.name.clone(),
                batch_time,
                message: format!("writing '{dir}': {e}"),
            })
    }
}
