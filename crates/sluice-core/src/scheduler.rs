//! The job: a generator that cuts a batch from every source each time the
//! clock reaches the next batch time, and a processor that runs cut batches
//! one after another.
//!
//! When processing falls behind a real-time clock, cut batches queue (none is
//! skipped) and the wait shows up as the batch's scheduling delay. With the
//! simulated or manual clock the queue holds one batch: the generator cuts the
//! next batch while the current one runs.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Mutex, mpsc, watch};

use crate::checkpoint::Checkpointer;
use crate::clock::BatchClock;
use crate::engine::{CutBatch, Engine};
use crate::error::{Result, SluiceError};
use crate::metrics::Metrics;
use crate::source::Source;

/// How a job runs.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub clock: Arc<dyn BatchClock>,
    pub first_batch_time: i64,
    pub interval_ms: i64,
    /// Stop after this many batches.
    pub max_batches: Option<u64>,
    /// Ask each source its position after each cut (for a checkpoint only:
    /// a position may be costly, e.g. a directory's taken names).
    pub record_positions: bool,
}

type SourceHandles = Vec<(String, Arc<Mutex<Box<dyn Source>>>)>;

/// Cuts batches on the clock until told to stop (or `max_batches` are cut).
pub async fn generate(
    spec: JobSpec,
    sources: crate::engine::LiveSources,
    tx: mpsc::Sender<Result<CutBatch>>,
    mut stop: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) {
    let mut t = spec.first_batch_time;
    let mut cut_count = 0u64;
    loop {
        if *stop.borrow() || spec.max_batches.is_some_and(|m| cut_count >= m) {
            return;
        }
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            _ = spec.clock.wait_until(t) => {}
        }
        // The sources of now: the graph may change while the job runs.
        let now: SourceHandles = sources.read().unwrap_or_else(|e| e.into_inner()).clone();
        // A stop ends a cut that waits (a Kafka broker that does not answer).
        let cut = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            cut = cut_sources(t, &now, spec.record_positions) => cut,
        };
        let failed = cut.is_err();
        if !failed {
            metrics.tell(|l| l.on_batch_submitted(t));
        }
        if tx.send(cut).await.is_err() || failed {
            return;
        }
        cut_count += 1;
        t += spec.interval_ms;
    }
}

async fn cut_sources(t: i64, sources: &SourceHandles, record_positions: bool) -> Result<CutBatch> {
    let began = Instant::now();
    let mut inputs = Vec::with_capacity(sources.len());
    let mut positions = Vec::with_capacity(sources.len());
    let mut offset_ranges = Vec::new();
    for (name, source) in sources {
        let mut source = source.lock().await;
        let batches = source.cut(t).await.map_err(|e| match e {
            e @ SluiceError::Source { .. } => e,
            other => SluiceError::Source {
                name: name.clone(),
                batch_time: t,
                message: other.to_string(),
            },
        })?;
        inputs.push((name.clone(), batches));
        if let Some(mut ranges) = source.offset_ranges() {
            for r in &mut ranges {
                r.source.clone_from(name);
            }
            offset_ranges.push((name.clone(), ranges));
        }
        if record_positions || source.stores_positions() {
            positions.push((name.clone(), source.position()));
        }
    }
    Ok(CutBatch {
        batch_time: t,
        inputs,
        cut_at: Instant::now(),
        input_time: began.elapsed(),
        cut_at_ms: crate::metrics::wall_clock_ms(),
        positions,
        offset_ranges,
    })
}

/// Tells each source that batch `t` is done ([`Source::done`]); a failure
/// (a Kafka offset store down) is retried with backoff, 0.25 s doubling to
/// 5 s, the next batch waiting, until it works or the job is stopped (a
/// try in progress then has 5 s more).
async fn finish_sources(
    engine: &Arc<Mutex<Engine>>,
    t: i64,
    positions: &[(String, Option<serde_json::Value>)],
    stop: &watch::Receiver<bool>,
) -> Result<()> {
    for (name, position) in positions {
        let Some(position) = position else {
            continue;
        };
        let source = {
            let engine = engine.lock().await;
            engine
                .sources
                .iter()
                .find(|s| &s.name == name)
                .map(|s| Arc::clone(&s.source))
        };
        let Some(source) = source else {
            continue;
        };
        let mut backoff = std::time::Duration::from_millis(250);
        loop {
            // Once the job is told to stop, a store that hangs (a group
            // commit to a broker that is away) gets 5 s more.
            let mut stopping = stop.clone();
            let stored = tokio::select! {
                biased;
                stored = async { source.lock().await.done(position).await } => stored,
                _ = async {
                    let _ = stopping.wait_for(|s| *s).await;
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                } => Err(SluiceError::Config("no answer within 5 s of the stop".into())),
            };
            match stored {
                Ok(()) => break,
                Err(e) if !*stop.borrow() => {
                    log::warn!(
                        "source '{name}', batch {t} ms: {}; retrying in {backoff:?} (the next batch waits)",
                        e.message()
                    );
                    // A stop request ends the wait (the next try then fails).
                    let mut stopping = stop.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stopping.wait_for(|s| *s) => {}
                    }
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                }
                Err(e) => {
                    return Err(SluiceError::Source {
                        name: name.clone(),
                        batch_time: t,
                        message: format!(
                            "stopped while its position was not stored: {}",
                            e.message()
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

/// What `process` commits after each batch: the checkpoint, and how many
/// batches were completed before this run (a resumed job's).
pub struct Commits {
    pub checkpoint: Arc<Checkpointer>,
    pub batches_before: u64,
}

/// Runs cut batches in order until the generator ends, a stop is requested
/// (the batch in progress finishes first), `max_batches` are done, or a batch
/// fails. With a checkpoint, a batch is committed once every sink has it.
pub async fn process(
    engine: Arc<Mutex<Engine>>,
    mut rx: mpsc::Receiver<Result<CutBatch>>,
    stop_tx: watch::Sender<bool>,
    metrics: Arc<Metrics>,
    max_batches: Option<u64>,
    commits: Option<Commits>,
) -> Result<()> {
    let mut stop = stop_tx.subscribe();
    let mut done = 0u64;
    let result = loop {
        if max_batches.is_some_and(|m| done >= m) {
            break Ok(());
        }
        let next = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break Ok(()),
            next = rx.recv() => next,
        };
        let mut cut = match next {
            None => break Ok(()),
            Some(Err(e)) => break Err(e),
            Some(Ok(cut)) => cut,
        };
        let started = Instant::now();
        let started_ms = crate::metrics::wall_clock_ms();
        let scheduling_delay = started.saturating_duration_since(cut.cut_at);
        let (t, cut_at_ms, input_time) = (cut.batch_time, cut.cut_at_ms, cut.input_time);
        let positions = std::mem::take(&mut cut.positions);
        metrics.tell(|l| l.on_batch_started(t));
        // Streams run under the engine lock; sinks are written after it is
        // released, so a foreach_batch callback may use the context.
        let outputs = engine.lock().await.run_streams(cut).await;
        let info = match outputs {
            Ok(outputs) => {
                outputs
                    .write(scheduling_delay, input_time, started, cut_at_ms, started_ms)
                    .await
            }
            Err(e) => Err(e),
        };
        let info = match (info, &commits) {
            (Ok(info), Some(c)) => {
                let engine = engine.lock().await;
                match c.checkpoint.entries(&engine, &positions) {
                    Ok(entries) => c
                        .checkpoint
                        .commit(
                            &engine,
                            t,
                            c.batches_before.saturating_add(done + 1),
                            entries,
                        )
                        .await
                        .map(|()| info),
                    Err(e) => Err(e),
                }
            }
            (info, _) => info,
        };
        let info = match info {
            Ok(info) => finish_sources(&engine, t, &positions, &stop)
                .await
                .map(|()| info),
            Err(e) => Err(e),
        };
        match info {
            Ok(info) => metrics.record(info),
            Err(e) => break Err(e),
        }
        done += 1;
    };
    if let Err(e) = &result {
        metrics.tell(|l| l.on_error(e));
    }
    stop_tx.send_replace(true);
    let sinks = engine.lock().await.sink_handles();
    let mut closed = Ok(());
    for (name, sink) in sinks {
        if let Err(e) = sink.lock().await.close().await {
            closed = closed.and(Err(SluiceError::Sink {
                name,
                batch_time: 0,
                message: format!("closing: {e}"),
            }));
        }
    }
    result.and(closed)
}
