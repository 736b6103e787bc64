//! What the job is made of, as statements see it: `SHOW STREAMS | SOURCES |
//! SINKS | BATCHES` and `DESCRIBE <source, stream or sink>` (a static
//! table's `DESCRIBE` is DataFusion's).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use datafusion::prelude::SessionContext;
//! use sluice_core::{StatementOutput, StreamingContext};
//!
//! let ssc = StreamingContext::new(SessionContext::new(), Duration::from_secs(1));
//! ssc.sql("CREATE SOURCE nums (n BIGINT) WITH (connector = 'queue');
//!          CREATE STREAM odd AS SELECT n FROM nums WHERE n % 2 = 1;").await.unwrap();
//! let out = ssc.sql("SHOW STREAMS").await.unwrap();
//! let StatementOutput::Rows { batches, .. } = &out[0] else { panic!() };
//! assert_eq!(batches[0].num_rows(), 1);
//! # });
//! ```

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use sluice_sql::{Describe, DropNode, Show, ShowKind};

use crate::context::StreamingContext;
use crate::error::Result;
use crate::statements::StatementOutput;

/// What a dropped sink becomes: a batch cut before the DROP and written
/// after it goes nowhere (the sink is closed).
struct DroppedSink;

#[async_trait::async_trait]
impl crate::sink::Sink for DroppedSink {
    async fn write(&mut self, _batch_time: i64, _batches: &[RecordBatch]) -> Result<()> {
        Ok(())
    }
}

/// Rows of text columns.
fn table(columns: &[&str], rows: Vec<Vec<String>>) -> Result<StatementOutput> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = (0..columns.len())
        .map(|i| {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r[i].as_str()),
            )) as ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    Ok(StatementOutput::Rows {
        schema,
        batches: vec![batch],
    })
}

fn ms(d: std::time::Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// The last batches `SHOW BATCHES` lists.
const SHOWN_BATCHES: usize = 20;

impl StreamingContext {
    pub(crate) async fn show(&self, s: &Show) -> Result<StatementOutput> {
        if s.kind == ShowKind::Batches {
            let infos = self.batch_infos();
            let rows = infos
                .iter()
                .rev()
                .take(SHOWN_BATCHES)
                .rev()
                .map(|b| {
                    let rows = |r: &[(String, usize)]| {
                        r.iter()
                            .map(|(n, c)| format!("{n}: {c}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    vec![
                        b.batch_time.to_string(),
                        rows(&b.input_rows),
                        ms(b.scheduling_delay),
                        ms(b.processing_time),
                        ms(b.total_delay()),
                        rows(&b.output_rows),
                    ]
                })
                .collect();
            return table(
                &[
                    "batch_time",
                    "input_rows",
                    "scheduling_delay_ms",
                    "processing_time_ms",
                    "total_delay_ms",
                    "output_rows",
                ],
                rows,
            );
        }
        let engine = self.engine().lock().await;
        match s.kind {
            ShowKind::Sources => table(
                &["name", "connector", "columns"],
                engine
                    .sources
                    .iter()
                    .map(|s| vec![s.name.clone(), s.connector.clone(), columns(&s.schema)])
                    .collect(),
            ),
            ShowKind::Streams => {
                let mut rows = Vec::new();
                for s in &engine.streams {
                    let state = match &s.stateful {
                        Some(state) => format!("{} bytes", state.lock().await.state_size()),
                        None => String::new(),
                    };
                    rows.push(vec![
                        s.name.clone(),
                        s.inputs.join(", "),
                        sluice_sql::format_duration(s.slide),
                        state,
                        s.definition.clone(),
                    ]);
                }
                table(&["name", "reads", "every", "state", "definition"], rows)
            }
            ShowKind::Sinks => table(
                &["name", "reads", "connector"],
                engine
                    .sinks
                    .iter()
                    .map(|s| vec![s.name.clone(), s.from.clone(), s.connector.clone()])
                    .collect(),
            ),
            ShowKind::Batches => unreachable!("handled above"),
        }
    }

    /// `DROP SOURCE | STREAM | SINK`: removed from the job (running or not);
    /// a dropped sink is closed.
    pub(crate) async fn drop_node(&self, d: &DropNode) -> Result<StatementOutput> {
        let removed = {
            let mut engine = self.engine().lock().await;
            let exists = match d.kind {
                "source" => engine.sources.iter().any(|s| s.name == d.name),
                "stream" => engine.streams.iter().any(|s| s.name == d.name),
                _ => engine.sinks.iter().any(|s| s.name == d.name),
            };
            if !exists && d.if_exists {
                return Ok(StatementOutput::Done(format!("no {} {}", d.kind, d.name)));
            }
            engine
                .drop_node(d.kind, &d.name)
                .map_err(|e| crate::error::plan_error_at(e.message(), d.location))?
        };
        if let Some(sink) = removed {
            let mut sink = sink.lock().await;
            sink.close().await?;
            // A batch already on its way to this sink writes nowhere.
            *sink = Box::new(DroppedSink);
        }
        Ok(StatementOutput::Done(format!(
            "dropped {} {}",
            d.kind, d.name
        )))
    }

    /// Names worth completing in a REPL: sources, streams, sinks, static
    /// tables and their columns, connectors and option keys.
    pub async fn completion_words(&self) -> Vec<String> {
        let mut words: Vec<String> = Vec::new();
        {
            let engine = self.engine().lock().await;
            for s in &engine.sources {
                words.push(s.name.clone());
                words.extend(s.schema.fields().iter().map(|f| f.name().clone()));
            }
            for s in &engine.streams {
                words.push(s.name.clone());
                words.extend(s.schema.fields().iter().map(|f| f.name().clone()));
            }
            words.extend(engine.sinks.iter().map(|s| s.name.clone()));
            words.extend(engine.registry.source_names().iter().map(|n| n.to_string()));
            words.extend(engine.registry.sink_names().iter().map(|n| n.to_string()));
            words.extend(engine.registry.option_names().iter().map(|n| n.to_string()));
        }
        words.extend(["connector", "state_timeout", "initial_state"].map(String::from));
        let session = self.session();
        for catalog in session.catalog_names() {
            let Some(c) = session.catalog(&catalog) else {
                continue;
            };
            for schema in c.schema_names() {
                if schema == "information_schema" {
                    continue;
                }
                let Some(s) = c.schema(&schema) else { continue };
                for t in s.table_names() {
                    if let Ok(Some(table)) = s.table(&t).await {
                        words.extend(table.schema().fields().iter().map(|f| f.name().clone()));
                    }
                    words.push(t);
                }
            }
        }
        words.sort();
        words.dedup();
        words
    }

    /// `DESCRIBE` of a source, stream or sink; `None` for any other name
    /// (DataFusion describes static tables).
    pub(crate) async fn describe(&self, d: &Describe) -> Result<Option<StatementOutput>> {
        let engine = self.engine().lock().await;
        let readers = |name: &str| {
            engine
                .streams
                .iter()
                .filter(|s| s.inputs.iter().any(|i| i == name))
                .map(|s| s.name.clone())
                .chain(
                    engine
                        .sinks
                        .iter()
                        .filter(|s| s.from == name)
                        .map(|s| s.name.clone()),
                )
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut row = |item: &str, detail: String| rows.push(vec![item.to_string(), detail]);
        if let Some(s) = engine.sources.iter().find(|s| s.name == d.name) {
            row("source", s.name.clone());
            row("connector", s.connector.clone());
            row("options", s.options.clone());
            for f in s.schema.fields() {
                row("column", format!("{} {}", f.name(), f.data_type()));
            }
            row("read by", readers(&s.name));
        } else if let Some(s) = engine.streams.iter().find(|s| s.name == d.name) {
            row("stream", s.name.clone());
            for f in s.schema.fields() {
                row("column", format!("{} {}", f.name(), f.data_type()));
            }
            row("reads", s.inputs.join(", "));
            row("read by", readers(&s.name));
            row("every", sluice_sql::format_duration(s.slide));
            row("definition", s.definition.clone());
        } else if let Some(s) = engine.sinks.iter().find(|s| s.name == d.name) {
            row("sink", s.name.clone());
            row("connector", s.connector.clone());
            row("options", s.options.clone());
            row("reads", s.from.clone());
        } else {
            return Ok(None);
        }
        table(&["item", "detail"], rows).map(Some)
    }
}

/// `name type, ...`: a schema as SHOW and error messages write it.
pub fn columns(schema: &arrow::datatypes::Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}
