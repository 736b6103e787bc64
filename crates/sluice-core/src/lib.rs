//! # sluice-core
//!
//! The engine of sluice: Spark Streaming's model (a stream cut into
//! micro-batches at a fixed interval) on Apache Arrow and DataFusion.
//!
//! - [`clock`]: when batches are cut (system, simulated, manual clocks);
//! - [`engine`]: the graph of sources → streams → sinks and one batch's work;
//! - [`plan`]: each stream's SQL planned once, executed every batch;
//! - [`build_side`]: joins with a static table build on the table;
//! - [`lookup_join`]: a join with a static table of unique keys, one lookup
//!   per stream row, the stream's columns untouched;
//! - [`interned_keys`]: GROUP BY one text column, its keys numbered once and
//!   kept from batch to batch;
//! - [`split`], [`split_view`], [`flatten`], [`byte_positions`]: splitting text
//!   (`string_to_array`, `split_part`, `unnest`) without copying what need not be;
//! - [`slot`]: the table leaf whose contents are swapped each batch;
//! - [`window`]: `FROM window(stream, length, slide)`, incremental windowed aggregates;
//! - [`state`]: keyed state: `EMIT CHANGES/SNAPSHOT` over Arrow arrays, and
//!   `map_with_state` / `update_state_by_key` with Rust functions;
//! - [`scheduler`]: the generator/processor loop, batches queue when behind;
//! - [`source`], [`sink`], [`registry`]: what connectors implement;
//! - [`offsets`]: `offsets(<source>)`, the offset ranges of a Kafka source's batch;
//! - [`render`]: Spark's `print(n)` format;
//! - [`catalog`]: `SHOW STREAMS | SOURCES | SINKS | BATCHES`, `DESCRIBE`, `DROP`;
//! - [`watch`]: a live `SELECT` over a stream (the REPL's watch);
//! - [`StreamingContext`]: the embedding API, and `sql(...)` for scripts.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use datafusion::prelude::SessionContext;
//! use sluice_core::{StreamingContext, ClockChoice, ConsoleOutput};
//!
//! let ssc = StreamingContext::new(SessionContext::new(), Duration::from_secs(1));
//! let (console, printed) = ConsoleOutput::buffer();
//! ssc.set_console(console).await;
//! ssc.sql("CREATE SOURCE nums (n BIGINT) WITH (connector = 'queue');
//!          CREATE STREAM odd AS SELECT n FROM nums WHERE n % 2 = 1;
//!          INSERT INTO nums VALUES (1), (2), (3);").await.unwrap();
//! ssc.foreach_batch("odd", |_, _| async { Ok(()) }).await.unwrap();
//! ssc.set_clock(ClockChoice::Simulated);
//! ssc.set_max_batches(1);
//! ssc.start().await.unwrap();
//! ssc.await_termination().await.unwrap();
//! assert_eq!(ssc.batch_infos()[0].output_rows[0].1, 2);
//! # });
//! ```

pub mod at_once;
pub mod build_side;
pub mod byte_positions;
pub mod catalog;
pub mod checkpoint;
pub mod clock;
pub mod conform;
pub mod context;
pub mod engine;
pub mod error;
pub mod flatten;
pub mod foreach;
pub mod interned_keys;
pub mod lookup_join;
pub mod metrics;
pub mod offsets;
pub mod plan;
pub mod queue;
pub mod registry;
pub mod render;
pub mod scheduler;
pub mod sink;
pub mod slot;
pub mod source;
pub mod split;
pub mod split_view;
pub mod state;
pub mod stateful;
pub mod statements;
pub mod store;
pub mod watch;
pub mod wildcard;
pub mod window;

pub use clock::{BatchClock, ManualClock, SimulatedClock, SystemClock};
pub use context::{ClockChoice, GraphInfo, StreamingContext};
pub use error::{Result, SluiceError};
pub use metrics::{BatchInfo, StreamingListener};
pub use queue::QueueHandle;
pub use registry::ConnectorRegistry;
pub use sink::{ConsoleOutput, Sink, SinkContext, SinkFactory, SinkSpec};
pub use slot::BATCH_TIME;
pub use source::{Source, SourceContext, SourceFactory, SourceSpec};
pub use statements::StatementOutput;

/// Re-exported so connectors and applications use the same versions.
pub use datafusion;
pub use sluice_sql;
