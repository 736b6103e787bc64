//! A join of a stream with a static table whose join keys are unique, as
//! one lookup per stream row: the stream's columns pass through untouched.
//!
//! After [`crate::build_side::StaticBuildSide`], the tutorial's blacklist
//! join is a `HashJoinExec` (`CollectLeft`, `Right`) whose build side is the
//! 1,000-word table and whose probe side is the batch. DataFusion's hash
//! join then checks each candidate match's key in a second pass, sorts the
//! rows without a match back in, and gathers every column of the batch again
//! (`take`) by the resulting indices. When the table's join keys are unique,
//! each stream row matches at most one table row. [`LookupJoinExec`] finds
//! that row (or none) for every stream row in one pass, hands the stream's
//! columns on as they are, and gathers only the table's columns. The rows
//! are the hash join's, in the stream's order.
//!
//! ```text
//! HashJoinExec: mode=CollectLeft, join_type=Right, on=[(word@0, k@1)]
//!                                   →  LookupJoinExec: join_type=Right, on=[(word@0, k@1)]
//! ```
//!
//! It stands for joins that are `CollectLeft`, `Inner` or `Right` (the
//! stream's rows kept), on one key of an integer or text type, with no other
//! join condition, no row limit, NULL keys matching nothing, a static build
//! side and a stream probe side. Each execution collects the table again (a
//! file may have changed between batches). If its non-NULL keys turn out
//! not to be unique (or two of them share a 64-bit hash), that execution
//! runs the hash join it stands for instead, so the answer is always the
//! hash join's.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions, UInt32Array,
};
use arrow::buffer::{BooleanBuffer, NullBuffer, ScalarBuffer};
use arrow::compute::kernels::cmp::eq;
use arrow::compute::{concat_batches, filter, filter_record_batch, take};
use arrow::datatypes::{DataType, SchemaRef, UInt32Type};
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{JoinType, NullEquality, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions, collect,
};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use crate::build_side::is_static;

/// Puts a [`LookupJoinExec`] in place of each hash join of `plan` it can
/// stand for (see the module docs).
pub fn lookup_static_joins(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(join) = node.downcast_ref::<HashJoinExec>() else {
            return Ok(Transformed::no(node));
        };
        if !LookupJoinExec::can_stand_for(join)? {
            return Ok(Transformed::no(node));
        }
        Ok(Transformed::yes(Arc::new(LookupJoinExec::new(node)?) as _))
    })
    .map(|t| t.data)
}

/// The hash seed of the table's and the stream's keys.
const SEED: RandomState = RandomState::with_seed(0);

/// A `HashMap` keyed by hashes already computed: the key is its own hash.
#[derive(Default)]
struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed (`write_u64`); fold anything else in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 = hash;
    }
}

/// Rows by key hash; the key is its own hash ([`KeyIsHash`]).
type RowsByHash = HashMap<u64, u32, BuildHasherDefault<KeyIsHash>>;

/// How the table's keys find their rows.
enum KeyIndex {
    /// Text keys as string views (`Utf8View`, what a `TEXT` column is). A
    /// key of up to 12 bytes is wholly in its view (its length and bytes),
    /// so it is found by the view alone: no hash of its bytes, no second
    /// comparison. A longer key is found by its bytes' hash, then compared.
    Views {
        short: HashMap<u128, u32, RandomState>,
        long: RowsByHash,
    },
    /// Any other key: by hash ([`create_hashes`]), then compared (`eq`).
    Hashed(RowsByHash),
}

/// The collected table: its rows, its keys, and the row of each key.
struct LookupTable {
    batch: RecordBatch,
    keys: ArrayRef,
    index: KeyIndex,
}

impl fmt::Debug for LookupTable {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "LookupTable({} rows)", self.batch.num_rows())
    }
}

impl LookupTable {
    /// Collects `build` and indexes its keys; `None` when two non-NULL keys
    /// are equal or share a hash (the hash join is run instead).
    async fn collect(
        build: Arc<dyn ExecutionPlan>,
        key: &Arc<dyn PhysicalExpr>,
        context: Arc<TaskContext>,
    ) -> Result<Option<Arc<Self>>> {
        let schema = build.schema();
        let batch = concat_batches(&schema, &collect(build, context).await?)?;
        let keys = key.evaluate(&batch)?.into_array(batch.num_rows())?;
        if u32::try_from(keys.len()).is_err() {
            return Ok(None);
        }
        let index = match keys.as_string_view_opt() {
            Some(views) => {
                let mut short = HashMap::with_capacity_and_hasher(keys.len(), SEED);
                let mut long = RowsByHash::default();
                for row in (0..views.len()).filter(|&row| views.is_valid(row)) {
                    let view = views.views()[row];
                    let fresh = if view as u32 <= INLINE {
                        short.insert(view, row as u32).is_none()
                    } else {
                        let hash = SEED.hash_one(views.value(row).as_bytes());
                        long.insert(hash, row as u32).is_none()
                    };
                    if !fresh {
                        return Ok(None);
                    }
                }
                KeyIndex::Views { short, long }
            }
            None => {
                let mut hashes = vec![0; keys.len()];
                create_hashes([&keys], &SEED, &mut hashes)?;
                let mut rows = HashMap::with_capacity_and_hasher(keys.len(), Default::default());
                for (row, &hash) in hashes.iter().enumerate() {
                    if keys.is_valid(row) && rows.insert(hash, row as u32).is_some() {
                        return Ok(None);
                    }
                }
                KeyIndex::Hashed(rows)
            }
        };
        Ok(Some(Arc::new(Self { batch, keys, index })))
    }

    /// For each of `keys`, the table row with that key; the rows of keys
    /// without one (NULL among them) are marked unmatched.
    fn rows_of(&self, keys: &ArrayRef) -> Result<(ScalarBuffer<u32>, BooleanBuffer)> {
        let n = keys.len();
        let mut rows = Vec::with_capacity(n);
        match (&self.index, keys.as_string_view_opt()) {
            (KeyIndex::Views { short, long }, Some(probe)) => {
                let stored = self.keys.as_string_view();
                let matched = BooleanBuffer::collect_bool(n, |i| {
                    let view = probe.views()[i];
                    let row = if probe.is_null(i) {
                        None
                    } else if view as u32 <= INLINE {
                        short.get(&view).copied()
                    } else {
                        let bytes = probe.value(i).as_bytes();
                        long.get(&SEED.hash_one(bytes))
                            .copied()
                            .filter(|&row| stored.value(row as usize).as_bytes() == bytes)
                    };
                    rows.push(row.unwrap_or(0));
                    row.is_some()
                });
                Ok((rows.into(), matched))
            }
            (KeyIndex::Hashed(by_hash), _) => {
                let mut hashes = vec![0; n];
                create_hashes([keys], &SEED, &mut hashes)?;
                // By hash, then checked by key (a NULL key compares as
                // NULL: no match).
                let found = BooleanBuffer::collect_bool(n, |i| match by_hash.get(&hashes[i]) {
                    Some(&row) => {
                        rows.push(row);
                        true
                    }
                    None => {
                        rows.push(0);
                        false
                    }
                });
                let candidates = UInt32Array::new(rows.into(), Some(NullBuffer::new(found)));
                let equal = eq(keys, &take(&self.keys, &candidates, None)?)?;
                let matched = match equal.nulls() {
                    Some(nulls) => equal.values() & nulls.inner(),
                    None => equal.values().clone(),
                };
                Ok((candidates.values().clone(), matched))
            }
            (KeyIndex::Views { .. }, None) => datafusion::common::internal_err!(
                "a lookup join's keys are {} on one side only",
                keys.data_type()
            ),
        }
    }
}

/// The longest string a view holds in itself.
const INLINE: u32 = 12;

/// What a lookup needs of the join it stands for.
#[derive(Debug)]
struct Lookup {
    build_key: Arc<dyn PhysicalExpr>,
    probe_key: Arc<dyn PhysicalExpr>,
    /// `Inner` drops the stream rows without a match; `Right` keeps them.
    keep_unmatched: bool,
    /// The join's output columns, as columns of the table then the stream.
    columns: Vec<usize>,
    build_columns: usize,
    schema: SchemaRef,
}

impl Lookup {
    /// The join's rows for one batch of the stream.
    fn probe(&self, table: &LookupTable, batch: &RecordBatch) -> Result<RecordBatch> {
        let keys = self
            .probe_key
            .evaluate(batch)?
            .into_array(batch.num_rows())?;
        let (rows, matched) = table.rows_of(&keys)?;
        let rows = UInt32Array::new(rows, Some(NullBuffer::new(matched.clone())));
        let (batch, rows) = if self.keep_unmatched || rows.null_count() == 0 {
            (batch.clone(), rows)
        } else {
            let matched = BooleanArray::new(matched, None);
            let rows = filter(&rows, &matched)?
                .as_primitive::<UInt32Type>()
                .clone();
            (filter_record_batch(batch, &matched)?, rows)
        };
        let columns = self
            .columns
            .iter()
            .map(|&c| match c.checked_sub(self.build_columns) {
                None => take(table.batch.column(c), &rows, None),
                Some(c) => Ok(Arc::clone(batch.column(c))),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &options,
        )?)
    }
}

/// A hash join of a stream with a static table of unique keys, run as a
/// lookup per stream row (see the module docs).
#[derive(Debug)]
pub struct LookupJoinExec {
    /// The `HashJoinExec` it stands for: its children and properties, and
    /// what runs when the table's keys are not unique.
    join: Arc<dyn ExecutionPlan>,
    lookup: Arc<Lookup>,
    /// The table, collected once per execution for every partition.
    table: Arc<OnceCell<Option<Arc<LookupTable>>>>,
}

impl LookupJoinExec {
    /// Whether a lookup can stand for `join` (see the module docs).
    fn can_stand_for(join: &HashJoinExec) -> Result<bool> {
        let [(build_key, probe_key)] = join.on() else {
            return Ok(false);
        };
        let key_type = build_key.data_type(&join.left().schema())?;
        let supported = key_type.is_integer()
            || matches!(
                key_type,
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
            );
        Ok(*join.partition_mode() == PartitionMode::CollectLeft
            && matches!(join.join_type(), JoinType::Inner | JoinType::Right)
            && join.filter().is_none()
            && join.fetch().is_none()
            && !join.null_aware
            && join.null_equality() == NullEquality::NullEqualsNothing
            && supported
            && probe_key.data_type(&join.right().schema())? == key_type
            && is_static(join.left())?
            && !is_static(join.right())?)
    }

    /// The hash join it stands for.
    pub fn hash_join(&self) -> Option<&HashJoinExec> {
        self.join.downcast_ref::<HashJoinExec>()
    }

    /// The lookup standing for `join`, a `HashJoinExec` it can stand for.
    fn new(join: Arc<dyn ExecutionPlan>) -> Result<Self> {
        let Some(hash_join) = join.downcast_ref::<HashJoinExec>() else {
            return datafusion::common::internal_err!("a lookup join stands for a HashJoinExec");
        };
        let (build_key, probe_key) = hash_join.on()[0].clone();
        let build_columns = hash_join.left().schema().fields().len();
        let all = build_columns + hash_join.right().schema().fields().len();
        let columns = match &hash_join.projection {
            Some(p) => p.to_vec(),
            None => (0..all).collect(),
        };
        let lookup = Lookup {
            build_key,
            probe_key,
            keep_unmatched: *hash_join.join_type() == JoinType::Right,
            columns,
            build_columns,
            schema: join.schema(),
        };
        Ok(Self {
            join,
            lookup: Arc::new(lookup),
            table: Arc::new(OnceCell::new()),
        })
    }
}

impl DisplayAs for LookupJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let join_type = if self.lookup.keep_unmatched {
            "Right"
        } else {
            "Inner"
        };
        write!(
            f,
            "LookupJoinExec: join_type={join_type}, on=[({}, {})]",
            self.lookup.build_key, self.lookup.probe_key
        )
    }
}

impl ExecutionPlan for LookupJoinExec {
    fn name(&self) -> &str {
        "LookupJoinExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.join.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.join.children()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.join.apply_expressions(f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let join = Arc::clone(&self.join).replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?;
        lookup_static_joins(join.reset_state()?)
    }

    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self::new(Arc::clone(&self.join).reset_state()?)?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let join = Arc::clone(&self.join);
        let lookup = Arc::clone(&self.lookup);
        let table = Arc::clone(&self.table);
        let schema = self.schema();
        let batches = futures::stream::once(async move {
            let [build, probe] = join.children()[..] else {
                return datafusion::common::internal_err!("a join has two inputs");
            };
            let found = table
                .get_or_try_init(|| {
                    LookupTable::collect(Arc::clone(build), &lookup.build_key, Arc::clone(&context))
                })
                .await?;
            let Some(table) = found.clone() else {
                return join.execute(partition, context);
            };
            let input = probe.execute(partition, context)?;
            let schema = Arc::clone(&lookup.schema);
            let rows = input.map(move |batch| lookup.probe(&table, &batch?));
            Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rows)) as SendableRecordBatchStream)
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::Result;
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::physical_plan::execution_plan::reset_plan_states;
    use datafusion::physical_plan::{ExecutionPlan, collect};
    use datafusion::prelude::SessionContext;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::LookupJoinExec;
    use crate::plan::physical_plan;
    use crate::slot::{BatchSlot, SlotTable};

    /// Join keys: short (held in a string view) and long, text and numbers.
    fn word(i: usize) -> String {
        match i % 3 {
            0 => format!("w{i}"),
            1 => format!("a-much-longer-word-{i}"),
            _ => format!("{i}"),
        }
    }

    /// A session with the stream `s (value, id)` and the tables `t (k TEXT,
    /// flag, n)` and `u (i BIGINT, n)`; `t` has a NULL key, and its other
    /// keys are unique unless `duplicates`.
    async fn session(
        rng: &mut StdRng,
        duplicates: bool,
    ) -> Result<(SessionContext, Arc<BatchSlot>)> {
        let ctx = SessionContext::new();
        let mut rows = vec!["(NULL, true, -1)".to_string()];
        for i in 0..60 {
            if rng.random_bool(0.5) {
                continue;
            }
            rows.push(format!("('{}', {}, {i})", word(i), rng.random_bool(0.5)));
            if duplicates && i % 7 == 0 {
                rows.push(format!("('{}', false, {})", word(i), 100 + i));
            }
        }
        let sql = format!(
            "CREATE TABLE t (k TEXT, flag BOOLEAN, n BIGINT) AS VALUES {}",
            rows.join(", ")
        );
        ctx.sql(&sql).await?.collect().await?;
        ctx.sql(
            "CREATE TABLE u (i BIGINT, n BIGINT) AS VALUES (1, 10), (2, 20), (NULL, 0), (7, 70)",
        )
        .await?
        .collect()
        .await?;
        let schema = Arc::new(Schema::new(vec![
            Field::new("value", DataType::Utf8, true),
            Field::new("id", DataType::Int64, true),
        ]));
        let slot = BatchSlot::new();
        ctx.register_table("s", Arc::new(SlotTable::new(schema, Arc::clone(&slot))))?;
        Ok((ctx, slot))
    }

    /// A batch of `s`: lines `<id> <word>`, some without a second word, some NULL.
    fn batch(rng: &mut StdRng, rows: usize) -> Result<RecordBatch> {
        let values: StringArray = (0..rows)
            .map(|id| match rng.random_range(0..10) {
                0 => None,
                1 => Some(format!("{id}")),
                _ => Some(format!("{id} {}", word(rng.random_range(0..80)))),
            })
            .collect();
        let ids: Int64Array = (0..rows)
            .map(|id| (id % 11 != 0).then_some(id as i64 % 9))
            .collect();
        Ok(RecordBatch::try_from_iter(vec![
            ("value", Arc::new(values) as _),
            ("id", Arc::new(ids) as _),
        ])?)
    }

    /// The rows of `batches`, one line each, sorted.
    fn rows(batches: &[RecordBatch]) -> Result<Vec<String>> {
        let text = arrow::util::pretty::pretty_format_batches(batches)?.to_string();
        let mut lines: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with('|'))
            .skip(1)
            .map(str::to_string)
            .collect();
        lines.sort();
        Ok(lines)
    }

    fn lookups(plan: &Arc<dyn ExecutionPlan>) -> Result<usize> {
        let mut found = 0;
        plan.apply(|node| {
            found += usize::from(node.downcast_ref::<LookupJoinExec>().is_some());
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(found)
    }

    const QUERIES: [&str; 4] = [
        "SELECT s.id, s.value, t.flag, t.n FROM s LEFT JOIN t ON split_part(s.value, ' ', 2) = t.k",
        "SELECT s.value FROM s LEFT JOIN t ON split_part(s.value, ' ', 2) = t.k WHERE NOT coalesce(t.flag, false)",
        "SELECT t.n, s.id FROM s JOIN t ON split_part(s.value, ' ', 2) = t.k",
        "SELECT s.value, u.n FROM s LEFT JOIN u ON s.id = u.i",
    ];

    /// Batch after batch of random rows, on one and two partitions: the
    /// lookup's rows are DataFusion's hash join's, with unique table keys
    /// and (the hash join run instead) with duplicates.
    #[tokio::test]
    async fn same_rows_as_the_hash_join_on_random_batches() -> Result<()> {
        let mut rng = StdRng::seed_from_u64(11);
        for duplicates in [false, true] {
            let (ctx, slot) = session(&mut rng, duplicates).await?;
            for sql in QUERIES {
                let logical = ctx.sql(sql).await?.into_optimized_plan()?;
                for partitions in [1, 2] {
                    let plan = physical_plan(&ctx, &logical, partitions).await?;
                    assert_eq!(lookups(&plan)?, 1, "{sql}");
                    for round in 0..4 {
                        let rows_in = rng.random_range(0..3000);
                        slot.set(round, vec![batch(&mut rng, rows_in)?]);
                        let ours =
                            collect(reset_plan_states(Arc::clone(&plan))?, ctx.task_ctx()).await?;
                        let theirs = ctx.sql(sql).await?.collect().await?;
                        assert_eq!(
                            rows(&ours)?,
                            rows(&theirs)?,
                            "{sql}, {partitions} partitions, round {round}, duplicates {duplicates}"
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// A stream joined with a stream, or kept on the build side, is left to
    /// the hash join.
    #[tokio::test]
    async fn joins_without_a_static_build_side_are_left_alone() -> Result<()> {
        let mut rng = StdRng::seed_from_u64(3);
        let (ctx, _) = session(&mut rng, false).await?;
        for sql in [
            "SELECT a.id FROM s a JOIN s b ON a.id = b.id",
            "SELECT t.n, s.id FROM t LEFT JOIN s ON split_part(s.value, ' ', 2) = t.k",
        ] {
            let logical = ctx.sql(sql).await?.into_optimized_plan()?;
            let plan = physical_plan(&ctx, &logical, 2).await?;
            assert_eq!(lookups(&plan)?, 0, "{sql}");
        }
        Ok(())
    }
}
