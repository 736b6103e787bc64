//! `connector = 'parquet' | 'csv' | 'json'`: each batch becomes one file
//! `<path>/batch-<batch ms>.<ext>` on a local path or object_store URL
//! (`file://`, `memory://`, `s3://`). A file is written whole in one put
//! (local files: a temporary file, then a rename; S3: one PUT), so a reader
//! never sees half a batch; a rerun of a batch replaces its file.
//! Option `header` (csv, default true).
//!
//! ```sql
//! CREATE SINK archive FROM counts WITH (connector = 'parquet', path = 'data/counts');
//! ```

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::prelude::SessionContext;
use parquet::arrow::ArrowWriter;
use sluice_core::sink::{Sink, SinkContext, SinkFactory, SinkSpec};
use sluice_core::{Result, SluiceError};

use crate::store::resolve;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    Csv,
    Json,
}

impl FileFormat {
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv => "csv",
            FileFormat::Json => "json",
        }
    }

    /// The whole batch, encoded.
    pub fn encode(
        self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        header: bool,
    ) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        match self {
            FileFormat::Parquet => {
                let mut w = ArrowWriter::try_new(&mut buf, Arc::clone(schema), None)
                    .map_err(|e| SluiceError::Config(format!("parquet: {e}")))?;
                for b in batches {
                    w.write(b)
                        .map_err(|e| SluiceError::Config(format!("parquet: {e}")))?;
                }
                w.close()
                    .map_err(|e| SluiceError::Config(format!("parquet: {e}")))?;
            }
            FileFormat::Csv => {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(header)
                    .build(&mut buf);
                for b in batches {
                    w.write(b)?;
                }
            }
            FileFormat::Json => {
                let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
                for b in batches {
                    w.write(b)?;
                }
                w.finish()?;
            }
        }
        Ok(buf)
    }
}

pub struct FileSinkFactory {
    format: FileFormat,
}

impl FileSinkFactory {
    pub fn new(format: FileFormat) -> Self {
        Self { format }
    }
}

#[async_trait]
impl SinkFactory for FileSinkFactory {
    fn name(&self) -> &'static str {
        self.format.name()
    }

    fn option_names(&self) -> &'static [&'static str] {
        match self.format {
            FileFormat::Csv => &["path", "header"],
            _ => &["path"],
        }
    }

    async fn create(&self, spec: SinkSpec, ctx: &SinkContext) -> Result<Box<dyn Sink>> {
        let path = spec
            .options
            .require("path", &format!("the '{}' sink", self.format.name()))?;
        let header = spec.options.get_bool("header")?.unwrap_or(true);
        // Resolve now so a bad URL fails before the first batch.
        resolve(&ctx.session, path)?;
        Ok(Box::new(FileSink {
            session: ctx.session.clone(),
            name: spec.name,
            path: path.trim_end_matches('/').to_string(),
            schema: spec.schema,
            format: self.format,
            header,
        }))
    }
}

pub struct FileSink {
    session: SessionContext,
    name: String,
    path: String,
    schema: SchemaRef,
    format: FileFormat,
    header: bool,
}

impl FileSink {
    pub fn file_name(&self, batch_time: i64) -> String {
        format!("batch-{batch_time}.{}", self.format.name())
    }
}

#[async_trait]
impl Sink for FileSink {
    async fn write(&mut self, batch_time: i64, batches: &[RecordBatch]) -> Result<()> {
        let location = resolve(&self.session, &self.path)?;
        let body = self.format.encode(&self.schema, batches, self.header)?;
        let name = self.file_name(batch_time);
        let path = location.child(&name);
        location
            .put_whole(&name, body)
            .await
            .map_err(|e| SluiceError::Sink {
                name: self.name.clone(),
                batch_time,
                message: format!("writing '{path}': {e}"),
            })?;
        Ok(())
    }
}
