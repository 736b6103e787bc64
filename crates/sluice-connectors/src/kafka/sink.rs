//! `CREATE SINK ... WITH (connector = 'kafka', brokers = '...', topic = '...')`:
//! each batch's rows produced to a topic; the batch counts as written only
//! when the broker has acknowledged every record (a failed one fails the
//! batch, naming it).
//!
//! A stream with a `value` column (text or bytes) sends it as the record's
//! value, and its `key` column, if any, as the key (a NULL value is a
//! tombstone: on a compacted topic it deletes the key). Any other stream sends
//! each row as a JSON object. `kafka.<key>` settings go to librdkafka.
//!
//! ```sql
//! CREATE SINK out FROM counts WITH (connector = 'kafka', brokers = '127.0.0.1:9092', topic = 'counts');
//! ```

use std::time::Duration;

use arrow::array::{Array, AsArray, BinaryArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use sluice_core::sink::{Sink, SinkContext, SinkFactory, SinkSpec};
use sluice_core::{Result, SluiceError, plan_err};

pub struct KafkaSinkFactory;

#[async_trait]
impl SinkFactory for KafkaSinkFactory {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn option_names(&self) -> &'static [&'static str] {
        &["brokers", "topic", "kafka."]
    }

    async fn create(&self, spec: SinkSpec, _ctx: &SinkContext) -> Result<Box<dyn Sink>> {
        let what = format!("kafka sink '{}'", spec.name);
        let o = &spec.options;
        let brokers = o.require("brokers", &what)?;
        let topic = o.require("topic", &what)?.to_string();
        let bytes = |name: &str| {
            spec.schema.index_of(name).ok().filter(|&i| {
                matches!(
                    spec.schema.field(i).data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Binary
                )
            })
        };
        let (key, value) = (bytes("key"), bytes("value"));
        if value.is_some() && spec.schema.index_of("key").is_ok() && key.is_none() {
            return plan_err!(
                "{what}: column 'key' must be text or bytes (cast it, e.g. CAST(k AS TEXT) AS key)"
            );
        }
        if spec.schema.index_of("value").is_ok() && value.is_none() {
            return plan_err!(
                "{what}: column 'value' is {}; the record's value must be text or bytes (or name the column otherwise to send rows as JSON)",
                spec.schema
                    .field_with_name("value")
                    .map(|f| f.data_type().to_string())
                    .unwrap_or_default()
            );
        }
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", brokers);
        for e in o.iter() {
            if let Some(k) = e.key.strip_prefix("kafka.") {
                config.set(k, &e.value);
            }
        }
        let producer: FutureProducer = config.create().map_err(|e| {
            SluiceError::Config(format!("{what}: cannot create a Kafka client: {e}"))
        })?;
        Ok(Box::new(KafkaSink {
            name: spec.name,
            topic,
            schema: spec.schema,
            producer,
            columns: value.map(|v| (key, v)),
        }))
    }
}

pub struct KafkaSink {
    name: String,
    topic: String,
    schema: SchemaRef,
    producer: FutureProducer,
    /// `(key, value)` column indices; `None`: rows as JSON.
    columns: Option<(Option<usize>, usize)>,
}

fn as_binary(batch: &RecordBatch, column: usize) -> std::result::Result<BinaryArray, String> {
    let c = cast(batch.column(column), &DataType::Binary).map_err(|e| e.to_string())?;
    Ok(c.as_binary::<i32>().clone())
}

impl KafkaSink {
    fn error(&self, batch_time: i64, message: String) -> SluiceError {
        SluiceError::Sink {
            name: self.name.clone(),
            batch_time,
            message,
        }
    }

    /// Each row's key and value bytes.
    fn records(
        &self,
        batch: &RecordBatch,
    ) -> std::result::Result<(Option<BinaryArray>, BinaryArray), String> {
        match self.columns {
            Some((key, value)) => Ok((
                key.map(|k| as_binary(batch, k)).transpose()?,
                as_binary(batch, value)?,
            )),
            None => {
                let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
                writer.write(batch).map_err(|e| e.to_string())?;
                writer.finish().map_err(|e| e.to_string())?;
                let text = writer.into_inner();
                let lines = text
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(Some);
                Ok((None, BinaryArray::from_iter(lines)))
            }
        }
    }
}

/// Waits for the broker's acknowledgement of each pending record.
async fn acknowledged(pending: &mut Vec<DeliveryFuture>) -> std::result::Result<(), String> {
    for f in pending.drain(..) {
        match f.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(format!("a record was not delivered: {e}")),
            Err(_) => return Err("the producer stopped before delivery".into()),
        }
    }
    Ok(())
}

#[async_trait]
impl Sink for KafkaSink {
    async fn write(&mut self, batch_time: i64, batches: &[RecordBatch]) -> Result<()> {
        let mut pending: Vec<DeliveryFuture> = Vec::new();
        for batch in batches {
            let (keys, values) = self.records(batch).map_err(|e| {
                self.error(batch_time, format!("encoding for '{}': {e}", self.topic))
            })?;
            for i in 0..values.len() {
                let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic);
                if values.is_valid(i) {
                    record = record.payload(values.value(i));
                }
                if let Some(k) = keys.as_ref().filter(|k| k.is_valid(i)) {
                    record = record.key(k.value(i));
                }
                loop {
                    match self.producer.send_result(record) {
                        Ok(f) => {
                            pending.push(f);
                            break;
                        }
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            // The client's queue is full: wait for what is in it.
                            acknowledged(&mut pending).await.map_err(|e| {
                                self.error(batch_time, format!("topic '{}': {e}", self.topic))
                            })?;
                            if pending.is_empty() {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            record = r;
                        }
                        Err((e, _)) => {
                            return Err(self.error(
                                batch_time,
                                format!("topic '{}': cannot send: {e}", self.topic),
                            ));
                        }
                    }
                }
            }
        }
        acknowledged(&mut pending)
            .await
            .map_err(|e| self.error(batch_time, format!("topic '{}': {e}", self.topic)))
    }
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("topic", &self.topic)
            .field("schema", &self.schema)
            .finish()
    }
}
