//! A stream over `window(...)`: what it does each batch.
//!
//! Every batch the input's rows are taken in (as a pane of the incremental
//! aggregate, or kept as rows to recompute over); panes older than the window
//! leave. At a slide the stream emits: the aggregate's values go through the
//! rest of the query (HAVING, ORDER BY, projections) planned once over a slot,
//! or the whole query runs over the covered batches' rows. Between slides the
//! stream emits nothing at all: its sinks are not written, as Spark runs no
//! output operation for a windowed DStream between slides.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::{Column, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::error::Result as DFResult;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Projection};
use datafusion::prelude::SessionContext;

use super::aggregate::WindowAggregate;
use super::spec::WindowSpec;
use super::split::{AggregateSplit, GroupColumn, replace_aggregate, split_aggregate};
use crate::plan::StreamPlan;
use crate::slot::{BatchSlot, SlotContents, SlotTable, WINDOW_END, WINDOW_START};

/// How the window's query is evaluated.
enum Evaluation {
    Incremental {
        aggregate: Box<WindowAggregate>,
        /// Holds the aggregate's values at an emission.
        result_slot: Arc<BatchSlot>,
    },
    Recompute {
        reason: String,
        /// The covered batches: time and rows.
        kept: VecDeque<(i64, Arc<Vec<RecordBatch>>)>,
    },
}

/// A windowed stream's state and plans.
pub struct WindowedStream {
    pub spec: WindowSpec,
    /// The slot behind the window's table, which the query reads.
    table_slot: Arc<BatchSlot>,
    /// The query (or the part above the aggregate), planned once.
    plan: StreamPlan,
    evaluation: Evaluation,
    /// How many panes (input batches with rows) a window spans.
    panes: usize,
    /// What a checkpoint compares: the key and aggregates, when incremental.
    signature: Vec<(&'static str, String)>,
    /// With a checkpoint: the inputs taken since it last asked.
    recorded: Option<Vec<(i64, Arc<Vec<RecordBatch>>)>>,
    /// The start of the last batch's window: inputs at or before it have left.
    leaving: i64,
    /// Taking saved inputs in again: a recomputed window skips its query.
    replaying: bool,
}

/// A window's share of a checkpoint: its inputs since the last one, and
/// the time at or before which inputs have left the window.
pub struct WindowInputs {
    pub inputs: Vec<(i64, Arc<Vec<RecordBatch>>)>,
    pub leaving: i64,
}

/// The name of the table the aggregate's values are read from.
const RESULT_TABLE: &str = "__window_result";

impl WindowedStream {
    /// Plans `logical` (an analyzed plan reading the window table
    /// `table_name`, whose slot is `table_slot`): incrementally when its
    /// shape allows, else recomputed per emission.
    pub async fn new(
        session: &SessionContext,
        spec: WindowSpec,
        table_name: &str,
        table_slot: Arc<BatchSlot>,
        logical: &LogicalPlan,
        parallel_threshold: usize,
        input_slide: Duration,
    ) -> DFResult<Self> {
        let panes = (spec.length.as_millis() / input_slide.as_millis().max(1)).max(1) as usize;
        let reason = match split_aggregate(logical, table_name) {
            Ok(split) => {
                match Self::incremental(session, &split, logical, parallel_threshold).await {
                    Ok((plan, evaluation)) => {
                        return Ok(Self {
                            spec,
                            table_slot,
                            plan,
                            evaluation,
                            panes,
                            signature: split.signature(),
                            recorded: None,
                            leaving: i64::MIN,
                            replaying: false,
                        });
                    }
                    Err(e) => format!("the aggregate could not be split: {}", e.strip_backtrace()),
                }
            }
            Err(reason) => reason,
        };
        let plan = StreamPlan::new(session, logical)
            .await?
            .with_parallel_threshold(parallel_threshold);
        Ok(Self {
            spec,
            table_slot,
            plan,
            evaluation: Evaluation::Recompute {
                reason,
                kept: VecDeque::new(),
            },
            panes,
            signature: Vec::new(),
            recorded: None,
            leaving: i64::MIN,
            replaying: false,
        })
    }

    async fn incremental(
        session: &SessionContext,
        split: &AggregateSplit,
        logical: &LogicalPlan,
        parallel_threshold: usize,
    ) -> DFResult<(StreamPlan, Evaluation)> {
        let aggregate = WindowAggregate::new(session, split, parallel_threshold).await?;
        let (plan, result_slot) = plan_over_values(
            session,
            split,
            logical,
            &aggregate.output_schema(),
            parallel_threshold,
        )
        .await?;
        Ok((
            plan,
            Evaluation::Incremental {
                aggregate: Box::new(aggregate),
                result_slot,
            },
        ))
    }

    /// The schema of the stream's batches.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    /// The plan of the stream's output.
    pub fn plan(&self) -> &StreamPlan {
        &self.plan
    }

    /// Runs batch `t` (whose input rows are `input`); `None` between slides.
    /// `zero`: the job's first batch time minus the interval.
    pub async fn run(
        &mut self,
        t: i64,
        zero: i64,
        interval: Duration,
        input: &SlotContents,
    ) -> DFResult<Option<Vec<RecordBatch>>> {
        let (start, end) = self.spec.bounds(t);
        let emits = self.spec.emits_at(t, zero, interval);
        if let Some(recorded) = self.recorded.as_mut()
            && input.rows > 0
        {
            recorded.push((t, Arc::clone(&input.batches)));
        }
        self.leaving = start;
        match &mut self.evaluation {
            Evaluation::Incremental {
                aggregate,
                result_slot,
            } => {
                self.table_slot.set_contents(SlotContents {
                    batch_time: t,
                    batches: Arc::clone(&input.batches),
                    rows: input.rows,
                    ..Default::default()
                });
                let entered = aggregate.enter(t, input.rows, self.panes).await;
                self.table_slot.clear();
                entered?;
                aggregate.leave_through(start).await?;
                if !emits {
                    return Ok(None);
                }
                let values = aggregate.emit().await?;
                let rows = values.num_rows();
                result_slot.set_contents(SlotContents {
                    batch_time: t,
                    batches: Arc::new(vec![values]),
                    rows,
                    window: Some((start, end)),
                    ..Default::default()
                });
                let out = self.plan.execute(rows).await;
                result_slot.clear();
                out.map(Some)
            }
            Evaluation::Recompute { kept, .. } => {
                kept.push_back((t, Arc::clone(&input.batches)));
                while kept.front().is_some_and(|(time, _)| *time <= start) {
                    kept.pop_front();
                }
                if !emits || self.replaying {
                    return Ok(None);
                }
                let mut batches = Vec::new();
                let mut times = Vec::new();
                for (time, b) in kept.iter() {
                    batches.extend(b.iter().cloned());
                    times.extend(std::iter::repeat_n(*time, b.len()));
                }
                let rows = batches.iter().map(|b| b.num_rows()).sum();
                self.table_slot.set_contents(SlotContents {
                    batch_time: t,
                    batches: Arc::new(batches),
                    rows,
                    batch_times: Some(Arc::new(times)),
                    window: Some((start, end)),
                    absent: false,
                });
                let out = self.plan.execute(rows).await;
                self.table_slot.clear();
                out.map(Some)
            }
        }
    }

    /// Records each batch's input from now on, for [`take_inputs`](Self::take_inputs).
    pub fn record_inputs(&mut self) {
        self.recorded = Some(Vec::new());
    }

    /// The inputs taken since the last call: a window's state is the inputs
    /// still in it, so a checkpoint keeps each until it leaves.
    pub fn take_inputs(&mut self) -> WindowInputs {
        WindowInputs {
            inputs: self
                .recorded
                .as_mut()
                .map(std::mem::take)
                .unwrap_or_default(),
            leaving: self.leaving,
        }
    }

    /// Takes in saved inputs again (oldest first), to be where it was after
    /// them; nothing is emitted.
    pub async fn replay(
        &mut self,
        inputs: Vec<(i64, Vec<RecordBatch>)>,
        zero: i64,
        interval: Duration,
    ) -> DFResult<()> {
        let recorded = self.recorded.take();
        self.replaying = true;
        let mut result = Ok(());
        for (t, batches) in inputs {
            let rows = batches.iter().map(|b| b.num_rows()).sum();
            let contents = SlotContents {
                batch_time: t,
                batches: Arc::new(batches),
                rows,
                ..Default::default()
            };
            if let Err(e) = self.run(t, zero, interval, &contents).await {
                result = Err(e);
                break;
            }
        }
        self.recorded = recorded;
        self.replaying = false;
        result
    }

    /// What a checkpoint compares to know its saved inputs still fit.
    pub fn signature(&self, interval: Duration) -> Vec<(&'static str, String)> {
        let mut out = vec![(
            "window",
            format!(
                "window({}, '{}', '{}')",
                self.spec.input,
                sluice_sql::format_duration(self.spec.length),
                sluice_sql::format_duration(self.spec.slide_or(interval))
            ),
        )];
        out.extend(self.signature.iter().cloned());
        out
    }

    /// What EXPLAIN says of the window: `(item, detail)` rows.
    pub fn explain(&self, interval: Duration) -> Vec<(String, String)> {
        let mut rows = vec![("window".to_string(), self.spec.describe(interval))];
        match &self.evaluation {
            Evaluation::Incremental { aggregate, .. } => {
                rows.push((
                    "evaluation".into(),
                    "incremental: one partial aggregate per batch (pane); a slide costs the entering and leaving panes".into(),
                ));
                for a in aggregate.aggregates() {
                    rows.push((a.name.clone(), a.strategy.to_string()));
                }
                rows.push(("pane plan".into(), aggregate.pane_plan_display()));
            }
            Evaluation::Recompute { reason, .. } => rows.push((
                "evaluation".into(),
                format!("recomputed over the covered batches' rows at each emission ({reason})"),
            )),
        }
        rows
    }

    /// Bytes held by the window's state.
    pub fn state_size(&self) -> usize {
        match &self.evaluation {
            Evaluation::Incremental { aggregate, .. } => aggregate.size(),
            Evaluation::Recompute { kept, .. } => kept
                .iter()
                .flat_map(|(_, b)| b.iter().map(|x| x.get_array_memory_size()))
                .sum(),
        }
    }
}

/// The query above a split aggregate (HAVING, ORDER BY, projections),
/// planned once over a slot that will hold the aggregate's values (`values`:
/// key columns, then each aggregate's value). The slot's table also has the
/// window bounds, for a windowed query that selects them.
pub(crate) async fn plan_over_values(
    session: &SessionContext,
    split: &AggregateSplit,
    logical: &LogicalPlan,
    values: &SchemaRef,
    parallel_threshold: usize,
) -> DFResult<(StreamPlan, Arc<BatchSlot>)> {
    // The values under plain names, then the aggregate's own output
    // columns by position.
    let renamed: Vec<Field> = values
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| f.as_ref().clone().with_name(format!("c{i}")))
        .collect();
    let result_slot = BatchSlot::new();
    let table = SlotTable::windowed(Arc::new(Schema::new(renamed)), Arc::clone(&result_slot));
    let scan = LogicalPlanBuilder::scan(RESULT_TABLE, provider_as_source(Arc::new(table)), None)?
        .build()?;
    let column =
        |name: String| Expr::Column(Column::new(Some(TableReference::bare(RESULT_TABLE)), name));
    let keys = split.keys.len();
    let groups = split.group_columns.len();
    let exprs: Vec<Expr> = split
        .schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            let source = if i < groups {
                match split.group_columns[i] {
                    GroupColumn::Key(k) => column(format!("c{k}")),
                    GroupColumn::WindowStart => column(WINDOW_START.to_string()),
                    GroupColumn::WindowEnd => column(WINDOW_END.to_string()),
                }
            } else {
                column(format!("c{}", keys + i - groups))
            };
            source.alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    let projection = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(scan))?);
    let upper = replace_aggregate(logical, projection)?;
    let plan = StreamPlan::new(session, &upper)
        .await?
        .with_parallel_threshold(parallel_threshold);
    Ok((plan, result_slot))
}
