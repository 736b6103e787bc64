//! Keyed state across batches: Spark's `updateStateByKey` and
//! `mapWithState`.
//!
//! In SQL (columnar):
//! - [`store`]: keys and their accumulator states as Arrow arrays, with a hash
//!   index; a batch touching `m` keys costs O(m), however many keys are kept;
//! - [`keyed`]: `GROUP BY ... EMIT CHANGES | EMIT SNAPSHOT` over the store,
//!   with the options [`idle`] (`state_timeout`), [`seed`] (`initial_state`)
//!   and [`evict`] (`EVICT WHEN`).
//!
//! In Rust (a function per key, the escape hatch):
//! - [`function`]: [`StateSpec`], [`State`] and the stream that runs them;
//! - [`api`]: `map_with_state`, `state_snapshots`, `update_state_by_key`.
//!
//! Both keep state in a form a checkpoint can write as is: the store's
//! [`StateStore::snapshot`] is a `RecordBatch`, and a function stream's
//! snapshot is its keys and states serialized to Arrow.

pub mod api;
pub mod changelog;
pub mod evict;
pub mod function;
pub mod idle;
pub mod keyed;
pub mod seed;
pub mod store;

pub use function::{InputValue, OutputValue, State, StateKey, StateSpec, StateValue};
pub use idle::IdleKeys;
pub use keyed::{KeyedOptions, KeyedStream, TIMED_OUT};
pub use store::StateStore;
