//! `connector = 'constant'`: Spark's `ConstantInputDStream`, the same rows
//! every batch. The rows come from a static table (`table = 'name'`) or a
//! query (`query = 'VALUES ...'` / `'SELECT ...'`), evaluated once.
//!
//! ```sql
//! CREATE TABLE lines_data (value TEXT) AS VALUES ('0 Hello'), ('1 World');
//! CREATE SOURCE lines WITH (connector = 'constant', table = 'lines_data');
//! ```

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::common::TableReference;
use sluice_core::conform::conform_to_schema;
use sluice_core::source::{Source, SourceContext, SourceFactory, SourceSpec};
use sluice_core::{Result, plan_err};

pub struct ConstantSourceFactory;

#[async_trait]
impl SourceFactory for ConstantSourceFactory {
    fn name(&self) -> &'static str {
        "constant"
    }

    fn option_names(&self) -> &'static [&'static str] {
        &["table", "query"]
    }

    async fn create(&self, spec: SourceSpec, ctx: &SourceContext) -> Result<Box<dyn Source>> {
        let df = match (spec.options.get("table"), spec.options.get("query")) {
            (Some(table), None) => {
                ctx.session
                    .table(TableReference::bare(table.to_ascii_lowercase()))
                    .await?
            }
            (None, Some(query)) => ctx.session.sql(query).await?,
            _ => {
                return plan_err!(
                    "the 'constant' source '{}' needs exactly one of the options 'table' or 'query'",
                    spec.name
                );
            }
        };
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        let source = match spec.declared_schema {
            None => ConstantSource { schema, batches },
            Some(schema) => ConstantSource::with_schema(&spec.name, schema, batches)?,
        };
        Ok(Box::new(source))
    }
}

#[derive(Debug)]
pub struct ConstantSource {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl ConstantSource {
    /// Renames and casts the rows to the declared columns, by position.
    fn with_schema(name: &str, schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self> {
        let batches = conform_to_schema(batches, &schema, &format!("constant source '{name}'"))?;
        Ok(Self { schema, batches })
    }
}

#[async_trait]
impl Source for ConstantSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    async fn cut(&mut self, _batch_time: i64) -> Result<Vec<RecordBatch>> {
        Ok(self.batches.clone())
    }

    /// Nothing: a batch depends only on its time.
    fn position(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::Null)
    }

    fn restore(&mut self, _position: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}
