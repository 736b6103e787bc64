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

mod decode;
pub mod offsets;
mod reader;
pub mod sink;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use sluice_core::source::{Source, SourceContext, SourceFactory, SourceSpec};
use sluice_core::{Result, SluiceError, plan_err};

use decode::Decoding;
use offsets::{OffsetStore, StoreKind};
use reader::{Layout, Reader, Topics, Trouble};
pub use reader::{Format, Partition};

/// How long a metadata or offsets request may take before it is tried again.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The first wait before a request the broker did not answer is tried
/// again; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);

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
            "topic_pattern",
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
        let given: Vec<&str> = ["topics", "topic_pattern", "assign"]
            .into_iter()
            .filter(|k| o.get(k).is_some())
            .collect();
        let topics = match (given.as_slice(), o.get(given.first().copied().unwrap_or(""))) {
            (["topics"], Some(t)) if split_list(t).is_empty() => {
                return plan_err!("{what}: 'topics' names no topic");
            }
            (["topics"], Some(t)) => Topics::Named(split_list(t)),
            (["topic_pattern"], Some(p)) => Topics::Pattern(
                regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                    SluiceError::Config(format!(
                        "{what}: topic_pattern '{p}' is not a regular expression: {e}"
                    ))
                })?,
            ),
            (["assign"], Some(a)) => Topics::Assigned(parse_assign(a, name)?),
            ([], _) => {
                return plan_err!(
                    "{what} needs 'topics' (e.g. topics = 'events'), 'topic_pattern' (e.g. topic_pattern = 'events-.*') or 'assign' (e.g. assign = 'events:0,events:1')"
                );
            }
            (both, _) => {
                return plan_err!(
                    "{what}: give one of 'topics', 'topic_pattern', 'assign', not {}",
                    both.join(" and ")
                );
            }
        };
        let (format, decoding) = match o.get("format").unwrap_or("text") {
            "text" => (Format::Text, None),
            "raw" => (Format::Raw, None),
            "json" => (Format::Text, Some(Decoding::Json)),
            "csv" => (Format::Text, Some(Decoding::Csv)),
            other => {
                return plan_err!(
                    "{what}: format '{other}' is not one of 'text', 'raw', 'json', 'csv'"
                );
            }
        };
        let kafka_columns = schema(format);
        let decoded = match (decoding, &spec.declared_schema) {
            (Some(_), Some(declared)) => {
                if let Some(f) = declared
                    .fields()
                    .iter()
                    .find(|f| kafka_columns.column_with_name(f.name()).is_some())
                {
                    return plan_err!(
                        "{what}: the declared column '{}' is also one of the kafka columns (key, value, topic, partition, offset, timestamp); rename it",
                        f.name()
                    );
                }
                Some(Arc::clone(declared))
            }
            (Some(d), None) => {
                return plan_err!(
                    "{what}: format '{}' decodes each value into declared columns: declare them, e.g. CREATE SOURCE {name} (id BIGINT, name TEXT) WITH (...)",
                    d.name()
                );
            }
            (None, Some(_)) => {
                return plan_err!(
                    "{what}: its columns are key, value, topic, partition, offset, timestamp; declared columns need format = 'json' or 'csv'"
                );
            }
            (None, None) => None,
        };
        let schema = match &decoded {
            Some(d) => Arc::new(Schema::new(
                kafka_columns
                    .fields()
                    .iter()
                    .chain(d.fields().iter())
                    .cloned()
                    .collect::<Vec<_>>(),
            )),
            None => kafka_columns,
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
            schema,
            decoding: decoding.zip(decoded),
            store: OffsetStore::new(store, group_id, Arc::clone(&reader)),
            reader,
            topics,
            starting,
            max_rows,
            next: BTreeMap::new(),
            loaded: false,
            started: false,
            known_topics: BTreeSet::new(),
            missing: BTreeSet::new(),
            ranges: empty_ranges(),
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
    /// `format = 'json' | 'csv'`: how values decode, into which columns.
    decoding: Option<(Decoding, SchemaRef)>,
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
    /// A batch was cut (here, or by the job this one resumes): partitions
    /// and topics that appear from now on start at their earliest offset.
    started: bool,
    /// Topics the source has read: one missing later was deleted.
    known_topics: BTreeSet<String>,
    /// Topics reported missing, not reported again until they are back.
    missing: BTreeSet<String>,
    /// The last cut's ranges (`offsets(<source>)`).
    ranges: RecordBatch,
}

/// `[from, until)` of one partition in a batch.
type Range = (Partition, i64, i64);

impl KafkaSource {
    fn error(&self, batch_time: i64, message: String) -> SluiceError {
        SluiceError::Source {
            name: self.name.clone(),
            batch_time,
            message,
        }
    }

    /// Runs `attempt` on the blocking pool until the broker answers: a
    /// request it did not answer is tried again after a wait (0.5 s
    /// doubling to 10 s), the batch waiting; any other failure fails it.
    async fn until_answered<T: Send + 'static>(
        &self,
        batch_time: i64,
        what: &str,
        attempt: impl Fn() -> std::result::Result<T, Trouble> + Clone + Send + 'static,
    ) -> Result<T> {
        let mut wait = RETRY_FIRST;
        let mut failures = 0;
        loop {
            let result = tokio::task::spawn_blocking(attempt.clone())
                .await
                .map_err(|e| self.error(batch_time, e.to_string()))?;
            match result {
                Ok(value) => {
                    if failures > 0 {
                        log::info!(
                            "kafka source '{}', batch {batch_time} ms: the broker answers again ({what}, after {failures} failed tries)",
                            self.name
                        );
                    }
                    return Ok(value);
                }
                Err(Trouble::Fatal(m)) => return Err(self.error(batch_time, m)),
                Err(Trouble::Unreachable(m)) => {
                    failures += 1;
                    log::warn!(
                        "kafka source '{}', batch {batch_time} ms: cannot {what}: {m}; trying again in {wait:?} (the batch waits, no offset moves)",
                        self.name
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Reports topics that went missing or came back; a named topic that
    /// the source never read fails the batch.
    fn check_missing(&mut self, batch_time: i64, layout: &Layout) -> Result<()> {
        if let Some(t) = layout
            .missing
            .iter()
            .find(|t| !self.known_topics.contains(*t))
        {
            return Err(self.error(batch_time, format!("topic '{t}' is not on the broker")));
        }
        for t in &layout.missing {
            if self.missing.insert(t.clone()) {
                log::warn!(
                    "kafka source '{}', batch {batch_time} ms: topic '{t}' is gone from the broker (deleted?); it is not read until it is back",
                    self.name
                );
            }
        }
        let back: Vec<String> = self
            .missing
            .iter()
            .filter(|t| !layout.missing.contains(*t))
            .cloned()
            .collect();
        for t in back {
            log::warn!(
                "kafka source '{}', batch {batch_time} ms: topic '{t}' is on the broker again",
                self.name
            );
            self.missing.remove(&t);
        }
        Ok(())
    }

    /// Where partition `p` (offsets `low..high` on the broker) starts.
    fn first_offset(&self, batch_time: i64, p: &Partition, (low, high): (i64, i64)) -> i64 {
        let out_of_range = |n: i64, why: &str| {
            let first = self.starting.first(p, (low, high));
            log::warn!(
                "kafka source '{}', batch {batch_time} ms: {}:{} offset {n} is out of range ({why}; the broker has {low}..{high}); reading from {first}, as starting_offsets says",
                self.name,
                p.0,
                p.1
            );
            first
        };
        match self.next.get(p) {
            Some(&n) if n < low => out_of_range(n, "removed by retention"),
            Some(&n) if n > high => out_of_range(n, "past the end: was the topic created again?"),
            Some(&n) => n,
            // A partition or topic that appeared after the first batch.
            None if self.started => low,
            None => self.starting.first(p, (low, high)),
        }
    }

    /// Decodes json/csv values into the declared columns; records that do
    /// not decode are reported (topic, partition, offset, why) and left out.
    fn decode(&self, batch_time: i64, batch: RecordBatch) -> Result<RecordBatch> {
        let Some((decoding, columns)) = &self.decoding else {
            return Ok(batch);
        };
        let fail = |e: arrow::error::ArrowError| self.error(batch_time, e.to_string());
        let values = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| self.error(batch_time, "values are not text".into()))?;
        let decoded = decode::decode(*decoding, columns, values).map_err(fail)?;
        if !decoded.bad.is_empty() {
            let topics = batch.column(2).as_any().downcast_ref::<StringArray>();
            let partitions = batch.column(3).as_any().downcast_ref::<Int32Array>();
            let offsets = batch.column(4).as_any().downcast_ref::<Int64Array>();
            if let (Some(t), Some(p), Some(o)) = (topics, partitions, offsets) {
                for (i, why) in &decoded.bad {
                    log::warn!(
                        "kafka source '{}', batch {batch_time} ms: {}:{} offset {}: the value is not {}: {why}; record skipped",
                        self.name,
                        t.value(*i),
                        p.value(*i),
                        o.value(*i),
                        decoding.name()
                    );
                }
            }
        }
        let kept = UInt32Array::from(decoded.records);
        let mut out: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| arrow::compute::take(c, &kept, None))
            .collect::<std::result::Result<_, _>>()
            .map_err(fail)?;
        out.extend(decoded.rows.columns().iter().cloned());
        RecordBatch::try_new(Arc::clone(&self.schema), out).map_err(fail)
    }
}

/// `offsets(<source>)` before the first batch.
fn empty_ranges() -> RecordBatch {
    RecordBatch::new_empty(sluice_core::offsets::schema())
}

/// The ranges as `offsets(<source>)` shows them.
fn ranges_batch(ranges: &[Range]) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let column = |f: &dyn Fn(&Range) -> i64| Arc::new(Int64Array::from_iter_values(ranges.iter().map(f)));
    RecordBatch::try_new(
        sluice_core::offsets::schema(),
        vec![
            Arc::new(StringArray::from_iter_values(ranges.iter().map(|r| r.0.0.as_str()))),
            Arc::new(Int32Array::from_iter_values(ranges.iter().map(|r| r.0.1))),
            column(&|r| r.1),
            column(&|r| r.2),
        ],
    )
}

#[async_trait]
impl Source for KafkaSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    async fn cut(&mut self, batch_time: i64) -> Result<Vec<RecordBatch>> {
        // What the broker has now: partitions and their offsets.
        let reader = Arc::clone(&self.reader);
        let topics = self.topics.clone();
        let layout = self
            .until_answered(batch_time, "get the topics' partitions and offsets", move || {
                reader.layout(&topics, REQUEST_TIMEOUT)
            })
            .await?;
        self.check_missing(batch_time, &layout)?;
        if !self.loaded {
            // Where the store says the job got, for partitions it knows.
            let partitions: Vec<Partition> =
                layout.partitions.iter().map(|(p, _)| p.clone()).collect();
            let mut wait = RETRY_FIRST;
            let stored = loop {
                match self.store.load(&partitions).await {
                    Ok(stored) => break stored,
                    Err(Trouble::Fatal(m)) => return Err(self.error(batch_time, m)),
                    Err(Trouble::Unreachable(m)) => {
                        log::warn!(
                            "kafka source '{}', batch {batch_time} ms: cannot read the stored offsets: {m}; trying again in {wait:?} (the batch waits)",
                            self.name
                        );
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(RETRY_MAX);
                    }
                }
            };
            self.next.extend(stored);
            self.loaded = true;
        }
        // Fix each partition's range now.
        let ranges: Vec<Range> = layout
            .partitions
            .iter()
            .map(|(p, offsets)| {
                let from = self.first_offset(batch_time, p, *offsets);
                let high = offsets.1;
                let until = match self.max_rows {
                    Some(m) => high.min(from.saturating_add(i64::try_from(m).unwrap_or(i64::MAX))),
                    None => high,
                };
                (p.clone(), from, until.max(from))
            })
            .collect();
        let reader = Arc::clone(&self.reader);
        let to_read = ranges.clone();
        let batch = self
            .until_answered(batch_time, "read the batch's offset ranges", move || {
                reader.read(&to_read, REQUEST_TIMEOUT)
            })
            .await?;
        let batch = self.decode(batch_time, batch)?;
        self.ranges = ranges_batch(&ranges).map_err(|e| self.error(batch_time, e.to_string()))?;
        for (p, _, until) in ranges {
            self.known_topics.insert(p.0.clone());
            self.next.insert(p, until);
        }
        self.started = true;
        Ok(vec![batch])
    }

    fn offset_ranges(&self) -> Option<RecordBatch> {
        Some(self.ranges.clone())
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
        self.known_topics = next.keys().map(|(t, _)| t.clone()).collect();
        self.next = next;
        self.loaded = true;
        self.started = true;
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
