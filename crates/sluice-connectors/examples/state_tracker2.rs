//! The tutorial's StateTracker2 in Rust: `mapWithState` with the tutorial's
//! own mapping function, then `stateSnapshots()` printed each 1-second
//! batch. (In SQL, `sql-examples/state_tracker2.sql` does the same with
//! `EMIT CHANGES` / `EMIT SNAPSHOT`, columnar and faster; this is the escape
//! hatch for logic SQL cannot say.)
//!
//! ```text
//! cargo run -p sluice-connectors --example state_tracker2
//! ```

use std::time::Duration;

use datafusion::prelude::SessionContext;
use sluice_core::render::spark_print;
use sluice_core::state::{State, StateSpec};
use sluice_core::{ClockChoice, StreamingContext};

#[tokio::main]
async fn main() -> sluice_core::Result<()> {
    let ssc = StreamingContext::with_registry(
        SessionContext::new(),
        Duration::from_secs(1),
        sluice_connectors::registry(),
    );

    // lines.flatMap(_.split("\\s+")).map((_, 1)), on the embedded generator.
    ssc.sql(
        "CREATE SOURCE lines WITH (connector = 'words', rows_per_batch = 5, seed = 5);
         CREATE STREAM pairs AS
           SELECT unnest(string_to_array(value, ' ')) AS word, 1 AS one FROM lines;",
    )
    .await?;

    // def mapFuc(key, value, state) = { val sum = value + state.getOption.getOrElse(0);
    //                                   state.update(sum); (key, sum) }
    // Called once per word per batch, with all of the batch's ones.
    let spec = StateSpec::function(|word: &String, ones: &[i64], state: &mut State<i64>| {
        let sum = ones.iter().sum::<i64>() + state.get_option().copied().unwrap_or(0);
        state.update(sum);
        Some((word.clone(), sum))
    });
    ssc.map_with_state("changed", "pairs", spec).await?;

    // .stateSnapshots(); resultDS.print(100)
    ssc.state_snapshots("snapshot", "changed").await?;
    ssc.foreach_batch("snapshot", |time, batches| async move {
        print!("{}", spark_print(time, &batches, 100)?);
        Ok(())
    })
    .await?;

    // Four batches back to back instead of waiting for them.
    ssc.set_clock(ClockChoice::Simulated);
    ssc.set_max_batches(4);
    ssc.start().await?;
    ssc.await_termination().await
}
