//! `GROUP BY ... EMIT CHANGES` / `EMIT SNAPSHOT`: running aggregates per key
//! across all batches, kept as Arrow arrays in a [`StateStore`].
//!
//! Each batch, DataFusion's partial `AggregateExec` turns the batch's rows
//! into one row of states per key it touched (on the partitioned plan one
//! per partition, merged first in a table of the batch's keys); the store
//! finds those keys once in its index, which numbers them, and gives their
//! stored states; the aggregates' own accumulators merge the two by those
//! numbers, with no second hash table (a UDAF without a `GroupsAccumulator`
//! goes through a `PartialReduce` `AggregateExec` instead), and the result
//! replaces them in the store. `EMIT CHANGES` (Spark's `mapWithState`) then
//! finishes the touched keys only, so a batch costs what it touches;
//! `EMIT SNAPSHOT` (Spark's `updateStateByKey`) finishes every key, every
//! batch, reading the store's rows in key order (see
//! [`StateStore::snapshot_compacting`]).
//!
//! Options: `state_timeout` (a key idle that long is emitted once more with
//! `timed_out = true`, then dropped; the stream gets a last column
//! `timed_out`), `initial_state` ([`super::seed`]) and `EVICT WHEN`
//! ([`super::evict`]).
//!
//! ```sql
//! CREATE STREAM totals WITH (state_timeout = '30 seconds') AS
//!   SELECT word, count(*) AS n FROM words GROUP BY word EMIT CHANGES;
//! ```

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use arrow::compute::{cast, concat_batches, filter_record_batch, take};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::error::Result as DFResult;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::aggregates::AggregateMode;
use datafusion::prelude::SessionContext;
use sluice_sql::EmitMode;

use super::store::StateStore;
use crate::plan::StreamPlan;
use crate::slot::{BatchSlot, SlotContents};
use crate::window::merge::{GroupedRows, PartialMerger};
use crate::window::partial::PartialAggregate;
use crate::window::split::AggregateSplit;
use crate::window::stream::plan_over_values;

/// The column a stream with `state_timeout` gets: whether the row is a
/// key's last, as it times out.
pub const TIMED_OUT: &str = "timed_out";

/// What `WITH (...)` and `EVICT WHEN` add to a keyed stream.
#[derive(Default)]
pub struct KeyedOptions {
    /// `state_timeout`: keys idle for longer are emitted once more, then dropped.
    pub timeout: Option<Duration>,
    /// `initial_state`: the aggregate's values to start from (key columns,
    /// then each aggregate's value; see [`super::seed`]).
    pub seed: Option<RecordBatch>,
    /// `EVICT WHEN`: `(key columns, evict)` over the aggregate ([`super::evict`]).
    pub evict: Option<LogicalPlan>,
}

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
    /// Key and aggregates, for a checkpoint.
    signature: Vec<(&'static str, String)>,
    timeout_ms: Option<i64>,
    /// Seed states, put in at the first batch.
    seed: Option<RecordBatch>,
    /// `(key columns, evict)` over the touched keys' values.
    evict: Option<(StreamPlan, Arc<BatchSlot>)>,
    schema: SchemaRef,
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
        options: KeyedOptions,
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
        let (plan, result_slot) = plan_over_values(
            session,
            split,
            logical,
            &finisher.schema(),
            parallel_threshold,
        )
        .await?;
        let evict = match &options.evict {
            Some(evict) => Some(
                plan_over_values(
                    session,
                    split,
                    evict,
                    &finisher.schema(),
                    parallel_threshold,
                )
                .await?,
            ),
            None => None,
        };
        let mut schema = plan.schema();
        if options.timeout.is_some() {
            let mut fields = schema.fields().to_vec();
            fields.push(Arc::new(Field::new(TIMED_OUT, DataType::Boolean, false)));
            schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        }
        let seed = match options.seed {
            Some(values) => Some(seed_states(&values, &state_schema)?),
            None => None,
        };
        let mut store = StateStore::new(Arc::clone(&state_schema), key_columns)?;
        if options.timeout.is_some() {
            store = store.with_idle_tracking();
        }
        Ok(Self {
            input: input.to_string(),
            mode,
            batch_plan,
            key_columns,
            rows_column,
            merger,
            finisher,
            store,
            plan,
            result_slot,
            names: lowered.calls.iter().map(|c| c.name.clone()).collect(),
            signature: split.signature(),
            timeout_ms: options
                .timeout
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            seed,
            evict,
            schema,
        })
    }

    pub fn plan(&self) -> &StreamPlan {
        &self.plan
    }

    /// What it emits: the query's columns, then `timed_out` with a timeout.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Takes in batch `t` (the input's slot holds its `rows` rows) and
    /// returns what the stream emits.
    pub async fn run(&mut self, t: i64, rows: usize) -> DFResult<Vec<RecordBatch>> {
        if let Some(seed) = self.seed.take() {
            let seed = self.merger.merge(vec![seed]).await?;
            let keys = self
                .store
                .find(&seed.columns()[..self.key_columns], seed.num_rows())?;
            self.store.put_at(&keys, &seed, Some(t))?;
        }
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
        let (keys, merged) = self.merge_touched(touched, rows).await?;
        self.store.put_at(&keys, &merged, Some(t))?;
        let timed_out = match self.timeout_ms {
            Some(ms) => Some(self.store.take_idle(t.saturating_sub(ms))?),
            None => None,
        };
        let values = match self.mode {
            EmitMode::Changes => self.finish(&merged, had_rows).await?,
            EmitMode::Snapshot => {
                let all = self.store.snapshot_compacting()?;
                self.finish(&all, true).await?
            }
        };
        // EVICT WHEN tests the touched keys' values.
        let touched_values = match (&self.evict, self.mode) {
            (None, _) => None,
            (Some(_), EmitMode::Changes) => Some(values.clone()),
            (Some(_), EmitMode::Snapshot) => Some(self.finish(&merged, had_rows).await?),
        };
        let mut out = self.emit(t, values, false).await?;
        if let Some(timed_out) = timed_out
            && timed_out.num_rows() > 0
        {
            let values = self.finish(&timed_out, true).await?;
            out.extend(self.emit(t, values, true).await?);
        }
        if let Some(touched) = touched_values
            && touched.num_rows() > 0
        {
            self.evict(t, touched).await?;
        }
        Ok(out)
    }

    /// Merges the batch's partial states (`touched`, from `rows` input
    /// rows) with the stored states of their keys: one row per key, and
    /// each key's index in the store.
    async fn merge_touched(
        &mut self,
        touched: RecordBatch,
        rows: usize,
    ) -> DFResult<(Vec<usize>, RecordBatch)> {
        let k = self.key_columns;
        // One row per key: on the partitioned plan the partial step gives one
        // per key per partition. Merged first in a hash table of the batch's
        // keys only, so the store's index (which may not fit in cache) is
        // probed once per key.
        let touched = if self.batch_plan.partitioned_for(rows) {
            self.merger.merge(vec![touched]).await?
        } else {
            touched
        };
        if self.merger.merges_known_groups() {
            // The store's index numbers the keys; no second hash table.
            let found = self
                .store
                .find(&touched.columns()[..k], touched.num_rows())?;
            let groups = self.store.groups_of(&found)?;
            let first = UInt32Array::from(groups.first_rows);
            let keys = touched.columns()[..k]
                .iter()
                .map(|c| take(c.as_ref(), &first, None))
                .collect::<Result<Vec<_>, _>>()?;
            let parts = [
                GroupedRows {
                    rows: &touched,
                    groups: &groups.rows,
                },
                GroupedRows {
                    rows: &groups.stored,
                    groups: &groups.stored_groups,
                },
            ];
            if let Some(merged) = self
                .merger
                .merge_into_groups(keys, groups.keys.len(), &parts)?
            {
                return Ok((groups.keys, merged));
            }
        }
        // The touched keys' stored rows, found once in the index.
        let keys = self
            .store
            .find(&touched.columns()[..k], touched.num_rows())?;
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
        Ok((keys, merged))
    }

    /// The values of the keys in `states` (state rows); `any`: whether a
    /// global aggregate has anything to emit.
    async fn finish(&mut self, states: &RecordBatch, any: bool) -> DFResult<RecordBatch> {
        if self.key_columns == 0 && (!any || states.num_rows() == 0) {
            return Ok(RecordBatch::new_empty(self.finisher.schema()));
        }
        let finishing: Vec<usize> = (0..self.rows_column).collect();
        self.finisher
            .merge_one_per_key(states.project(&finishing)?)
            .await
    }

    /// The query over `values`, with `timed_out` set to `timed_out` if the
    /// stream has the column.
    async fn emit(
        &mut self,
        t: i64,
        values: RecordBatch,
        timed_out: bool,
    ) -> DFResult<Vec<RecordBatch>> {
        let out = run_over(&self.plan, &self.result_slot, t, values).await?;
        if self.timeout_ms.is_none() {
            return Ok(out);
        }
        out.into_iter()
            .map(|b| {
                let mut columns = b.columns().to_vec();
                columns
                    .push(Arc::new(BooleanArray::from(vec![timed_out; b.num_rows()])) as ArrayRef);
                Ok(RecordBatch::try_new(self.schema(), columns)?)
            })
            .collect()
    }

    /// Drops the keys among `values` (the touched keys' values) that
    /// `EVICT WHEN` selects.
    async fn evict(&mut self, t: i64, values: RecordBatch) -> DFResult<()> {
        let Some((plan, slot)) = &self.evict else {
            return Ok(());
        };
        let k = self.key_columns;
        for b in run_over(plan, slot, t, values).await? {
            let Some(flag) = b.column(k).as_boolean_opt() else {
                return datafusion::common::internal_err!(
                    "EVICT WHEN gave {} (schema {:?}), not a boolean",
                    b.column(k).data_type(),
                    b.schema()
                );
            };
            // NULL (unknown) does not evict, as in WHERE.
            let mask = match flag.nulls() {
                Some(_) => arrow::compute::prep_null_mask_filter(flag),
                None => flag.clone(),
            };
            let chosen = filter_record_batch(&b, &mask)?;
            if chosen.num_rows() > 0 {
                self.store
                    .remove(&chosen.columns()[..k], chosen.num_rows())?;
            }
        }
        Ok(())
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
        if let Some(ms) = self.timeout_ms {
            rows.push((
                "state_timeout".into(),
                format!(
                    "{}: a key idle longer is emitted once with timed_out = true, then dropped",
                    sluice_sql::format_duration(Duration::from_millis(ms as u64))
                ),
            ));
        }
        if let Some((plan, _)) = &self.evict {
            rows.push((
                "evict when".into(),
                format!(
                    "touched keys whose values pass it are emitted, then dropped:\n{}",
                    plan.display()
                ),
            ));
        }
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

    /// Records the store's changes from now on, for a checkpoint.
    pub fn record_changes(&mut self) {
        self.store.record_changes();
    }

    /// The store's changes since the last call, or (`full`) all its state;
    /// a change batch ([`super::changelog`]).
    pub fn take_changes(&mut self, full: bool) -> DFResult<RecordBatch> {
        if full {
            self.store.full_changes()
        } else {
            self.store.take_changes()
        }
    }

    /// Applies saved change batches in order (a full one, then deltas).
    /// `started`: saved after the first batch, so the `initial_state` seed
    /// is in them. Keys saved without a last-touch time (the stream had no
    /// `state_timeout` then) count as touched at `last`, the last batch.
    pub fn restore(&mut self, changes: &[RecordBatch], last: i64, started: bool) -> DFResult<()> {
        if started {
            self.seed = None;
        }
        for c in changes {
            self.store.apply_changes(c)?;
        }
        self.store.touch_untouched(last);
        Ok(())
    }

    /// The `initial_state` seed is still to be applied.
    pub fn seed_pending(&self) -> bool {
        self.seed.is_some()
    }

    /// What a checkpoint compares to know saved state still fits.
    pub fn signature(&self) -> Vec<(&'static str, String)> {
        let mut out = self.signature.clone();
        out.push(("state", crate::catalog::columns(&self.batch_plan.schema())));
        out
    }
}

/// Runs `plan` over `values` put in its slot for batch `t`.
async fn run_over(
    plan: &StreamPlan,
    slot: &BatchSlot,
    t: i64,
    values: RecordBatch,
) -> DFResult<Vec<RecordBatch>> {
    let n = values.num_rows();
    slot.set_contents(SlotContents {
        batch_time: t,
        batches: Arc::new(vec![values]),
        rows: n,
        ..Default::default()
    });
    let out = plan.execute(n).await;
    slot.clear();
    out
}

/// Seed values (key columns, then one value per aggregate) as state rows:
/// each value is its aggregate's one state column; the hidden row count is 1.
fn seed_states(values: &RecordBatch, state_schema: &SchemaRef) -> DFResult<RecordBatch> {
    let fields = state_schema.fields();
    if values.num_columns() + 1 != fields.len() {
        return datafusion::common::plan_err!(
            "initial_state: {} seed columns for {} state columns",
            values.num_columns(),
            fields.len() - 1
        );
    }
    let mut columns = values
        .columns()
        .iter()
        .zip(fields.iter())
        .map(|(c, f)| cast(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    columns.push(Arc::new(Int64Array::from(vec![1i64; values.num_rows()])));
    Ok(RecordBatch::try_new(Arc::clone(state_schema), columns)?)
}
