//! The tutorial's HotWordStats in Rust: every 10 seconds, the words of the
//! last 20 seconds (5-second batches), with the embedding API's
//! `reduce_by_key_and_window` — the same operator as `FROM window(...)` in
//! SQL, so the inverse of `count` is derived, not written.
//!
//! ```text
//! cargo run -p sluice-connectors --example hot_words
//! ```

use std::time::Duration;

use datafusion::prelude::SessionContext;
use sluice_core::render::spark_print;
use sluice_core::{ClockChoice, StreamingContext};

#[tokio::main]
async fn main() -> sluice_core::Result<()> {
    // new StreamingContext(conf, Seconds(5)), with sluice's connectors.
    let ssc = StreamingContext::with_registry(
        SessionContext::new(),
        Duration::from_secs(5),
        sluice_connectors::registry(),
    );

    // socketTextStream("localhost", 9999) → the embedded generator of the
    // tutorial's SocketLikeNC words; lines.flatMap(_.split("\\s+")).
    ssc.sql(
        "CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 10, seed = 7);
         CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines;",
    )
    .await?;

    // .map((_, 1)).reduceByKeyAndWindow(_ + _, _ - _, Seconds(20), Seconds(10))
    ssc.reduce_by_key_and_window(
        "hot_words",
        "words",
        &["word"],
        &["count(*) AS n"],
        Duration::from_secs(20),
        Duration::from_secs(10),
    )
    .await?;

    // workCount.print(): called at each slide only (every 10 s).
    ssc.foreach_batch("hot_words", |time, batches| async move {
        print!("{}", spark_print(time, &batches, 10)?);
        Ok(())
    })
    .await?;

    // Eight batches (40 s of stream) back to back instead of waiting for them.
    ssc.set_clock(ClockChoice::Simulated);
    ssc.set_max_batches(8);
    ssc.start().await?;
    ssc.await_termination().await
}
