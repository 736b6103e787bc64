//! An aggregate of a stream's query cut for per-batch work: its GROUP BY
//! and aggregate calls lowered to DataFusion's physical expressions once, and
//! its partial step (`AggregateExec` in `Partial` mode) over the aggregate's
//! input. Windows and keyed state both keep per-batch partial states and
//! merge them later with `PartialReduce` / `Final` ([`merge`](super::merge)).
//!
//! The partial step also counts each key's rows (a hidden `count(1)`, last),
//! so keys with no rows left can be told apart.

use std::sync::Arc;

use datafusion::common::DFSchema;
use datafusion::error::Result as DFResult;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::physical_expr::aggregate::{AggregateFunctionExpr, LoweredAggregateBuilder};
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, PhysicalGroupBy};
use datafusion::prelude::SessionContext;

use super::split::AggregateSplit;
use crate::plan::{StreamPlan, physical_plan, stream_state};

/// One aggregate call, lowered.
pub struct LoweredCall {
    pub aggregate: Arc<AggregateFunctionExpr>,
    /// `FILTER (WHERE ...)`.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// As written, for EXPLAIN.
    pub name: String,
}

/// The aggregate of a split query, lowered once.
pub struct PartialAggregate {
    /// The GROUP BY expressions kept per batch, named `__key<i>`.
    pub keys: Vec<(Arc<dyn PhysicalExpr>, String)>,
    pub group_by: PhysicalGroupBy,
    pub calls: Vec<LoweredCall>,
    /// The hidden per-key row count.
    pub rows: Arc<AggregateFunctionExpr>,
    /// The aggregate's input planned for one partition and, when the session
    /// has more, for all of them.
    pub single_input: Arc<dyn ExecutionPlan>,
    pub parallel_input: Option<Arc<dyn ExecutionPlan>>,
    pub partitions: usize,
    pub task_ctx: Arc<TaskContext>,
}

impl PartialAggregate {
    pub async fn new(session: &SessionContext, split: &AggregateSplit) -> DFResult<Self> {
        let state = stream_state(session, 1);
        let partitions = session.state().config().target_partitions();
        let single_input = physical_plan(session, &split.input, 1).await?;
        let parallel_input = if partitions > 1 {
            Some(physical_plan(session, &split.input, partitions).await?)
        } else {
            None
        };
        let input_schema = single_input.schema();
        let logical_schema: &DFSchema = split.input.schema();
        let props = state.execution_props();
        let planning = PhysicalPlanningContext::default();
        let keys = split
            .keys
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Ok((
                    create_physical_expr(e, logical_schema, props, &planning)?,
                    format!("__key{i}"),
                ))
            })
            .collect::<DFResult<Vec<(Arc<dyn PhysicalExpr>, String)>>>()?;
        let group_by = PhysicalGroupBy::new_single(keys.clone());
        let mut calls = Vec::with_capacity(split.aggregates.len());
        for e in &split.aggregates {
            let l =
                LoweredAggregateBuilder::new(e, logical_schema, &input_schema, props, &planning)
                    .build()?;
            calls.push(LoweredCall {
                aggregate: l.aggregate,
                filter: l.filter,
                name: e.human_display().to_string(),
            });
        }
        let hidden = datafusion::functions_aggregate::expr_fn::count(Expr::Literal(
            datafusion::common::ScalarValue::Int64(Some(1)),
            None,
        ));
        let rows =
            LoweredAggregateBuilder::new(&hidden, logical_schema, &input_schema, props, &planning)
                .with_name("__sluice_rows")
                .build()?
                .aggregate;
        Ok(Self {
            keys,
            group_by,
            calls,
            rows,
            single_input,
            parallel_input,
            partitions,
            task_ctx: Arc::new(TaskContext::from(&state)),
        })
    }

    pub fn key_columns(&self) -> usize {
        self.keys.len()
    }

    /// The user's aggregates, in order.
    pub fn aggregates(&self) -> Vec<Arc<AggregateFunctionExpr>> {
        self.calls
            .iter()
            .map(|c| Arc::clone(&c.aggregate))
            .collect()
    }

    /// The aggregates and the hidden row count, as the partial step computes them.
    pub fn aggregates_with_rows(&self) -> Vec<Arc<AggregateFunctionExpr>> {
        let mut all = self.aggregates();
        all.push(Arc::clone(&self.rows));
        all
    }

    /// The partial step over `single` / `parallel` (the aggregate's input, or
    /// plans with its schema), planned once, text keys interned
    /// ([`crate::interned_keys`]).
    pub fn partial_plan(
        &self,
        single: Arc<dyn ExecutionPlan>,
        parallel: Option<Arc<dyn ExecutionPlan>>,
        parallel_threshold: usize,
    ) -> DFResult<StreamPlan> {
        let mut filters: Vec<_> = self.calls.iter().map(|c| c.filter.clone()).collect();
        filters.push(None);
        let partial = |input: Arc<dyn ExecutionPlan>| -> DFResult<Arc<dyn ExecutionPlan>> {
            crate::interned_keys::intern_text_keys(Arc::new(AggregateExec::try_new(
                AggregateMode::Partial,
                self.group_by.clone(),
                self.aggregates_with_rows(),
                filters.clone(),
                input,
                self.single_input.schema(),
            )?))
        };
        let single = partial(single)?;
        let parallel = parallel.map(partial).transpose()?;
        Ok(
            StreamPlan::from_plans(single, parallel, Arc::clone(&self.task_ctx))
                .with_parallel_threshold(parallel_threshold),
        )
    }
}
