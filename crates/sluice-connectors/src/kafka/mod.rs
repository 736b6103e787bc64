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
//! Options: `brokers`; `topics` (comma-separated), `topic_pattern` (a
//! regular expression the whole name matches) or `assign`
//! (`topic:partition,...`); `group_id` (default `sluice-<source>`);
//! `starting_offsets` (`earliest`, `latest` (default), or Spark's JSON
//! `{"topic":{"0":23,"1":-2}}`, -2 earliest, -1 latest);
//! `max_rows_per_partition`; `format` (`text`, the default: key and value as
//! text; `raw`: as bytes; `json`, `csv`: values decoded into the declared
//! columns, see [`decode`]); and any librdkafka setting as `kafka.<key>`
//! (`kafka.security.protocol`, `kafka.sasl.password`, ...), passed through
//! and never logged.
//!
//! The source's position is the next offset of every partition: with a
//! checkpoint, a restart reads on from exactly there. `offset_store =
//! 'kafka'` or `'redis'` (with `redis = 'redis://host:port'`) keeps them
//! there too, stored once the batch is done ([`offsets`]). The last cut's
//! ranges are `offsets(<source>)` ([`Source::offset_ranges`]).
//!
//! Partitions added to a topic, and topics a pattern matches later, are
//! picked up at the next batch, from their earliest offset. A broker that
//! does not answer makes the batch wait and is asked again with backoff. A
//! topic deleted meanwhile is reported and skipped until it is back; an
//! offset out of range (removed by retention, or past the end of a topic
//! created again) is reported and reading starts as `starting_offsets`
//! says.

pub mod decode;
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
use sluice_core::offsets::OffsetRange;
use sluice_core::source::{Source, SourceContext, SourceFactory, SourceSpec};
use sluice_core::{Result, SluiceError, plan_err};

use decode::Decoding;
use offsets::{OffsetStore, StoreKind};
pub use reader::{Format, Partition};
use reader::{Layout, Reader, Topics, Trouble};

/// How long a metadata or offsets request may take before it is tried again.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a read may go without a record from the broker before the try
/// fails (and the batch is tried again).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

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
        let topics = match (
            given.as_slice(),
            o.get(given.first().copied().unwrap_or("")),
        ) {
            (["topics"], Some(t)) if split_list(t).is_empty() => {
                return plan_err!("{what}: 'topics' names no topic");
            }
            (["topics"], Some(t)) => Topics::Named(split_list(t)),
            (["topic_pattern"], Some(p)) => {
                let bad = |e: regex::Error| {
                    SluiceError::Config(format!(
                        "{what}: topic_pattern '{p}' is not a regular expression: {e}"
                    ))
                };
                // Checked alone first: `a)|(b` would pass once wrapped.
                regex::Regex::new(p).map_err(bad)?;
                Topics::Pattern(regex::Regex::new(&format!("^(?:{p})$")).map_err(bad)?)
            }
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
            (Some(d), Some(declared)) => {
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
                d.check(declared).map_err(|e| {
                    SluiceError::Config(format!("{what}: format '{}': {e}", d.name()))
                })?;
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
        // A fetch the broker holds open for want of data (up to this long)
        // delays the next batch's offset requests behind it on the same
        // connection: librdkafka's 500 ms made every batch 0.5 s slower.
        config.set("fetch.wait.max.ms", "20");
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
            ranges: Vec::new(),
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
            n => n.max(low).min(high),
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
    ranges: Vec<OffsetRange>,
}

impl KafkaSource {
    fn error(&self, batch_time: i64, message: String) -> SluiceError {
        SluiceError::Source {
            name: self.name.clone(),
            batch_time,
            message,
        }
    }

    /// One try at batch `batch_time`: what the broker has now, the stored
    /// offsets (at the first batch), each partition's range, its records.
    async fn try_cut(&mut self, batch_time: i64) -> std::result::Result<RecordBatch, Trouble> {
        let reader = Arc::clone(&self.reader);
        let topics = self.topics.clone();
        let layout = blocking(move || reader.layout(&topics, REQUEST_TIMEOUT))
            .await
            .map_err(|t| t.context("cannot get the topics' partitions and offsets"))?;
        self.check_missing(batch_time, &layout)?;
        if !self.loaded {
            // Where the store says the job got, for partitions it knows.
            let partitions: Vec<Partition> =
                layout.partitions.iter().map(|(p, _)| p.clone()).collect();
            let stored = self
                .store
                .load(&partitions)
                .await
                .map_err(|t| t.context("cannot read the stored offsets"))?;
            self.next.extend(stored);
            self.loaded = true;
        }
        // Fix each partition's range now.
        let ranges: Vec<OffsetRange> = layout
            .partitions
            .iter()
            .map(|(p, offsets)| {
                let from = self.first_offset(batch_time, p, *offsets);
                let high = offsets.1;
                let until = match self.max_rows {
                    Some(m) => high.min(from.saturating_add(i64::try_from(m).unwrap_or(i64::MAX))),
                    None => high,
                };
                OffsetRange {
                    source: self.name.clone(),
                    topic: p.0.clone(),
                    partition: p.1,
                    from_offset: from,
                    until_offset: until.max(from),
                }
            })
            .collect();
        let reader = Arc::clone(&self.reader);
        let to_read: Vec<(Partition, i64, i64)> = ranges
            .iter()
            .map(|r| {
                (
                    (r.topic.clone(), r.partition),
                    r.from_offset,
                    r.until_offset,
                )
            })
            .collect();
        // Dropped with this future (a stop while the broker is away), the
        // guard tells the read on the blocking pool to give up.
        let abandoned = Abandon::default();
        let flag = Arc::clone(&abandoned.0);
        let batch = blocking(move || reader.read(&to_read, READ_TIMEOUT, &flag))
            .await
            .map_err(|t| t.context("cannot read the batch's offset ranges"))?;
        let batch = self.decode(batch_time, batch).map_err(Trouble::Fatal)?;
        for r in &ranges {
            self.known_topics.insert(r.topic.clone());
            self.next
                .insert((r.topic.clone(), r.partition), r.until_offset);
        }
        self.ranges = ranges;
        self.started = true;
        Ok(batch)
    }

    /// Reports topics that went missing or came back; a named topic that
    /// the source never read fails the batch.
    fn check_missing(
        &mut self,
        batch_time: i64,
        layout: &Layout,
    ) -> std::result::Result<(), Trouble> {
        if let Some(t) = layout
            .missing
            .iter()
            .find(|t| !self.known_topics.contains(*t))
        {
            return Err(Trouble::Fatal(format!("topic '{t}' is not on the broker")));
        }
        let mut missing = layout.missing.clone();
        if matches!(self.topics, Topics::Pattern(_)) {
            // A topic the pattern matched is gone when it is not there now.
            missing.extend(
                self.known_topics
                    .iter()
                    .filter(|t| !layout.partitions.iter().any(|(p, _)| p.0 == **t))
                    .cloned(),
            );
        }
        for t in &missing {
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
            .filter(|t| !missing.contains(*t))
            .cloned()
            .collect();
        for t in back {
            // Created again: a new topic, read from its start.
            log::warn!(
                "kafka source '{}', batch {batch_time} ms: topic '{t}' is on the broker again; reading it from its start",
                self.name
            );
            self.next.retain(|(topic, _), _| *topic != t);
            self.missing.remove(&t);
        }
        Ok(())
    }

    /// Where partition `p` (offsets `low..high` on the broker) starts; an
    /// out-of-range offset is reported.
    fn first_offset(&self, batch_time: i64, p: &Partition, (low, high): (i64, i64)) -> i64 {
        let next = self.next.get(p).copied();
        let (first, out_of_range) = start_of(next, self.started, &self.starting, p, (low, high));
        if let (Some(why), Some(n)) = (out_of_range, next) {
            log::warn!(
                "kafka source '{}', batch {batch_time} ms: {}:{} offset {n} is out of range ({why}; the broker has {low}..{high}); reading from {first}, as starting_offsets says",
                self.name,
                p.0,
                p.1
            );
        }
        first
    }

    /// Decodes json/csv values into the declared columns; records that do
    /// not decode are reported (topic, partition, offset, why) and left out.
    fn decode(
        &self,
        batch_time: i64,
        batch: RecordBatch,
    ) -> std::result::Result<RecordBatch, String> {
        let Some((decoding, columns)) = &self.decoding else {
            return Ok(batch);
        };
        let fail = |e: arrow::error::ArrowError| e.to_string();
        let values = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("values are not text")?;
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

/// Where a partition with offsets `low..high` on the broker starts, given
/// the next offset the source has for it; when that is out of range, also
/// why (reading then starts as `starting_offsets` says).
fn start_of(
    next: Option<i64>,
    started: bool,
    starting: &Starting,
    p: &Partition,
    (low, high): (i64, i64),
) -> (i64, Option<&'static str>) {
    match next {
        Some(n) if n < low => (starting.first(p, (low, high)), Some("removed by retention")),
        Some(n) if n > high => (
            starting.first(p, (low, high)),
            Some("past the end: was the topic created again?"),
        ),
        Some(n) => (n, None),
        // A partition or topic that appeared after the first batch.
        None if started => (low, None),
        None => (starting.first(p, (low, high)), None),
    }
}

/// Set when dropped: a read on the blocking pool that outlived its cut.
#[derive(Default)]
struct Abandon(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs `f` on tokio's blocking pool (librdkafka's calls block).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, Trouble> + Send + 'static,
) -> std::result::Result<T, Trouble> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(Trouble::Fatal(e.to_string())))
}

#[async_trait]
impl Source for KafkaSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Tried until it works: a broker or store that does not answer, or
    /// ranges that went out of range while being read, make the batch wait
    /// and start over (0.5 s, doubling up to 10 s, between tries); nothing
    /// moves until a try succeeds.
    async fn cut(&mut self, batch_time: i64) -> Result<Vec<RecordBatch>> {
        let mut wait = RETRY_FIRST;
        let mut failures = 0;
        loop {
            match self.try_cut(batch_time).await {
                Ok(batch) => {
                    if failures > 0 {
                        log::info!(
                            "kafka source '{}', batch {batch_time} ms: read after {failures} failed tries",
                            self.name
                        );
                    }
                    return Ok(vec![batch]);
                }
                Err(Trouble::Fatal(m)) => return Err(self.error(batch_time, m)),
                Err(Trouble::Transient(m)) => {
                    failures += 1;
                    log::warn!(
                        "kafka source '{}', batch {batch_time} ms: {m}; trying again in {wait:?} (the batch waits, no offset moves)",
                        self.name
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
    }

    fn offset_ranges(&self) -> Option<Vec<OffsetRange>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_a_partition_starts() {
        let p: Partition = ("t".into(), 0);
        let earliest = Starting::Earliest;
        let latest = Starting::Latest;
        let given = Starting::parse(r#"{"t":{"0":15}}"#, "s").unwrap();
        // Offsets 10..20 on the broker.
        let at =
            |next, started, starting: &Starting| start_of(next, started, starting, &p, (10, 20));
        assert_eq!(at(Some(12), true, &latest), (12, None));
        assert_eq!(
            at(Some(20), true, &earliest),
            (20, None),
            "at the end: nothing new"
        );
        // Removed by retention, or past the end: as starting_offsets says.
        assert_eq!(
            at(Some(3), true, &earliest),
            (10, Some("removed by retention"))
        );
        assert_eq!(at(Some(3), true, &latest).0, 20);
        assert_eq!(at(Some(25), true, &earliest).0, 10);
        assert_eq!(at(Some(25), true, &given).0, 15);
        // Unknown: starting_offsets at the first batch, the earliest after.
        assert_eq!(at(None, false, &latest), (20, None));
        assert_eq!(at(None, false, &given), (15, None));
        assert_eq!(at(None, true, &latest), (10, None));
        // A given offset outside the broker's range is brought into it.
        let far = Starting::parse(r#"{"t":{"0":99}}"#, "s").unwrap();
        assert_eq!(at(None, false, &far).0, 20);
    }
}
