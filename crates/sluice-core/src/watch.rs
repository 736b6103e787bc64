//! A live `SELECT` over a stream (the REPL's watch): the query becomes a
//! hidden stream with a sink that hands each batch to the caller, until the
//! watch is closed.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use datafusion::prelude::SessionContext;
//! use sluice_core::StreamingContext;
//!
//! let ssc = StreamingContext::new(SessionContext::new(), Duration::from_secs(1));
//! ssc.sql("CREATE SOURCE nums (n BIGINT) WITH (connector = 'queue')").await.unwrap();
//! let script = sluice_core::sluice_sql::parse_script("SELECT n * 2 AS d FROM nums").unwrap();
//! let watch = ssc.watch(&script[0]).await.unwrap().expect("it reads a source");
//! assert_eq!(watch.schema.field(0).name(), "d");
//! watch.close().await.unwrap();
//! // A query over static tables is not a watch.
//! let script = sluice_core::sluice_sql::parse_script("SELECT 1").unwrap();
//! assert!(ssc.watch(&script[0]).await.unwrap().is_none());
//! # });
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use sluice_sql::sqlparser::ast::Statement;
use sluice_sql::sqlparser::dialect::GenericDialect;
use sluice_sql::sqlparser::parser::Parser;
use sluice_sql::{CreateStream, LocatedStatement, Options};
use tokio::sync::mpsc;

use crate::context::StreamingContext;
use crate::error::Result;
use crate::sink::Sink;

static WATCHES: AtomicUsize = AtomicUsize::new(1);

/// A running watch; [`close`](Watch::close) it to remove its stream.
pub struct Watch {
    /// The hidden stream's name.
    pub name: String,
    pub schema: SchemaRef,
    /// `(batch time, rows)` per batch, or the error that ended the watch
    /// (the job goes on).
    pub batches: mpsc::UnboundedReceiver<WatchItem>,
    /// `LIMIT n` of the query: the watch ends after n rows.
    pub limit: Option<usize>,
    ssc: StreamingContext,
}

/// What a watch receives per batch.
pub type WatchItem = std::result::Result<(i64, Vec<RecordBatch>), String>;

struct ChannelSink(mpsc::UnboundedSender<WatchItem>);

#[async_trait]
impl Sink for ChannelSink {
    async fn write(&mut self, batch_time: i64, batches: &[RecordBatch]) -> Result<()> {
        // A closed watch no longer listens: nothing to do.
        let _ = self.0.send(Ok((batch_time, batches.to_vec())));
        Ok(())
    }
}

impl StreamingContext {
    /// Watches the query `s` (a `SELECT` as written) if it reads a source or
    /// stream (a `window(...)` too); `None` for a query over static tables
    /// only. Errors are the statement's, placed in its text.
    pub async fn watch(&self, s: &LocatedStatement) -> Result<Option<Watch>> {
        let parsed = Parser::new(&GenericDialect {})
            .try_with_sql(&s.text)
            .and_then(|mut p| p.parse_statement());
        let Ok(Statement::Query(query)) = parsed else {
            return Ok(None);
        };
        {
            // Static only: DataFusion answers it.
            let engine = self.engine().lock().await;
            let state = self.session().state();
            if let Ok(plan) = state.create_logical_plan(&s.text).await
                && engine.inputs_of(&plan).is_ok_and(|i| i.is_empty())
            {
                return Ok(None);
            }
        }
        let limit = query.limit_clause.as_ref().and_then(|l| match l {
            sluice_sql::sqlparser::ast::LimitClause::LimitOffset {
                limit: Some(sluice_sql::sqlparser::ast::Expr::Value(v)),
                ..
            } => v.value.to_string().parse().ok(),
            _ => None,
        });
        let name = format!("__watch_{}", WATCHES.fetch_add(1, Ordering::SeqCst));
        let c = CreateStream {
            name: name.clone(),
            location: s.location,
            options: Options::new(s.location),
            query,
            query_location: s.location,
            emit: None,
            evict: None,
        };
        self.create_stream(&c, &s.text)
            .await
            .map_err(|e| e.in_statement(s.index, s.location))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let schema = {
            let mut engine = self.engine().lock().await;
            // A failing watch ends itself, not the job.
            let failures = tx.clone();
            engine.isolate_failures(
                &name,
                Arc::new(move |t, e| {
                    let _ = failures.send(Err(format!("at batch {t} ms: {e}")));
                }),
            );
            let added = engine.add_sink(
                &format!("{name}_sink"),
                &name,
                "watch",
                Box::new(ChannelSink(tx)),
            );
            if let Err(e) = added {
                let _ = engine.drop_node("stream", &name);
                return Err(e);
            }
            engine.relation(&name).map(|(_, schema)| schema)
        };
        let Some(schema) = schema else {
            return crate::plan_err!("watch: its stream vanished");
        };
        let watch = Watch {
            name,
            schema,
            batches: rx,
            limit,
            ssc: self.clone(),
        };
        if !self.is_started().await
            && let Err(e) = self.start().await
        {
            let _ = watch.close().await;
            return Err(e);
        }
        Ok(Some(watch))
    }
}

impl Watch {
    /// Removes the watch's sink and stream; the job goes on.
    pub async fn close(self) -> Result<()> {
        let mut engine = self.ssc.engine().lock().await;
        engine.drop_node("sink", &format!("{}_sink", self.name))?;
        engine.drop_node("stream", &self.name)?;
        Ok(())
    }
}
