//! The tutorial's KafkaDStream3 in Rust, with the offsets kept by the
//! application: `foreach_batch_with_offsets` hands each batch its offset
//! ranges (Spark's `rdd.asInstanceOf[HasOffsetRanges].offsetRanges`), which
//! the callback prints, one line per partition, after the batch's count.
//! (In SQL, `sql-examples/kafka_offsets.sql` and `kafka_redis_offsets.sql`
//! do this with `offsets(<source>)` and `offset_store`; this is the hatch for
//! keeping offsets somewhere sluice does not know, written with the output.)
//!
//! ```text
//! # a broker on 127.0.0.1:9092 with records in topicB (README, "Kafka")
//! cargo run -p sluice-connectors --example kafka_offsets -- 127.0.0.1:9092 topicB
//! ```

use std::time::Duration;

use datafusion::prelude::SessionContext;
use sluice_core::StreamingContext;

#[tokio::main]
async fn main() -> sluice_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let brokers = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().unwrap_or_else(|| "topicB".into());
    let ssc = StreamingContext::with_registry(
        SessionContext::new(),
        Duration::from_secs(5),
        sluice_connectors::registry(),
    );
    // KafkaUtils.createDirectStream(..., Subscribe(topics, kafkaParams)),
    // offsets stored nowhere by sluice: the application keeps them.
    ssc.sql(&format!(
        "CREATE SOURCE events WITH (connector = 'kafka', brokers = '{brokers}',
           topics = '{topic}', group_id = 'groupC', starting_offsets = 'earliest');"
    ))
    .await?;

    // dstream.foreachRDD { (rdd, time) => if (!rdd.isEmpty()) { ... offsetRanges ... } }
    ssc.foreach_batch_with_offsets("events", |time, batches, ranges| async move {
        let count: usize = batches.iter().map(|b| b.num_rows()).sum();
        if count > 0 {
            println!(
                "******************* rdd.count = {count}; time = {time} ms *******************"
            );
            for r in &ranges {
                // Store r.until_offset with the output here, in one transaction.
                println!(
                    "{} {} {}-{}",
                    r.topic, r.partition, r.from_offset, r.until_offset
                );
            }
        }
        Ok(())
    })
    .await?;

    ssc.start().await?;
    ssc.await_termination().await
}
