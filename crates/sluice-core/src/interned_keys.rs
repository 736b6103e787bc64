//! GROUP BY one text column, its values numbered once and remembered from
//! batch to batch: the word count's `GROUP BY word`.
//!
//! A stream's plan runs every batch, and a stream's keys mostly repeat from
//! one batch to the next (the same words, the same pages, the same users).
//! DataFusion's hash aggregate starts each run from an empty table: every key
//! of every batch is hashed, looked up, copied, inserted, and the table grows
//! through its sizes. That was half of a word count batch's CPU (perf;
//! docs/performance.md).
//!
//! [`intern_text_keys`] puts an [`InternedAggregateExec`] in place of each
//! `AggregateExec` grouped by one text (`Utf8` or `Utf8View`) expression whose aggregates all have
//! a `GroupsAccumulator` (no grouping sets, no limit, unordered input). Each
//! of its partitions keeps a [`KeyInterner`] across runs: a key is hashed
//! (one multiply for keys of up to 8 bytes), found by a probe that compares
//! the 8 bytes held in the table's entry, and gets the number it got the
//! first time it was seen. A run's groups are numbered in the order their
//! keys first appear, as DataFusion numbers them, and DataFusion's own
//! accumulators aggregate with those numbers (a constant argument, such as
//! `count(*)`'s column of ones, is built once and sliced in later runs).
//! The output is the
//! `AggregateExec`'s: the same schema, rows, and row order (checked against
//! it on random input in the tests below). A partition that already knows
//! more than [`KeyInterner::MAX_KEYS`] keys or [`KeyInterner::MAX_BYTES`]
//! bytes of them forgets them at its next run, so a stream of ever-new keys
//! does not grow it without end. Unlike DataFusion's aggregate it does not
//! spill: under a session memory limit, a run whose keys and groups do not
//! fit fails with the memory pool's "resources exhausted" error.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use datafusion::physical_plan::execution_plan::reset_plan_states;
//! use datafusion::physical_plan::{collect, displayable};
//! use datafusion::prelude::SessionContext;
//! let session = SessionContext::new();
//! session.sql("CREATE TABLE words (w VARCHAR) AS VALUES ('to'), ('be'), ('to')").await.unwrap();
//! let sql = "SELECT w, count(*) AS n FROM words GROUP BY w";
//! let plan = session.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
//! let plan = sluice_core::interned_keys::intern_text_keys(plan).unwrap();
//! assert!(displayable(plan.as_ref()).indent(false).to_string().contains("InternedAggregateExec"));
//! for _run in 0..2 {
//!     // As every batch does: the same plan, its operators' states reset (the keys are kept).
//!     let run = reset_plan_states(plan.clone()).unwrap();
//!     let rows = collect(run, session.task_ctx()).await.unwrap();
//!     let text = arrow::util::pretty::pretty_format_batches(&rows).unwrap().to_string();
//!     assert!(text.contains("| to | 2 |") && text.contains("| be | 1 |"));
//! }
//! # });
//! ```

use std::fmt;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, StringViewArray};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue, exec_err, internal_err};
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{ColumnarValue, EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr_common::sort_expr::OrderingRequirements;
use datafusion::physical_plan::aggregates::{
    AggregateExec, AggregateInputMode, AggregateMode, AggregateOutputMode, aggregate_expressions,
};
use datafusion::physical_plan::distribution_requirements::InputDistributionRequirements;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode,
    PlanProperties, ReplaceChildrenOptions,
};
use futures::StreamExt;

/// Puts an [`InternedAggregateExec`] in place of every `AggregateExec` of
/// `plan` that it can stand for (see the module docs).
pub fn intern_text_keys(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
            return Ok(Transformed::no(node));
        };
        match InternedAggregateExec::try_new(aggregate.clone())? {
            Some(interned) => Ok(Transformed::yes(Arc::new(interned) as _)),
            None => Ok(Transformed::no(node)),
        }
    })
    .map(|t| t.data)
}

/// An `AggregateExec` grouped by one text expression, its keys interned
/// across runs (see the module docs).
#[derive(Debug)]
pub struct InternedAggregateExec {
    /// The node it stands for: its input, schema, properties and display.
    aggregate: Arc<AggregateExec>,
    lowered: Arc<Lowered>,
    /// What each output partition keeps between runs.
    kept: Vec<Arc<Mutex<Option<Kept>>>>,
}

/// What a run evaluates, worked out once.
#[derive(Debug)]
struct Lowered {
    key: Arc<dyn PhysicalExpr>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// Per aggregate: its arguments (raw input) or its state columns (partial states).
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    /// Per aggregate: `FILTER (WHERE ...)`, raw input only.
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    raw_input: bool,
    final_output: bool,
    schema: SchemaRef,
}

impl InternedAggregateExec {
    /// `aggregate` with its keys interned, or `None` when it is not grouped
    /// by a single text expression or an aggregate of it needs more than a
    /// `GroupsAccumulator`.
    pub fn try_new(aggregate: AggregateExec) -> Result<Option<Self>> {
        let group_by = aggregate.group_expr();
        let input_schema = aggregate.input().schema();
        let modes_supported = !matches!(aggregate.mode(), AggregateMode::PartialReduce);
        let [(key, _)] = group_by.expr() else {
            return Ok(None);
        };
        let key_type = key.data_type(&input_schema)?;
        let keyed_by_text = group_by.is_single()
            && !group_by.has_grouping_set()
            && matches!(key_type, DataType::Utf8 | DataType::Utf8View)
            && aggregate.schema().field(0).data_type() == &key_type;
        let plain = aggregate.limit_options().is_none()
            && aggregate.dynamic_expressions_produced().is_empty()
            && *aggregate.input_order_mode() == InputOrderMode::Linear
            && aggregate
                .aggr_expr()
                .iter()
                .all(|a| a.groups_accumulator_supported());
        if !(modes_supported && keyed_by_text && plain) {
            return Ok(None);
        }
        let mode = aggregate.mode();
        let raw_input = mode.input_mode() == AggregateInputMode::Raw;
        let lowered = Lowered {
            key: Arc::clone(key),
            aggregates: aggregate.aggr_expr().to_vec(),
            arguments: aggregate_expressions(
                aggregate.aggr_expr(),
                mode,
                group_by.num_group_exprs(),
            )?,
            filters: if raw_input {
                aggregate.filter_expr().to_vec()
            } else {
                vec![None; aggregate.aggr_expr().len()]
            },
            raw_input,
            final_output: mode.output_mode() == AggregateOutputMode::Final,
            schema: aggregate.schema(),
        };
        let partitions = aggregate
            .properties()
            .output_partitioning()
            .partition_count();
        Ok(Some(Self {
            aggregate: Arc::new(aggregate),
            lowered: Arc::new(lowered),
            kept: (0..partitions).map(|_| Arc::default()).collect(),
        }))
    }
}

impl DisplayAs for InternedAggregateExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Interned")?;
        self.aggregate.fmt_as(t, f)
    }
}

impl ExecutionPlan for InternedAggregateExec {
    fn name(&self) -> &str {
        "InternedAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.aggregate.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.aggregate.input_distribution_requirements()
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        self.aggregate.required_input_ordering()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        self.aggregate.maintains_input_order()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    /// The aggregate over `children`, keeping the keys learnt so far: they
    /// are only text, and the plan is rebuilt this way before every run
    /// (DataFusion's `reset_plan_states`).
    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let aggregate: Arc<dyn ExecutionPlan> = Arc::clone(&self.aggregate) as _;
        let replaced = aggregate.replace_children(children, options)?;
        let Some(aggregate) = replaced.downcast_ref::<AggregateExec>() else {
            return Ok(replaced);
        };
        let Some(mut interned) = Self::try_new(aggregate.clone())? else {
            return Ok(replaced);
        };
        if interned.kept.len() == self.kept.len() {
            interned.kept = self.kept.clone();
        }
        Ok(Arc::new(interned))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self
            .aggregate
            .input()
            .execute(partition, Arc::clone(&context))?;
        let Some(shared) = self.kept.get(partition).cloned() else {
            return exec_err!("InternedAggregateExec has no partition {partition}");
        };
        let lowered = Arc::clone(&self.lowered);
        let schema = Arc::clone(&lowered.schema);
        let run = async move {
            // Taken for the run (a run that is dropped half way loses it,
            // and the next starts a new one).
            let mut kept_now = shared
                .lock()
                .ok()
                .and_then(|mut kept| kept.take())
                .unwrap_or_default();
            let result = aggregate_run(&lowered, input, &mut kept_now, partition, &context).await;
            if let Ok(mut kept) = shared.lock() {
                *kept = Some(kept_now);
            }
            result
        };
        let batches = futures::stream::once(run).flat_map(|result| {
            let items: Vec<Result<RecordBatch>> = match result {
                Ok(batches) => batches.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(items)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// What a partition keeps from one run to the next.
#[derive(Debug, Default)]
struct Kept {
    keys: KeyInterner,
    constants: ConstantArrays,
}

/// The arrays of an earlier run's constant arguments (`count(*)` counts a
/// column of ones as long as the batch), sliced rather than built and
/// filled again every run; by argument, in order over the aggregates.
#[derive(Debug, Default)]
struct ConstantArrays(Vec<Option<(ScalarValue, ArrayRef)>>);

impl ConstantArrays {
    /// `value` as an array of `rows` rows, the `at`th argument of the run.
    fn array(&mut self, at: usize, value: ColumnarValue, rows: usize) -> Result<ArrayRef> {
        let ColumnarValue::Scalar(scalar) = value else {
            return value.into_array(rows);
        };
        if self.0.len() <= at {
            self.0.resize(at + 1, None);
        }
        match &self.0[at] {
            Some((kept, array)) if *kept == scalar && array.len() >= rows => {
                Ok(array.slice(0, rows))
            }
            _ => {
                let array = scalar.to_array_of_size(rows)?;
                self.0[at] = Some((scalar, Arc::clone(&array)));
                Ok(array)
            }
        }
    }

    fn memory_size(&self) -> usize {
        self.0
            .iter()
            .flatten()
            .map(|(_, array)| array.get_array_memory_size())
            .sum()
    }
}

/// One run of one partition: every input batch grouped, then the groups'
/// keys and aggregates, cut to the session's batch size.
async fn aggregate_run(
    lowered: &Lowered,
    mut input: SendableRecordBatchStream,
    kept: &mut Kept,
    partition: usize,
    context: &TaskContext,
) -> Result<Vec<RecordBatch>> {
    let Kept { keys, constants } = kept;
    let reservation = MemoryConsumer::new(format!("InternedAggregateExec[{partition}]"))
        .register(context.memory_pool());
    keys.start_run();
    let mut accumulators = lowered
        .aggregates
        .iter()
        .map(|a| a.create_groups_accumulator())
        .collect::<Result<Vec<Box<dyn GroupsAccumulator>>>>()?;
    let mut groups_of_rows: Vec<usize> = Vec::new();
    while let Some(batch) = input.next().await {
        let batch = batch?;
        let rows = batch.num_rows();
        let key = lowered.key.evaluate(&batch)?.into_array(rows)?;
        if let Some(text) = key.as_string_opt::<i32>() {
            keys.group(text, &mut groups_of_rows);
        } else if let Some(text) = key.as_string_view_opt() {
            keys.group_views(text, &mut groups_of_rows);
        } else {
            return internal_err!("a text key of type {}", key.data_type());
        }
        let groups = keys.groups();
        let mut at = 0;
        for ((accumulator, arguments), filter) in accumulators
            .iter_mut()
            .zip(&lowered.arguments)
            .zip(&lowered.filters)
        {
            let values = arguments
                .iter()
                .map(|a| {
                    at += 1;
                    constants.array(at - 1, a.evaluate(&batch)?, rows)
                })
                .collect::<Result<Vec<ArrayRef>>>()?;
            if lowered.raw_input {
                let filter = filter
                    .as_ref()
                    .map(|f| f.evaluate(&batch)?.into_array(rows))
                    .transpose()?;
                let filter = filter.as_ref().map(|f| f.as_boolean());
                accumulator.update_batch(&values, &groups_of_rows, filter, groups)?;
            } else {
                accumulator.merge_batch(&values, &groups_of_rows, groups)?;
            }
        }
        let used = keys.memory_size()
            + constants.memory_size()
            + accumulators.iter().map(|a| a.size()).sum::<usize>();
        reservation.try_resize(used)?;
    }
    if keys.groups() == 0 {
        return Ok(Vec::new());
    }
    let mut columns = vec![keys.group_keys(lowered.schema.field(0).data_type())?];
    for accumulator in &mut accumulators {
        if lowered.final_output {
            columns.push(accumulator.evaluate(EmitTo::All)?);
        } else {
            columns.extend(accumulator.state(EmitTo::All)?);
        }
    }
    let all = RecordBatch::try_new(Arc::clone(&lowered.schema), columns)?;
    let size = context.session_config().batch_size().max(1);
    Ok((0..all.num_rows())
        .step_by(size)
        .map(|start| all.slice(start, size.min(all.num_rows() - start)))
        .collect())
}

/// How many rows ahead a run computes a key's hash and prefetches its slot.
const AHEAD: usize = 16;

/// What a lookup gives: a key's group in the run ...
const GROUPS: u8 = 0;
/// ... or its number.
const NUMBERS: u8 = 1;

/// Text keys, each numbered the first time it is seen and found again by
/// its bytes; and the groups of the current run (see the module docs).
///
/// The keys are found in an open-addressing table with linear probing, at
/// most half full. A probe of a batch's key is mostly a cache miss (a word
/// count's table is megabytes), so a run hashes each key [`AHEAD`] rows
/// before it probes for it and prefetches its slot, and the misses of
/// several keys overlap.
#[derive(Debug)]
pub struct KeyInterner {
    /// A power of two of slots; an empty one has `key == EMPTY`.
    slots: Vec<Slot>,
    /// Key `k`'s bytes are `bytes[offsets[k]..offsets[k + 1]]`.
    offsets: Vec<usize>,
    bytes: Vec<u8>,
    /// The number of NULL, once seen.
    null_key: Option<u32>,
    /// Its group and the run it is from.
    null_group: (u32, u32),
    hasher: foldhash::fast::RandomState,
    /// Seeds of the hash of keys of up to 8 bytes.
    short_seeds: (u64, u64),
    /// This run's number: a slot's group is this run's if its `run` is this.
    run: u32,
    /// This run's groups: each one's key, in the order first seen.
    keys_of_groups: Vec<GroupKey>,
}

/// A group's key as its slot holds it, so that a short key is written out
/// without looking it up again.
#[derive(Debug, Clone, Copy)]
struct GroupKey {
    head: u64,
    len: u32,
    key: u32,
}

/// A key's slot: its first 8 bytes (zero-padded), its length, its number,
/// and its group in the last run that saw it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    head: u64,
    len: u32,
    key: u32,
    run: u32,
    group: u32,
}

/// The key of an empty slot.
const EMPTY: u32 = u32::MAX;

const EMPTY_SLOT: Slot = Slot {
    head: 0,
    len: 0,
    key: EMPTY,
    run: 0,
    group: 0,
};

impl Default for KeyInterner {
    fn default() -> Self {
        let hasher = foldhash::fast::RandomState::default();
        let short_seeds = (hasher.hash_one(1u64), hasher.hash_one(2u64) | 1 << 63);
        Self {
            slots: vec![EMPTY_SLOT; 1024],
            offsets: vec![0],
            bytes: Vec::new(),
            null_key: None,
            null_group: (0, 0),
            hasher,
            short_seeds,
            // Above the `run` of an empty or new slot, so that grouping
            // before any `start_run` is a run of its own.
            run: 1,
            keys_of_groups: Vec::new(),
        }
    }
}

impl KeyInterner {
    /// A run that starts with more keys than this forgets them all first.
    /// At 1Mi keys a partition holds about 56 MB of slots and offsets besides
    /// the keys' bytes; a stream has a few such partitions (partial and
    /// final steps, the small-batch plan).
    pub const MAX_KEYS: usize = 1 << 20;
    /// A run that starts with more key bytes than this forgets them all first.
    pub const MAX_BYTES: usize = 32 << 20;

    /// Starts a run: no groups, and the keys forgotten if there are too many.
    pub fn start_run(&mut self) {
        self.start_run_within(Self::MAX_KEYS, Self::MAX_BYTES);
    }

    /// [`start_run`](Self::start_run) with other limits.
    fn start_run_within(&mut self, max_keys: usize, max_bytes: usize) {
        if self.keys() > max_keys || self.bytes.len() > max_bytes || self.run == u32::MAX {
            *self = Self::default();
        }
        self.run += 1;
        self.keys_of_groups.clear();
    }

    /// How many keys it knows.
    pub fn keys(&self) -> usize {
        self.offsets.len() - 1
    }

    /// How many groups this run has.
    pub fn groups(&self) -> usize {
        self.keys_of_groups.len()
    }

    /// The bytes it holds.
    pub fn memory_size(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.offsets.capacity() * std::mem::size_of::<usize>()
            + self.bytes.capacity()
            + self.keys_of_groups.capacity() * std::mem::size_of::<GroupKey>()
    }

    /// Each row's group in this run, into `groups` (replacing what it held);
    /// new keys and new groups are numbered as they come.
    pub fn group(&mut self, text: &StringArray, groups: &mut Vec<usize>) {
        self.rows_of::<GROUPS>(text, groups);
    }

    /// [`group`](Self::group) for string views.
    pub fn group_views(&mut self, text: &StringViewArray, groups: &mut Vec<usize>) {
        self.row_views_of::<GROUPS>(text, groups);
    }

    /// Each row's key number, into `numbers` (replacing what it held): the
    /// number a key got the first time it was seen, by this or any earlier
    /// call, new keys numbered as they come (NULL is a key too). Runs and
    /// groups play no part: this is a dense index of every key it has seen,
    /// for as long as it is kept (the window's and the keyed state's keys,
    /// [`crate::window::keys`]).
    pub fn number(&mut self, text: &StringArray, numbers: &mut Vec<usize>) {
        self.rows_of::<NUMBERS>(text, numbers);
    }

    /// [`number`](Self::number) for string views.
    pub fn number_views(&mut self, text: &StringViewArray, numbers: &mut Vec<usize>) {
        self.row_views_of::<NUMBERS>(text, numbers);
    }

    /// Every key, in number order ([`number`](Self::number)), as `data_type`
    /// (`Utf8` or `Utf8View`); NULL where NULL was numbered.
    pub fn all_keys(&self, data_type: &DataType) -> Result<ArrayRef> {
        let total = self.bytes.len();
        if i32::try_from(total).is_err() {
            return exec_err!("the keys hold {total} bytes, over 2 GiB");
        }
        let offsets: Vec<i32> = self.offsets.iter().map(|&o| o as i32).collect();
        let nulls = self
            .null_key
            .map(|null| NullBuffer::from_iter((0..self.keys()).map(|k| k != null as usize)));
        let keys: ArrayRef = Arc::new(StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_slice_ref(&self.bytes),
            nulls,
        )?);
        match data_type {
            DataType::Utf8 => Ok(keys),
            _ => Ok(arrow::compute::cast(&keys, data_type)?),
        }
    }

    /// [`group`](Self::group) (`WHAT == GROUPS`) or [`number`](Self::number).
    fn rows_of<const WHAT: u8>(&mut self, text: &StringArray, out: &mut Vec<usize>) {
        let offsets = text.value_offsets();
        let values = text.values().as_slice();
        self.key_rows::<WHAT>(
            text.len(),
            text.nulls(),
            out,
            #[inline(always)]
            |row| {
                let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                (&values[start..end], head_of(values, start, end - start))
            },
        );
    }

    /// [`rows_of`](Self::rows_of) for string views.
    fn row_views_of<const WHAT: u8>(&mut self, text: &StringViewArray, out: &mut Vec<usize>) {
        self.key_rows::<WHAT>(text.len(), text.nulls(), out, |row| {
            let value = text.value(row).as_bytes();
            (value, head_of(value, 0, value.len()))
        });
    }

    /// The groups or numbers (`WHAT`) of `rows` rows whose keys (bytes and
    /// head) `key` gives.
    #[inline]
    fn key_rows<'a, const WHAT: u8>(
        &mut self,
        rows: usize,
        nulls: Option<&NullBuffer>,
        out: &mut Vec<usize>,
        key: impl Fn(usize) -> (&'a [u8], u64),
    ) {
        out.clear();
        out.reserve(rows);
        let nulls = nulls.filter(|n| n.null_count() > 0);
        // The rows AHEAD of the current one, by row % AHEAD: each one's
        // key, head and hash (its slot prefetched).
        let mut ahead: [(&[u8], u64, u64); AHEAD] = [(&[], 0, 0); AHEAD];
        for (row, next) in ahead.iter_mut().enumerate().take(rows) {
            *next = self.prepare(key(row));
        }
        for row in 0..rows {
            let (value, head, hash) = ahead[row % AHEAD];
            if row + AHEAD < rows {
                ahead[row % AHEAD] = self.prepare(key(row + AHEAD));
            }
            let found = if nulls.is_some_and(|n| n.is_null(row)) {
                match WHAT {
                    GROUPS => self.null_group(),
                    _ => self.null_number() as usize,
                }
            } else {
                self.find::<WHAT>(value, head, hash)
            };
            out.push(found);
        }
    }

    /// This run's groups' keys, in group order, as `data_type` (`Utf8` or `Utf8View`).
    pub fn group_keys(&self, data_type: &DataType) -> Result<ArrayRef> {
        let keys: ArrayRef = Arc::new(self.group_strings()?);
        match data_type {
            DataType::Utf8 => Ok(keys),
            _ => Ok(arrow::compute::cast(&keys, data_type)?),
        }
    }

    /// This run's groups' keys, in group order.
    fn group_strings(&self) -> Result<StringArray> {
        let total: usize = self.keys_of_groups.iter().map(|g| g.len as usize).sum();
        if i32::try_from(total).is_err() {
            return exec_err!("the group keys of one batch hold {total} bytes, over 2 GiB");
        }
        let mut offsets = Vec::with_capacity(self.groups() + 1);
        offsets.push(0i32);
        let mut bytes = Vec::with_capacity(total + crate::split::SHORT);
        for group in &self.keys_of_groups {
            let end = bytes.len() + group.len as usize;
            if group.len <= 8 {
                // The head is the key, zero-padded.
                bytes.extend_from_slice(&group.head.to_le_bytes());
                bytes.truncate(end);
            } else {
                let key = group.key as usize;
                let (from, to) = (self.offsets[key], self.offsets[key + 1]);
                crate::split::append_range(&mut bytes, &self.bytes, from, to);
            }
            offsets.push(end as i32);
        }
        let nulls = self.null_key.and_then(|null| {
            let keys = || self.keys_of_groups.iter().map(|g| g.key);
            keys()
                .any(|k| k == null)
                .then(|| NullBuffer::from_iter(keys().map(|k| k != null)))
        });
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        // SAFETY: each key is the bytes of a whole value of a string array
        // (valid UTF-8), so their concatenation is valid UTF-8 with every
        // offset on a character boundary; the offsets grow from 0 to `bytes.len()`.
        Ok(unsafe { StringArray::new_unchecked(offsets, Buffer::from_vec(bytes), nulls) })
    }

    /// A key with its head and hash, its slot prefetched.
    #[inline(always)]
    fn prepare<'a>(&self, (value, head): (&'a [u8], u64)) -> (&'a [u8], u64, u64) {
        let hash = hash_key(self.short_seeds, &self.hasher, head, value);
        prefetch(&self.slots[hash as usize & (self.slots.len() - 1)]);
        (value, head, hash)
    }

    /// The group of `value` in this run (`WHAT == GROUPS`) or its number; a
    /// new key (and a new group) are numbered if it is the first time.
    #[inline(always)]
    fn find<const WHAT: u8>(&mut self, value: &[u8], head: u64, hash: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = hash as usize & mask;
        loop {
            let slot = self.slots[at];
            if slot.key == EMPTY {
                break;
            }
            if slot.head == head
                && slot.len as usize == value.len()
                && (value.len() <= 8 || self.key_bytes(slot.key) == value)
            {
                return self.found::<WHAT>(at);
            }
            at = (at + 1) & mask;
        }
        let key = self.push_key(value);
        self.slots[at] = Slot {
            head,
            len: value.len() as u32,
            key,
            run: 0,
            group: 0,
        };
        let found = self.found::<WHAT>(at);
        if self.keys() * 2 > self.slots.len() {
            self.grow();
        }
        found
    }

    /// The group or the number (`WHAT`) of the key in slot `at`.
    #[inline]
    fn found<const WHAT: u8>(&mut self, at: usize) -> usize {
        match WHAT {
            GROUPS => self.group_in_slot(at),
            _ => self.slots[at].key as usize,
        }
    }

    /// The group of the key in slot `at`, a new one if it has none in this run.
    #[inline]
    fn group_in_slot(&mut self, at: usize) -> usize {
        let run = self.run;
        let slot = &mut self.slots[at];
        if slot.run != run {
            slot.run = run;
            slot.group = self.keys_of_groups.len() as u32;
            self.keys_of_groups.push(GroupKey {
                head: slot.head,
                len: slot.len,
                key: slot.key,
            });
        }
        slot.group as usize
    }

    /// The number of NULL, numbered now if it is the first time.
    fn null_number(&mut self) -> u32 {
        match self.null_key {
            Some(key) => key,
            None => {
                let key = self.push_key(&[]);
                self.null_key = Some(key);
                key
            }
        }
    }

    /// The group of NULL in this run.
    fn null_group(&mut self) -> usize {
        let key = self.null_number();
        if self.null_group.1 != self.run {
            self.null_group = (self.keys_of_groups.len() as u32, self.run);
            self.keys_of_groups.push(GroupKey {
                head: 0,
                len: 0,
                key,
            });
        }
        self.null_group.0 as usize
    }

    fn key_bytes(&self, key: u32) -> &[u8] {
        &self.bytes[self.offsets[key as usize]..self.offsets[key as usize + 1]]
    }

    /// Appends a new key's bytes; its number.
    fn push_key(&mut self, value: &[u8]) -> u32 {
        let key = self.keys() as u32;
        self.bytes.extend_from_slice(value);
        self.offsets.push(self.bytes.len());
        key
    }

    /// Twice the slots, every key placed again.
    fn grow(&mut self) {
        let doubled = vec![EMPTY_SLOT; self.slots.len() * 2];
        let slots = std::mem::replace(&mut self.slots, doubled);
        let mask = self.slots.len() - 1;
        for slot in slots.into_iter().filter(|s| s.key != EMPTY) {
            let hash = hash_key(
                self.short_seeds,
                &self.hasher,
                slot.head,
                self.key_bytes(slot.key),
            );
            let mut at = hash as usize & mask;
            while self.slots[at].key != EMPTY {
                at = (at + 1) & mask;
            }
            self.slots[at] = slot;
        }
    }
}

/// Asks for the cache line of `slot` ahead of its use.
#[inline]
fn prefetch(slot: &Slot) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing and cannot fault.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((slot as *const Slot).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = slot;
}

/// A key's hash: one folded multiply of its head and length for up to 8
/// bytes, foldhash for longer ones.
#[inline]
fn hash_key(
    (s0, s1): (u64, u64),
    hasher: &foldhash::fast::RandomState,
    head: u64,
    value: &[u8],
) -> u64 {
    if value.len() <= 8 {
        let product = u128::from(head ^ s0) * u128::from(value.len() as u64 ^ s1);
        (product as u64) ^ ((product >> 64) as u64)
    } else {
        hasher.hash_one(value)
    }
}

/// The first `min(len, 8)` bytes from `values[start]`, little-endian,
/// zero-padded.
#[inline]
fn head_of(values: &[u8], start: usize, len: usize) -> u64 {
    let n = len.min(8);
    let mut word = [0u8; 8];
    if start + 8 <= values.len() {
        word.copy_from_slice(&values[start..start + 8]);
        let head = u64::from_le_bytes(word);
        if n == 8 {
            head
        } else {
            head & ((1u64 << (n * 8)) - 1)
        }
    } else {
        word[..n].copy_from_slice(&values[start..start + n]);
        u64::from_le_bytes(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{Field, Schema};
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use crate::plan::StreamPlan;
    use crate::slot::{BatchSlot, SlotTable};

    fn strings(keys: &ArrayRef) -> Vec<Option<&str>> {
        keys.as_string::<i32>().iter().collect()
    }

    #[test]
    fn keys_are_numbered_once_and_groups_once_per_run() {
        let mut interner = KeyInterner::default();
        let mut groups = Vec::new();
        // Before any start_run, grouping is a run of its own.
        interner.group(
            &StringArray::from(vec![Some("be"), None, Some("be")]),
            &mut groups,
        );
        assert_eq!(groups, vec![0, 1, 0]);
        interner = KeyInterner::default();
        interner.start_run();
        let first = StringArray::from(vec![
            Some("to"),
            Some("be"),
            Some("to"),
            None,
            Some("a long key, over 8 bytes"),
        ]);
        interner.group(&first, &mut groups);
        assert_eq!(groups, vec![0, 1, 0, 2, 3]);
        assert_eq!(interner.keys(), 4);
        let keys = interner.group_keys(&DataType::Utf8).unwrap();
        assert_eq!(
            strings(&keys),
            vec![
                Some("to"),
                Some("be"),
                None,
                Some("a long key, over 8 bytes")
            ]
        );

        // The next run numbers its groups afresh and learns only the new key.
        interner.start_run();
        let second = StringArray::from(vec!["or", "be", "a long key, over 8 bytes", "or"]);
        interner.group(&second, &mut groups);
        assert_eq!(groups, vec![0, 1, 2, 0]);
        assert_eq!(interner.keys(), 5);
        assert_eq!(
            strings(&interner.group_keys(&DataType::Utf8).unwrap()),
            vec![Some("or"), Some("be"), Some("a long key, over 8 bytes")]
        );

        // Over its limits, a run starts from nothing.
        interner.start_run_within(4, usize::MAX);
        assert_eq!((interner.keys(), interner.groups()), (0, 0));
        interner.group(&StringArray::from(vec!["be"]), &mut groups);
        assert_eq!((groups.as_slice(), interner.keys()), (&[0][..], 1));
    }

    /// A constant argument's array is built once, sliced while it is long
    /// enough, and built again for a longer run or another value; a column
    /// is passed through.
    #[test]
    fn constant_arguments_are_built_once_and_sliced() {
        let mut constants = ConstantArrays::default();
        let one = || ColumnarValue::Scalar(ScalarValue::Int64(Some(1)));
        let first = constants.array(1, one(), 5).unwrap();
        let second = constants.array(1, one(), 3).unwrap();
        assert_eq!((first.len(), second.len()), (5, 3));
        assert_eq!(
            second.to_data().buffers()[0].as_ptr(),
            first.to_data().buffers()[0].as_ptr()
        );
        assert_eq!(
            second
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values(),
            &[1, 1, 1]
        );
        let longer = constants.array(1, one(), 8).unwrap();
        assert_eq!(longer.len(), 8);
        let two = constants
            .array(1, ColumnarValue::Scalar(ScalarValue::Int64(Some(2))), 2)
            .unwrap();
        assert_eq!(
            two.as_primitive::<arrow::datatypes::Int64Type>().values(),
            &[2, 2]
        );
        let column: ArrayRef = Arc::new(Int64Array::from(vec![4, 5]));
        let passed = constants
            .array(0, ColumnarValue::Array(Arc::clone(&column)), 2)
            .unwrap();
        assert!(Arc::ptr_eq(&passed, &column));
    }

    /// Keys that share their first 8 bytes, the empty string and NULL, and
    /// keys at the very end of their buffer (read without the 8-byte load)
    /// stay apart; a sliced array is read from its offset.
    #[test]
    fn keys_alike_in_their_first_bytes_stay_apart() {
        let mut interner = KeyInterner::default();
        let mut groups = Vec::new();
        interner.start_run();
        let keys = StringArray::from(vec![
            Some("abcdefgh"),
            Some("abcdefghi"),
            Some("abcdefghj"),
            Some(""),
            None,
            Some("abcdefgh"),
            Some("abcdefghj"),
            Some("a"),
        ]);
        interner.group(&keys, &mut groups);
        assert_eq!(groups, vec![0, 1, 2, 3, 4, 0, 2, 5]);
        interner.start_run();
        interner.group(&keys.slice(5, 3), &mut groups);
        assert_eq!(groups, vec![0, 1, 2]);
        assert_eq!(
            strings(&interner.group_keys(&DataType::Utf8).unwrap()),
            vec![Some("abcdefgh"), Some("abcdefghj"), Some("a")]
        );
    }

    /// A random key: short or long, sometimes multi-byte, sometimes empty.
    fn random_key(rng: &mut StdRng) -> String {
        let len = match rng.random_range(0..10) {
            0 => 0,
            1..=6 => rng.random_range(1..=8),
            _ => rng.random_range(9..=30),
        };
        (0..len)
            .map(|_| match rng.random_range(0..12) {
                0 => 'é',
                1 => '語',
                _ => char::from(b'a' + rng.random_range(0..4u8)),
            })
            .collect()
    }

    /// One batch's rows: keys drawn from `pool` (NULL sometimes), values
    /// small integers (NULL sometimes), in one to three record batches, some
    /// of them slices.
    fn random_batches(rng: &mut StdRng, pool: &[String], schema: &SchemaRef) -> Vec<RecordBatch> {
        (0..rng.random_range(1..=3))
            .map(|_| {
                let rows = rng.random_range(0..3000);
                let keys: Vec<Option<&str>> = (0..rows)
                    .map(|_| {
                        (rng.random_range(0..20) > 0)
                            .then(|| pool[rng.random_range(0..pool.len())].as_str())
                    })
                    .collect();
                let values: Vec<Option<i64>> = (0..rows)
                    .map(|_| (rng.random_range(0..10) > 0).then(|| rng.random_range(-50..100)))
                    .collect();
                let keys: ArrayRef = Arc::new(StringArray::from(keys));
                let keys = arrow::compute::cast(&keys, schema.field(0).data_type()).unwrap();
                let batch = RecordBatch::try_new(
                    Arc::clone(schema),
                    vec![keys, Arc::new(Int64Array::from(values))],
                )
                .unwrap();
                let skip = rng.random_range(0..=rows.min(5));
                batch.slice(skip, rows - skip)
            })
            .collect()
    }

    fn rows(batches: &[RecordBatch]) -> Vec<String> {
        let options = FormatOptions::default().with_null("NULL");
        let mut out = Vec::new();
        for batch in batches {
            let columns: Vec<ArrayFormatter> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
                .collect();
            for row in 0..batch.num_rows() {
                let cells: Vec<String> = columns.iter().map(|c| c.value(row).to_string()).collect();
                out.push(cells.join("|"));
            }
        }
        out
    }

    fn interned_nodes(plan: &Arc<dyn ExecutionPlan>) -> usize {
        let mut found = 0;
        plan.apply(|node| {
            found += usize::from(node.downcast_ref::<InternedAggregateExec>().is_some());
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        found
    }

    /// Batch after batch, a stream's plan with interned keys gives
    /// DataFusion's rows on the same batch: in the same order with one
    /// partition, the same rows with two (partial and final steps).
    #[tokio::test]
    async fn same_groups_as_datafusion_batch_after_batch() -> Result<()> {
        same_groups_as_datafusion(DataType::Utf8).await
    }

    #[tokio::test]
    async fn same_groups_as_datafusion_batch_after_batch_for_string_views() -> Result<()> {
        same_groups_as_datafusion(DataType::Utf8View).await
    }

    async fn same_groups_as_datafusion(key_type: DataType) -> Result<()> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", key_type, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let sql = "SELECT k, count(*) AS n, sum(v) AS s, min(v) AS lo, avg(v) AS a, \
                   count(v) FILTER (WHERE v > 0) AS pos FROM t GROUP BY k";
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        let slot = BatchSlot::new();
        ctx.register_table(
            "t",
            Arc::new(SlotTable::new(Arc::clone(&schema), Arc::clone(&slot))),
        )?;
        let logical = ctx.sql(sql).await?.into_optimized_plan()?;
        let single = StreamPlan::new(&ctx, &logical)
            .await?
            .with_parallel_threshold(usize::MAX);
        let parallel = StreamPlan::new(&ctx, &logical)
            .await?
            .with_parallel_threshold(0);
        assert_eq!(interned_nodes(single.plan_for(1)), 1);
        assert_eq!(interned_nodes(parallel.plan_for(1)), 2);

        let mut rng = StdRng::seed_from_u64(11);
        let mut pool: Vec<String> = Vec::new();
        for round in 0..12 {
            // New keys keep coming (enough to grow the table several times).
            pool.extend((0..rng.random_range(1..600)).map(|_| random_key(&mut rng)));
            let batches = random_batches(&mut rng, &pool, &schema);
            let input_rows = batches.iter().map(|b| b.num_rows()).sum();
            slot.set(round, batches.clone());

            let reference =
                SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
            reference.register_table(
                "t",
                Arc::new(MemTable::try_new(Arc::clone(&schema), vec![batches])?),
            )?;
            let expected = rows(&reference.sql(sql).await?.collect().await?);

            let ours = rows(&single.execute(input_rows).await?);
            assert_eq!(ours, expected, "one partition, round {round}");
            let mut ours = rows(&parallel.execute(input_rows).await?);
            let mut expected = expected;
            ours.sort();
            expected.sort();
            assert_eq!(ours, expected, "two partitions, round {round}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn other_aggregates_are_left_to_datafusion() -> Result<()> {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (k VARCHAR, n BIGINT, v VARCHAR) AS VALUES ('a', 1, 'x')")
            .await?
            .collect()
            .await?;
        for sql in [
            "SELECT n, count(*) FROM t GROUP BY n",
            "SELECT k, n, count(*) FROM t GROUP BY k, n",
            "SELECT k, count(*) FROM t GROUP BY ROLLUP (k)",
            "SELECT count(*) FROM t",
        ] {
            let plan = ctx.sql(sql).await?.create_physical_plan().await?;
            assert_eq!(interned_nodes(&intern_text_keys(plan)?), 0, "{sql}");
        }
        let sql = "SELECT upper(k), count(*) FROM t GROUP BY upper(k)";
        let plan = ctx.sql(sql).await?.create_physical_plan().await?;
        assert_eq!(interned_nodes(&intern_text_keys(plan)?), 1, "{sql}");
        Ok(())
    }
}
