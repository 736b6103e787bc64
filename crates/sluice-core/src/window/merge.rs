//! Merging tables of partial aggregate states with DataFusion's own
//! `AggregateExec`, planned once over a slot: `PartialReduce` mode gives
//! merged states (for the two-stack), `Final` mode gives the aggregates'
//! values (the window's output).

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use datafusion::error::Result as DFResult;
use datafusion::execution::TaskContext;
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
}
