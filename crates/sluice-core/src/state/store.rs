//! Keyed state as Arrow arrays: one row per key (key columns, then state
//! columns), found through a hash index.
//!
//! Rows are never updated in place. A batch's new rows for the keys it
//! touched are appended as one more chunk and each key's location moves to
//! its new row; reading `m` keys gathers their rows from the chunks
//! (`interleave`). So a batch costs what it touches, O(m), not O(all keys).
//! Superseded and removed rows are dropped by a compaction once they
//! outnumber the live ones (amortized O(1) per row written). No per-key heap
//! object: per key, an index entry and a packed location (8 bytes).
//!
//! The chunks are plain `RecordBatch`es, so a snapshot (for a checkpoint, or
//! `EMIT SNAPSHOT`) is one `interleave` away, and could be written as Arrow
//! IPC or Parquet as is.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{ArrayRef, Int64Array, RecordBatch};
//! use arrow::datatypes::{DataType, Field, Schema};
//! use sluice_core::state::StateStore;
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("k", DataType::Int64, true),
//!     Field::new("count", DataType::Int64, false),
//! ]));
//! let rows = |k: Vec<i64>, n: Vec<i64>| RecordBatch::try_new(Arc::clone(&schema),
//!     vec![Arc::new(Int64Array::from(k)) as ArrayRef, Arc::new(Int64Array::from(n))]).unwrap();
//! let mut store = StateStore::new(Arc::clone(&schema), 1).unwrap();
//! store.upsert(&rows(vec![1, 2], vec![10, 20])).unwrap();
//! store.upsert(&rows(vec![2], vec![21])).unwrap();
//! let keys: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![2, 3, 2]))];
//! let found = store.lookup(&keys, 3).unwrap();           // key 3 has no state
//! assert_eq!(found.num_rows(), 1);
//! assert_eq!(store.snapshot().unwrap().num_rows(), 2);
//! ```

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, BooleanArray, BooleanBufferBuilder,
    PrimitiveArray, RecordBatch, downcast_primitive_array,
};
use arrow::buffer::NullBuffer;
use arrow::compute::interleave;
use arrow::datatypes::{Int8Type, Int64Type, SchemaRef};
use datafusion::error::Result as DFResult;

use super::changelog::{ChangeLog, OP_COLUMN, PUT, TOUCHED_COLUMN, change_schema};
use super::idle::IdleKeys;
use crate::window::additive::retain_by;
use crate::window::keys::WindowKeys;

/// Rows written (or keys indexed) beyond twice the live keys, plus this
/// slack, trigger a compaction.
const COMPACTION_SLACK: usize = 1024;

/// The location of a key without state.
const NOWHERE: u64 = u64::MAX;

fn pack(chunk: usize, row: usize) -> u64 {
    ((chunk as u64) << 32) | row as u64
}

fn unpack(location: u64) -> (usize, usize) {
    ((location >> 32) as usize, (location & 0xffff_ffff) as usize)
}

/// Rows' keys numbered as groups; see [`StateStore::groups_of`].
pub struct KeyGroups {
    /// Each group's key index, in the order first met.
    pub keys: Vec<usize>,
    /// Each group's first row.
    pub first_rows: Vec<u32>,
    /// Each row's group.
    pub rows: Vec<usize>,
    /// The stored rows of the groups' keys that have state.
    pub stored: RecordBatch,
    /// Each stored row's group.
    pub stored_groups: Vec<usize>,
}

/// Keys and their states; see the module docs.
pub struct StateStore {
    schema: SchemaRef,
    key_columns: usize,
    keys: WindowKeys,
    chunks: Vec<RecordBatch>,
    /// Per key index: its current row, chunk and row packed in a `u64`
    /// ([`NOWHERE`] when it has no state: removed, or only looked up).
    location: Vec<u64>,
    live: usize,
    rows: usize,
    /// Per key index: the last lookup that took it (to take a key once),
    /// and its group in that lookup if [`groups_of`](Self::groups_of) made
    /// it (side by side: one cache miss per key, not two).
    seen: Vec<(u32, u32)>,
    lookups: u32,
    scratch: Vec<usize>,
    /// Row `i` of chunk 0 was key `i`'s when written (a compaction wrote it).
    base_in_key_order: bool,
    /// When each key last got rows, if kept (for timeouts).
    idle: Option<IdleKeys>,
    /// What changed since a checkpoint last asked, if one will.
    changes: Option<ChangeLog>,
}

impl StateStore {
    /// A store of rows of `schema`, whose first `key_columns` columns are the
    /// key.
    pub fn new(schema: SchemaRef, key_columns: usize) -> DFResult<Self> {
        let key_schema = Arc::new(schema.project(&(0..key_columns).collect::<Vec<_>>())?);
        Ok(Self {
            schema,
            key_columns,
            keys: WindowKeys::new(key_schema)?,
            chunks: Vec::new(),
            location: Vec::new(),
            live: 0,
            rows: 0,
            seen: Vec::new(),
            lookups: 0,
            scratch: Vec::new(),
            base_in_key_order: false,
            idle: None,
            changes: None,
        })
    }

    /// Records every change from now on, for [`take_changes`](Self::take_changes).
    pub fn record_changes(&mut self) {
        self.changes = Some(ChangeLog::new(&self.schema, self.key_columns));
    }

    /// What changed since the last call (or [`record_changes`](Self::record_changes)),
    /// as a change batch ([`super::changelog`]).
    pub fn take_changes(&mut self) -> DFResult<RecordBatch> {
        match self.changes.as_mut() {
            Some(log) => log.take(),
            None => Ok(RecordBatch::new_empty(change_schema(&self.schema))),
        }
    }

    /// Every key's state as a change batch of puts, with when each key last
    /// got rows; the recorded changes are dropped (this covers them).
    pub fn full_changes(&mut self) -> DFResult<RecordBatch> {
        let (rows, keys) = self.snapshot_with_keys()?;
        if let Some(log) = self.changes.as_mut() {
            log.clear();
        }
        let log = ChangeLog::new(&self.schema, self.key_columns);
        let idle = self.idle.as_ref();
        log.puts(&rows, |i| idle.and_then(|idle| idle.last_touch(keys[i])))
    }

    /// Applies a change batch (a delta or a full snapshot), as if its puts
    /// and removals happened again in order.
    pub fn apply_changes(&mut self, changes: &RecordBatch) -> DFResult<()> {
        let expected = change_schema(&self.schema);
        let fits = changes.num_columns() == expected.fields().len()
            && changes
                .schema()
                .fields()
                .iter()
                .zip(expected.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
        if !fits {
            return datafusion::common::plan_err!(
                "saved state has columns {}, the stream's state has {}",
                crate::catalog::columns(&changes.schema()),
                crate::catalog::columns(&expected)
            );
        }
        // What is applied is not a change of this run's.
        let recording = self.changes.take();
        let applied = self.apply_runs(changes);
        self.changes = recording;
        applied
    }

    /// Keys with state but no last-touch time count as touched at `t` (if
    /// the store keeps times).
    pub fn touch_untouched(&mut self, t: i64) {
        let Some(idle) = self.idle.as_mut() else {
            return;
        };
        let keys: Vec<usize> = (0..self.location.len())
            .filter(|&k| self.location[k] != NOWHERE && idle.last_touch(k).is_none())
            .collect();
        idle.touch(&keys, t);
    }

    fn apply_runs(&mut self, changes: &RecordBatch) -> DFResult<()> {
        let op_at = changes.schema().index_of(OP_COLUMN)?;
        let touched_at = changes.schema().index_of(TOUCHED_COLUMN)?;
        let ops = changes.column(op_at).as_primitive::<Int8Type>();
        let touched = changes.column(touched_at).as_primitive::<Int64Type>();
        let state: Vec<usize> = (0..op_at).collect();
        let mut start = 0;
        while start < changes.num_rows() {
            let op = ops.value(start);
            let mut end = start + 1;
            while end < changes.num_rows() && ops.value(end) == op {
                end += 1;
            }
            let run = changes.slice(start, end - start).project(&state)?;
            let keys = &run.columns()[..self.key_columns];
            if op == PUT {
                let found = self.find(keys, run.num_rows())?;
                if let Some(idle) = self.idle.as_mut() {
                    // Touches in time order, as the queue wants them.
                    let mut by_time: Vec<(i64, usize)> = (start..end)
                        .filter(|&i| touched.is_valid(i))
                        .map(|i| (touched.value(i), found[i - start]))
                        .collect();
                    by_time.sort_unstable();
                    for group in by_time.chunk_by(|a, b| a.0 == b.0) {
                        let keys: Vec<usize> = group.iter().map(|(_, k)| *k).collect();
                        idle.touch(&keys, group[0].0);
                    }
                }
                self.put(&found, &run)?;
            } else {
                self.remove(keys, run.num_rows())?;
            }
            start = end;
        }
        Ok(())
    }

    /// Also keeps when each key last got rows ([`put_at`](Self::put_at)),
    /// for [`take_idle`](Self::take_idle).
    pub fn with_idle_tracking(mut self) -> Self {
        self.idle = Some(IdleKeys::default());
        self
    }

    /// Keys with state.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn index(&mut self, key_columns: &[ArrayRef], rows: usize) -> DFResult<()> {
        self.keys.intern(key_columns, rows, &mut self.scratch)?;
        let n = self.keys.len();
        if self.location.len() < n {
            self.location.resize(n, NOWHERE);
            self.seen.resize(n, (0, 0));
        }
        Ok(())
    }

    /// The current rows of the keys in `key_columns` that have state, each
    /// once, in the order first met.
    pub fn lookup(&mut self, key_columns: &[ArrayRef], rows: usize) -> DFResult<RecordBatch> {
        let keys = self.find(key_columns, rows)?;
        self.rows_of(&keys)
    }

    /// The index of each row's key (keys not seen before get one, without
    /// state).
    pub fn find(&mut self, key_columns: &[ArrayRef], rows: usize) -> DFResult<Vec<usize>> {
        self.index(key_columns, rows)?;
        Ok(std::mem::take(&mut self.scratch))
    }

    /// A fresh stamp for `seen`.
    fn next_lookup(&mut self) -> u32 {
        if self.lookups == u32::MAX {
            self.seen.iter_mut().for_each(|s| *s = (0, 0));
            self.lookups = 0;
        }
        self.lookups += 1;
        self.lookups
    }

    /// The distinct keys among `keys` (from [`find`](Self::find)), in the
    /// order first met, and the position of each row's key among them; with
    /// the stored rows of those that have state, and the position of each.
    /// What a merge of rows with repeated keys and their stored state needs
    /// to number its groups without hashing the keys again.
    pub fn groups_of(&mut self, keys: &[usize]) -> DFResult<KeyGroups> {
        let stamp = self.next_lookup();
        let (mut distinct, mut first_rows, mut stored_groups) =
            (Vec::new(), Vec::new(), Vec::new());
        let mut rows = Vec::with_capacity(keys.len());
        let mut at = Vec::new();
        for (row, &k) in keys.iter().enumerate() {
            if self.seen[k].0 != stamp {
                let group = distinct.len();
                self.seen[k] = (stamp, group as u32);
                distinct.push(k);
                first_rows.push(row as u32);
                if self.location[k] != NOWHERE {
                    at.push(unpack(self.location[k]));
                    stored_groups.push(group);
                }
            }
            rows.push(self.seen[k].1 as usize);
        }
        Ok(KeyGroups {
            keys: distinct,
            first_rows,
            rows,
            stored: self.gather(&at)?,
            stored_groups,
        })
    }

    /// The current rows of the keys `keys` (from [`find`](Self::find)) that
    /// have state, each once, in the order given.
    pub fn rows_of(&mut self, keys: &[usize]) -> DFResult<RecordBatch> {
        self.next_lookup();
        let mut at = Vec::new();
        for &k in keys {
            if self.seen[k].0 == self.lookups {
                continue;
            }
            self.seen[k].0 = self.lookups;
            if self.location[k] != NOWHERE {
                at.push(unpack(self.location[k]));
            }
        }
        self.gather(&at)
    }

    /// Makes the rows of `batch` (one per key) those keys' current state.
    pub fn upsert(&mut self, batch: &RecordBatch) -> DFResult<()> {
        let keys = self.find(&batch.columns()[..self.key_columns], batch.num_rows())?;
        self.put(&keys, batch)
    }

    /// Makes row `i` of `batch` the state of key `keys[i]` (indices from
    /// [`find`](Self::find) for these very keys; one row per key). The
    /// indices are stale afterwards (a compaction renumbers keys).
    pub fn put(&mut self, keys: &[usize], batch: &RecordBatch) -> DFResult<()> {
        self.put_at(keys, batch, None)
    }

    /// [`put`](Self::put), the keys having got rows at batch time `t` (if
    /// the store keeps times).
    pub fn put_at(&mut self, keys: &[usize], batch: &RecordBatch, t: Option<i64>) -> DFResult<()> {
        if let (Some(idle), Some(t)) = (self.idle.as_mut(), t) {
            idle.touch(keys, t);
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), batch.columns().to_vec())?;
        if let Some(log) = self.changes.as_mut() {
            log.put(&batch, t);
        }
        if keys.len() != batch.num_rows() {
            return datafusion::common::internal_err!(
                "state store: {} rows for {} keys",
                batch.num_rows(),
                keys.len()
            );
        }
        let chunk = self.chunks.len();
        for (row, &k) in keys.iter().enumerate() {
            if self.location[k] == NOWHERE {
                self.live += 1;
            }
            self.location[k] = pack(chunk, row);
        }
        self.rows += batch.num_rows();
        self.chunks.push(batch);
        self.compact_if_needed()
    }

    /// Drops the state of the keys in `key_columns` (an evicted key starts
    /// fresh if it comes back).
    pub fn remove(&mut self, key_columns: &[ArrayRef], rows: usize) -> DFResult<()> {
        if let Some(log) = self.changes.as_mut() {
            log.remove(key_columns, rows);
        }
        self.index(key_columns, rows)?;
        for &k in &self.scratch {
            if std::mem::replace(&mut self.location[k], NOWHERE) != NOWHERE {
                self.live -= 1;
            }
        }
        self.compact_if_needed()
    }

    /// Takes out the keys whose last rows came before `threshold`: their
    /// rows, and they are removed.
    pub fn take_idle(&mut self, threshold: i64) -> DFResult<RecordBatch> {
        let Some(idle) = self.idle.as_mut() else {
            return Ok(RecordBatch::new_empty(Arc::clone(&self.schema)));
        };
        let location = &self.location;
        let keys = idle.take_before(threshold, |k| location[k] != NOWHERE);
        let at: Vec<(usize, usize)> = keys.iter().map(|&k| unpack(self.location[k])).collect();
        let rows = self.gather(&at)?;
        for k in keys {
            self.location[k] = NOWHERE;
            self.live -= 1;
        }
        if let Some(log) = self.changes.as_mut() {
            log.remove(&rows.columns()[..self.key_columns], rows.num_rows());
        }
        self.compact_if_needed()?;
        Ok(rows)
    }

    /// Every key's current row.
    pub fn snapshot(&self) -> DFResult<RecordBatch> {
        if let Some(rows) = self.snapshot_over_base() {
            return rows;
        }
        let mut at = Vec::with_capacity(self.live);
        at.extend(
            self.location
                .iter()
                .filter(|l| **l != NOWHERE)
                .map(|&l| unpack(l)),
        );
        self.gather(&at)
    }

    /// [`snapshot`](Self::snapshot), which also becomes the store's only
    /// chunk when every indexed key has state (a compaction for free, with
    /// the key indices unchanged). For `EMIT SNAPSHOT`, which reads every
    /// key every batch: each batch then finds the rows in one chunk in key
    /// order and the last batch's, rather than in chunks that pile up until
    /// a compaction.
    pub fn snapshot_compacting(&mut self) -> DFResult<RecordBatch> {
        let rows = self.snapshot()?;
        if self.live == self.location.len() && (self.chunks.len() > 1 || !self.base_in_key_order) {
            self.replace_chunks(rows.clone());
        }
        Ok(rows)
    }

    /// The snapshot as chunk 0 (every key's row in key order, as a
    /// compaction left it) with the rows of the keys that moved since
    /// written over it and those of the keys added since appended: a copy of
    /// each column and a write per moved key, rather than a gather of every
    /// row from wherever it is. `None` where that does not hold: a key
    /// without state, chunk 0 not in key order, a column not of a primitive
    /// type.
    fn snapshot_over_base(&self) -> Option<DFResult<RecordBatch>> {
        let base = self.chunks.first()?;
        let keys = self.location.len();
        if !self.base_in_key_order || self.live != keys || base.num_rows() > keys {
            return None;
        }
        let primitive = self
            .chunks
            .iter()
            .all(|b| b.columns().iter().all(|c| c.data_type().is_primitive()));
        if !primitive {
            return None;
        }
        let moved: Vec<(usize, usize, usize)> = self
            .location
            .iter()
            .enumerate()
            .filter_map(|(k, &l)| {
                let (chunk, row) = unpack(l);
                (chunk != 0).then_some((k, chunk, row))
            })
            .collect();
        let columns = (0..self.schema.fields().len())
            .map(|c| {
                let column = base.column(c);
                downcast_primitive_array!(
                    column => Ok(write_over(column, &self.chunks, c, keys, &moved)),
                    t => datafusion::common::internal_err!("state store: {t} is not primitive")
                )
            })
            .collect::<DFResult<Vec<_>>>();
        Some(columns.and_then(|c| Ok(RecordBatch::try_new(Arc::clone(&self.schema), c)?)))
    }

    /// Every key's current row, and each row's key index.
    fn snapshot_with_keys(&self) -> DFResult<(RecordBatch, Vec<usize>)> {
        let keys: Vec<usize> = (0..self.location.len())
            .filter(|&k| self.location[k] != NOWHERE)
            .collect();
        Ok((self.snapshot()?, keys))
    }

    fn gather(&self, at: &[(usize, usize)]) -> DFResult<RecordBatch> {
        if at.is_empty() {
            return Ok(RecordBatch::new_empty(Arc::clone(&self.schema)));
        }
        let columns = (0..self.schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn Array> =
                    self.chunks.iter().map(|b| b.column(c).as_ref()).collect();
                interleave(&arrays, at)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }

    /// Makes `rows` (every key's row, in key order) the only chunk.
    fn replace_chunks(&mut self, rows: RecordBatch) {
        for (i, loc) in self.location.iter_mut().enumerate() {
            *loc = pack(0, i);
        }
        self.rows = rows.num_rows();
        self.chunks = vec![rows];
        self.base_in_key_order = true;
    }

    fn compact_if_needed(&mut self) -> DFResult<()> {
        let limit = 2 * self.live + COMPACTION_SLACK;
        if self.rows <= limit && self.keys.len() <= limit {
            return Ok(());
        }
        let rows = self.snapshot()?;
        let mask = BooleanArray::from_iter(self.location.iter().map(|&l| Some(l != NOWHERE)));
        self.keys.retain(&mask)?;
        retain_by(&mut self.location, &mask);
        if let Some(idle) = self.idle.as_mut() {
            idle.retain(&mask);
        }
        self.seen = vec![(0, 0); self.location.len()];
        // The snapshot lists live keys in index order, which `retain` kept.
        self.replace_chunks(rows);
        Ok(())
    }

    /// Bytes held: rows (live and superseded) and the index.
    pub fn size(&self) -> usize {
        self.chunks
            .iter()
            .map(|b| b.get_array_memory_size())
            .sum::<usize>()
            + self.keys.size()
            + self.location.capacity() * 8
            + self.seen.capacity() * 8
            + self.idle.as_ref().map_or(0, IdleKeys::size)
    }

    /// Chunks held (for tests of compaction).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

/// Column `column` of chunk 0 (`base`) with the rows of `moved` keys
/// (`(key, chunk, row)`) written over it, `keys` rows long.
fn write_over<T: ArrowPrimitiveType>(
    base: &PrimitiveArray<T>,
    chunks: &[RecordBatch],
    column: usize,
    keys: usize,
    moved: &[(usize, usize, usize)],
) -> ArrayRef {
    let arrays: Vec<&PrimitiveArray<T>> = chunks
        .iter()
        .map(|b| b.column(column).as_primitive::<T>())
        .collect();
    let mut values: Vec<T::Native> = Vec::with_capacity(keys);
    values.extend_from_slice(base.values());
    values.resize(keys, T::Native::default());
    for &(k, chunk, row) in moved {
        values[k] = arrays[chunk].value(row);
    }
    let nulls = arrays.iter().any(|a| a.null_count() > 0).then(|| {
        let mut valid = BooleanBufferBuilder::new(keys);
        match base.nulls() {
            Some(n) => valid.append_buffer(n.inner()),
            None => valid.append_n(base.len(), true),
        }
        valid.append_n(keys - base.len(), true);
        for &(k, chunk, row) in moved {
            valid.set_bit(k, arrays[chunk].is_valid(row));
        }
        NullBuffer::new(valid.finish())
    });
    Arc::new(
        PrimitiveArray::<T>::new(values.into(), nulls).with_data_type(base.data_type().clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use std::collections::HashMap;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("s", DataType::Int64, false),
        ]))
    }

    /// A seeded pseudo-random source: `next(n)` is in `0..n`.
    fn random(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        }
    }

    /// Puts keys `ks` (each once) with state `t`, as touched at `t`;
    /// returns them sorted.
    fn put_touched(store: &mut StateStore, mut ks: Vec<i64>, t: i64) -> Vec<i64> {
        ks.sort();
        ks.dedup();
        let b = rows(schema(), ks.clone(), vec![t; ks.len()]);
        let keys = store.find(&b.columns()[..1], b.num_rows()).unwrap();
        store.put_at(&keys, &b, Some(t)).unwrap();
        ks
    }

    /// A batch of `schema` with key column `k` and state column `v`.
    fn rows(schema: SchemaRef, k: impl Into<Int64Array>, v: impl Into<Int64Array>) -> RecordBatch {
        let (k, v) = (k.into(), v.into());
        RecordBatch::try_new(schema, vec![Arc::new(k), Arc::new(v)]).unwrap()
    }

    /// Removes the keys `ks` from `store`.
    fn remove(store: &mut StateStore, ks: impl Into<Int64Array>) {
        let ks: Int64Array = ks.into();
        let n = ks.len();
        store.remove(&[Arc::new(ks)], n).unwrap();
    }

    fn pairs(b: &RecordBatch) -> Vec<(Option<i64>, i64)> {
        let k = b.column(0).as_primitive::<Int64Type>();
        let s = b.column(1).as_primitive::<Int64Type>();
        (0..b.num_rows())
            .map(|i| (k.is_valid(i).then(|| k.value(i)), s.value(i)))
            .collect()
    }

    /// Random upserts, removals and lookups against a HashMap.
    #[test]
    fn store_equals_a_map_through_compactions() {
        let mut next = random(7);
        let mut store = StateStore::new(schema(), 1).unwrap();
        let mut model: HashMap<Option<i64>, i64> = HashMap::new();
        let key = |x: u64| if x == 0 { None } else { Some(x as i64) };
        for step in 0..3000 {
            match next(3) {
                0 => {
                    // Upsert a batch of distinct keys.
                    let mut ks: Vec<Option<i64>> = (0..next(50)).map(|_| key(next(400))).collect();
                    ks.sort();
                    ks.dedup();
                    let vs: Vec<i64> = ks
                        .iter()
                        .map(|_| step as i64 * 1000 + next(1000) as i64)
                        .collect();
                    let b = rows(schema(), ks.clone(), vs.clone());
                    store.upsert(&b).unwrap();
                    model.extend(ks.into_iter().zip(vs));
                }
                1 => {
                    let ks: Vec<Option<i64>> = (0..next(20)).map(|_| key(next(400))).collect();
                    remove(&mut store, ks.clone());
                    for k in ks {
                        model.remove(&k);
                    }
                }
                _ => {
                    let ks: Vec<Option<i64>> = (0..next(30)).map(|_| key(next(400))).collect();
                    let n = ks.len();
                    let found = store
                        .lookup(&[Arc::new(Int64Array::from(ks.clone()))], n)
                        .unwrap();
                    let mut want = Vec::new();
                    for k in ks {
                        if let Some(v) = model.get(&k)
                            && !want.iter().any(|(w, _)| *w == k)
                        {
                            want.push((k, *v));
                        }
                    }
                    assert_eq!(pairs(&found), want, "step {step}");
                }
            }
            assert_eq!(store.len(), model.len(), "step {step}");
        }
        let mut snapshot = pairs(&store.snapshot().unwrap());
        snapshot.sort();
        let mut want: Vec<_> = model.into_iter().collect();
        want.sort();
        assert_eq!(snapshot, want);
        // Superseded rows were compacted away along the way.
        assert!(store.chunk_count() < 400, "{} chunks", store.chunk_count());
    }

    /// Random upserts (keys new and old, a NULL key, state NULL now and
    /// then) and a few removals, with `snapshot_compacting` after each:
    /// always the map's rows, whichever way the snapshot is taken (written
    /// over chunk 0, or gathered).
    #[test]
    fn snapshots_equal_a_map() {
        let mut next = random(5);
        let nullable = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("s", DataType::Int64, true),
        ]));
        let mut store = StateStore::new(nullable.clone(), 1).unwrap();
        let mut model: HashMap<Option<i64>, Option<i64>> = HashMap::new();
        let (mut over_base, mut gathered) = (0, 0);
        for step in 0..600 {
            let mut ks: Vec<Option<i64>> = (0..next(80))
                .map(|_| Some(next(1500) as i64).filter(|&k| k != 0))
                .collect();
            ks.sort();
            ks.dedup();
            // State NULL only in some stretches: the other snapshots can be
            // written over chunk 0.
            let nulls = step % 100 > 90;
            let vs: Vec<Option<i64>> = ks
                .iter()
                .map(|_| {
                    Some(step as i64 * 10_000 + next(10_000) as i64)
                        .filter(|_| !nulls || next(3) > 0)
                })
                .collect();
            let b = rows(nullable.clone(), ks.clone(), vs.clone());
            store.upsert(&b).unwrap();
            model.extend(ks.into_iter().zip(vs));
            if next(150) == 0 {
                let gone: Vec<Option<i64>> =
                    (0..next(30)).map(|_| Some(next(1500) as i64)).collect();
                remove(&mut store, gone.clone());
                for k in gone {
                    model.remove(&k);
                }
            }
            let written_over = store.snapshot_over_base().is_some();
            over_base += usize::from(written_over);
            gathered += usize::from(!written_over);
            let b = store.snapshot_compacting().unwrap();
            let k = b.column(0).as_primitive::<Int64Type>();
            let v = b.column(1).as_primitive::<Int64Type>();
            let mut got: Vec<_> = (0..b.num_rows())
                .map(|i| {
                    (
                        k.is_valid(i).then(|| k.value(i)),
                        v.is_valid(i).then(|| v.value(i)),
                    )
                })
                .collect();
            got.sort();
            let mut want: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
            want.sort();
            assert_eq!(got, want, "step {step}");
        }
        assert!(
            over_base > 100 && gathered > 100,
            "{over_base} snapshots written over chunk 0, {gathered} gathered"
        );
    }

    /// Keys touched at random times, through removals and compactions:
    /// `take_idle` gives exactly the live keys last touched before the
    /// threshold, each once.
    #[test]
    fn idle_keys_survive_compactions() {
        let mut next = random(11);
        let mut store = StateStore::new(schema(), 1).unwrap().with_idle_tracking();
        let mut last: HashMap<i64, i64> = HashMap::new();
        for t in 1..400i64 {
            let ks: Vec<i64> = (0..next(200)).map(|_| next(3000) as i64).collect();
            let ks = put_touched(&mut store, ks, t);
            for k in &ks {
                last.insert(*k, t);
            }
            if next(4) == 0 {
                let gone: Vec<i64> = (0..next(100)).map(|_| next(3000) as i64).collect();
                remove(&mut store, gone.clone());
                for k in gone {
                    last.remove(&k);
                }
            }
            let threshold = t - 1 - next(20) as i64;
            let mut taken: Vec<i64> = pairs(&store.take_idle(threshold).unwrap())
                .into_iter()
                .map(|(k, _)| k.unwrap())
                .collect();
            taken.sort();
            let mut want: Vec<i64> = last
                .iter()
                .filter(|(_, l)| **l < threshold)
                .map(|(k, _)| *k)
                .collect();
            want.sort();
            assert_eq!(taken, want, "at {t}");
            for k in want {
                last.remove(&k);
            }
            assert_eq!(store.len(), last.len(), "at {t}");
        }
    }

    /// Random puts, removals and timeouts recorded as deltas, with a full
    /// snapshot every few: a store rebuilt from the last full snapshot and
    /// the deltas since holds the same keys, states and idle times.
    #[test]
    fn changes_rebuild_the_store() {
        let mut next = random(23);
        let mut store = StateStore::new(schema(), 1).unwrap().with_idle_tracking();
        store.record_changes();
        let mut saved: Vec<RecordBatch> = Vec::new();
        for t in 1..300i64 {
            let ks: Vec<i64> = (0..next(60)).map(|_| next(500) as i64).collect();
            put_touched(&mut store, ks, t);
            let gone: Vec<i64> = (0..next(10)).map(|_| next(500) as i64).collect();
            remove(&mut store, gone);
            store.take_idle(t - 1 - next(30) as i64).unwrap();
            if t % 7 == 0 {
                saved = vec![store.full_changes().unwrap()];
            } else {
                saved.push(store.take_changes().unwrap());
            }
            let mut rebuilt = StateStore::new(schema(), 1).unwrap().with_idle_tracking();
            for c in &saved {
                rebuilt.apply_changes(c).unwrap();
            }
            // Keys, states and last touches (the log was just taken, so
            // full_changes drops nothing).
            let triples = |s: &mut StateStore| {
                let b = s.full_changes().unwrap();
                let touched = b.column(3).as_primitive::<Int64Type>().clone();
                let mut out: Vec<_> = pairs(&b.project(&[0, 1]).unwrap())
                    .into_iter()
                    .enumerate()
                    .map(|(i, (k, v))| (k, v, touched.is_valid(i).then(|| touched.value(i))))
                    .collect();
                out.sort();
                out
            };
            assert_eq!(triples(&mut rebuilt), triples(&mut store), "at {t}");
        }
    }
}
