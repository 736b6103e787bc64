//! Running statements: `StreamingContext::sql` applies each statement of a
//! script to the stream graph (sluice's own statements) or hands it to
//! DataFusion (static tables, settings, queries over static tables).
//!
//! Errors name the statement's number, line and column (the exact place when
//! the parser or DataFusion knows it).

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::sql::parser::Statement as DFStatement;
use sluice_sql::sqlparser::ast::{Statement, TableObject};
use sluice_sql::sqlparser::dialect::GenericDialect;
use sluice_sql::sqlparser::parser::Parser;
use sluice_sql::{
    CreateSink, CreateSource, CreateStream, LocatedStatement, SetVariable, SluiceStatement,
    parse_duration, parse_script,
};

use crate::conform::conform_to_schema;
use crate::context::StreamingContext;
use crate::error::{Result, SluiceError, plan_error_at};
use crate::sink::{SinkContext, SinkSpec};
use crate::source::{SourceContext, SourceSpec};
use crate::wildcard::hide_batch_time;

/// What a statement gave back.
#[derive(Debug)]
pub enum StatementOutput {
    /// Rows of a query over static tables.
    Rows {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    /// A statement that changes something; the text says what.
    Done(String),
}

impl StreamingContext {
    /// Runs the statements of `script` in order; stops at the first error,
    /// which names the statement, line and column.
    pub async fn sql(&self, script: &str) -> Result<Vec<StatementOutput>> {
        let statements = parse_script(script).map_err(|e| {
            let statement = sluice_sql::split_statements(script)
                .map(|s| {
                    s.iter()
                        .take_while(|s| s.location <= e.location)
                        .count()
                        .max(1)
                })
                .unwrap_or(1);
            SluiceError::Sql(e).in_statement(statement, Default::default())
        })?;
        let mut out = Vec::with_capacity(statements.len());
        for s in &statements {
            let result = self.execute_statement(s).await;
            out.push(result.map_err(|e| e.in_statement(s.index, s.location))?);
        }
        Ok(out)
    }

    /// Runs one parsed statement.
    pub async fn execute_statement(&self, s: &LocatedStatement) -> Result<StatementOutput> {
        match &s.statement {
            SluiceStatement::Set(set) => self.set_variable(set).await,
            SluiceStatement::CreateSource(c) => self.create_source(c).await,
            SluiceStatement::CreateStream(c) => self.create_stream(c, &s.text).await,
            SluiceStatement::CreateSink(c) => self.create_sink(c).await,
            SluiceStatement::DataFusion => self.run_datafusion(s).await,
        }
    }

    async fn set_variable(&self, set: &SetVariable) -> Result<StatementOutput> {
        match set.name.as_str() {
            "batch_interval" => {
                let d = parse_duration(&set.value)
                    .map_err(|m| plan_error_at(format!("batch_interval: {m}"), set.location))?;
                self.set_batch_interval(d).await?;
                Ok(StatementOutput::Done(format!(
                    "batch_interval = {}",
                    sluice_sql::format_duration(d)
                )))
            }
            "checkpoint" => Err(plan_error_at(
                "SET checkpoint: checkpointing and recovery are not available in this version of sluice yet",
                set.location,
            )),
            other => Err(plan_error_at(
                format!("unknown setting '{other}'"),
                set.location,
            )),
        }
    }

    async fn create_source(&self, c: &CreateSource) -> Result<StatementOutput> {
        self.check_not_started("create a source").await?;
        let connector = c
            .options
            .require("connector", &format!("source '{}'", c.name))?
            .to_ascii_lowercase();
        let declared_schema = self.declared_schema(c).await?;
        let mut engine = self.engine().lock().await;
        engine
            .check_name_free(&c.name, "source")
            .map_err(|e| at(e, c.location))?;
        let factory = engine
            .registry
            .source(&connector)
            .map_err(|e| at(e, option_place(&c.options, "connector")))?;
        check_connector_options(
            &c.options,
            &format!("the '{connector}' source"),
            factory.option_names(),
        )?;
        let ctx = SourceContext {
            session: self.session().clone(),
            batch_interval: engine.batch_interval,
        };
        let spec = SourceSpec {
            name: c.name.clone(),
            declared_schema,
            options: c.options.clone(),
        };
        let source = factory
            .create(spec, &ctx)
            .await
            .map_err(|e| at(e, c.options.location))?;
        engine
            .add_source(&c.name, &connector, source)
            .map_err(|e| at(e, c.location))?;
        Ok(StatementOutput::Done(format!(
            "source {} ({connector})",
            c.name
        )))
    }

    /// The schema of `CREATE SOURCE s (a INT, ...)`, typed as DataFusion types SQL.
    async fn declared_schema(&self, c: &CreateSource) -> Result<Option<SchemaRef>> {
        if c.columns.is_empty() {
            return Ok(None);
        }
        let mut fields = Vec::with_capacity(c.columns.len());
        for col in &c.columns {
            if col.name == crate::slot::BATCH_TIME {
                return Err(plan_error_at(
                    "'batch_time' is a column every source gets by itself; pick another name",
                    col.location,
                ));
            }
            let sql = format!("SELECT CAST(NULL AS {}) AS x", col.data_type);
            let df = self.session().sql(&sql).await.map_err(|e| {
                plan_error_at(
                    format!("column '{}': {}", col.name, e.strip_backtrace()),
                    col.location,
                )
            })?;
            let data_type = df.schema().field(0).data_type().clone();
            fields.push(Field::new(&col.name, data_type, true));
        }
        Ok(Some(Arc::new(Schema::new(fields))))
    }

    async fn create_stream(&self, c: &CreateStream, text: &str) -> Result<StatementOutput> {
        self.check_not_started("create a stream").await?;
        if c.emit.is_some() {
            return Err(plan_error_at(
                "EMIT CHANGES / EMIT SNAPSHOT (keyed state across batches) is not available in this version of sluice yet",
                c.location,
            ));
        }
        c.options
            .check_known(&format!("stream '{}'", c.name), &[])?;
        let mut query = c.query.clone();
        {
            let engine = self.engine().lock().await;
            hide_batch_time(&mut query, &|name: &str| engine.adds_batch_time(name));
        }
        let statement = DFStatement::Statement(Box::new(Statement::Query(query)));
        let logical = self
            .session()
            .state()
            .statement_to_plan(statement)
            .await
            .map_err(|e| {
                let loc = SluiceError::DataFusion(e);
                let location = loc.location().unwrap_or(c.query_location);
                plan_error_at(loc.message(), location)
            })?;
        let mut engine = self.engine().lock().await;
        engine
            .add_stream(&c.name, &logical, text.to_string())
            .await
            .map_err(|e| at(e, c.location))?;
        Ok(StatementOutput::Done(format!("stream {}", c.name)))
    }

    async fn create_sink(&self, c: &CreateSink) -> Result<StatementOutput> {
        self.check_not_started("create a sink").await?;
        let connector = c
            .options
            .require("connector", &format!("sink '{}'", c.name))?
            .to_ascii_lowercase();
        let mut engine = self.engine().lock().await;
        let Some((_, schema)) = engine.relation(&c.from) else {
            return Err(plan_error_at(
                format!(
                    "sink '{}' reads '{}', which is not a source or stream; known: {}",
                    c.name,
                    c.from,
                    engine.relation_names().join(", ")
                ),
                c.from_location,
            ));
        };
        engine
            .check_name_free(&c.name, "sink")
            .map_err(|e| at(e, c.location))?;
        let factory = engine
            .registry
            .sink(&connector)
            .map_err(|e| at(e, option_place(&c.options, "connector")))?;
        check_connector_options(
            &c.options,
            &format!("the '{connector}' sink"),
            factory.option_names(),
        )?;
        let ctx = SinkContext {
            session: self.session().clone(),
            console: engine.console.clone(),
        };
        let spec = SinkSpec {
            name: c.name.clone(),
            from: c.from.clone(),
            schema,
            options: c.options.clone(),
        };
        let sink = factory
            .create(spec, &ctx)
            .await
            .map_err(|e| at(e, c.options.location))?;
        engine
            .add_sink(&c.name, &c.from, &connector, sink)
            .map_err(|e| at(e, c.location))?;
        Ok(StatementOutput::Done(format!(
            "sink {} ({connector}) from {}",
            c.name, c.from
        )))
    }

    /// A statement for DataFusion; `INSERT INTO <queue source>` queues rows.
    async fn run_datafusion(&self, s: &LocatedStatement) -> Result<StatementOutput> {
        let text = s.positioned_text();
        if let Some(out) = self.insert_into_queue(&text).await? {
            return Ok(out);
        }
        // Plan first: a statement that reads a source or stream is refused
        // before anything (CREATE TABLE AS, say) runs.
        let plan = self.session().state().create_logical_plan(&text).await?;
        let engine = self.engine().lock().await;
        let streams = engine.inputs_of(&plan)?;
        if let Some(name) = streams.first() {
            return crate::plan_err!(
                "'{name}' is a source or stream, whose rows change every batch; query it with \
                 CREATE STREAM ... AS SELECT ... FROM {name} and a CREATE SINK"
            );
        }
        drop(engine);
        let df = self.session().execute_logical_plan(plan).await?;
        // DDL runs inside `sql()` and leaves an empty relation with no columns.
        let is_query = !df.schema().fields().is_empty();
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await?;
        Ok(if is_query {
            StatementOutput::Rows { schema, batches }
        } else {
            StatementOutput::Done("OK".into())
        })
    }

    async fn insert_into_queue(&self, text: &str) -> Result<Option<StatementOutput>> {
        let Ok(mut parsed) = Parser::parse_sql(&GenericDialect {}, text) else {
            return Ok(None);
        };
        let Some(Statement::Insert(insert)) = parsed.pop() else {
            return Ok(None);
        };
        let TableObject::TableName(name) = &insert.table else {
            return Ok(None);
        };
        let Some(ident) = name.0.last().and_then(|p| p.as_ident()) else {
            return Ok(None);
        };
        let table = sluice_sql::normalize_ident(ident);
        let handle = {
            let engine = self.engine().lock().await;
            match engine.sources.iter().find(|s| s.name == table) {
                None => return Ok(None),
                Some(node) => node.queue.clone().ok_or_else(|| {
                    SluiceError::Config(format!(
                        "cannot INSERT INTO source '{table}': only 'queue' sources take rows from INSERT"
                    ))
                })?,
            }
        };
        let Some(query) = insert.source.clone() else {
            return crate::plan_err!("INSERT INTO {table} needs VALUES or a SELECT");
        };
        let statement = DFStatement::Statement(Box::new(Statement::Query(query)));
        let plan = self.session().state().statement_to_plan(statement).await?;
        let batches = self
            .session()
            .execute_logical_plan(plan)
            .await?
            .collect()
            .await?;
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        let converted = conform_to_schema(batches, &handle.schema(), &format!("source '{table}'"))?;
        handle.push_all(converted)?;
        Ok(Some(StatementOutput::Done(format!(
            "queued {rows} rows into {table}"
        ))))
    }
}

/// Fails on an option that is neither `connector` nor one the connector takes.
fn check_connector_options(
    options: &sluice_sql::Options,
    what: &str,
    accepted: &[&str],
) -> Result<()> {
    let mut known = vec!["connector"];
    known.extend_from_slice(accepted);
    Ok(options.check_known(what, &known)?)
}

fn option_place(options: &sluice_sql::Options, key: &str) -> sluice_sql::Location {
    options
        .entry(key)
        .map(|e| e.location)
        .unwrap_or(options.location)
}

/// Gives an error without a place the statement's place.
fn at(e: SluiceError, location: sluice_sql::Location) -> SluiceError {
    match e.location() {
        Some(_) => e,
        None => plan_error_at(e.message(), location),
    }
}
