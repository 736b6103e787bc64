//! Spark's window operations on the embedding API, each one `CREATE STREAM
//! ... FROM window(...)` underneath (same operator, same strategies).
//!
//! Names, keys and aggregates are SQL: `"word"`, `"sum(n) AS n"`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use datafusion::prelude::SessionContext;
//! use sluice_core::StreamingContext;
//!
//! let ssc = StreamingContext::new(SessionContext::new(), Duration::from_secs(5));
//! ssc.sql("CREATE SOURCE words (word TEXT) WITH (connector = 'queue')").await.unwrap();
//! let (l, s) = (Duration::from_secs(20), Duration::from_secs(10));
//! // words.map((_, 1)).reduceByKeyAndWindow(_ + _, _ - _, Seconds(20), Seconds(10))
//! ssc.reduce_by_key_and_window("hot", "words", &["word"], &["count(*) AS n"], l, s).await.unwrap();
//! ssc.count_by_window("total", "words", l, s).await.unwrap();
//! # });
//! ```

use std::time::Duration;

use crate::context::StreamingContext;
use crate::error::Result;

impl StreamingContext {
    /// `window(length, slide)`: every `slide`, the rows of `input`'s last `length`.
    pub async fn window(
        &self,
        name: &str,
        input: &str,
        length: Duration,
        slide: Duration,
    ) -> Result<()> {
        self.windowed_stream(name, "*", input, &[], length, slide)
            .await
    }

    /// `reduceByKeyAndWindow`: `aggregates` per key over each window; the
    /// inverse is derived where one exists.
    pub async fn reduce_by_key_and_window(
        &self,
        name: &str,
        input: &str,
        keys: &[&str],
        aggregates: &[&str],
        length: Duration,
        slide: Duration,
    ) -> Result<()> {
        let select = keys
            .iter()
            .chain(aggregates)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        self.windowed_stream(name, &select, input, keys, length, slide)
            .await
    }

    /// `reduceByWindow`: `aggregates` over each whole window (one row).
    pub async fn reduce_by_window(
        &self,
        name: &str,
        input: &str,
        aggregates: &[&str],
        length: Duration,
        slide: Duration,
    ) -> Result<()> {
        self.windowed_stream(name, &aggregates.join(", "), input, &[], length, slide)
            .await
    }

    /// `countByWindow`: the number of rows in each window, as `count`.
    pub async fn count_by_window(
        &self,
        name: &str,
        input: &str,
        length: Duration,
        slide: Duration,
    ) -> Result<()> {
        self.reduce_by_window(name, input, &["count(*) AS count"], length, slide)
            .await
    }

    /// `countByValueAndWindow`: per distinct value of `column`, its `count`.
    pub async fn count_by_value_and_window(
        &self,
        name: &str,
        input: &str,
        column: &str,
        length: Duration,
        slide: Duration,
    ) -> Result<()> {
        self.reduce_by_key_and_window(
            name,
            input,
            &[column],
            &["count(*) AS count"],
            length,
            slide,
        )
        .await
    }

    /// Bytes a stream keeps between batches (a window's panes and per-key
    /// state, running aggregates' states); `None` for a stream without state.
    pub async fn state_size(&self, stream: &str) -> Option<usize> {
        let state = {
            let engine = self.engine().lock().await;
            let s = engine.streams.iter().find(|s| s.name == stream)?;
            std::sync::Arc::clone(s.stateful.as_ref()?)
        };
        let size = state.lock().await.state_size();
        Some(size)
    }

    async fn windowed_stream(
        &self,
        name: &str,
        select: &str,
        input: &str,
        group_by: &[&str],
        length: Duration,
        slide: Duration,
    ) -> Result<()> {
        let mut sql = format!(
            "CREATE STREAM {name} AS SELECT {select} FROM window({input}, '{} ms', '{} ms')",
            length.as_millis(),
            slide.as_millis()
        );
        if !group_by.is_empty() {
            sql.push_str(" GROUP BY ");
            sql.push_str(&group_by.join(", "));
        }
        self.sql(&sql).await.map(|_| ())
    }
}
