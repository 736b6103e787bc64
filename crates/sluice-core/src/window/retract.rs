//! The inverse of aggregates whose accumulator can retract rows
//! (`Accumulator::retract_batch`), such as a user's UDAF that implements it:
//! per-key accumulators take a pane's rows in when it enters the window and
//! retract the same rows when it leaves.
//!
//! Their states cannot be subtracted, so each pane keeps its rows — only the
//! key and argument columns these aggregates read. Rows are grouped by key
//! with one sort per pane; each key's accumulator then sees one contiguous
//! slice.
//!
//! An accumulator that had values and retracted them all is not always like
//! a new one (`bit_xor` says 0, not NULL), so each key counts the rows whose
//! arguments are all non-null per aggregate, and an accumulator whose count
//! drops to zero is replaced by a new one. This assumes the aggregate ignores
//! NULL arguments, as SQL aggregates do; `array_agg`, which keeps NULLs, is
//! combined as panes instead.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow::buffer::NullBuffer;
use arrow::compute::take;
use datafusion::common::ScalarValue;
use datafusion::error::Result as DFResult;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;

use super::additive::Direction;
use super::keys::WindowKeys;
use crate::plan::StreamPlan;

/// One key's accumulators, and per aggregate the rows it holds whose
/// arguments are all non-null.
struct KeyAccumulators {
    accumulators: Vec<Box<dyn Accumulator>>,
    valid_rows: Vec<i64>,
}

impl KeyAccumulators {
    fn new(aggregates: &[Arc<AggregateFunctionExpr>]) -> DFResult<Self> {
        Ok(Self {
            accumulators: aggregates
                .iter()
                .map(|a| a.create_accumulator())
                .collect::<DFResult<_>>()?,
            valid_rows: vec![0; aggregates.len()],
        })
    }
}

/// Rows of `values` (the argument columns) where no argument is null.
fn valid_rows(values: &[ArrayRef], len: usize) -> i64 {
    let nulls = values.iter().fold(None, |acc: Option<NullBuffer>, v| {
        NullBuffer::union(acc.as_ref(), v.logical_nulls().as_ref())
    });
    (len - nulls.map_or(0, |n| n.null_count())) as i64
}

/// Per-key accumulators of the retracting aggregates, and the panes' rows.
pub struct RetractState {
    raw_plan: StreamPlan,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    key_columns: usize,
    /// Per aggregate, its argument columns in a raw batch.
    arguments: Vec<std::ops::Range<usize>>,
    /// Per key, one accumulator per aggregate.
    accumulators: Vec<Option<KeyAccumulators>>,
    panes: VecDeque<(i64, Vec<RecordBatch>)>,
    scratch: Vec<usize>,
}

impl RetractState {
    /// Plans the projection of keys and arguments over the aggregate's input
    /// plans.
    pub fn new(
        keys: &[(Arc<dyn PhysicalExpr>, String)],
        aggregates: Vec<Arc<AggregateFunctionExpr>>,
        single_input: Arc<dyn ExecutionPlan>,
        parallel_input: Option<Arc<dyn ExecutionPlan>>,
        task_ctx: Arc<TaskContext>,
        parallel_threshold: usize,
    ) -> DFResult<Self> {
        let mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = keys.to_vec();
        let mut arguments = Vec::with_capacity(aggregates.len());
        for (a, agg) in aggregates.iter().enumerate() {
            let start = exprs.len();
            for (i, e) in agg.expressions().into_iter().enumerate() {
                exprs.push((e, format!("__arg{a}_{i}")));
            }
            arguments.push(start..exprs.len());
        }
        let project = |input: Arc<dyn ExecutionPlan>| -> DFResult<Arc<dyn ExecutionPlan>> {
            Ok(Arc::new(ProjectionExec::try_new(exprs.clone(), input)?))
        };
        let single = project(single_input)?;
        let parallel = parallel_input.map(project).transpose()?;
        Ok(Self {
            raw_plan: StreamPlan::from_plans(single, parallel, task_ctx)
                .with_parallel_threshold(parallel_threshold),
            aggregates,
            key_columns: keys.len(),
            arguments,
            accumulators: Vec::new(),
            panes: VecDeque::new(),
            scratch: Vec::new(),
        })
    }

    /// The key and argument columns of the rows of the pane being taken in
    /// (`input_rows` of them).
    pub async fn rows(&self, input_rows: usize) -> DFResult<Vec<RecordBatch>> {
        self.raw_plan.execute(input_rows).await
    }

    /// Takes in the rows of batch `t` (from [`rows`](Self::rows)).
    pub fn enter(&mut self, keys: &mut WindowKeys, t: i64, raw: Vec<RecordBatch>) -> DFResult<()> {
        for b in &raw {
            self.apply(keys, b, Direction::Enter)?;
        }
        self.panes.push_back((t, raw));
        Ok(())
    }

    /// Retracts the rows of batches up to `t`.
    pub fn leave_through(&mut self, keys: &mut WindowKeys, t: i64) -> DFResult<()> {
        while self.panes.front().is_some_and(|(time, _)| *time <= t) {
            if let Some((_, raw)) = self.panes.pop_front() {
                for b in &raw {
                    self.apply(keys, b, Direction::Leave)?;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, keys: &mut WindowKeys, batch: &RecordBatch, d: Direction) -> DFResult<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let columns = batch.columns();
        keys.intern(
            &columns[..self.key_columns],
            batch.num_rows(),
            &mut self.scratch,
        )?;
        if self.accumulators.len() < keys.len() {
            self.accumulators.resize_with(keys.len(), || None);
        }
        // Group rows by key: one sort, then contiguous runs.
        // A stable sort: each key's rows keep their order, as a
        // recomputation would feed them.
        let mut positions: Vec<u32> = (0..self.scratch.len() as u32).collect();
        positions.sort_by_key(|&i| self.scratch[i as usize]);
        let sorted_keys: Vec<usize> = positions
            .iter()
            .map(|&i| self.scratch[i as usize])
            .collect();
        let order = UInt32Array::from(positions);
        let sorted: Vec<ArrayRef> = columns[self.key_columns..]
            .iter()
            .map(|c| take(c.as_ref(), &order, None))
            .collect::<Result<_, _>>()?;
        let mut start = 0;
        while start < sorted_keys.len() {
            let key = sorted_keys[start];
            let mut end = start + 1;
            while end < sorted_keys.len() && sorted_keys[end] == key {
                end += 1;
            }
            let slot = &mut self.accumulators[key];
            if slot.is_none() {
                *slot = Some(KeyAccumulators::new(&self.aggregates)?);
            }
            if let Some(k) = slot {
                for (a, args) in self.arguments.iter().enumerate() {
                    let values: Vec<ArrayRef> = args
                        .clone()
                        .map(|i| sorted[i - self.key_columns].slice(start, end - start))
                        .collect();
                    let valid = valid_rows(&values, end - start);
                    match d {
                        Direction::Enter => {
                            k.accumulators[a].update_batch(&values)?;
                            k.valid_rows[a] += valid;
                        }
                        Direction::Leave => {
                            k.accumulators[a].retract_batch(&values)?;
                            k.valid_rows[a] -= valid;
                            if k.valid_rows[a] == 0 {
                                k.accumulators[a] = self.aggregates[a].create_accumulator()?;
                            }
                        }
                    }
                }
            }
            start = end;
        }
        Ok(())
    }

    /// Keeps the keys `live` marks, in order.
    pub fn retain(&mut self, live: &BooleanArray) {
        self.accumulators.resize_with(live.len(), || None);
        super::additive::retain_by(&mut self.accumulators, live);
    }

    /// The value of every retracting aggregate for keys `0..keys`, one
    /// column per aggregate. (`evaluate`, not `state`: an accumulator keeps
    /// working after `evaluate`, while `state` may consume it.)
    pub fn values(&mut self, keys: usize) -> DFResult<Vec<ArrayRef>> {
        self.accumulators.resize_with(keys, || None);
        let mut columns: Vec<Vec<ScalarValue>> =
            vec![Vec::with_capacity(keys); self.aggregates.len()];
        for slot in &mut self.accumulators {
            if slot.is_none() {
                *slot = Some(KeyAccumulators::new(&self.aggregates)?);
            }
            if let Some(k) = slot {
                for (column, acc) in columns.iter_mut().zip(k.accumulators.iter_mut()) {
                    column.push(acc.evaluate()?);
                }
            }
        }
        columns
            .into_iter()
            .zip(&self.aggregates)
            .map(|(values, agg)| {
                if values.is_empty() {
                    Ok(arrow::array::new_empty_array(agg.field().data_type()))
                } else {
                    ScalarValue::iter_to_array(values)
                }
            })
            .collect()
    }

    /// Bytes held by the panes' rows and the accumulators.
    pub fn size(&self) -> usize {
        self.panes
            .iter()
            .flat_map(|(_, r)| r.iter().map(|b| b.get_array_memory_size()))
            .sum::<usize>()
            + self
                .accumulators
                .iter()
                .flatten()
                .flat_map(|k| k.accumulators.iter().map(|x| x.size()))
                .sum::<usize>()
    }
}
