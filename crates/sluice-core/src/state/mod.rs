//! Keyed state across batches (the groundwork of `EMIT CHANGES` /
//! `EMIT SNAPSHOT`, Spark's `mapWithState` / `updateStateByKey`).
//!
//! - [`store`]: keys and their accumulator states as Arrow arrays, with a hash
//!   index; a batch touching `m` keys costs O(m), however many keys are kept;
//! - [`keyed`]: `GROUP BY ... EMIT CHANGES | EMIT SNAPSHOT` over the store.
//!
//! Not built yet: `state_timeout`, `initial_state`, eviction, and the Rust
//! `map_with_state` / `update_state_by_key` API.

pub mod api;
pub mod evict;
pub mod function;
pub mod idle;
pub mod keyed;
pub mod seed;
pub mod store;

pub use function::{State, StateSpec};
pub use idle::IdleKeys;
pub use keyed::{KeyedOptions, KeyedStream, TIMED_OUT};
pub use store::StateStore;
