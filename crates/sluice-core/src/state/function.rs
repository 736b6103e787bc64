//! Spark's `mapWithState` and `updateStateByKey` as Rust functions: the
//! escape hatch for per-key logic SQL cannot say. The SQL path
//! (`EMIT CHANGES` / `EMIT SNAPSHOT`) stays columnar; here each key's state
//! is a Rust value `S` and the function is called once per key per batch
//! with all of that key's values of the batch.
//!
//! The input's first column is the key `K`; the rest is the value `V` (one
//! column: that column; several: a record, a struct or tuple, of them).
//! Rows cross into Rust and back through `serde` ([`serde_arrow`]): what the
//! function returns (`T`, or the state `S` for snapshots) becomes columns —
//! a struct's fields, a tuple's `0`, `1`, ..., or one column (`value`,
//! `state`) for a plain value.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use datafusion::prelude::SessionContext;
//! use sluice_core::StreamingContext;
//! use sluice_core::state::{State, StateSpec};
//!
//! let ssc = StreamingContext::new(SessionContext::new(), Duration::from_secs(1));
//! ssc.sql("CREATE SOURCE words (word TEXT) WITH (connector = 'queue');
//!          CREATE STREAM pairs AS SELECT word, 1 AS one FROM words;").await.unwrap();
//! // The running count of each word: emit (word, count), keep count.
//! let spec = StateSpec::function(|word: &String, ones: &[i64], state: &mut State<i64>| {
//!     let count = state.get_option().copied().unwrap_or(0) + ones.iter().sum::<i64>();
//!     if !state.is_timing_out() {
//!         state.update(count);
//!     }
//!     Some((word.clone(), count))
//! })
//! .timeout(Duration::from_secs(30));
//! ssc.map_with_state("counts", "pairs", spec).await.unwrap();
//! ssc.state_snapshots("all_counts", "counts").await.unwrap();
//! # });
//! ```

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type, Schema, SchemaRef};
use datafusion::common::{exec_datafusion_err, plan_datafusion_err};
use datafusion::error::Result as DFResult;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_arrow::schema::{SchemaLike, TracingOptions};
use serde_arrow::utils::{Item, Items};

use super::changelog::TOUCHED_COLUMN;
use super::idle::IdleKeys;
use crate::slot::SlotContents;

/// One key's state, as the function sees it (Spark's `State[S]`).
#[derive(Debug)]
pub struct State<S> {
    value: Option<S>,
    timing_out: bool,
    misuse: Option<&'static str>,
}

impl<S> State<S> {
    fn new(value: Option<S>, timing_out: bool) -> Self {
        Self {
            value,
            timing_out,
            misuse: None,
        }
    }

    /// Moves the state out (for `update_state_by_key`).
    pub(crate) fn take(&mut self) -> Option<S> {
        self.value.take()
    }

    /// Whether the key has state.
    pub fn exists(&self) -> bool {
        self.value.is_some()
    }

    /// The state.
    ///
    /// # Panics
    /// When the key has none (as Spark's `get` throws); see [`get_option`](Self::get_option).
    pub fn get(&self) -> &S {
        match &self.value {
            Some(v) => v,
            None => {
                panic!("State::get on a key without state (check exists() or use get_option())")
            }
        }
    }

    /// The state, if the key has one.
    pub fn get_option(&self) -> Option<&S> {
        self.value.as_ref()
    }

    /// Sets the key's state. Not allowed while it times out (the stream
    /// fails with an error saying so, as Spark's throws).
    pub fn update(&mut self, value: S) {
        if self.timing_out {
            self.misuse =
                Some("update() on a key that is timing out (its state is dropped after this call)");
            return;
        }
        self.value = Some(value);
    }

    /// Drops the key's state; if the key comes back it starts without.
    pub fn remove(&mut self) {
        if self.timing_out {
            self.misuse =
                Some("remove() on a key that is timing out (it is removed after this call)");
            return;
        }
        self.value = None;
    }

    /// Whether this call is the key's last, because it was idle longer than
    /// the spec's timeout (the function gets no values then).
    pub fn is_timing_out(&self) -> bool {
        self.timing_out
    }
}

/// What a key can be: hashed to find its state, and serialized to and from
/// its column.
pub trait StateKey:
    Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static
{
}
impl<T: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static> StateKey for T {}

/// What a value can be: read from the input's other columns.
pub trait InputValue: DeserializeOwned + Send + Sync + 'static {}
impl<T: DeserializeOwned + Send + Sync + 'static> InputValue for T {}

/// What a key's state can be: kept between batches, and written out by
/// snapshots.
pub trait StateValue: Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> StateValue for T {}

/// What the function returns: written out as the stream's rows.
pub trait OutputValue: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> OutputValue for T {}

type MapFn<K, V, S, T> = dyn Fn(&K, &[V], &mut State<S>) -> Option<T> + Send + Sync;

/// What `map_with_state` runs (Spark's `StateSpec`): the function and its
/// options.
pub struct StateSpec<K, V, S, T> {
    pub(crate) function: Arc<MapFn<K, V, S, T>>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) initial_state: Vec<(K, S)>,
    pub(crate) partitions: usize,
}

impl<K, V, S, T> StateSpec<K, V, S, T> {
    /// `StateSpec.function(f)`: `f(key, values of this batch, state)`; what
    /// it returns (if anything) is emitted.
    pub fn function(
        f: impl Fn(&K, &[V], &mut State<S>) -> Option<T> + Send + Sync + 'static,
    ) -> Self {
        Self {
            function: Arc::new(f),
            timeout: None,
            initial_state: Vec::new(),
            partitions: 1,
        }
    }

    /// A key without values for longer than `timeout` gets one more call
    /// with [`State::is_timing_out`], then its state is dropped.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The states keys start with.
    pub fn initial_state(mut self, states: impl IntoIterator<Item = (K, S)>) -> Self {
        self.initial_state = states.into_iter().collect();
        self
    }

    /// Keys are split by hash into `n` partitions, whose functions run on
    /// `n` threads at once (at least 1).
    pub fn num_partitions(mut self, n: usize) -> Self {
        self.partitions = n.max(1);
        self
    }
}

/// A stream kept by a Rust function, as the engine runs it.
pub trait KeyedFunction: Send {
    /// The source or stream it reads.
    fn input(&self) -> &str;
    /// What it emits.
    fn schema(&self) -> SchemaRef;
    /// Runs batch `t`.
    fn run(&mut self, t: i64, input: &SlotContents) -> DFResult<Vec<RecordBatch>>;
    /// Every key and its state (Spark's `stateSnapshots()`).
    fn snapshot(&self) -> DFResult<RecordBatch>;
    fn snapshot_schema(&self) -> SchemaRef;
    /// Every key and its state, then when each last got values (for a
    /// timeout; null when not kept): what a checkpoint saves.
    fn saved_state(&self) -> DFResult<RecordBatch>;
    /// Puts back what [`saved_state`](Self::saved_state) gave (keys without
    /// a time as touched at `t`). `started`: the state was saved after the
    /// first batch, so `initial_state` is in it and is not applied again.
    fn restore(&mut self, saved: &RecordBatch, t: i64, started: bool) -> DFResult<()>;
    /// `initial_state` is still to be applied (no batch has run).
    fn seed_pending(&self) -> bool;
    /// Keys with state.
    fn keys(&self) -> usize;
    /// Bytes of state: a lower bound (the values' own heap is not counted).
    fn state_size(&self) -> usize;
    fn describe(&self) -> String;
}

/// How a Rust type becomes columns and back.
pub(crate) struct Columns<T> {
    fields: Vec<FieldRef>,
    /// A plain value (one column), not a record.
    single: bool,
    _t: PhantomData<fn() -> T>,
}

fn tracing() -> TracingOptions {
    TracingOptions::default()
        .strings_as_large_utf8(false)
        .bytes_as_large_binary(false)
        .sequence_as_large_list(false)
        .allow_null_fields(true)
}

impl<T> Columns<T> {
    /// The fields serde_arrow is given: a plain value's is named `item`
    /// (its `Items` wrapper wants that name).
    fn serde_fields(&self) -> Vec<FieldRef> {
        if self.single {
            self.fields
                .iter()
                .map(|f| Arc::new(f.as_ref().clone().with_name("item")))
                .collect()
        } else {
            self.fields.clone()
        }
    }

    /// Serializes `items` (`T`s or references to them) as columns.
    fn arrays_of<I: Serialize>(&self, items: &[I]) -> DFResult<Vec<ArrayRef>> {
        let fields = self.serde_fields();
        let arrays = if self.single {
            serde_arrow::to_arrow(&fields, Items(items))
        } else {
            serde_arrow::to_arrow(&fields, items)
        };
        arrays.map_err(|e| exec_datafusion_err!("{}: {e}", std::any::type_name::<T>()))
    }
}

impl<T: Serialize + DeserializeOwned> Columns<T> {
    /// Columns traced from `T`'s type: a record's fields, or one column
    /// named `single_name`.
    pub(crate) fn traced(single_name: &str) -> DFResult<Self> {
        if let Ok(fields) = Vec::<FieldRef>::from_type::<T>(tracing()) {
            return Ok(Self {
                fields,
                single: false,
                _t: PhantomData,
            });
        }
        let fields = Vec::<FieldRef>::from_type::<Item<T>>(tracing())
            .map_err(|e| plan_datafusion_err!("{}: {e}", std::any::type_name::<T>()))?;
        let fields = fields
            .iter()
            .map(|f| Arc::new(f.as_ref().clone().with_name(single_name)))
            .collect();
        Ok(Self {
            fields,
            single: true,
            _t: PhantomData,
        })
    }
}

impl<T: DeserializeOwned> Columns<T> {
    /// Reads `columns` (one: a plain value; several: a record) as `T`s.
    fn read(fields: &[FieldRef], columns: &[ArrayRef]) -> Result<Vec<T>, String> {
        let out = if let [field] = fields {
            let item = Arc::new(field.as_ref().clone().with_name("item"));
            serde_arrow::from_arrow::<Items<Vec<T>>, _>(&[item], columns).map(|i| i.0)
        } else {
            serde_arrow::from_arrow::<Vec<T>, _>(fields, columns)
        };
        out.map_err(|e| e.to_string())
    }
}

/// One partition's keys and states. Slots of removed keys are reused.
struct Partition<K, S> {
    index: HashMap<K, usize>,
    slots: Vec<Option<(K, S)>>,
    free: Vec<usize>,
    idle: Option<IdleKeys>,
}

impl<K: Hash + Eq + Clone, S> Partition<K, S> {
    fn new(timeouts: bool) -> Self {
        Self {
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            idle: timeouts.then(IdleKeys::default),
        }
    }

    /// Calls `f` for `key`, then keeps, replaces or drops its state.
    fn call<R>(
        &mut self,
        key: K,
        t: i64,
        f: impl FnOnce(&K, &mut State<S>) -> R,
    ) -> Result<R, &'static str> {
        let slot = self.index.get(&key).copied();
        let value = slot.and_then(|i| self.slots[i].take()).map(|(_, s)| s);
        let mut state = State::new(value, false);
        let out = f(&key, &mut state);
        if let Some(why) = state.misuse {
            return Err(why);
        }
        match (state.value, slot) {
            (Some(s), Some(i)) => {
                self.slots[i] = Some((key, s));
                self.touch(i, t);
            }
            (Some(s), None) => {
                let i = match self.free.pop() {
                    Some(i) => i,
                    None => {
                        self.slots.push(None);
                        self.slots.len() - 1
                    }
                };
                self.index.insert(key.clone(), i);
                self.slots[i] = Some((key, s));
                self.touch(i, t);
            }
            (None, Some(i)) => {
                self.index.remove(&key);
                self.free.push(i);
            }
            (None, None) => {}
        }
        Ok(out)
    }

    fn touch(&mut self, slot: usize, t: i64) {
        if let Some(idle) = self.idle.as_mut() {
            idle.touch(&[slot], t);
        }
    }

    /// Takes out the keys idle since before `threshold`.
    fn take_idle(&mut self, threshold: i64) -> Vec<(K, S)> {
        let Some(idle) = self.idle.as_mut() else {
            return Vec::new();
        };
        let slots = &self.slots;
        let taken = idle.take_before(threshold, |i| slots[i].is_some());
        let mut out = Vec::with_capacity(taken.len());
        for i in taken {
            if let Some((k, s)) = self.slots[i].take() {
                self.index.remove(&k);
                self.free.push(i);
                out.push((k, s));
            }
        }
        out
    }
}

/// What a [`FunctionStream`] emits each batch.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Emits {
    /// What the function returned (`mapWithState`).
    Mapped,
    /// Every key and its state after the batch (`updateStateByKey`), the
    /// function being called for every key, with or without values.
    Snapshot,
}

/// `map_with_state` / `update_state_by_key` over one input.
pub(crate) struct FunctionStream<K, V, S, T> {
    input: String,
    name: String,
    spec: StateSpec<K, V, S, T>,
    emits: Emits,
    key_fields: Vec<FieldRef>,
    value_fields: Vec<FieldRef>,
    output: Columns<T>,
    states: Columns<S>,
    keys_out: Columns<K>,
    schema: SchemaRef,
    snapshot_schema: SchemaRef,
    partitions: Vec<Partition<K, S>>,
    hasher: RandomState,
    seeded: bool,
}

impl<K, V, S, T> FunctionStream<K, V, S, T>
where
    K: StateKey,
    V: InputValue,
    S: StateValue,
    T: OutputValue,
{
    pub(crate) fn new(
        name: &str,
        input: &str,
        input_schema: &SchemaRef,
        spec: StateSpec<K, V, S, T>,
        emits: Emits,
    ) -> DFResult<Self> {
        let fields = input_schema.fields();
        if fields.len() < 2 {
            return datafusion::common::plan_err!(
                "'{name}' reads '{input}', which has {} column(s); the first column is the key and the rest the value, so it needs two or more",
                fields.len()
            );
        }
        let key_fields = vec![Arc::clone(&fields[0])];
        let keys_out = Columns::<K>::traced(fields[0].name())?;
        let output = Columns::<T>::traced("value")?;
        let states = Columns::<S>::traced("state")?;
        let snapshot_schema = Arc::new(Schema::new(
            keys_out
                .fields
                .iter()
                .chain(&states.fields)
                .cloned()
                .collect::<Vec<_>>(),
        ));
        let schema = match emits {
            Emits::Mapped => Arc::new(Schema::new(output.fields.clone())),
            Emits::Snapshot => Arc::clone(&snapshot_schema),
        };
        let timeouts = spec.timeout.is_some();
        let partitions = (0..spec.partitions)
            .map(|_| Partition::new(timeouts))
            .collect();
        Ok(Self {
            input: input.to_string(),
            name: name.to_string(),
            key_fields,
            value_fields: fields[1..].to_vec(),
            output,
            states,
            keys_out,
            schema,
            snapshot_schema,
            partitions,
            hasher: RandomState::new(),
            seeded: false,
            spec,
            emits,
        })
    }

    fn partition_of(&self, key: &K) -> usize {
        if self.partitions.len() == 1 {
            0
        } else {
            (self.hasher.hash_one(key) % self.partitions.len() as u64) as usize
        }
    }

    /// Every key and its state as a batch, and (if `times`) when each key
    /// last got values.
    fn keys_and_states(&self, times: bool) -> DFResult<(RecordBatch, Vec<Option<i64>>)> {
        let n = self.partitions.iter().map(|p| p.index.len()).sum();
        let mut keys: Vec<&K> = Vec::with_capacity(n);
        let mut states: Vec<&S> = Vec::with_capacity(n);
        let mut touched = Vec::with_capacity(if times { n } else { 0 });
        for p in &self.partitions {
            for (slot, (k, s)) in p
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, e)| e.as_ref().map(|e| (i, e)))
            {
                keys.push(k);
                states.push(s);
                if times {
                    touched.push(p.idle.as_ref().and_then(|idle| idle.last_touch(slot)));
                }
            }
        }
        let mut columns = self.keys_out.arrays_of(&keys)?;
        columns.extend(self.states.arrays_of(&states)?);
        Ok((
            RecordBatch::try_new(Arc::clone(&self.snapshot_schema), columns)?,
            touched,
        ))
    }

    fn misuse(&self, t: i64, why: &str) -> datafusion::error::DataFusionError {
        exec_datafusion_err!("'{}' at batch {t} ms: the function called {why}", self.name)
    }
}

/// One partition's share of a batch: its keys and their values, in the
/// order first met.
struct Share<K, V> {
    keys: Vec<K>,
    values: Vec<Vec<V>>,
}

impl<K, V, S, T> KeyedFunction for FunctionStream<K, V, S, T>
where
    K: StateKey,
    V: InputValue,
    S: StateValue,
    T: OutputValue,
{
    fn input(&self) -> &str {
        &self.input
    }

    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn run(&mut self, t: i64, input: &SlotContents) -> DFResult<Vec<RecordBatch>> {
        if !self.seeded {
            self.seeded = true;
            for (k, s) in std::mem::take(&mut self.spec.initial_state) {
                let p = self.partition_of(&k);
                let _ = self.partitions[p].call(k, t, |_, state| state.value = Some(s));
            }
        }
        // The batch's keys and values, shared out by partition.
        let mut shares: Vec<Share<K, V>> = (0..self.partitions.len())
            .map(|_| Share {
                keys: Vec::new(),
                values: Vec::new(),
            })
            .collect();
        let mut positions: Vec<HashMap<K, usize>> =
            (0..self.partitions.len()).map(|_| HashMap::new()).collect();
        for batch in input.batches.iter().filter(|b| b.num_rows() > 0) {
            let columns = batch.columns();
            let keys = Columns::<K>::read(&self.key_fields, &columns[..1]).map_err(|e| {
                exec_datafusion_err!(
                    "'{}': the key column '{}' ({}) does not read as {}: {e}",
                    self.name,
                    self.key_fields[0].name(),
                    self.key_fields[0].data_type(),
                    std::any::type_name::<K>()
                )
            })?;
            let values = Columns::<V>::read(&self.value_fields, &columns[1..]).map_err(|e| {
                exec_datafusion_err!(
                    "'{}': the value column(s) {} do not read as {}: {e}",
                    self.name,
                    self.value_fields
                        .iter()
                        .map(|f| format!("'{}' ({})", f.name(), f.data_type()))
                        .collect::<Vec<_>>()
                        .join(", "),
                    std::any::type_name::<V>()
                )
            })?;
            for (k, v) in keys.into_iter().zip(values) {
                let p = self.partition_of(&k);
                let share = &mut shares[p];
                match positions[p].get(&k) {
                    Some(&i) => share.values[i].push(v),
                    None => {
                        positions[p].insert(k.clone(), share.keys.len());
                        share.keys.push(k);
                        share.values.push(vec![v]);
                    }
                }
            }
        }
        drop(positions);
        let function = Arc::clone(&self.spec.function);
        // Saturated: a timeout of Duration::MAX means never.
        let timeout = self
            .spec
            .timeout
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let emits = self.emits;
        let work = |partition: &mut Partition<K, S>, share: Share<K, V>| {
            let mut out: Vec<T> = Vec::new();
            let every_key = emits == Emits::Snapshot;
            // updateStateByKey calls the function for keys without values too.
            let quiet: Vec<K> = if every_key {
                let touched: std::collections::HashSet<&K> = share.keys.iter().collect();
                partition
                    .index
                    .keys()
                    .filter(|k| !touched.contains(k))
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            for (k, vs) in share.keys.into_iter().zip(share.values) {
                if let Some(x) = partition.call(k, t, |k, state| function(k, &vs, state))? {
                    out.push(x);
                }
            }
            for k in quiet {
                if let Some(x) = partition.call(k, t, |k, state| function(k, &[], state))? {
                    out.push(x);
                }
            }
            if let Some(ms) = timeout {
                for (k, s) in partition.take_idle(t.saturating_sub(ms)) {
                    let mut state = State::new(Some(s), true);
                    let x = function(&k, &[], &mut state);
                    if let Some(why) = state.misuse {
                        return Err(why);
                    }
                    out.extend(x);
                }
            }
            Ok(out)
        };
        let results: Vec<Result<Vec<T>, &'static str>> = if self.partitions.len() == 1 {
            let share = shares.pop().map(|s| work(&mut self.partitions[0], s));
            share.into_iter().collect()
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = self
                    .partitions
                    .iter_mut()
                    .zip(shares)
                    .map(|(p, s)| scope.spawn(|| work(p, s)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect()
            })
        };
        let mut mapped = Vec::new();
        for r in results {
            match r {
                Ok(out) => mapped.extend(out),
                Err(why) => return Err(self.misuse(t, why)),
            }
        }
        match self.emits {
            Emits::Mapped => {
                let columns = self.output.arrays_of(&mapped)?;
                Ok(vec![RecordBatch::try_new(self.schema(), columns)?])
            }
            Emits::Snapshot => Ok(vec![self.snapshot()?]),
        }
    }

    fn snapshot(&self) -> DFResult<RecordBatch> {
        Ok(self.keys_and_states(false)?.0)
    }

    fn saved_state(&self) -> DFResult<RecordBatch> {
        let (snapshot, touched) = self.keys_and_states(true)?;
        let mut fields = snapshot.schema().fields().to_vec();
        fields.push(Arc::new(Field::new(TOUCHED_COLUMN, DataType::Int64, true)));
        let mut columns = snapshot.columns().to_vec();
        columns.push(Arc::new(Int64Array::from(touched)));
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }

    fn snapshot_schema(&self) -> SchemaRef {
        Arc::clone(&self.snapshot_schema)
    }

    fn restore(&mut self, saved: &RecordBatch, t: i64, started: bool) -> DFResult<()> {
        let k = self.keys_out.fields.len();
        let n = k + self.states.fields.len();
        let unreadable = |what: &str, e: String| {
            exec_datafusion_err!("'{}': saved {what} do not read back: {e}", self.name)
        };
        if saved.num_columns() != n + 1 {
            return Err(unreadable(
                "rows",
                format!("{} columns, not {}", saved.num_columns(), n + 1),
            ));
        }
        let keys = Columns::<K>::read(&self.keys_out.fields, &saved.columns()[..k])
            .map_err(|e| unreadable("keys", e))?;
        let states = Columns::<S>::read(&self.states.fields, &saved.columns()[k..n])
            .map_err(|e| unreadable("states", e))?;
        let touched = saved
            .column(n)
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| {
                unreadable(
                    "times",
                    format!("{} is not Int64", saved.column(n).data_type()),
                )
            })?;
        if started {
            self.seeded = true;
        }
        // Oldest touch first: the idle queue is in time order.
        let mut entries: Vec<(i64, K, S)> = keys
            .into_iter()
            .zip(states)
            .enumerate()
            .map(|(i, (key, state))| {
                let at = if touched.is_valid(i) {
                    touched.value(i)
                } else {
                    t
                };
                (at, key, state)
            })
            .collect();
        entries.sort_by_key(|(at, _, _)| *at);
        for (at, key, state) in entries {
            let p = self.partition_of(&key);
            let _ = self.partitions[p].call(key, at, |_, s| s.value = Some(state));
        }
        Ok(())
    }

    fn seed_pending(&self) -> bool {
        !self.seeded && !self.spec.initial_state.is_empty()
    }

    fn keys(&self) -> usize {
        self.partitions.iter().map(|p| p.index.len()).sum()
    }

    fn state_size(&self) -> usize {
        self.partitions
            .iter()
            .map(|p| {
                p.slots.capacity() * std::mem::size_of::<Option<(K, S)>>()
                    + p.index.capacity() * (std::mem::size_of::<(K, usize)>() + 1)
                    + p.free.capacity() * 8
                    + p.idle.as_ref().map_or(0, IdleKeys::size)
            })
            .sum()
    }

    fn describe(&self) -> String {
        format!(
            "{} by a Rust function ({} -> {}), {} partition(s){}",
            match self.emits {
                Emits::Mapped => "mapWithState",
                Emits::Snapshot => "updateStateByKey",
            },
            std::any::type_name::<K>(),
            std::any::type_name::<S>(),
            self.partitions.len(),
            self.spec
                .timeout
                .map(|d| format!(", timeout {}", sluice_sql::format_duration(d)))
                .unwrap_or_default()
        )
    }
}
