//! Running statements: `StreamingContext::sql` applies each statement of a
//! script to the stream graph (sluice's own statements) or hands it to
//! DataFusion (static tables, settings, queries over static tables).
//!
//! Errors name the statement's number, line and column (the exact place when
//! the parser or DataFusion knows it).

use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::TableReference;
use datafusion::sql::parser::Statement as DFStatement;
use sluice_sql::sqlparser::ast::{Statement, TableObject};
use sluice_sql::sqlparser::dialect::GenericDialect;
use sluice_sql::sqlparser::parser::Parser;
use sluice_sql::{
    CreateSink, CreateSource, CreateStream, EmitMode, ExplainStream, LocatedStatement, SetVariable,
    SluiceStatement, parse_duration, parse_script,
};

use crate::conform::conform_to_schema;
use crate::context::StreamingContext;
use crate::error::{Result, SluiceError, plan_error_at};
use crate::sink::{SinkContext, SinkSpec};
use crate::slot::{BatchSlot, SlotTable, WINDOW_END, WINDOW_START};
use crate::source::{SourceContext, SourceSpec};
use crate::state::evict::{add_evict_column, output_names as evict_names, split_evict_plan};
use crate::state::seed::seed_values;
use crate::state::{KeyedOptions, KeyedStream, TIMED_OUT};
use crate::stateful::StatefulStream;
use crate::wildcard::hide_columns;
use crate::window::rewrite::{WindowCall, replace_window_calls};
use crate::window::split::{AggregateSplit, split_aggregate_over};
use crate::window::{WindowSpec, WindowedStream};

/// The options of a keyed (`EMIT`) stream.
const STATE_TIMEOUT: &str = "state_timeout";
const INITIAL_STATE: &str = "initial_state";

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
            SluiceStatement::ExplainStream(e) => self.explain_stream(e).await,
            SluiceStatement::Show(show) => self.show(show).await,
            SluiceStatement::Drop(d) => self.drop_node(d).await,
            SluiceStatement::Describe(d) => match self.describe(d).await? {
                Some(out) => Ok(out),
                // Not part of the job: a static table, for DataFusion.
                None => self.run_datafusion(s).await,
            },
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
            "checkpoint" => {
                self.checkpoint(&set.value).await.map_err(|e| {
                    plan_error_at(format!("SET checkpoint: {}", e.message()), set.location)
                })?;
                Ok(StatementOutput::Done(format!(
                    "checkpoint = '{}'",
                    set.value
                )))
            }
            "checkpoint_interval" => {
                let d = parse_duration(&set.value).map_err(|m| {
                    plan_error_at(format!("checkpoint_interval: {m}"), set.location)
                })?;
                self.checkpoint_interval(d).await.map_err(|e| {
                    plan_error_at(
                        format!("SET checkpoint_interval: {}", e.message()),
                        set.location,
                    )
                })?;
                Ok(StatementOutput::Done(format!(
                    "checkpoint_interval = {}",
                    sluice_sql::format_duration(d)
                )))
            }
            other => Err(plan_error_at(
                format!("unknown setting '{other}'"),
                set.location,
            )),
        }
    }

    async fn create_source(&self, c: &CreateSource) -> Result<StatementOutput> {
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
        engine.set_options(&c.name, options_text(&c.options));
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

    /// `CREATE STREAM` (also a watch's hidden stream).
    pub(crate) async fn create_stream(
        &self,
        c: &CreateStream,
        text: &str,
    ) -> Result<StatementOutput> {
        let keyed_options: &[&str] = if c.emit.is_some() {
            &[STATE_TIMEOUT, INITIAL_STATE]
        } else {
            &[]
        };
        if c.emit.is_none()
            && let Some(o) = [STATE_TIMEOUT, INITIAL_STATE]
                .iter()
                .find_map(|k| c.options.entry(k))
        {
            return Err(plan_error_at(
                format!(
                    "stream '{}': option '{}' is for running aggregates (... GROUP BY ... EMIT CHANGES | EMIT SNAPSHOT)",
                    c.name, o.key
                ),
                o.location,
            ));
        }
        c.options
            .check_known(&format!("stream '{}'", c.name), keyed_options)?;
        let mut query = c.query.clone();
        let window_table = {
            let engine = self.engine().lock().await;
            engine
                .check_name_free(&c.name, "stream")
                .map_err(|e| at(e, c.location))?;
            window_table_name(&c.name)
        };
        let calls = {
            let state = self.session().state();
            replace_window_calls(&mut query, &window_table, &|f: &str| {
                state.aggregate_functions().contains_key(f)
            })?
        };
        if let Some(second) = calls.get(1) {
            return Err(plan_error_at(
                format!(
                    "stream '{}' reads more than one window(); a stream reads one window (make another stream for the other)",
                    c.name
                ),
                second.location,
            ));
        }
        if let Some(mode) = c.emit {
            if let Some(call) = calls.first() {
                return Err(plan_error_at(
                    "EMIT CHANGES / EMIT SNAPSHOT keep running aggregates over all batches; a window() query is recomputed per window and takes no EMIT",
                    call.location,
                ));
            }
            return self.create_keyed_stream(c, text, mode, query).await;
        }
        let window = match calls.first() {
            Some(call) => Some(self.register_window_table(c, call, &window_table).await?),
            None => None,
        };
        let registered = window.is_some();
        let window_input = calls.first().map(|call| call.input.clone());
        let planned = self
            .plan_stream_query(c, query, &window_table, window_input.as_deref())
            .await;
        let result = match (planned, window) {
            (Err(e), _) => Err(e),
            (Ok(logical), None) => {
                let mut engine = self.engine().lock().await;
                engine
                    .add_stream(&c.name, &logical, text.to_string())
                    .await
                    .map_err(|e| at(e, c.location))
            }
            (Ok(logical), Some((spec, slot))) => {
                self.add_windowed_stream(c, text, spec, &window_table, slot, logical)
                    .await
            }
        };
        if result.is_err() && registered {
            let _ = self
                .session()
                .deregister_table(TableReference::bare(window_table.as_str()));
        }
        result?;
        if registered {
            // Dropped with the stream.
            self.engine()
                .lock()
                .await
                .add_owned_table(&c.name, window_table);
        }
        Ok(StatementOutput::Done(format!("stream {}", c.name)))
    }

    /// `... GROUP BY ... EMIT CHANGES | EMIT SNAPSHOT`: running aggregates
    /// per key over one source or stream.
    async fn create_keyed_stream(
        &self,
        c: &CreateStream,
        text: &str,
        mode: EmitMode,
        mut query: Box<sluice_sql::sqlparser::ast::Query>,
    ) -> Result<StatementOutput> {
        let emit = match mode {
            EmitMode::Changes => "EMIT CHANGES",
            EmitMode::Snapshot => "EMIT SNAPSHOT",
        };
        if let Some(evict) = &c.evict {
            add_evict_column(&mut query, &evict.predicate).map_err(|reason| {
                plan_error_at(format!("stream '{}': {reason}", c.name), evict.location)
            })?;
        }
        let logical = match self.plan_stream_query(c, query, "", None).await {
            Ok(logical) => logical,
            // An unknown name in the predicate: say which names it may use.
            Err(e)
                if e.message().contains("No field named")
                    && let (Some(evict), Some(at)) = (&c.evict, e.location())
                    && at >= evict.location =>
            {
                let names = evict_names(&c.query).join(", ");
                let message = format!(
                    "{} (EVICT WHEN may use the stream's output names: {names}; its input's columns; and aggregates)",
                    e.message()
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim_end_matches('.')
                );
                return Err(plan_error_at(message, at));
            }
            Err(e) => return Err(e),
        };
        let mut engine = self.engine().lock().await;
        let inputs = engine.inputs_of(&logical)?;
        let [input] = inputs.as_slice() else {
            return Err(plan_error_at(
                format!(
                    "stream '{}': {emit} keeps running aggregates over one source or stream; the query reads {}",
                    c.name,
                    if inputs.is_empty() {
                        "none".to_string()
                    } else {
                        inputs.join(", ")
                    }
                ),
                c.query_location,
            ));
        };
        let state = self.session().state();
        let analyzed =
            state
                .analyzer()
                .execute_and_check(logical, state.config_options(), |_, _| {})?;
        let (analyzed, evict) = match &c.evict {
            Some(e) => {
                let (main, evict) = split_evict_plan(&analyzed).map_err(|err| {
                    let reason = match &err {
                        datafusion::error::DataFusionError::Plan(m) => m.clone(),
                        other => other.strip_backtrace(),
                    };
                    plan_error_at(format!("stream '{}': {reason}", c.name), e.location)
                })?;
                (main, Some(evict))
            }
            None => (analyzed, None),
        };
        let split = split_aggregate_over(&analyzed, input, false).map_err(|reason| {
            plan_error_at(
                format!(
                    "stream '{}': {emit} needs an aggregate (GROUP BY) over the rows of '{input}': {reason}",
                    c.name
                ),
                c.query_location,
            )
        })?;
        let options = self.keyed_options(c, &split, &analyzed, evict).await?;
        let keyed = KeyedStream::new(
            self.session(),
            input,
            mode,
            &split,
            &analyzed,
            engine.parallel_threshold,
            options,
        )
        .await?;
        engine
            .add_stateful_stream(&c.name, StatefulStream::Keyed(keyed), text.to_string())
            .map_err(|e| at(e, c.location))?;
        Ok(StatementOutput::Done(format!("stream {}", c.name)))
    }

    /// `WITH (state_timeout, initial_state)` and `EVICT WHEN` of a keyed
    /// stream, checked against its aggregate.
    async fn keyed_options(
        &self,
        c: &CreateStream,
        split: &AggregateSplit,
        analyzed: &datafusion::logical_expr::LogicalPlan,
        evict: Option<datafusion::logical_expr::LogicalPlan>,
    ) -> Result<KeyedOptions> {
        let keyless = |what: &str, location| {
            Err(plan_error_at(
                format!(
                    "stream '{}': {what} needs keys to drop (GROUP BY); a global aggregate has one running value",
                    c.name
                ),
                location,
            ))
        };
        if split.keys.is_empty() {
            if let Some(e) = &c.evict {
                return keyless("EVICT WHEN", e.location);
            }
            if let Some(o) = c.options.entry(STATE_TIMEOUT) {
                return keyless("state_timeout", o.location);
            }
        }
        let timeout = c
            .options
            .get_duration(STATE_TIMEOUT)?
            .map(|d| {
                if d.is_zero() {
                    Err(plan_error_at(
                        format!("stream '{}': state_timeout must be longer than 0", c.name),
                        option_place(&c.options, STATE_TIMEOUT),
                    ))
                } else {
                    Ok(d)
                }
            })
            .transpose()?;
        if timeout.is_some()
            && analyzed
                .schema()
                .has_column_with_unqualified_name(TIMED_OUT)
        {
            return Err(plan_error_at(
                format!(
                    "stream '{}' has a column named '{TIMED_OUT}', which state_timeout adds; rename it",
                    c.name
                ),
                c.query_location,
            ));
        }
        let seed = match c.options.get(INITIAL_STATE) {
            Some(table) => Some(
                seed_values(self.session(), table, split, analyzed)
                    .await
                    .map_err(|reason| {
                        plan_error_at(
                            format!("stream '{}': initial_state '{table}': {reason}", c.name),
                            option_place(&c.options, INITIAL_STATE),
                        )
                    })?,
            ),
            None => None,
        };
        Ok(KeyedOptions {
            timeout,
            seed,
            evict,
        })
    }

    /// Plans a stream's query, `SELECT *` leaving out the columns slot
    /// tables add.
    async fn plan_stream_query(
        &self,
        c: &CreateStream,
        mut query: Box<sluice_sql::sqlparser::ast::Query>,
        window_table: &str,
        window_input: Option<&str>,
    ) -> Result<datafusion::logical_expr::LogicalPlan> {
        {
            let engine = self.engine().lock().await;
            hide_columns(&mut query, &|name: &str| {
                let mut hidden = Vec::new();
                if name == window_table {
                    if window_input.is_some_and(|i| engine.adds_batch_time(i)) {
                        hidden.push(crate::slot::BATCH_TIME);
                    }
                    hidden.extend([WINDOW_START, WINDOW_END]);
                } else if engine.adds_batch_time(name) {
                    hidden.push(crate::slot::BATCH_TIME);
                }
                hidden
            });
        }
        let statement = DFStatement::Statement(Box::new(Statement::Query(query)));
        self.session()
            .state()
            .statement_to_plan(statement)
            .await
            .map_err(|e| {
                let loc = SluiceError::DataFusion(e);
                let location = loc.location().unwrap_or(c.query_location);
                plan_error_at(loc.message(), location)
            })
    }

    /// Registers the table a stream's `window(...)` reads.
    async fn register_window_table(
        &self,
        c: &CreateStream,
        call: &WindowCall,
        table: &str,
    ) -> Result<(WindowSpec, Arc<BatchSlot>)> {
        let engine = self.engine().lock().await;
        let Some((_, schema)) = engine.relation(&call.input) else {
            return Err(plan_error_at(
                format!(
                    "window(): '{}' is not a source or stream; known: {}",
                    call.input,
                    engine.relation_names().join(", ")
                ),
                call.location,
            ));
        };
        if let Some(bound) = [WINDOW_START, WINDOW_END]
            .into_iter()
            .find(|b| schema.column_with_name(b).is_some())
        {
            return Err(plan_error_at(
                format!(
                    "window(): '{}' has a column named '{bound}', which a window adds; rename it",
                    call.input
                ),
                call.location,
            ));
        }
        let spec = WindowSpec::new(&call.input, call.length, call.slide);
        spec.check(&c.name, engine.batch_interval)
            .map_err(|m| plan_error_at(m, call.location))?;
        let input_slide = engine.slide_of(&call.input);
        if input_slide != engine.batch_interval {
            spec.check_over(&c.name, input_slide, engine.batch_interval)
                .map_err(|m| plan_error_at(m, call.location))?;
        }
        let slot = BatchSlot::new();
        let provider = Arc::new(SlotTable::windowed(schema, Arc::clone(&slot)));
        self.session()
            .register_table(TableReference::bare(table), provider)?;
        Ok((spec, slot))
    }

    async fn add_windowed_stream(
        &self,
        c: &CreateStream,
        text: &str,
        spec: WindowSpec,
        window_table: &str,
        slot: Arc<BatchSlot>,
        logical: datafusion::logical_expr::LogicalPlan,
    ) -> Result<()> {
        let mut engine = self.engine().lock().await;
        if let Some(other) = engine.inputs_of(&logical)?.first() {
            return Err(plan_error_at(
                format!(
                    "stream '{}' reads a window and '{other}': a windowed stream reads only its window and static tables",
                    c.name
                ),
                c.query_location,
            ));
        }
        let state = self.session().state();
        let analyzed =
            state
                .analyzer()
                .execute_and_check(logical, state.config_options(), |_, _| {})?;
        let input_slide = engine.slide_of(&spec.input);
        let windowed = WindowedStream::new(
            self.session(),
            spec,
            window_table,
            slot,
            &analyzed,
            engine.parallel_threshold,
            input_slide,
        )
        .await?;
        engine
            .add_stateful_stream(&c.name, StatefulStream::Window(windowed), text.to_string())
            .map_err(|e| at(e, c.location))
    }

    /// `EXPLAIN <stream>`: what it reads, its window and each aggregate's
    /// strategy, and its physical plans, as `(item, detail)` rows.
    async fn explain_stream(&self, e: &ExplainStream) -> Result<StatementOutput> {
        let engine = self.engine().lock().await;
        let Some(stream) = engine.streams.iter().find(|s| s.name == e.name) else {
            return Err(plan_error_at(
                format!(
                    "EXPLAIN {}: no such stream; streams: {}",
                    e.name,
                    engine
                        .streams
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                e.location,
            ));
        };
        let mut rows = vec![
            ("stream".to_string(), stream.name.clone()),
            ("reads".to_string(), stream.inputs.join(", ")),
        ];
        if let Some(state) = &stream.stateful {
            rows.extend(state.lock().await.explain(engine.batch_interval));
        }
        if let Some(plan) = &stream.plan {
            rows.push(("plan".to_string(), plan.display()));
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("item", DataType::Utf8, false),
            Field::new("detail", DataType::Utf8, false),
        ]));
        let (items, details): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(items)),
                Arc::new(StringArray::from(details)),
            ],
        )?;
        Ok(StatementOutput::Rows {
            schema,
            batches: vec![batch],
        })
    }

    async fn create_sink(&self, c: &CreateSink) -> Result<StatementOutput> {
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
        engine.set_options(&c.name, options_text(&c.options));
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

/// The name of the table a stream's window is read from: unique (streams
/// come and go), and a plain lower-case identifier whatever the stream's name.
fn window_table_name(stream: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let stream_number = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let plain: String = stream
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("__window_{stream_number}_{plain}")
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

/// `key = 'value', ...` as written (for DESCRIBE), passwords masked.
fn options_text(options: &sluice_sql::Options) -> String {
    options
        .iter()
        .map(|o| format!("{} = '{}'", o.key, masked(&o.key, &o.value)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `value` with any password in it as `***`: an option named like a
/// secret, `user:password@` in a URL, `password=...` in a libpq string.
fn masked(key: &str, value: &str) -> String {
    let key = key.to_ascii_lowercase();
    if key.contains("password") || key.contains("secret") {
        return "***".into();
    }
    if let Some((scheme, rest)) = value.split_once("://")
        && let Some((credentials, host)) = rest.split_once('@')
        && let Some((user, _)) = credentials.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    value
        .split(' ')
        .map(|part| match part.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod masked_tests {
    use super::masked;

    #[test]
    fn passwords_are_masked_wherever_they_are_written() {
        assert_eq!(
            masked("url", "postgres://app:s3cret@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            masked("url", "host=db password=s3cret user=app"),
            "host=db password=*** user=app"
        );
        assert_eq!(masked("sasl.password", "s3cret"), "***");
        assert_eq!(masked("path", "s3://bucket/dir"), "s3://bucket/dir");
        assert_eq!(masked("url", "postgres://app@db/x"), "postgres://app@db/x");
    }
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
