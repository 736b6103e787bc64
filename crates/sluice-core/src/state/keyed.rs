//! `GROUP BY ... EMIT CHANGES` / `EMIT SNAPSHOT`: running aggregates per key
//! across all batches, kept as Arrow arrays in a [`StateStore`].
//!
//! Each batch, DataFusion's partial `AggregateExec` turns the batch's rows
//! into one row of states per key it touched; the store finds those keys
//! once in its index and gives their stored states; `PartialReduce` merges
//! the two (any aggregate merges its own states, a user's UDAF included) and
//! the result replaces them in the store. `EMIT CHANGES` (Spark's `mapWithState`) then finishes the touched
//! keys only, so a batch costs what it touches; `EMIT SNAPSHOT` (Spark's
//! `updateStateByKey`) finishes every key, every batch.
//!
//! ```sql
//! CREATE STREAM totals AS
//!   SELECT word, count(*) AS n FROM words GROUP BY word EMIT CHANGES;
//! ```

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{Int64Type, SchemaRef};
use datafusion::error::Result as DFResult;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::aggregates::AggregateMode;
use datafusion::prelude::SessionContext;
use sluice_sql::EmitMode;

use super::store::StateStore;
use crate::plan::StreamPlan;
use crate::slot::{BatchSlot, SlotContents};
use crate::window::merge::PartialMerger;
use crate::window::partial::PartialAggregate;
use crate::window::split::AggregateSplit;
use crate::window::stream::plan_over_values;

/// A stream of running aggregates per key.
pub struct KeyedStream {
    /// The source or stream it reads.
    pub input: String,
    mode: EmitMode,
    /// Batch rows → one row of states per touched key.
    batch_plan: StreamPlan,
    key_columns: usize,
    /// The column of the hidden row count in a state row.
    rows_column: usize,
    merger: PartialMerger,
    finisher: PartialMerger,
    store: StateStore,
    /// The rest of the query over the finished values.
    plan: StreamPlan,
    result_slot: Arc<BatchSlot>,
    /// Aggregates as written, for EXPLAIN.
    names: Vec<String>,
}

impl KeyedStream {
    /// Plans `split` (the aggregate of `logical`, reading `input`) once.
    pub async fn new(
        session: &SessionContext,
        input: &str,
        mode: EmitMode,
        split: &AggregateSplit,
        logical: &LogicalPlan,
        parallel_threshold: usize,
    ) -> DFResult<Self> {
        let lowered = PartialAggregate::new(session, split).await?;
        let batch_plan = lowered.partial_plan(
            Arc::clone(&lowered.single_input),
            lowered.parallel_input.clone(),
            parallel_threshold,
        )?;
        let state_schema = batch_plan.schema();
        let key_columns = lowered.key_columns();
        let rows_column = state_schema.fields().len() - 1;
        let input_schema = lowered.single_input.schema();
        let final_group_by = lowered.group_by.as_final();
        let merger = PartialMerger::new(
            AggregateMode::PartialReduce,
            Arc::clone(&state_schema),
            final_group_by.clone(),
            lowered.aggregates_with_rows(),
            Arc::clone(&input_schema),
            Arc::clone(&lowered.task_ctx),
        )?;
        let finisher = PartialMerger::new(
            AggregateMode::Final,
            Arc::new(state_schema.project(&(0..rows_column).collect::<Vec<_>>())?),
            final_group_by,
            lowered.aggregates(),
            input_schema,
            Arc::clone(&lowered.task_ctx),
        )?;
        let (plan, result_slot) =
            plan_over_values(session, split, logical, &finisher.schema(), parallel_threshold)
                .await?;
        Ok(Self {
            input: input.to_string(),
            mode,
            batch_plan,
            key_columns,
            rows_column,
            merger,
            finisher,
            store: StateStore::new(state_schema, key_columns)?,
            plan,
            result_slot,
            names: lowered.calls.iter().map(|c| c.name.clone()).collect(),
        })
    }

    pub fn plan(&self) -> &StreamPlan {
        &self.plan
    }

    /// Takes in batch `t` (the input's slot holds its `rows` rows) and
    /// returns what the stream emits.
    pub async fn run(&mut self, t: i64, rows: usize) -> DFResult<Vec<RecordBatch>> {
        let batches = self.batch_plan.execute(rows).await?;
        let touched = concat_batches(&self.batch_plan.schema(), &batches)?;
        let k = self.key_columns;
        // Without GROUP BY there is one key, which a batch touches only if
        // it has rows.
        let had_rows = k > 0
            || touched
                .column(self.rows_column)
                .as_primitive::<Int64Type>()
                .iter()
                .flatten()
                .sum::<i64>()
                > 0;
        // One row per key (on the partitioned plan the partial step gives one
        // per key per partition), then the touched keys' stored rows, found
        // once in the index.
        let touched = if self.batch_plan.partitioned_for(rows) {
            self.merger.merge(vec![touched]).await?
        } else {
            touched
        };
        let keys = self.store.find(&touched.columns()[..k], touched.num_rows())?;
        let stored = self.store.rows_of(&keys)?;
        let merged = self.merger.merge(vec![touched.clone(), stored]).await?;
        // The merge lists keys as first met, `touched`'s order; if it ever
        // did not, find them again.
        let same_order = merged.num_rows() == touched.num_rows()
            && (0..k).all(|c| merged.column(c).as_ref() == touched.column(c).as_ref());
        let keys = if same_order {
            keys
        } else {
            self.store.find(&merged.columns()[..k], merged.num_rows())?
        };
        self.store.put(&keys, &merged)?;
        let states = match self.mode {
            EmitMode::Changes if !had_rows => RecordBatch::new_empty(Arc::clone(&self.store_schema())),
            EmitMode::Changes => merged,
            EmitMode::Snapshot => self.store.snapshot()?,
        };
        let finishing: Vec<usize> = (0..self.rows_column).collect();
        let values = if states.num_rows() == 0 && k == 0 {
            // A global aggregate with nothing to emit.
            RecordBatch::new_empty(self.finisher.schema())
        } else {
            self.finisher.merge(vec![states.project(&finishing)?]).await?
        };
        let n = values.num_rows();
        self.result_slot.set_contents(SlotContents {
            batch_time: t,
            batches: Arc::new(vec![values]),
            rows: n,
            ..Default::default()
        });
        let out = self.plan.execute(n).await;
        self.result_slot.clear();
        out
    }

    fn store_schema(&self) -> SchemaRef {
        self.batch_plan.schema()
    }

    /// What EXPLAIN says: `(item, detail)` rows.
    pub fn explain(&self) -> Vec<(String, String)> {
        let mut rows = vec![(
            "state".to_string(),
            format!(
                "{} per key across batches: {} keys, {} bytes",
                match self.mode {
                    EmitMode::Changes => "EMIT CHANGES (keys touched each batch)",
                    EmitMode::Snapshot => "EMIT SNAPSHOT (every key each batch)",
                },
                self.store.len(),
                self.store.size()
            ),
        )];
        for name in &self.names {
            rows.push((
                name.clone(),
                "running: stored states merged with the batch's partial states".into(),
            ));
        }
        rows.push(("batch plan".into(), self.batch_plan.display()));
        rows
    }

    /// Bytes of state.
    pub fn state_size(&self) -> usize {
        self.store.size()
    }
}
