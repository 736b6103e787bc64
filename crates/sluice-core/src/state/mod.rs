//! Keyed state across batches (the groundwork of `EMIT CHANGES` /
//! `EMIT SNAPSHOT`, Spark's `mapWithState` / `updateStateByKey`).
//!
//! - [`store`]: keys and their accumulator states as Arrow arrays, with a hash
//!   index; a batch touching `m` keys costs O(m), however many keys are kept.
//!
//! Not wired to SQL yet: `EMIT CHANGES` / `EMIT SNAPSHOT` are still refused
//! with a message.

pub mod store;

pub use store::StateStore;
