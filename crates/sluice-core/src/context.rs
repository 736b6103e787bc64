//! [`StreamingContext`]: sluice embedded in a Rust application, on the
//! application's own DataFusion `SessionContext` (Spark's `StreamingContext`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use arrow::array::{RecordBatch, StringArray};
//! use datafusion::prelude::*;
//! use datafusion::functions_aggregate::expr_fn::count;
//! use sluice_core::StreamingContext;
//!
//! # async fn demo() -> sluice_core::Result<()> {
//! let ssc = StreamingContext::new(SessionContext::new(), Duration::from_secs(1));
//! let lines = ssc.queue_source("lines", Arc::new(arrow::datatypes::Schema::new(vec![
//!     arrow::datatypes::Field::new("value", arrow::datatypes::DataType::Utf8, true),
//! ]))).await?;
//! ssc.sql("CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines").await?;
//! ssc.transform("counts", "words", |df| df.aggregate(vec![col("word")], vec![count(lit(1)).alias("n")])).await?;
//! ssc.foreach_batch("counts", |time, batches| async move {
//!     println!("{time}: {} rows", batches.iter().map(|b| b.num_rows()).sum::<usize>());
//!     Ok(())
//! }).await?;
//! lines.push(RecordBatch::try_from_iter(vec![("value", Arc::new(StringArray::from(vec!["a b a"])) as _)])?)?;
//! ssc.start().await?;
//! ssc.await_termination().await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::TableReference;
use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;
use sluice_sql::format_duration;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::AbortHandle;

use crate::checkpoint::Checkpointer;
use crate::clock::{BatchClock, ManualClock, SimulatedClock, SystemClock, first_batch_time};
use crate::engine::Engine;
use crate::error::{Result, SluiceError};
use crate::foreach::ForeachBatchSink;
use crate::metrics::{BatchInfo, Metrics};
use crate::offsets::OffsetRange;
use crate::queue::{QueueHandle, QueueSource};
use crate::registry::ConnectorRegistry;
use crate::scheduler::{Commits, JobSpec, generate, process};
use crate::sink::ConsoleOutput;

/// Which clock cuts the batches.
#[derive(Debug, Clone, Default)]
pub enum ClockChoice {
    /// Wall-clock time (the default).
    #[default]
    System,
    /// Back to back, time advancing by the interval without waiting.
    Simulated,
    /// Time moved by the caller (tests).
    Manual(Arc<ManualClock>),
}

#[derive(Debug, Clone, Default)]
struct RunSettings {
    clock: ClockChoice,
    start_ms: Option<i64>,
    max_batches: Option<u64>,
    checkpoint: Option<String>,
    checkpoint_interval: Option<Duration>,
    /// Where the started job resumed its checkpoint, if it did.
    resumed: Option<crate::checkpoint::Resume>,
}

struct Job {
    stop: watch::Sender<bool>,
    processor: AbortHandle,
    generator: AbortHandle,
    /// Set once the job has ended (and its sinks are closed).
    done: watch::Receiver<bool>,
    /// How it ended; the first `await_termination` takes an error.
    outcome: Arc<std::sync::Mutex<Option<Result<()>>>>,
}

struct Inner {
    session: SessionContext,
    engine: Arc<Mutex<Engine>>,
    settings: std::sync::Mutex<RunSettings>,
    job: Mutex<Option<Job>>,
    metrics: Arc<Metrics>,
    next_sink_id: AtomicUsize,
}

/// sluice's entry point; cheap to clone (clones share one job).
#[derive(Clone)]
pub struct StreamingContext {
    inner: Arc<Inner>,
}

impl StreamingContext {
    /// A context on `session`, cutting a batch every `batch_interval`, with the
    /// core's connectors only (`queue`); add more with [`StreamingContext::with_registry`].
    pub fn new(session: SessionContext, batch_interval: Duration) -> Self {
        Self::with_registry(session, batch_interval, ConnectorRegistry::with_builtins())
    }

    /// A context whose `CREATE SOURCE` / `CREATE SINK` find connectors in `registry`.
    pub fn with_registry(
        session: SessionContext,
        batch_interval: Duration,
        registry: ConnectorRegistry,
    ) -> Self {
        {
            let state = session.state_ref();
            let mut state = state.write();
            // Spans let planning errors (unknown column, unknown table) name their place.
            state.config_mut().options_mut().sql_parser.collect_spans = true;
        }
        let engine = Engine::new(session.clone(), batch_interval, registry);
        Self {
            inner: Arc::new(Inner {
                session,
                engine: Arc::new(Mutex::new(engine)),
                settings: Default::default(),
                job: Mutex::new(None),
                metrics: Arc::new(Metrics::default()),
                next_sink_id: AtomicUsize::new(1),
            }),
        }
    }

    /// The DataFusion session streams are planned in (static tables, UDFs, config).
    pub fn session(&self) -> &SessionContext {
        &self.inner.session
    }

    pub(crate) fn engine(&self) -> &Arc<Mutex<Engine>> {
        &self.inner.engine
    }

    pub async fn batch_interval(&self) -> Duration {
        self.inner.engine.lock().await.batch_interval
    }

    /// Changes the batch interval; only before the first source exists.
    pub async fn set_batch_interval(&self, interval: Duration) -> Result<()> {
        if interval.as_millis() == 0 {
            return crate::config_err!("batch_interval must be positive");
        }
        let started = self.is_started().await;
        let mut engine = self.inner.engine.lock().await;
        if !engine.sources.is_empty() || started {
            return crate::config_err!(
                "batch_interval is {} and cannot change once a source exists; SET batch_interval before the first CREATE SOURCE",
                format_duration(engine.batch_interval)
            );
        }
        engine.batch_interval = interval;
        Ok(())
    }

    /// Which clock cuts batches (before `start`).
    pub fn set_clock(&self, clock: ClockChoice) {
        self.settings().clock = clock;
    }

    /// The first batch time (must be a multiple of the interval). Default: the
    /// next multiple after now for the system and manual clocks, one interval
    /// after the epoch for the simulated clock.
    pub fn set_start_ms(&self, start_ms: i64) {
        self.settings().start_ms = Some(start_ms);
    }

    /// Keep a checkpoint at `location` (a local path or object store URL),
    /// and resume from it if it has one: see [`crate::checkpoint`]. Only
    /// before `start`.
    pub async fn checkpoint(&self, location: &str) -> Result<()> {
        if self.is_started().await {
            return crate::config_err!(
                "the job is running; SET checkpoint before it starts (at the top of the script)"
            );
        }
        self.settings().checkpoint = Some(location.to_string());
        Ok(())
    }

    /// How often keyed state is saved whole in the checkpoint (between,
    /// only what each batch changed is): Spark's `checkpoint(interval)`.
    /// Default: every ten batches.
    pub async fn checkpoint_interval(&self, interval: Duration) -> Result<()> {
        if self.is_started().await {
            return crate::config_err!(
                "the job is running; SET checkpoint_interval before it starts"
            );
        }
        let batch = self.inner.engine.lock().await.batch_interval;
        if interval < batch || interval.as_millis() % batch.as_millis().max(1) != 0 {
            return crate::config_err!(
                "checkpoint_interval {} must be a multiple of the batch interval ({})",
                format_duration(interval),
                format_duration(batch)
            );
        }
        self.settings().checkpoint_interval = Some(interval);
        Ok(())
    }

    /// The checkpoint's last completed batch the started job went on from
    /// (`None`: no checkpoint, or a new one).
    pub fn resumed(&self) -> Option<crate::checkpoint::Resume> {
        self.settings().resumed
    }

    /// Stop after `n` batches (with a checkpoint: counted from the stream's
    /// first batch, not from this run's).
    pub fn set_max_batches(&self, n: u64) {
        self.settings().max_batches = Some(n);
    }

    /// Where `console` sinks created from now on print.
    pub async fn set_console(&self, console: ConsoleOutput) {
        self.inner.engine.lock().await.console = console;
    }

    /// Input rows at or above which a stream runs its partitioned plan
    /// (streams created from now on).
    pub async fn set_parallel_threshold(&self, rows: usize) {
        self.inner.engine.lock().await.parallel_threshold = rows;
    }

    fn settings(&self) -> std::sync::MutexGuard<'_, RunSettings> {
        self.inner
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Registers more connectors (e.g. `sluice_connectors::register_all`).
    pub async fn registry_mut<R>(&self, f: impl FnOnce(&mut ConnectorRegistry) -> R) -> R {
        f(&mut self.inner.engine.lock().await.registry)
    }

    /// A source the application pushes batches into (Spark's `queueStream`,
    /// one pushed item per batch).
    pub async fn queue_source(&self, name: &str, schema: SchemaRef) -> Result<QueueHandle> {
        self.queue_source_with(name, schema, true).await
    }

    /// A queue source; `one_at_a_time = false` puts everything queued into the
    /// next batch (Spark's `queueStream(queue, oneAtATime = false)`).
    pub async fn queue_source_with(
        &self,
        name: &str,
        schema: SchemaRef,
        one_at_a_time: bool,
    ) -> Result<QueueHandle> {
        self.check_not_started("create a source").await?;
        let source = QueueSource::new(schema, one_at_a_time);
        let handle = source.queue_handle_inner();
        self.inner
            .engine
            .lock()
            .await
            .add_source(name, "queue", Box::new(source))?;
        Ok(handle)
    }

    /// A stream computed from `input` by a DataFrame function. The function is
    /// called once, to build the plan; the plan runs every batch.
    pub async fn transform<F>(&self, name: &str, input: &str, f: F) -> Result<()>
    where
        F: FnOnce(DataFrame) -> datafusion::error::Result<DataFrame>,
    {
        self.check_not_started("create a stream").await?;
        let mut engine = self.inner.engine.lock().await;
        if !engine.is_relation(input) {
            return crate::plan_err!(
                "transform '{name}' reads '{input}', which is not a source or stream"
            );
        }
        let df = self
            .inner
            .session
            .table(TableReference::bare(input))
            .await?;
        let df = f(df)?;
        engine
            .add_stream(name, df.logical_plan(), format!("transform of {input}"))
            .await
    }

    /// Calls `f` with each batch of `stream` (Spark's `foreachRDD`).
    pub async fn foreach_batch<F, Fut>(&self, stream: &str, f: F) -> Result<()>
    where
        F: Fn(i64, Vec<RecordBatch>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let sink = ForeachBatchSink::new(Box::new(move |t, b| Box::pin(f(t, b))));
        self.add_foreach_sink(stream, sink).await
    }

    /// Like [`StreamingContext::foreach_batch`], and `f` also gets the
    /// offset ranges the batch was read from, one per partition of each
    /// Kafka source `stream` reads, itself or through other streams (Spark's
    /// `rdd.asInstanceOf[HasOffsetRanges].offsetRanges`).
    pub async fn foreach_batch_with_offsets<F, Fut>(&self, stream: &str, f: F) -> Result<()>
    where
        F: Fn(i64, Vec<RecordBatch>, Vec<OffsetRange>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let sink = ForeachBatchSink::with_offsets(Box::new(move |t, b, o| Box::pin(f(t, b, o))));
        self.add_foreach_sink(stream, sink).await
    }

    async fn add_foreach_sink(&self, stream: &str, sink: ForeachBatchSink) -> Result<()> {
        self.check_not_started("add a sink").await?;
        let id = self.inner.next_sink_id.fetch_add(1, Ordering::SeqCst);
        self.inner.engine.lock().await.add_sink(
            &format!("foreach_batch_{id}"),
            stream,
            "foreach_batch",
            Box::new(sink),
        )
    }

    pub(crate) async fn check_not_started(&self, what: &str) -> Result<()> {
        if self.is_started().await {
            return crate::config_err!(
                "cannot {what}: the job is already running (define sources, streams and sinks before it starts)"
            );
        }
        Ok(())
    }

    pub async fn is_started(&self) -> bool {
        self.inner.job.lock().await.is_some()
    }

    /// Checks the graph (at least one sink) and starts cutting batches.
    pub async fn start(&self) -> Result<()> {
        let mut job = self.inner.job.lock().await;
        if job.is_some() {
            return crate::config_err!("the job is already started");
        }
        let settings = self.settings().clone();
        let (sources, interval, checkpoint) = {
            let mut engine = self.inner.engine.lock().await;
            engine.prepare()?;
            let checkpoint = match &settings.checkpoint {
                None => None,
                Some(location) => {
                    let c = Checkpointer::open(&mut engine, location, settings.checkpoint_interval)
                        .await?;
                    let resumed = c.resume(&engine).await?;
                    if let Some(r) = resumed {
                        let zero = r.zero_time(engine.batch_interval);
                        engine.set_zero_time(zero);
                    }
                    Some((Arc::new(c), resumed))
                }
            };
            (engine.source_handles(), engine.batch_interval, checkpoint)
        };
        let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(0);
        if interval_ms <= 0 {
            return crate::config_err!(
                "the batch interval must be at least 1 ms, not {interval:?}"
            );
        }
        let clock: Arc<dyn BatchClock> = match &settings.clock {
            ClockChoice::System => Arc::new(SystemClock),
            ClockChoice::Simulated => Arc::new(SimulatedClock::new(0)),
            ClockChoice::Manual(c) => Arc::clone(c) as Arc<dyn BatchClock>,
        };
        let resumed = checkpoint.as_ref().and_then(|(_, r)| *r);
        self.settings().resumed = resumed;
        let first = match (settings.start_ms, &settings.clock) {
            // Resuming: the batch after the last completed one, whatever
            // --start-ms says.
            _ if resumed.is_some() => match resumed
                .and_then(|r| r.batch_time.checked_add(interval_ms))
            {
                Some(t) => t,
                None => {
                    return crate::config_err!("the checkpoint's last batch time is out of range");
                }
            },
            (Some(t), _) => {
                if t.rem_euclid(interval_ms) != 0 {
                    return crate::config_err!(
                        "start time {t} ms is not a multiple of the batch interval ({}): batch times are epoch-aligned",
                        format_duration(interval)
                    );
                }
                t
            }
            (None, ClockChoice::Simulated) => interval_ms,
            (None, _) => first_batch_time(clock.now_ms(), interval_ms),
        };
        // Batches whose time has come queue up (none is skipped); simulated time
        // cuts the next batch only while the current one runs.
        let queue = if clock.back_to_back() { 1 } else { 4096 };
        let (tx, rx) = mpsc::channel(queue);
        let (stop_tx, stop_rx) = watch::channel(false);
        // With a checkpoint, --batches counts from the stream's first batch.
        let batches_before = resumed.map_or(0, |r| r.batches);
        let max_batches = settings
            .max_batches
            .map(|m| m.saturating_sub(batches_before));
        let spec = JobSpec {
            clock,
            first_batch_time: first,
            interval_ms,
            max_batches,
            record_positions: checkpoint.is_some(),
        };
        let generator = tokio::spawn(generate(
            spec,
            sources,
            tx,
            stop_rx,
            Arc::clone(&self.inner.metrics),
        ))
        .abort_handle();
        let processor = tokio::spawn(process(
            Arc::clone(&self.inner.engine),
            rx,
            stop_tx.clone(),
            Arc::clone(&self.inner.metrics),
            max_batches,
            checkpoint.map(|(checkpoint, _)| Commits {
                checkpoint,
                batches_before,
            }),
        ));
        let abort = processor.abort_handle();
        let (done_tx, done) = watch::channel(false);
        let outcome: Arc<std::sync::Mutex<Option<Result<()>>>> = Arc::default();
        let record = Arc::clone(&outcome);
        let stop_on_end = stop_tx.clone();
        tokio::spawn(async move {
            let result = match processor.await {
                Ok(r) => r,
                Err(e) if e.is_cancelled() => Ok(()),
                Err(e) => Err(SluiceError::Config(format!("the job panicked: {e}"))),
            };
            *record.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
            stop_on_end.send_replace(true);
            done_tx.send_replace(true);
        });
        *job = Some(Job {
            stop: stop_tx,
            processor: abort,
            generator,
            done,
            outcome,
        });
        Ok(())
    }

    /// Waits until the job ends (stopped, `max_batches` reached, or failed).
    /// A failure is returned to the first caller.
    pub async fn await_termination(&self) -> Result<()> {
        let (mut done, outcome) = {
            let job = self.inner.job.lock().await;
            match job.as_ref() {
                None => return crate::config_err!("the job was not started"),
                Some(j) => (j.done.clone(), Arc::clone(&j.outcome)),
            }
        };
        let _ = done.wait_for(|d| *d).await;
        let result = outcome.lock().unwrap_or_else(|e| e.into_inner()).take();
        result.unwrap_or(Ok(()))
    }

    /// Stops the job and waits until it has stopped. `graceful`: the batch in
    /// progress finishes and the sinks are closed; otherwise the batch in
    /// progress is abandoned. A failure of the job is left for `await_termination`.
    pub async fn stop(&self, graceful: bool) -> Result<()> {
        let mut done = {
            let job = self.inner.job.lock().await;
            let Some(j) = job.as_ref() else { return Ok(()) };
            j.stop.send_replace(true);
            if !graceful {
                j.processor.abort();
                j.generator.abort();
            }
            j.done.clone()
        };
        let _ = done.wait_for(|d| *d).await;
        Ok(())
    }

    /// A handle that stops the job from elsewhere (e.g. a Ctrl-C handler).
    pub async fn stop_handle(&self) -> Option<watch::Sender<bool>> {
        self.inner.job.lock().await.as_ref().map(|j| j.stop.clone())
    }

    /// The last batches' metrics, oldest first.
    pub fn batch_infos(&self) -> Vec<BatchInfo> {
        self.inner.metrics.recent()
    }

    /// Number of batches completed so far.
    pub fn completed_batches(&self) -> u64 {
        self.inner.metrics.completed()
    }

    /// Returns once the job has ended (at once if it never started);
    /// unlike [`await_termination`](Self::await_termination) it leaves the
    /// outcome for others.
    pub async fn wait_stopped(&self) {
        let done = self.inner.job.lock().await.as_ref().map(|j| j.done.clone());
        if let Some(mut done) = done {
            let _ = done.wait_for(|d| *d).await;
        }
    }

    /// Whether the job was started and has ended.
    pub async fn has_stopped(&self) -> bool {
        self.inner
            .job
            .lock()
            .await
            .as_ref()
            .is_some_and(|j| *j.done.borrow())
    }

    /// Waits until at least `n` batches have completed, or the job ended.
    pub async fn wait_for_batches(&self, n: u64) -> Result<()> {
        let mut rx = self.inner.metrics.subscribe();
        let stop = self
            .inner
            .job
            .lock()
            .await
            .as_ref()
            .map(|j| j.stop.subscribe());
        let Some(mut stop) = stop else {
            return crate::config_err!("the job was not started");
        };
        tokio::select! {
            r = rx.wait_for(|c| *c >= n) => { r.map_err(|_| SluiceError::Config("metrics closed".into()))?; }
            _ = stop.wait_for(|s| *s) => {}
        }
        Ok(())
    }
}

impl StreamingContext {
    /// Whether any source, stream or sink has been defined.
    pub async fn has_stream_graph(&self) -> bool {
        let e = self.inner.engine.lock().await;
        !(e.sources.is_empty() && e.streams.is_empty() && e.sinks.is_empty())
    }

    /// Whether any sink has been defined.
    pub async fn has_sinks(&self) -> bool {
        !self.inner.engine.lock().await.sinks.is_empty()
    }
}

/// The graph as a status page shows it: sources → streams → sinks.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphInfo {
    /// `(name, connector)`.
    pub sources: Vec<(String, String)>,
    /// `(name, inputs, definition)`.
    pub streams: Vec<(String, Vec<String>, String)>,
    /// `(name, from, connector)`.
    pub sinks: Vec<(String, String, String)>,
}

impl StreamingContext {
    /// Tells `listener` as batches are submitted, start, complete, or fail
    /// (Spark's `addStreamingListener`).
    pub fn add_listener(&self, listener: Arc<dyn crate::metrics::StreamingListener>) {
        self.inner.metrics.add_listener(listener);
    }

    /// The sources, streams and sinks, and what reads what.
    pub async fn graph(&self) -> GraphInfo {
        let e = self.inner.engine.lock().await;
        GraphInfo {
            sources: e
                .sources
                .iter()
                .map(|s| (s.name.clone(), s.connector.clone()))
                .collect(),
            streams: e
                .streams
                .iter()
                .map(|s| (s.name.clone(), s.inputs.clone(), s.definition.clone()))
                .collect(),
            sinks: e
                .sinks
                .iter()
                .map(|s| (s.name.clone(), s.from.clone(), s.connector.clone()))
                .collect(),
        }
    }

    /// Rows in and out, and batches, since the job started (for counters).
    pub fn totals(&self) -> crate::metrics::Totals {
        self.inner.metrics.totals()
    }
}

impl StreamingContext {
    /// The streams that run each batch, in order (known once started): those
    /// some sink depends on.
    pub async fn running_streams(&self) -> Vec<String> {
        self.inner
            .engine
            .lock()
            .await
            .needed_streams()
            .into_iter()
            .map(str::to_string)
            .collect()
    }
}
