//! Merging tables of partial aggregate states with DataFusion's own
//! `AggregateExec`, planned once over a slot: `PartialReduce` mode gives
//! merged states (for the two-stack), `Final` mode gives the aggregates'
//! values (the window's output).
//!
//! When the caller already knows each row's group (a keyed store that found
//! the keys in its own index, or rows that are one per key), hashing the keys
//! again is waste: [`PartialMerger::merge_into_groups`] hands the state
//! columns and those group indices straight to the aggregates'
//! `GroupsAccumulator`s, which is what `AggregateExec` does after its hash
//! table has numbered the groups. Aggregates without a `GroupsAccumulator`
//! (some user UDAFs), and aggregates without GROUP BY, take the
//! `AggregateExec` path.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use datafusion::error::Result as DFResult;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::EmitTo;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::{ExecutionPlan, collect};

use crate::slot::{BatchSlot, SlotTable};

/// An aggregate over partial-state tables put in its slot.
pub struct PartialMerger {
    slot: Arc<BatchSlot>,
    plan: Arc<dyn ExecutionPlan>,
    task_ctx: Arc<TaskContext>,
    /// Each aggregate and its state columns in the input, if every one has
    /// a `GroupsAccumulator` (then rows with known groups skip the hash).
    accumulated: Option<Vec<(Arc<AggregateFunctionExpr>, Range<usize>)>>,
    /// `Final`: the aggregates' values; else their merged states.
    finishes: bool,
    key_columns: usize,
}

/// Rows of partial states and the group of each row.
pub struct GroupedRows<'a> {
    pub rows: &'a RecordBatch,
    /// `groups[i]`: the group of row `i`, in `0..` the number of groups.
    pub groups: &'a [usize],
}

impl PartialMerger {
    /// `partial_schema`: key columns then each aggregate's state columns.
    /// `group_by`: the partial aggregate's grouping, in its final form.
    /// `input_schema`: the schema the partial aggregate read.
    pub fn new(
        mode: AggregateMode,
        partial_schema: SchemaRef,
        group_by: PhysicalGroupBy,
        aggregates: Vec<Arc<AggregateFunctionExpr>>,
        input_schema: SchemaRef,
        task_ctx: Arc<TaskContext>,
    ) -> DFResult<Self> {
        let slot = BatchSlot::new();
        let columns = (0..partial_schema.fields().len()).collect();
        let scan = SlotTable::new(partial_schema, Arc::clone(&slot)).scan_exec(columns, 1)?;
        let filters = vec![None; aggregates.len()];
        let key_columns = group_by.num_group_exprs();
        // Without GROUP BY, DataFusion finishes with `Accumulator`s, which
        // say NULL where a `GroupsAccumulator` of some aggregates (variance)
        // says NaN for no rows: those keep DataFusion's path.
        let grouped = key_columns > 0;
        let accumulated = if grouped && aggregates.iter().all(|a| a.groups_accumulator_supported())
        {
            let mut at = key_columns;
            let mut columns = Vec::with_capacity(aggregates.len());
            for a in &aggregates {
                let states = a.state_fields()?.len();
                columns.push((Arc::clone(a), at..at + states));
                at += states;
            }
            Some(columns)
        } else {
            None
        };
        let finishes = matches!(mode, AggregateMode::Final | AggregateMode::FinalPartitioned);
        let plan = Arc::new(AggregateExec::try_new(
            mode,
            group_by,
            aggregates,
            filters,
            Arc::new(scan),
            input_schema,
        )?);
        Ok(Self {
            slot,
            plan,
            task_ctx,
            accumulated,
            finishes,
            key_columns,
        })
    }

    /// The schema of what [`merge`](Self::merge) returns.
    pub fn schema(&self) -> SchemaRef {
        self.plan.schema()
    }

    /// Merges the rows of `parts` by key, in one batch.
    pub async fn merge(&self, parts: Vec<RecordBatch>) -> DFResult<RecordBatch> {
        self.slot.set(0, parts);
        let plan = reset_plan_states(Arc::clone(&self.plan))?;
        let result = collect(plan, Arc::clone(&self.task_ctx)).await;
        self.slot.clear();
        Ok(concat_batches(&self.schema(), &result?)?)
    }

    /// [`merge`](Self::merge) of `rows` that hold each key once (as the
    /// output of a merge does): no hashing where the aggregates allow.
    pub async fn merge_one_per_key(&self, rows: RecordBatch) -> DFResult<RecordBatch> {
        let n = rows.num_rows();
        let keys = rows.columns()[..self.key_columns].to_vec();
        let groups: Vec<usize> = (0..n).collect();
        let part = GroupedRows {
            rows: &rows,
            groups: &groups,
        };
        match self.merge_into_groups(keys, n, &[part])? {
            Some(merged) => Ok(merged),
            None => self.merge(vec![rows]).await,
        }
    }

    /// Whether [`merge_into_groups`](Self::merge_into_groups) can be used.
    pub fn merges_known_groups(&self) -> bool {
        self.accumulated.is_some()
    }

    /// Merges `parts` into `keys.len()` groups whose key columns are `keys`
    /// (group `g` is row `g` of them), with no hashing; in part order, as
    /// [`merge`](Self::merge) would meet them. `None`: some aggregate has no
    /// `GroupsAccumulator`; use [`merge`](Self::merge).
    pub fn merge_into_groups(
        &self,
        keys: Vec<ArrayRef>,
        groups: usize,
        parts: &[GroupedRows<'_>],
    ) -> DFResult<Option<RecordBatch>> {
        let Some(accumulated) = &self.accumulated else {
            return Ok(None);
        };
        let mut columns = keys;
        for (aggregate, states) in accumulated {
            let mut accumulator = aggregate.create_groups_accumulator()?;
            for part in parts {
                accumulator.merge_batch(
                    &part.rows.columns()[states.clone()],
                    part.groups,
                    groups,
                )?;
            }
            if self.finishes {
                columns.push(accumulator.evaluate(EmitTo::All)?);
            } else {
                columns.extend(accumulator.state(EmitTo::All)?);
            }
        }
        Ok(Some(RecordBatch::try_new(self.schema(), columns)?))
    }
}
