//! `connector = 'kafka'`: Spark's Kafka 0-10 direct stream. No receiver:
//! when batch `T` is cut, each partition's range `[from, until)` is fixed
//! (`until` = the partition's latest offset then, capped by
//! `max_rows_per_partition`), and the batch is exactly those records, read
//! into Arrow columns `key, value, topic, partition, offset, timestamp`.
//! A backlog becomes several bounded batches, never one giant one.
//!
//! ```sql
//! CREATE SOURCE events WITH (
//!   connector = 'kafka', brokers = '127.0.0.1:9092', topics = 'events',
//!   starting_offsets = 'earliest', max_rows_per_partition = 10000);
//! ```
//!
//! Options: `brokers`; `topics` (comma-separated) or `assign`
//! (`topic:partition,...`); `group_id` (default `sluice-<source>`);
//! `starting_offsets` (`earliest`, `latest` (default), or Spark's JSON
//! `{"topic":{"0":23,"1":-2}}`, -2 earliest, -1 latest); `max_rows_per_partition`;
//! `format` (`text`, the default: key and value as text; `raw`: as bytes);
//! and any librdkafka setting as `kafka.<key>` (`kafka.security.protocol`,
//! `kafka.sasl.password`, ...), passed through and never logged.
//!
//! The source's position is the next offset of every partition: with a
//! checkpoint, a restart reads on from exactly there. An offset past a
//! partition's end (the topic was created again) is reported and reading
//! starts over as `starting_offsets` says. `offset_store =
//! 'kafka'` or `'redis'` (with `redis = 'redis://host:port'`) keeps them
//! there too, stored once the batch is done ([`offsets`]). Partitions added to a
//! topic are picked up at the next batch, from their earliest offset. An
//! offset no longer on the broker (removed by retention) is reported and
//! reading goes on from the earliest one that is.

pub mod offsets;
mod reader;
pub mod sink;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use sluice_core::source::{Source, SourceContext, SourceFactory, SourceSpec};
use sluice_core::{Result, SluiceError, plan_err};

use offsets::{OffsetStore, StoreKind};
use reader::Reader;
pub use reader::{Format, Partition};

/// How long a metadata or offsets request may take before the batch fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct KafkaSourceFactory;

#[async_trait]
impl SourceFactory for KafkaSourceFactory {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn option_names(&self) -> &'static [&'static str] {
        &[
            "brokers",
            "topics",
            "assign",
            "group_id",
            "starting_offsets",
            "max_rows_per_partition",
            "format",
            "offset_store",
            "redis",
            "kafka.",
        ]
    }

    async fn create(&self, spec: SourceSpec, _ctx: &SourceContext) -> Result<Box<dyn Source>> {
        let o = &spec.options;
        let name = &spec.name;
        let what = format!("kafka source '{name}'");
        let brokers = o.require("brokers", &what)?.to_string();
        let topics = match (o.get("topics"), o.get("assign")) {
            (Some(t), None) if split_list(t).is_empty() => {
                return plan_err!("{what}: 'topics' names no topic");
            }
            (Some(t), None) => Topics::Named(split_list(t)),
            (None, Some(a)) => Topics::Assigned(parse_assign(a, name)?),
            (Some(_), Some(_)) => {
                return plan_err!("{what}: give 'topics' or 'assign', not both");
            }
            (None, None) => {
                return plan_err!(
                    "{what} needs 'topics' (e.g. topics = 'events') or 'assign' (e.g. assign = 'events:0,events:1')"
                );
            }
        };
        let format = match o.get("format").unwrap_or("text") {
            "text" => Format::Text,
            "raw" => Format::Raw,
            other => {
                return plan_err!("{what}: format '{other}' is not one of 'text', 'raw'");
            }
        };
        let starting = Starting::parse(o.get("starting_offsets").unwrap_or("latest"), name)?;
        let max_rows = o.get_u64("max_rows_per_partition")?;
        if max_rows == Some(0) {
            return plan_err!("{what}: max_rows_per_partition must be at least 1");
        }
        let group_id = o
            .get("group_id")
            .map(str::to_string)
            .unwrap_or_else(|| format!("sluice-{name}"));
        let store = match (
            o.get("offset_store").unwrap_or("checkpoint"),
            o.get("redis"),
        ) {
            ("checkpoint", None) => StoreKind::Checkpoint,
            ("kafka", None) => StoreKind::Kafka,
            ("redis", url) => StoreKind::Redis(url.unwrap_or("redis://127.0.0.1:6379").to_string()),
            (_, Some(_)) => {
                return plan_err!("{what}: 'redis' is the address of offset_store = 'redis'");
            }
            (other, None) => {
                return plan_err!(
                    "{what}: offset_store '{other}' is not one of 'checkpoint', 'kafka', 'redis'"
                );
            }
        };
        let mut config = ClientConfig::new();
        for e in o.iter() {
            if let Some(key) = e.key.strip_prefix("kafka.") {
                config.set(key, &e.value);
            }
        }
        // After the user's settings: the source depends on these.
        config
            .set("bootstrap.servers", &brokers)
            .set("group.id", &group_id)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "error");
        let consumer: BaseConsumer = config
            .create()
            .map_err(|e| SluiceError::Config(format!("{what}: {}", config_error(&e))))?;
        let reader = Arc::new(Reader::new(consumer, format));
        Ok(Box::new(KafkaSource {
            name: name.clone(),
            schema: schema(format),
            store: OffsetStore::new(store, group_id, Arc::clone(&reader)),
            reader,
            topics,
            starting,
            max_rows,
            next: BTreeMap::new(),
            loaded: false,
        }))
    }
}

/// The columns of a kafka source.
pub fn schema(format: Format) -> SchemaRef {
    let bytes = match format {
        Format::Text => DataType::Utf8,
        Format::Raw => DataType::Binary,
    };
    Arc::new(Schema::new(vec![
        Field::new("key", bytes.clone(), true),
        Field::new("value", bytes, true),
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        ),
    ]))
}

/// The items of a comma-separated list, each once, in order.
fn split_list(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !out.iter().any(|o| o == item) {
            out.push(item.to_string());
        }
    }
    out
}

/// A client error without the setting's value (it may be a password).
pub fn config_error(e: &rdkafka::error::KafkaError) -> String {
    match e {
        rdkafka::error::KafkaError::ClientConfig(_, _, key, _) => {
            format!(
                "librdkafka refuses the setting 'kafka.{key}' (misspelt, or a value it does not take)"
            )
        }
        other => format!("cannot create a Kafka client: {other}"),
    }
}

fn parse_assign(s: &str, name: &str) -> Result<Vec<Partition>> {
    split_list(s)
        .into_iter()
        .map(|item| {
            let parsed = item
                .rsplit_once(':')
                .and_then(|(t, p)| Some((t.to_string(), p.parse::<i32>().ok()?)));
            parsed.ok_or_else(|| {
                SluiceError::Config(format!(
                    "kafka source '{name}': assign entry '{item}' is not topic:partition"
                ))
            })
        })
        .collect()
}

/// What the source reads.
#[derive(Debug, Clone)]
enum Topics {
    /// Every partition of these topics, as they are now.
    Named(Vec<String>),
    /// These partitions only.
    Assigned(Vec<Partition>),
}

/// Where a partition the source has no offset for starts.
#[derive(Debug, Clone)]
enum Starting {
    Earliest,
    Latest,
    /// Per partition (-2 earliest, -1 latest); others: latest.
    Given(BTreeMap<Partition, i64>),
}

impl Starting {
    fn parse(s: &str, name: &str) -> Result<Self> {
        match s {
            "earliest" => Ok(Self::Earliest),
            "latest" => Ok(Self::Latest),
            json => {
                let bad = |why: String| {
                    SluiceError::Config(format!(
                        "kafka source '{name}': starting_offsets must be 'earliest', 'latest' or JSON like {{\"topic\":{{\"0\":23}}}}: {why}"
                    ))
                };
                let value: serde_json::Value =
                    serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
                let mut out = BTreeMap::new();
                for (topic, partitions) in value.as_object().ok_or_else(|| bad(json.into()))? {
                    for (p, offset) in partitions.as_object().ok_or_else(|| bad(json.into()))? {
                        let p: i32 = p.parse().map_err(|_| bad(format!("partition '{p}'")))?;
                        let offset = offset
                            .as_i64()
                            .ok_or_else(|| bad(format!("offset {offset}")))?;
                        out.insert((topic.clone(), p), offset);
                    }
                }
                Ok(Self::Given(out))
            }
        }
    }

    /// The first offset of a partition with watermarks `(low, high)`.
    fn first(&self, partition: &Partition, (low, high): (i64, i64)) -> i64 {
        let given = match self {
            Self::Earliest => -2,
            Self::Latest => -1,
            Self::Given(map) => map.get(partition).copied().unwrap_or(-1),
        };
        match given {
            -2 => low,
            -1 => high,
            n => n.clamp(low, high),
        }
    }
}

#[derive(Debug)]
pub struct KafkaSource {
    name: String,
    schema: SchemaRef,
    reader: Arc<Reader>,
    topics: Topics,
    starting: Starting,
    max_rows: Option<u64>,
    /// Per partition, the next offset to read.
    next: BTreeMap<Partition, i64>,
    /// Where offsets are kept besides the checkpoint.
    store: OffsetStore,
    /// The offsets came from the checkpoint or the store already.
    loaded: bool,
}

impl KafkaSource {
    fn error(&self, batch_time: i64, message: String) -> SluiceError {
        SluiceError::Source {
            name: self.name.clone(),
            batch_time,
            message,
        }
    }
}

#[async_trait]
impl Source for KafkaSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    async fn cut(&mut self, batch_time: i64) -> Result<Vec<RecordBatch>> {
        let reader = Arc::clone(&self.reader);
        let topics = self.topics.clone();
        let partitions = tokio::task::spawn_blocking(move || match topics {
            Topics::Named(names) => reader.partitions(&names, REQUEST_TIMEOUT),
            Topics::Assigned(list) => Ok(list),
        })
        .await
        .map_err(|e| self.error(batch_time, e.to_string()))?
        .map_err(|e| self.error(batch_time, e))?;
        if !self.loaded {
            // Where the store says the job got, for partitions it knows.
            let stored = self
                .store
                .load(&partitions)
                .await
                .map_err(|e| self.error(batch_time, e))?;
            self.next.extend(stored);
            self.loaded = true;
        }
        // Fix each partition's range now.
        let reader = Arc::clone(&self.reader);
        let watermarks = tokio::task::spawn_blocking(move || {
            partitions
                .into_iter()
                .map(|p| {
                    let w = reader.watermarks(&p, REQUEST_TIMEOUT)?;
                    Ok((p, w))
                })
                .collect::<std::result::Result<Vec<_>, String>>()
        })
        .await
        .map_err(|e| self.error(batch_time, e.to_string()))?
        .map_err(|e| self.error(batch_time, e))?;
        let mut ranges = Vec::with_capacity(watermarks.len());
        for (p, (low, high)) in watermarks {
            let from = match self.next.get(&p) {
                Some(&n) if n < low => {
                    log::warn!(
                        "kafka source '{}': {}:{} offsets {n}..{low} are gone from the broker (retention); reading on from {low}",
                        self.name,
                        p.0,
                        p.1
                    );
                    low
                }
                Some(&n) if n > high => {
                    let first = self.starting.first(&p, (low, high));
                    log::warn!(
                        "kafka source '{}': {}:{} ends at {high}, before the stored offset {n} (was the topic created again?); reading from {first}, as starting_offsets says",
                        self.name,
                        p.0,
                        p.1
                    );
                    first
                }
                Some(&n) => n,
                // A partition added to a topic the source reads already.
                None if self.next.keys().any(|(t, _)| *t == p.0) => low,
                None => self.starting.first(&p, (low, high)),
            };
            let until = match self.max_rows {
                Some(m) => high.min(from.saturating_add(i64::try_from(m).unwrap_or(i64::MAX))),
                None => high,
            };
            ranges.push((p, from, until.max(from)));
        }
        let reader = Arc::clone(&self.reader);
        let read_ranges = ranges.clone();
        let batch = tokio::task::spawn_blocking(move || reader.read(&read_ranges, REQUEST_TIMEOUT))
            .await
            .map_err(|e| self.error(batch_time, e.to_string()))?
            .map_err(|e| self.error(batch_time, e))?;
        for (p, _, until) in ranges {
            self.next.insert(p, until);
        }
        Ok(vec![batch])
    }

    fn position(&self) -> Option<serde_json::Value> {
        let mut topics: BTreeMap<&str, BTreeMap<String, i64>> = BTreeMap::new();
        for ((topic, partition), next) in &self.next {
            topics
                .entry(topic.as_str())
                .or_default()
                .insert(partition.to_string(), *next);
        }
        Some(serde_json::json!({ "offsets": topics }))
    }

    fn restore(&mut self, position: &serde_json::Value) -> Result<()> {
        let next = offsets_of(position).ok_or_else(|| {
            SluiceError::Config(format!(
                "kafka source '{}': the checkpoint's offsets do not read: {position}",
                self.name
            ))
        })?;
        self.next = next;
        self.loaded = true;
        Ok(())
    }

    fn stores_positions(&self) -> bool {
        *self.store.kind() != StoreKind::Checkpoint
    }

    async fn done(&mut self, position: &serde_json::Value) -> Result<()> {
        if !self.stores_positions() {
            return Ok(());
        }
        let next = offsets_of(position).ok_or_else(|| {
            SluiceError::Config(format!("kafka source '{}': position {position}", self.name))
        })?;
        self.store
            .store(&next)
            .await
            .map_err(|e| SluiceError::Config(format!("kafka source '{}': {e}", self.name)))
    }
}

/// The offsets of a position (`{"offsets": {"topic": {"0": next}}}`).
fn offsets_of(position: &serde_json::Value) -> Option<BTreeMap<Partition, i64>> {
    let mut next = BTreeMap::new();
    for (topic, partitions) in position["offsets"].as_object()? {
        for (p, offset) in partitions.as_object()? {
            next.insert((topic.clone(), p.parse().ok()?), offset.as_i64()?);
        }
    }
    Some(next)
}
