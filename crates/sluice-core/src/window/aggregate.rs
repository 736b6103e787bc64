//! The incremental windowed aggregate: per-pane partial states, combined per
//! key with the strategy each aggregate allows.
//!
//! Every batch, the aggregate's input runs over the batch's rows and
//! DataFusion's partial `AggregateExec` turns them into one pane: key columns
//! and each aggregate's state columns (plus a hidden row count per key). Then,
//! per aggregate:
//!
//! - [`Strategy::Inverse`] (`count`, `sum`, `avg`): the pane's states are
//!   added into per-key totals, and subtracted when the pane leaves — the
//!   inverse reduce Spark asks its users to write, derived here from the
//!   states' meaning ([`additive`](super::additive));
//! - [`Strategy::Retract`] (any other aggregate whose accumulator can
//!   retract, such as a user's UDAF): per-key accumulators take the pane's
//!   rows in and retract them when the pane leaves ([`retract`](super::retract));
//! - [`Strategy::Panes`] (`min`, `max`, `count(DISTINCT)`, the float
//!   statistics `stddev`/`var`/`covar`/`corr`/`regr_*`, everything else):
//!   the panes' states are combined in a two-stack queue
//!   ([`two_stack`](super::two_stack)).
//!
//! At an emission, the keys whose row count in the window is zero are dropped
//! (Spark's `filterFunc`), the strategies' states are put side by side, and
//! DataFusion's final `AggregateExec` turns them into values — so every
//! aggregate means exactly what it means in a batch query.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow::compute::{concat_batches, filter, take};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use datafusion::error::{DataFusionError, Result as DFResult};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateMode;
use datafusion::prelude::SessionContext;

use super::additive::{AdditiveColumn, Direction, Totals, additive_column};
use super::keys::WindowKeys;
use super::merge::PartialMerger;
use super::partial::PartialAggregate;
use super::retract::RetractState;
use super::split::AggregateSplit;
use super::two_stack::TwoStack;
use crate::plan::StreamPlan;
use crate::slot::{BatchSlot, SlotTable};

/// Keys without rows below this many (or the live keys' count) are not
/// worth rebuilding the key index for.
const DROP_SLACK: usize = 1024;

/// How one aggregate's window value is kept up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Inverse,
    Retract,
    Panes,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Strategy::Inverse => {
                "incremental, inverse: pane states added on entry and subtracted on exit, per key"
            }
            Strategy::Retract => {
                "incremental, retraction: per-key accumulators take entering rows and retract leaving ones"
            }
            Strategy::Panes => {
                "incremental, panes: per-batch partial states combined in a two-stack (no inverse exists)"
            }
        })
    }
}

/// One of the query's aggregates.
#[derive(Debug, Clone)]
pub struct AggregateInfo {
    /// As written, e.g. `count(*)`.
    pub name: String,
    pub strategy: Strategy,
    /// Its state columns in a pane.
    states: std::ops::Range<usize>,
}

/// The window state of one incremental aggregate query.
pub struct WindowAggregate {
    /// The aggregate's input and the slot it is run into, when two plans
    /// read a pane's rows (see `new`).
    staged: Option<(StreamPlan, Arc<BatchSlot>)>,
    pane_plan: StreamPlan,
    key_columns: usize,
    /// GROUP BY only window bounds: no key, but an empty window has no row.
    grouped_without_keys: bool,
    aggregates: Vec<AggregateInfo>,
    /// The pane column of the hidden per-key row count.
    rows_column: usize,
    keys: WindowKeys,
    rows: Totals<Int64Type>,
    /// Per pane column of an inverse aggregate: its totals.
    inverse: Vec<(usize, Box<dyn AdditiveColumn>)>,
    retract: Option<RetractState>,
    /// Panes in the window, oldest first (for subtracting them).
    panes: VecDeque<(i64, RecordBatch)>,
    /// The two-stack, its merger and the pane columns it keeps.
    two_stack: Option<(TwoStack, PartialMerger, Vec<usize>)>,
    /// The final aggregate of every aggregate but the retracting ones.
    finisher: PartialMerger,
    /// What the finisher reads: keys, then the states it finishes.
    finisher_input: SchemaRef,
    /// Keys, then every aggregate's value.
    output_schema: SchemaRef,
    scratch: Vec<usize>,
}

impl WindowAggregate {
    /// Plans the panes, merges and final step of `split` once.
    /// `parallel_threshold`: the input rows from which a pane runs on the
    /// partitioned plan (as a stream's batch does).
    pub async fn new(
        session: &SessionContext,
        split: &AggregateSplit,
        parallel_threshold: usize,
    ) -> DFResult<Self> {
        let lowered = PartialAggregate::new(session, split).await?;
        let input_schema = lowered.single_input.schema();
        let partitions = lowered.partitions;
        let task_ctx = Arc::clone(&lowered.task_ctx);
        let key_columns = split.keys.len();
        let mut aggregates = Vec::with_capacity(lowered.calls.len());
        let mut column = key_columns;
        let mut inverse = Vec::new();
        let mut retracting = Vec::new();
        let mut panes = Vec::new();
        for call in &lowered.calls {
            let (agg, name) = (&call.aggregate, &call.name);
            let states = agg.state_fields()?;
            let range = column..column + states.len();
            column += states.len();
            let strategy = strategy_of(agg, call.filter.is_some(), &states)?;
            match strategy {
                Strategy::Inverse => {
                    for (i, f) in range.clone().zip(&states) {
                        if let Some(c) = additive_column(f.data_type()) {
                            inverse.push((i, c));
                        }
                    }
                }
                Strategy::Retract => retracting.push(Arc::clone(agg)),
                Strategy::Panes => panes.push((Arc::clone(agg), range.clone())),
            }
            aggregates.push(AggregateInfo {
                name: name.clone(),
                strategy,
                states: range,
            });
        }
        let rows_column = column;

        let user_aggregates = lowered.aggregates();
        // With retracting aggregates, a pane's input rows feed two plans (the
        // partial aggregate and the rows kept): run the input once, into a
        // slot both read, so both see the same rows.
        let (single_input, parallel_input) = (
            Arc::clone(&lowered.single_input),
            lowered.parallel_input.clone(),
        );
        let (staged, pane_single, pane_parallel) = if retracting.is_empty() {
            (None, single_input, parallel_input)
        } else {
            let slot = BatchSlot::new();
            let table = SlotTable::new(Arc::clone(&input_schema), Arc::clone(&slot));
            let columns: Vec<usize> = (0..input_schema.fields().len()).collect();
            let scan = |n: usize| -> DFResult<Arc<dyn ExecutionPlan>> {
                Ok(Arc::new(table.scan_exec(columns.clone(), n)?))
            };
            let single = scan(1)?;
            let parallel = parallel_input
                .as_ref()
                .map(|_| scan(partitions))
                .transpose()?;
            let input = StreamPlan::from_plans(single_input, parallel_input, Arc::clone(&task_ctx))
                .with_parallel_threshold(parallel_threshold);
            (Some((input, slot)), single, parallel)
        };
        let pane_plan = lowered.partial_plan(
            Arc::clone(&pane_single),
            pane_parallel.clone(),
            parallel_threshold,
        )?;
        let pane_schema = pane_plan.schema();

        let final_group_by = lowered.group_by.as_final();
        let two_stack = if panes.is_empty() {
            None
        } else {
            let mut columns: Vec<usize> = (0..key_columns).collect();
            for (_, r) in &panes {
                columns.extend(r.clone());
            }
            let merger = PartialMerger::new(
                AggregateMode::PartialReduce,
                Arc::new(pane_schema.project(&columns)?),
                final_group_by.clone(),
                panes.iter().map(|(a, _)| Arc::clone(a)).collect(),
                Arc::clone(&input_schema),
                Arc::clone(&task_ctx),
            )?;
            Some((TwoStack::default(), merger, columns))
        };
        let mut finish_columns: Vec<usize> = (0..key_columns).collect();
        let mut finished = Vec::new();
        for (info, call) in aggregates.iter().zip(&lowered.calls) {
            if info.strategy != Strategy::Retract {
                finish_columns.extend(info.states.clone());
                finished.push(Arc::clone(&call.aggregate));
            }
        }
        let finisher_input = Arc::new(pane_schema.project(&finish_columns)?);
        let finisher = PartialMerger::new(
            AggregateMode::Final,
            Arc::clone(&finisher_input),
            final_group_by,
            finished,
            Arc::clone(&input_schema),
            Arc::clone(&task_ctx),
        )?;
        let mut output_fields: Vec<_> = pane_schema
            .fields()
            .iter()
            .take(key_columns)
            .cloned()
            .collect();
        output_fields.extend(user_aggregates.iter().map(|a| a.field()));
        let output_schema = Arc::new(arrow::datatypes::Schema::new(output_fields));
        let key_schema = Arc::new(pane_schema.project(&(0..key_columns).collect::<Vec<_>>())?);
        let retract = if retracting.is_empty() {
            None
        } else {
            Some(RetractState::new(
                &lowered.keys,
                retracting,
                pane_single,
                pane_parallel,
                Arc::clone(&task_ctx),
                parallel_threshold,
            )?)
        };
        Ok(Self {
            staged,
            pane_plan,
            key_columns,
            grouped_without_keys: key_columns == 0 && !split.group_columns.is_empty(),
            aggregates,
            rows_column,
            // Only the inverse keeps per-key state: keys without rows can
            // stay indexed (their totals are exactly zero).
            keys: if retract.is_none() && two_stack.is_none() {
                WindowKeys::new(key_schema)?.keeping_columns()
            } else {
                WindowKeys::new(key_schema)?
            },
            rows: Totals::new(DataType::Int64),
            inverse,
            retract,
            panes: VecDeque::new(),
            two_stack,
            finisher,
            finisher_input,
            output_schema,
            scratch: Vec::new(),
        })
    }

    /// The plans of a pane (the aggregate's input and partial aggregate), for EXPLAIN.
    pub fn pane_plan_display(&self) -> String {
        self.pane_plan.display()
    }

    /// The aggregates and their strategies.
    pub fn aggregates(&self) -> &[AggregateInfo] {
        &self.aggregates
    }

    /// The schema of [`emit`](Self::emit)'s batches: key columns, then each
    /// aggregate's value.
    pub fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.output_schema)
    }

    /// Takes in the pane of batch `t`, whose rows the window table's slot
    /// holds now (`rows` of them). `window_panes`: the batches a window spans.
    pub async fn enter(&mut self, t: i64, rows: usize, window_panes: usize) -> DFResult<()> {
        let mut rows = rows;
        if let Some((input, slot)) = &self.staged {
            let batches = input.execute(rows).await?;
            slot.set(t, batches);
            rows = slot.rows();
        }
        let pane = self.pane_plan.execute(rows).await;
        let raw = match (&pane, &self.retract) {
            (Ok(_), Some(r)) => Some(r.rows(rows).await),
            _ => None,
        };
        if let Some((_, slot)) = &self.staged {
            slot.clear();
        }
        let pane = concat_batches(&self.pane_plan.schema(), &pane?)?;
        self.apply(&pane, Direction::Enter)?;
        if let (Some(r), Some(raw)) = (&mut self.retract, raw) {
            r.enter(&mut self.keys, t, raw?)?;
        }
        if let Some((stack, merger, columns)) = &mut self.two_stack {
            stack
                .push(t, pane.project(columns)?, window_panes, merger)
                .await?;
        }
        self.panes.push_back((t, pane));
        Ok(())
    }

    /// Drops the panes of batches up to `t` from the window.
    pub async fn leave_through(&mut self, t: i64) -> DFResult<()> {
        while let Some((time, _)) = self.panes.front() {
            if *time > t {
                break;
            }
            let Some((_, pane)) = self.panes.pop_front() else {
                break;
            };
            self.apply(&pane, Direction::Leave)?;
        }
        if let Some(r) = &mut self.retract {
            r.leave_through(&mut self.keys, t)?;
        }
        if let Some((stack, _, _)) = &mut self.two_stack {
            stack.evict_through(t);
        }
        Ok(())
    }

    fn apply(&mut self, pane: &RecordBatch, d: Direction) -> DFResult<()> {
        let columns = pane.columns();
        self.keys.intern(
            &columns[..self.key_columns],
            pane.num_rows(),
            &mut self.scratch,
        )?;
        let n = self.keys.len();
        self.rows
            .apply(&columns[self.rows_column], &self.scratch, n, d);
        for (c, totals) in &mut self.inverse {
            totals.apply(&columns[*c], &self.scratch, n, d);
        }
        Ok(())
    }

    /// The window's aggregate values now: one row per key with rows in the
    /// window (one row in all for a query without GROUP BY).
    pub async fn emit(&mut self) -> DFResult<RecordBatch> {
        if self.grouped_without_keys && self.rows.value(0) == 0 {
            return Ok(RecordBatch::new_empty(Arc::clone(&self.output_schema)));
        }
        let n = self.keys.len();
        let live = if self.key_columns == 0 {
            BooleanArray::from(vec![true; n])
        } else {
            BooleanArray::from_iter((0..n).map(|k| Some(self.rows.value(k) > 0)))
        };
        // Keys without rows are dropped (the index rebuilt) once they are as
        // many as the live ones; until then, where only totals are kept per
        // key (exactly zero for those keys), they stay, and the output skips
        // them.
        let live_count = live.true_count();
        let kept = if n - live_count < live_count.max(DROP_SLACK) {
            self.keys.columns()?
        } else {
            None
        };
        let (key_values, skipping) = match kept {
            Some(all) if live_count == n => (all, None),
            Some(all) => (
                all.iter()
                    .map(|c| filter(c, &live))
                    .collect::<Result<Vec<_>, _>>()?,
                Some(&live),
            ),
            None => {
                let kept = self.keys.retain(&live)?;
                self.rows.retain(&live);
                for (_, totals) in &mut self.inverse {
                    totals.retain(&live);
                }
                if let Some(r) = &mut self.retract {
                    r.retain(&live);
                }
                (kept, None)
            }
        };

        let mut columns: Vec<ArrayRef> = key_values;
        let merged = match &mut self.two_stack {
            Some((stack, merger, _)) => Some(stack.total(merger).await?),
            None => None,
        };
        let stacked = match merged {
            Some(m) => Some(self.align(m, live_count)?),
            None => None,
        };
        let mut stacked_at = self.key_columns; // next state column of `stacked`
        for info in &self.aggregates {
            match info.strategy {
                Strategy::Inverse => {
                    for c in info.states.clone() {
                        let (_, totals) = self
                            .inverse
                            .iter()
                            .find(|(i, _)| *i == c)
                            .ok_or_else(|| internal("inverse state missing"))?;
                        columns.push(match skipping {
                            Some(live) => filter(&totals.emit(), live)?,
                            None => totals.emit(),
                        });
                    }
                }
                Strategy::Panes => {
                    let stacked = stacked.as_ref().ok_or_else(|| internal("no panes"))?;
                    for _ in info.states.clone() {
                        columns.push(Arc::clone(stacked.column(stacked_at)));
                        stacked_at += 1;
                    }
                }
                Strategy::Retract => {}
            }
        }
        let states = RecordBatch::try_new(Arc::clone(&self.finisher_input), columns)?;
        let finished = self.finisher.merge_one_per_key(states).await?;
        let Some(retract) = &mut self.retract else {
            return Ok(finished);
        };
        // Put the retracting aggregates' values in, by key.
        let values = retract.values(live_count)?;
        let k = self.key_columns;
        self.keys.intern(
            &finished.columns()[..k],
            finished.num_rows(),
            &mut self.scratch,
        )?;
        if self.keys.len() != live_count {
            return Err(internal("the final aggregate made up a key"));
        }
        let rows = UInt32Array::from_iter_values(self.scratch.iter().map(|&i| i as u32));
        let mut out: Vec<ArrayRef> = finished.columns()[..k].to_vec();
        let (mut finished_at, mut retract_at) = (k, 0);
        for info in &self.aggregates {
            if info.strategy == Strategy::Retract {
                out.push(take(values[retract_at].as_ref(), &rows, None)?);
                retract_at += 1;
            } else {
                out.push(Arc::clone(finished.column(finished_at)));
                finished_at += 1;
            }
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.output_schema), out)?)
    }

    /// Reorders the two-stack's merged rows into the keys' order.
    fn align(&mut self, merged: RecordBatch, live: usize) -> DFResult<RecordBatch> {
        self.keys.intern(
            &merged.columns()[..self.key_columns],
            merged.num_rows(),
            &mut self.scratch,
        )?;
        if self.key_columns == 0 {
            return Ok(merged.slice(0, merged.num_rows().min(1)));
        }
        if self.keys.len() != live || merged.num_rows() != live {
            return Err(internal(&format!(
                "window panes hold {} keys, the window {live}",
                merged.num_rows()
            )));
        }
        let mut at = vec![0u32; live];
        for (row, &k) in self.scratch.iter().enumerate() {
            at[k] = row as u32;
        }
        let indices = UInt32Array::from(at);
        let columns = merged
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &indices, None))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(merged.schema(), columns)?)
    }

    /// Bytes held by the window's state.
    pub fn size(&self) -> usize {
        self.keys.size()
            + self.rows.size()
            + self.inverse.iter().map(|(_, t)| t.size()).sum::<usize>()
            + self
                .panes
                .iter()
                .map(|(_, p)| p.get_array_memory_size())
                .sum::<usize>()
            + self.two_stack.as_ref().map_or(0, |(s, _, _)| s.size())
            + self.retract.as_ref().map_or(0, |r| r.size())
    }
}

fn internal(message: &str) -> DataFusionError {
    DataFusionError::Internal(format!("window aggregate: {message}"))
}

/// The strategy an aggregate allows.
fn strategy_of(
    agg: &AggregateFunctionExpr,
    filtered: bool,
    states: &[arrow::datatypes::FieldRef],
) -> DFResult<Strategy> {
    let plain = !agg.is_distinct() && agg.order_bys().is_empty();
    let additive = matches!(agg.fun().name(), "count" | "sum" | "avg")
        && states
            .iter()
            .all(|f| additive_column(f.data_type()).is_some());
    if plain && additive {
        return Ok(Strategy::Inverse);
    }
    let name = agg.fun().name();
    // array_agg keeps NULLs, which retraction cannot tell apart (see `retract`).
    let ignores_nulls = name != "array_agg";
    // Retracting from a float variance loses precision (it can even turn
    // negative, and its square root NaN); merging states does not.
    let float_statistics = ["stddev", "var", "covar", "corr", "regr_"]
        .iter()
        .any(|p| name.starts_with(p));
    if plain
        && !filtered
        && ignores_nulls
        && !float_statistics
        && agg.create_accumulator()?.supports_retract_batch()
    {
        return Ok(Strategy::Retract);
    }
    Ok(Strategy::Panes)
}
