//! The stream graph and one batch's work.
//!
//! Sources feed streams, streams feed streams and sinks. Each node has a
//! [`BatchSlot`] that holds its current batch, registered in the DataFusion
//! session as a table under the node's name. A batch is: put each source's
//! rows in its slot, run each needed stream's plan (creation order is a
//! topological order: a stream can only read what exists), hand each sink its
//! stream's batch, clear the slots.
//!
//! Lazy, as Spark's DStream graph: a stream that no sink depends on is not run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use tokio::sync::Mutex;

use crate::error::{Result, SluiceError};
use crate::metrics::BatchInfo;
use crate::offsets::{OffsetRange, OffsetsFunction};
use crate::plan::StreamPlan;
use crate::queue::QueueHandle;
use crate::registry::ConnectorRegistry;
use crate::sink::{ConsoleOutput, Sink};
use crate::slot::{BATCH_TIME, BatchSlot, SlotTable};
use crate::source::Source;
use crate::stateful::StatefulStream;

/// A source as the engine keeps it.
pub struct SourceNode {
    pub name: String,
    pub connector: String,
    /// Its `WITH (...)` options as written (empty for Rust-made sources).
    pub options: String,
    pub source: Arc<Mutex<Box<dyn Source>>>,
    pub schema: SchemaRef,
    pub slot: Arc<BatchSlot>,
    /// The offset ranges of its batch (`offsets(<source>)`), for a source
    /// that has them.
    pub offsets: Option<Arc<BatchSlot>>,
    pub queue: Option<QueueHandle>,
}

/// A stream: a query over sources, streams and static tables.
pub struct StreamNode {
    pub name: String,
    /// The sources and streams it reads, by name.
    pub inputs: Vec<String>,
    /// Its plan (none for a stream kept by a Rust function).
    pub plan: Option<StreamPlan>,
    /// What it emits (its plan's output, plus what a stateful stream adds).
    pub schema: SchemaRef,
    pub slot: Arc<BatchSlot>,
    /// The query as written (or a description, for Rust `transform`s).
    pub definition: String,
    /// A stream over `window(...)`, or of running aggregates (`EMIT`),
    /// keeps state between batches.
    pub stateful: Option<Arc<Mutex<StatefulStream>>>,
    /// How often it emits: the batch interval, a window's slide, or for a
    /// stream of windows the least common multiple of its inputs' slides.
    pub slide: Duration,
    /// Internal tables dropped with it (its window's).
    pub owned_tables: Vec<String>,
    /// Where its failures go instead of stopping the job (a watch's).
    pub on_failure: Option<FailureHandler>,
}

/// Told of a stream's failure at a batch time, instead of the job stopping.
pub type FailureHandler = Arc<dyn Fn(i64, String) + Send + Sync>;

/// A sink and the stream (or source) it reads.
pub struct SinkNode {
    pub name: String,
    pub from: String,
    pub connector: String,
    /// Its `WITH (...)` options as written (empty for Rust-made sinks).
    pub options: String,
    pub sink: SharedSink,
    /// The sources it reads, itself or through streams (set by
    /// `find_needed`): whose offset ranges it gets.
    sources: Vec<String>,
}

/// The rows of one batch, cut from every source.
pub struct CutBatch {
    pub batch_time: i64,
    /// Each source's rows, by name (sources may come and go while a job
    /// runs).
    pub inputs: Vec<(String, Vec<RecordBatch>)>,
    pub cut_at: Instant,
    /// How long the sources took to cut it.
    pub input_time: Duration,
    /// `cut_at` on the wall clock (ms since the Unix epoch).
    pub cut_at_ms: i64,
    /// Each source's position after this cut, by name (only with a
    /// checkpoint); `None` for a source that cannot resume.
    pub positions: Vec<(String, Option<serde_json::Value>)>,
    /// The offset ranges of the sources that have them, by name.
    pub offset_ranges: Vec<(String, Vec<OffsetRange>)>,
}

/// The sources a running job cuts, by name.
pub type LiveSources = Arc<std::sync::RwLock<Vec<(String, Arc<Mutex<Box<dyn Source>>>)>>>;

/// The graph and everything needed to run a batch through it.
pub struct Engine {
    pub session: SessionContext,
    pub batch_interval: Duration,
    pub registry: ConnectorRegistry,
    pub console: ConsoleOutput,
    pub sources: Vec<SourceNode>,
    pub streams: Vec<StreamNode>,
    pub sinks: Vec<SinkNode>,
    /// `offsets(<source>)`, registered in the session.
    offsets: Arc<OffsetsFunction>,
    /// Indices of the streams some sink depends on, in run order (set by `prepare`).
    needed: Vec<usize>,
    /// Input row count at or above which streams run their partitioned plan.
    pub parallel_threshold: usize,
    /// The first batch's time minus the interval: every window's zero time.
    zero_time: Option<i64>,
    live_sources: LiveSources,
    /// A checkpoint will ask stateful streams for their changes, and every
    /// source for its position.
    recording_state: bool,
    /// The checkpoint's directory on this machine, for write-ahead logs.
    checkpoint_dir: Option<std::path::PathBuf>,
    /// Some source keeps a write-ahead log in the checkpoint.
    keeps_logs: bool,
}

impl Engine {
    pub fn new(
        session: SessionContext,
        batch_interval: Duration,
        registry: ConnectorRegistry,
    ) -> Self {
        let offsets = Arc::new(OffsetsFunction::default());
        session.register_udtf(crate::offsets::FUNCTION, Arc::clone(&offsets) as _);
        crate::split::register(&session);
        Self {
            session,
            offsets,
            batch_interval,
            registry,
            console: ConsoleOutput::Stdout,
            sources: Vec::new(),
            streams: Vec::new(),
            sinks: Vec::new(),
            needed: Vec::new(),
            parallel_threshold: crate::plan::DEFAULT_PARALLEL_THRESHOLD,
            zero_time: None,
            live_sources: Arc::default(),
            recording_state: false,
            checkpoint_dir: None,
            keeps_logs: false,
        }
    }

    /// Makes every source and stateful stream, and those added later,
    /// keep what a checkpoint saves (`dir`: the checkpoint's directory on
    /// this machine, for write-ahead logs). A source that cannot is refused.
    pub async fn record_state(
        &mut self,
        dir: Option<std::path::PathBuf>,
    ) -> std::result::Result<(), String> {
        for s in &self.sources {
            let mut source = s.source.lock().await;
            crate::checkpoint::make_resumable(
                &mut **source,
                &s.name,
                &s.connector,
                dir.as_deref(),
            )?;
        }
        self.recording_state = true;
        self.checkpoint_dir = dir;
        for s in &self.streams {
            if let Some(state) = &s.stateful {
                state.lock().await.record_changes();
            }
        }
        Ok(())
    }

    /// Some source keeps a write-ahead log in the checkpoint: commits must
    /// reach the disk before the log is trimmed.
    pub fn keeps_logs(&self) -> bool {
        self.keeps_logs
    }

    /// Sets the stream's first batch time minus the interval (a resumed
    /// job's, which started before this process).
    pub fn set_zero_time(&mut self, zero: i64) {
        self.zero_time = Some(zero);
    }

    /// The slot and schema of a source or stream.
    pub fn relation(&self, name: &str) -> Option<(Arc<BatchSlot>, SchemaRef)> {
        if let Some(s) = self.sources.iter().find(|s| s.name == name) {
            return Some((Arc::clone(&s.slot), Arc::clone(&s.schema)));
        }
        self.streams
            .iter()
            .find(|s| s.name == name)
            .map(|s| (Arc::clone(&s.slot), Arc::clone(&s.schema)))
    }

    /// How often the source or stream `name` has rows: the batch interval,
    /// or a window's slide (a stream of a window has nothing between slides).
    pub fn slide_of(&self, name: &str) -> Duration {
        self.streams
            .iter()
            .find(|s| s.name == name)
            .map_or(self.batch_interval, |s| s.slide)
    }

    /// Whether `name` is a source or stream whose `batch_time` column is added
    /// by its slot table (rather than selected by the stream itself).
    pub fn adds_batch_time(&self, name: &str) -> bool {
        self.relation(name)
            .is_some_and(|(_, schema)| schema.column_with_name(BATCH_TIME).is_none())
    }

    pub fn is_relation(&self, name: &str) -> bool {
        self.relation(name).is_some()
    }

    /// Fails when `name` is taken by a table, source, stream or sink.
    pub fn check_name_free(&self, name: &str, what: &str) -> Result<()> {
        let taken = self.is_relation(name)
            || self.sinks.iter().any(|s| s.name == name)
            || self
                .session
                .table_exist(TableReference::bare(name))
                .unwrap_or(false);
        if taken {
            return crate::plan_err!("cannot create {what} '{name}': the name is already taken");
        }
        Ok(())
    }

    fn register_slot(&self, name: &str, schema: SchemaRef, slot: Arc<BatchSlot>) -> Result<()> {
        let table: Arc<dyn TableProvider> = Arc::new(SlotTable::new(schema, slot));
        self.session
            .register_table(TableReference::bare(name), table)?;
        Ok(())
    }

    /// Adds a created source under `name`.
    pub fn add_source(
        &mut self,
        name: &str,
        connector: &str,
        mut source: Box<dyn Source>,
    ) -> Result<()> {
        self.check_name_free(name, "source")?;
        if self.recording_state {
            self.keeps_logs |= crate::checkpoint::make_resumable(
                &mut *source,
                name,
                connector,
                self.checkpoint_dir.as_deref(),
            )
            .map_err(|m| SluiceError::Config(format!("{m}; the job has a checkpoint")))?;
        }
        let schema = source.schema();
        if schema.column_with_name(BATCH_TIME).is_some() {
            return crate::plan_err!(
                "source '{name}' has a column named '{BATCH_TIME}', which every source gets by itself; rename it"
            );
        }
        let slot = BatchSlot::new();
        self.register_slot(name, Arc::clone(&schema), Arc::clone(&slot))?;
        let offsets = source.offset_ranges().map(|_| {
            let slot = BatchSlot::new();
            self.offsets.add(name, Arc::clone(&slot));
            slot
        });
        let queue = source.queue_handle();
        self.sources.push(SourceNode {
            name: name.to_string(),
            connector: connector.to_string(),
            options: String::new(),
            source: Arc::new(Mutex::new(source)),
            schema,
            slot,
            offsets,
            queue,
        });
        self.refresh_live_sources();
        Ok(())
    }

    /// Records an internal table to drop with stream `stream`.
    pub fn add_owned_table(&mut self, stream: &str, table: String) {
        if let Some(s) = self.streams.iter_mut().find(|s| s.name == stream) {
            s.owned_tables.push(table);
        }
    }

    /// Makes stream `stream`'s failures go to `handler` instead of stopping
    /// the job (its output is absent that batch).
    pub fn isolate_failures(&mut self, stream: &str, handler: FailureHandler) {
        if let Some(s) = self.streams.iter_mut().find(|s| s.name == stream) {
            s.on_failure = Some(handler);
        }
    }

    /// Records the `WITH (...)` options of source or sink `name`.
    pub fn set_options(&mut self, name: &str, options: String) {
        if let Some(s) = self.sources.iter_mut().find(|s| s.name == name) {
            s.options = options;
        } else if let Some(s) = self.sinks.iter_mut().find(|s| s.name == name) {
            s.options = options;
        }
    }

    /// The sources and streams a logical plan reads.
    pub fn inputs_of(&self, plan: &LogicalPlan) -> Result<Vec<String>> {
        let mut inputs: Vec<String> = Vec::new();
        plan.apply_with_subqueries(|p| {
            if let LogicalPlan::TableScan(scan) = p {
                // `offsets(s)` reads `s`.
                let part_of = source_as_provider(&scan.source).ok().and_then(|t| {
                    t.downcast_ref::<SlotTable>()
                        .and_then(|t| t.reads().map(str::to_string))
                });
                let name = part_of.unwrap_or_else(|| scan.table_name.table().to_string());
                if self.is_relation(&name) && !inputs.contains(&name) {
                    inputs.push(name);
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(inputs)
    }

    /// Adds a stream computed by `logical` (planned here, once).
    pub async fn add_stream(
        &mut self,
        name: &str,
        logical: &LogicalPlan,
        definition: String,
    ) -> Result<()> {
        self.check_name_free(name, "stream")?;
        let inputs = self.inputs_of(logical)?;
        if inputs.is_empty() {
            return crate::plan_err!(
                "stream '{name}' reads no source or stream; its FROM must name one of: {}",
                self.relation_names().join(", ")
            );
        }
        let plan = StreamPlan::new(&self.session, logical)
            .await?
            .with_parallel_threshold(self.parallel_threshold);
        let slot = BatchSlot::new();
        self.register_slot(name, plan.schema(), Arc::clone(&slot))?;
        let slide = inputs
            .iter()
            .map(|i| self.slide_of(i))
            .fold(self.batch_interval, lcm);
        self.streams.push(StreamNode {
            name: name.to_string(),
            inputs,
            schema: plan.schema(),
            plan: Some(plan),
            slot,
            definition,
            stateful: None,
            slide,
            owned_tables: Vec::new(),
            on_failure: None,
        });
        self.find_needed();
        Ok(())
    }

    /// Adds a stream that keeps state (a window, running aggregates) over
    /// the source or stream it reads.
    pub fn add_stateful_stream(
        &mut self,
        name: &str,
        mut stream: StatefulStream,
        definition: String,
    ) -> Result<()> {
        self.check_name_free(name, "stream")?;
        if self.recording_state {
            stream.record_changes();
        }
        let plan = stream.plan().cloned();
        let schema = stream.schema();
        let slot = BatchSlot::new();
        self.register_slot(name, Arc::clone(&schema), Arc::clone(&slot))?;
        // It runs only when its input has rows (a window's input: at its slides).
        let slide = lcm(
            stream.slide(self.batch_interval),
            self.slide_of(stream.input()),
        );
        self.streams.push(StreamNode {
            name: name.to_string(),
            inputs: vec![stream.input().to_string()],
            plan,
            schema,
            slot,
            definition,
            stateful: Some(Arc::new(Mutex::new(stream))),
            slide,
            owned_tables: Vec::new(),
            on_failure: None,
        });
        self.find_needed();
        Ok(())
    }

    /// Adds a created sink reading `from`.
    pub fn add_sink(
        &mut self,
        name: &str,
        from: &str,
        connector: &str,
        sink: Box<dyn Sink>,
    ) -> Result<()> {
        self.check_name_free(name, "sink")?;
        if !self.is_relation(from) {
            return crate::plan_err!(
                "sink '{name}' reads '{from}', which is not a source or stream; known: {}",
                self.relation_names().join(", ")
            );
        }
        self.sinks.push(SinkNode {
            name: name.to_string(),
            from: from.to_string(),
            connector: connector.to_string(),
            options: String::new(),
            sink: Arc::new(Mutex::new(sink)),
            sources: Vec::new(),
        });
        self.find_needed();
        Ok(())
    }

    pub fn relation_names(&self) -> Vec<String> {
        let names: Vec<String> = self
            .sources
            .iter()
            .map(|s| s.name.clone())
            .chain(self.streams.iter().map(|s| s.name.clone()))
            .collect();
        if names.is_empty() {
            vec!["(none defined yet)".to_string()]
        } else {
            names
        }
    }

    /// Checks the graph can run and works out which streams are needed.
    pub fn prepare(&mut self) -> Result<()> {
        if self.sinks.is_empty() {
            let hint = match self.streams.last() {
                Some(s) => format!(
                    "e.g. CREATE SINK out FROM {} WITH (connector = 'console')",
                    s.name
                ),
                None => {
                    "e.g. CREATE SINK out FROM <stream> WITH (connector = 'console')".to_string()
                }
            };
            return crate::plan_err!("no sink: nothing would be computed. Add a sink, {hint}");
        }
        self.find_needed();
        Ok(())
    }

    /// Which streams some sink depends on, in run order (again after the
    /// graph changes while the job runs).
    pub fn find_needed(&mut self) {
        let mut wanted: Vec<&str> = self.sinks.iter().map(|s| s.from.as_str()).collect();
        let mut needed = vec![false; self.streams.len()];
        for (i, stream) in self.streams.iter().enumerate().rev() {
            if wanted.contains(&stream.name.as_str()) {
                needed[i] = true;
                wanted.extend(stream.inputs.iter().map(String::as_str));
            }
        }
        self.needed = (0..self.streams.len()).filter(|&i| needed[i]).collect();
        let sources: Vec<Vec<String>> = self
            .sinks
            .iter()
            .map(|s| self.sources_under(&s.from))
            .collect();
        for (sink, sources) in self.sinks.iter_mut().zip(sources) {
            sink.sources = sources;
        }
    }

    /// Removes the source, stream or sink `name` (its table too). Refused,
    /// with the reason, while a stream or sink reads it. Returns the sink
    /// removed, for the caller to close.
    pub fn drop_node(&mut self, kind: &str, name: &str) -> Result<Option<SharedSink>> {
        let readers: Vec<String> = self
            .streams
            .iter()
            .filter(|s| s.inputs.iter().any(|i| i == name))
            .map(|s| format!("stream {}", s.name))
            .chain(
                self.sinks
                    .iter()
                    .filter(|s| s.from == name)
                    .map(|s| format!("sink {}", s.name)),
            )
            .collect();
        let found = match kind {
            "source" => self.sources.iter().position(|s| s.name == name),
            "stream" => self.streams.iter().position(|s| s.name == name),
            _ => self.sinks.iter().position(|s| s.name == name),
        };
        let Some(i) = found else {
            let known: Vec<String> = match kind {
                "source" => self.sources.iter().map(|s| s.name.clone()).collect(),
                "stream" => self.streams.iter().map(|s| s.name.clone()).collect(),
                _ => self.sinks.iter().map(|s| s.name.clone()).collect(),
            };
            return crate::plan_err!(
                "DROP {}: no {kind} named '{name}'; {kind}s: {}",
                kind.to_ascii_uppercase(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        };
        if kind != "sink" && !readers.is_empty() {
            return crate::plan_err!(
                "DROP {} {name}: {} read(s) it; drop {} first",
                kind.to_ascii_uppercase(),
                readers.join(", "),
                if readers.len() == 1 { "it" } else { "them" }
            );
        }
        let sink = match kind {
            "source" => {
                self.sources.remove(i);
                self.offsets.remove(name);
                self.refresh_live_sources();
                None
            }
            "stream" => {
                for table in self.streams.remove(i).owned_tables {
                    self.session.deregister_table(TableReference::bare(table))?;
                }
                None
            }
            _ => Some(self.sinks.remove(i).sink),
        };
        if kind != "sink" {
            self.session.deregister_table(TableReference::bare(name))?;
        }
        self.find_needed();
        Ok(sink)
    }

    /// The sources `name` reads, itself or through streams.
    fn sources_under(&self, name: &str) -> Vec<String> {
        let mut todo = vec![name.to_string()];
        let mut found = Vec::new();
        while let Some(n) = todo.pop() {
            if self.sources.iter().any(|s| s.name == n) {
                if !found.contains(&n) {
                    found.push(n);
                }
            } else if let Some(stream) = self.streams.iter().find(|s| s.name == n) {
                todo.extend(stream.inputs.iter().cloned());
            }
        }
        found
    }

    /// Names of the streams that run each batch, in order.
    pub fn needed_streams(&self) -> Vec<&str> {
        self.needed
            .iter()
            .map(|&i| self.streams[i].name.as_str())
            .collect()
    }

    /// Handles to the sources, for cutting batches without holding the engine.
    /// The sources the job cuts, kept up to date as sources are created
    /// and dropped (the generator reads it at each cut).
    pub fn source_handles(&self) -> LiveSources {
        Arc::clone(&self.live_sources)
    }

    fn refresh_live_sources(&self) {
        let handles = self
            .sources
            .iter()
            .map(|s| (s.name.clone(), Arc::clone(&s.source)))
            .collect();
        *self.live_sources.write().unwrap_or_else(|e| e.into_inner()) = handles;
    }

    /// Runs one cut batch through the needed streams and returns what each
    /// sink is to receive. The caller writes the sinks without holding the
    /// engine, so a sink (a `foreach_batch` callback) may use the context.
    pub async fn run_streams(&mut self, cut: CutBatch) -> Result<BatchOutputs> {
        let t = cut.batch_time;
        let interval = self.batch_interval.as_millis() as i64;
        let zero = *self.zero_time.get_or_insert(t - interval);
        let mut input_rows = Vec::with_capacity(self.sources.len());
        let mut inputs = cut.inputs;
        let offsets = cut.offset_ranges;
        for node in &self.sources {
            let batches = inputs
                .iter()
                .position(|(name, _)| *name == node.name)
                .map(|i| inputs.swap_remove(i).1)
                .unwrap_or_default();
            node.slot.set(t, batches);
            input_rows.push((node.name.clone(), node.slot.rows()));
            if let Some(slot) = &node.offsets {
                let ranges = offsets.iter().find(|(n, _)| *n == node.name);
                let batch = ranges.map(|(_, r)| crate::offsets::ranges_batch(r));
                slot.set(t, batch.into_iter().collect());
            }
        }
        let result = self.run_needed_streams(t, zero).await;
        let writes = self
            .sinks
            .iter()
            .filter_map(|s| {
                let (slot, _) = self.relation(&s.from)?;
                if slot.is_absent() {
                    return None;
                }
                Some(SinkWrite {
                    name: s.name.clone(),
                    sink: Arc::clone(&s.sink),
                    contents: slot.get(),
                    offsets: offsets
                        .iter()
                        .filter(|(n, _)| s.sources.contains(n))
                        .flat_map(|(_, r)| r.iter().cloned())
                        .collect(),
                })
            })
            .collect();
        for s in &self.sources {
            s.slot.clear();
            if let Some(slot) = &s.offsets {
                slot.clear();
            }
        }
        for s in &self.streams {
            s.slot.clear();
        }
        result?;
        Ok(BatchOutputs {
            batch_time: t,
            input_rows,
            writes,
        })
    }

    async fn run_needed_streams(&self, t: i64, zero: i64) -> Result<()> {
        for &i in &self.needed {
            let stream = &self.streams[i];
            let inputs: Vec<Arc<BatchSlot>> = stream
                .inputs
                .iter()
                .filter_map(|n| self.relation(n))
                .map(|(slot, _)| slot)
                .collect();
            // A stream reading a window between its slides has nothing either.
            if inputs.iter().any(|s| s.is_absent()) {
                stream.slot.set_absent(t);
                continue;
            }
            let out = match (&stream.stateful, inputs.first()) {
                (Some(state), Some(input)) => {
                    let contents = input.get();
                    state
                        .lock()
                        .await
                        .run(t, zero, self.batch_interval, &contents)
                        .await
                }
                _ => match &stream.plan {
                    Some(plan) => {
                        let rows = inputs.iter().map(|s| s.rows()).sum();
                        plan.execute(rows).await.map(Some)
                    }
                    None => datafusion::common::internal_err!("a stream without a plan or state"),
                },
            };
            let out = match (out, &stream.on_failure) {
                (Err(source), Some(handler)) => {
                    handler(t, source.strip_backtrace());
                    None
                }
                (out, _) => out.map_err(|source| SluiceError::Execution {
                    stream: stream.name.clone(),
                    batch_time: t,
                    source,
                })?,
            };
            match out {
                Some(out) => stream.slot.set(t, out),
                None => stream.slot.set_absent(t),
            }
        }
        Ok(())
    }

    /// The sinks, for writing and closing them without holding the engine.
    pub fn sink_handles(&self) -> Vec<(String, SharedSink)> {
        self.sinks
            .iter()
            .map(|s| (s.name.clone(), Arc::clone(&s.sink)))
            .collect()
    }
}

/// The least common multiple of two durations, in milliseconds.
fn lcm(a: Duration, b: Duration) -> Duration {
    let (x, y) = (a.as_millis().max(1), b.as_millis().max(1));
    let gcd = |mut p: u128, mut q: u128| {
        while q != 0 {
            (p, q) = (q, p % q);
        }
        p
    };
    Duration::from_millis((x / gcd(x, y) * y) as u64)
}

/// A sink shared between the engine and the job that writes it.
pub type SharedSink = Arc<Mutex<Box<dyn Sink>>>;

/// One sink's share of a batch.
pub struct SinkWrite {
    pub name: String,
    pub sink: SharedSink,
    pub contents: crate::slot::SlotContents,
    /// The offset ranges of the Kafka sources it reads.
    pub offsets: Vec<OffsetRange>,
}

/// A batch's results, ready for the sinks.
pub struct BatchOutputs {
    pub batch_time: i64,
    pub input_rows: Vec<(String, usize)>,
    pub writes: Vec<SinkWrite>,
}

impl BatchOutputs {
    /// Writes every sink, in order; the first failure stops the batch.
    pub async fn write(
        self,
        scheduling_delay: Duration,
        input_time: Duration,
        started: Instant,
        submission_time_ms: i64,
        processing_start_ms: i64,
    ) -> Result<BatchInfo> {
        let t = self.batch_time;
        let mut output_rows = Vec::with_capacity(self.writes.len());
        for w in self.writes {
            w.sink
                .lock()
                .await
                .write_with_offsets(t, &w.contents.batches, &w.offsets)
                .await
                .map_err(|e| match e {
                    // Already says which sink and batch.
                    SluiceError::Sink { .. } => e,
                    other => SluiceError::Sink {
                        name: w.name.clone(),
                        batch_time: t,
                        message: other.to_string(),
                    },
                })?;
            output_rows.push((w.name, w.contents.rows));
        }
        Ok(BatchInfo {
            batch_time: t,
            input_rows: self.input_rows,
            output_rows,
            scheduling_delay,
            processing_time: started.elapsed(),
            input_time,
            submission_time_ms,
            processing_start_ms,
            processing_end_ms: crate::metrics::wall_clock_ms(),
        })
    }
}
