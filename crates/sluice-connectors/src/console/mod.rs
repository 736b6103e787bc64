//! `connector = 'console'`: Spark's `print(n)`. Options `rows` (default 10)
//! and `format` (`spark`, the default, or `table` for a boxed table).
//!
//! ```sql
//! CREATE SINK show FROM counts WITH (connector = 'console', rows = 20);
//! ```

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use sluice_core::Result;
use sluice_core::render::{spark_print, table_print};
use sluice_core::sink::{ConsoleOutput, Sink, SinkContext, SinkFactory, SinkSpec};

pub struct ConsoleSinkFactory;

#[async_trait]
impl SinkFactory for ConsoleSinkFactory {
    fn name(&self) -> &'static str {
        "console"
    }

    fn option_names(&self) -> &'static [&'static str] {
        &["rows", "format"]
    }

    async fn create(&self, spec: SinkSpec, ctx: &SinkContext) -> Result<Box<dyn Sink>> {
        let rows = spec.options.get_usize("rows")?.unwrap_or(10);
        let table = spec
            .options
            .get_choice("format", &["spark", "table"])?
            .as_deref()
            == Some("table");
        Ok(Box::new(ConsoleSink {
            rows,
            table,
            schema: spec.schema,
            out: ctx.console.clone(),
        }))
    }
}

pub struct ConsoleSink {
    rows: usize,
    table: bool,
    schema: SchemaRef,
    out: ConsoleOutput,
}

#[async_trait]
impl Sink for ConsoleSink {
    async fn write(&mut self, batch_time: i64, batches: &[RecordBatch]) -> Result<()> {
        let text = if self.table {
            table_print(batch_time, &self.schema, batches, self.rows)?
        } else {
            spark_print(batch_time, batches, self.rows)?
        };
        self.out.write_block(&text)?;
        Ok(())
    }
}
