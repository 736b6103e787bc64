//! sluice embedded in an application: the tutorial's RDDDStream in Rust.
//!
//! The application pushes five batches (the numbers 1..100 times i) into a
//! queue source, counts them by `value % 10` with a `transform` over each
//! batch, and receives every batch in a `foreach_batch` callback.
//!
//! ```text
//! cargo run -p sluice-core --example queue_word_count
//! ```

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::prelude::*;
use sluice_core::render::spark_print;
use sluice_core::{ClockChoice, StreamingContext};

#[tokio::main]
async fn main() -> sluice_core::Result<()> {
    // StreamingContext(conf, Seconds(1)), on the application's own DataFusion session.
    let ssc = StreamingContext::new(SessionContext::new(), Duration::from_secs(1));

    // ssc.queueStream(queue)
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Int64,
        false,
    )]));
    let queue = ssc.queue_source("numbers", schema.clone()).await?;

    // queueDStream.map(elem => (elem % 10, 1)).reduceByKey(_ + _), as a DataFrame
    // function: called once to build the plan that runs every batch.
    ssc.transform("result", "numbers", |df| {
        df.select(vec![(col("value") % lit(10)).alias("key")])?
            .aggregate(vec![col("key")], vec![count(lit(1)).alias("n")])?
            .sort(vec![col("key").sort(true, false)])
    })
    .await?;

    // result.print(), by hand: foreach_batch gets the batch time and its Arrow batches.
    ssc.foreach_batch("result", |time, batches| async move {
        print!("{}", spark_print(time, &batches, 10)?);
        Ok(())
    })
    .await?;

    for i in 1..=5i64 {
        let values = Int64Array::from_iter_values((1..=100).map(|k| k * i));
        queue.push(RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(values)],
        )?)?;
    }

    // Five batches back to back instead of one per second.
    ssc.set_clock(ClockChoice::Simulated);
    ssc.set_max_batches(5);
    ssc.start().await?;
    ssc.await_termination().await?;
    for info in ssc.batch_infos() {
        eprintln!(
            "batch {} ms: {} rows in, processed in {:?}",
            info.batch_time,
            info.total_input_rows(),
            info.processing_time
        );
    }
    Ok(())
}
