//! Windows over batches: `FROM window(<stream>, '<length>' [, '<slide>'])`,
//! Spark's `window`, `reduceByKeyAndWindow`, `countByWindow`,
//! `countByValueAndWindow` and `reduceByWindow` in one SQL relation.
//!
//! - [`spec`]: when windows are emitted and which batches they cover;
//! - [`rewrite`]: the `window(...)` call in a query, replaced by the window's table;
//! - [`split`]: which queries are incremental, cut into pane / merge / rest;
//! - [`aggregate`]: the incremental aggregate and its per-aggregate strategies,
//!   built on [`additive`] (derived inverse), [`retract`] (accumulators that
//!   retract), [`two_stack`] (no inverse), [`keys`], [`partial`] and [`merge`];
//! - [`stream`]: a windowed stream's work each batch;
//! - [`api`]: `window`, `reduce_by_key_and_window`, ... on [`StreamingContext`](crate::StreamingContext).
//!
//! Every strategy gives what a recomputation over the covered batches gives;
//! `tests/window_property.rs` checks it on random input.
//!
//! ```sql
//! CREATE STREAM hot_words AS
//!   SELECT window_end, word, count(*) AS n
//!   FROM window(words, '20 seconds', '10 seconds')
//!   GROUP BY word;
//! ```

pub mod additive;
pub mod aggregate;
pub mod api;
pub mod keys;
pub mod merge;
pub mod partial;
pub mod retract;
pub mod rewrite;
pub mod spec;
pub mod split;
pub mod stream;
pub mod two_stack;

pub use aggregate::Strategy;
pub use spec::WindowSpec;
pub use stream::WindowedStream;
