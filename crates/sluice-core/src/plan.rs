//! A stream's plan: its SQL planned once into DataFusion physical plans that
//! each batch only executes.
//!
//! Two physical plans are kept per stream: one with a single partition and no
//! repartitioning (small batches: a 10-row batch must not pay for hash
//! repartitioning and thread hand-offs), and one with the session's
//! `target_partitions` for large batches. [`StreamPlan::execute`] picks one by
//! the batch's input row count.
//!
//! Before each execution [`reset_plan_states`] gives nodes that keep state in
//! the plan instance (hash-join build sides, repartition channels) a fresh
//! start. Dynamic filters are switched off for stream plans: they tie a plan
//! instance to one execution.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::error::Result as DFResult;
use datafusion::execution::TaskContext;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::{ExecutionPlan, collect, displayable};
use datafusion::prelude::SessionContext;

use crate::build_side::StaticBuildSide;

/// Input rows at or above which a batch runs on the partitioned plan: one
/// DataFusion batch. Measured (`cargo bench -p sluice-benches -- threshold`,
/// docs/performance.md): word count on 2 cores is faster on one partition at
/// 1k lines (0.16 vs 0.25 ms) and on two from 8k lines (0.87 vs 1.01 ms).
pub const DEFAULT_PARALLEL_THRESHOLD: usize = 8_192;

/// The planned-once physical plans of one stream.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    single: Arc<dyn ExecutionPlan>,
    parallel: Option<Arc<dyn ExecutionPlan>>,
    parallel_threshold: usize,
    task_ctx: Arc<TaskContext>,
    schema: SchemaRef,
}

impl StreamPlan {
    /// Plans `logical` once for small and once for large batches.
    pub async fn new(session: &SessionContext, logical: &LogicalPlan) -> DFResult<Self> {
        let state = session.state();
        let partitions = state.config().target_partitions();
        let single = physical_plan(session, logical, 1).await?;
        let parallel = if partitions > 1 {
            Some(physical_plan(session, logical, partitions).await?)
        } else {
            None
        };
        let schema = single.schema();
        Ok(Self {
            single,
            parallel,
            parallel_threshold: DEFAULT_PARALLEL_THRESHOLD,
            task_ctx: session.task_ctx(),
            schema,
        })
    }

    /// A plan made of physical plans built elsewhere (a window's panes).
    pub fn from_plans(
        single: Arc<dyn ExecutionPlan>,
        parallel: Option<Arc<dyn ExecutionPlan>>,
        task_ctx: Arc<TaskContext>,
    ) -> Self {
        let schema = single.schema();
        Self {
            single,
            parallel,
            parallel_threshold: DEFAULT_PARALLEL_THRESHOLD,
            task_ctx,
            schema,
        }
    }

    /// The schema of every batch this stream produces.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    pub fn with_parallel_threshold(mut self, rows: usize) -> Self {
        self.parallel_threshold = rows;
        self
    }

    /// Whether a batch with `input_rows` rows runs on the partitioned plan.
    pub fn partitioned_for(&self, input_rows: usize) -> bool {
        self.parallel.is_some() && input_rows >= self.parallel_threshold
    }

    /// The plan a batch with `input_rows` rows runs on.
    pub fn plan_for(&self, input_rows: usize) -> &Arc<dyn ExecutionPlan> {
        match &self.parallel {
            Some(p) if self.partitioned_for(input_rows) => p,
            _ => &self.single,
        }
    }

    /// Runs the plan over what the input slots hold now.
    pub async fn execute(&self, input_rows: usize) -> DFResult<Vec<RecordBatch>> {
        let plan = reset_plan_states(Arc::clone(self.plan_for(input_rows)))?;
        collect(plan, Arc::clone(&self.task_ctx)).await
    }

    /// Both physical plans, indented, for `EXPLAIN`.
    pub fn display(&self) -> String {
        let mut s = format!(
            "batches under {} rows:\n{}",
            self.parallel_threshold,
            displayable(self.single.as_ref()).indent(false)
        );
        if let Some(p) = &self.parallel {
            s.push_str(&format!(
                "larger batches:\n{}",
                displayable(p.as_ref()).indent(false)
            ));
        }
        s
    }
}

/// Plans `logical` with `partitions` target partitions and no dynamic filters;
/// an unnest of a lone list column becomes a zero-copy slice
/// ([`crate::flatten`]), a `split_part` cast to a string view views its
/// input ([`crate::split_view`]), a join with a static table of unique
/// keys is a lookup per row ([`crate::lookup_join`]), and an aggregate
/// grouped by one text column keeps its keys from batch to batch
/// ([`crate::interned_keys`]).
pub(crate) async fn physical_plan(
    session: &SessionContext,
    logical: &LogicalPlan,
    partitions: usize,
) -> DFResult<Arc<dyn ExecutionPlan>> {
    let plan = stream_state(session, partitions)
        .create_physical_plan(logical)
        .await?;
    let plan = crate::split_view::split_parts_as_views(crate::flatten::flatten_unnests(plan)?)?;
    let plan = crate::lookup_join::lookup_static_joins(plan)?;
    crate::interned_keys::intern_text_keys(plan)
}

/// A copy of the session's state (sharing its catalog) with the settings
/// stream plans are made with: `partitions` target partitions, no dynamic
/// filters, partial aggregates that always aggregate (a window keeps
/// them, so they must not turn into one state per row), and joins with a
/// static table built on the table ([`StaticBuildSide`]).
pub(crate) fn stream_state(session: &SessionContext, partitions: usize) -> SessionState {
    let state = session.state();
    let rules = StaticBuildSide::placed_in(state.physical_optimizers().to_vec());
    let mut state = SessionStateBuilder::new_from_existing(state)
        .with_physical_optimizer_rules(rules)
        .build();
    {
        let options = state.config_mut().options_mut();
        options.execution.target_partitions = partitions;
        options
            .execution
            .skip_partial_aggregation_probe_ratio_threshold = 1.0;
        options.optimizer.enable_dynamic_filter_pushdown = false;
        options.optimizer.enable_join_dynamic_filter_pushdown = false;
        options.optimizer.enable_topk_dynamic_filter_pushdown = false;
        options.optimizer.enable_aggregate_dynamic_filter_pushdown = false;
    }
    state
}
