//! The Kafka client behind a kafka source: which partitions a topic has,
//! each partition's offsets, and reading exact offset ranges straight into
//! Arrow builders (no record object per row). Blocking calls: the source
//! runs them on tokio's blocking pool. A failure says whether trying again
//! may help ([`Trouble`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, BinaryBuilder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder,
};
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// A topic and a partition number.
pub type Partition = (String, i32);

/// What a source reads.
#[derive(Debug, Clone)]
pub enum Topics {
    /// Every partition of these topics, as they are at each batch.
    Named(Vec<String>),
    /// Every partition of every topic whose whole name matches, as they are
    /// at each batch (Spark's `SubscribePattern`).
    Pattern(regex::Regex),
    /// These partitions only.
    Assigned(Vec<Partition>),
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// The broker (or Redis) did not answer (down, unreachable, timed out,
    /// between leaders), or the ranges being read went out of range: the
    /// same try may work later.
    Transient(String),
    /// Anything else: trying again will not help.
    Fatal(String),
}

impl Trouble {
    pub fn message(&self) -> &str {
        match self {
            Self::Transient(m) | Self::Fatal(m) => m,
        }
    }

    /// The same trouble, its message after `what: `.
    pub fn context(self, what: &str) -> Self {
        match self {
            Self::Transient(m) => Self::Transient(format!("{what}: {m}")),
            Self::Fatal(m) => Self::Fatal(format!("{what}: {m}")),
        }
    }

    /// What a client error is: refused (not authorized: asking again will
    /// not help) or not answered (anything else).
    fn of(e: &KafkaError, message: String) -> Self {
        match e.rdkafka_error_code() {
            Some(code) if is_refusal(code) => Self::Fatal(message),
            _ => Self::Transient(message),
        }
    }
}

/// Asking again will not help.
fn is_refusal(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        TopicAuthorizationFailed
            | GroupAuthorizationFailed
            | ClusterAuthorizationFailed
            | SaslAuthenticationFailed
            | Authentication
            | InvalidConfig
            | InvalidArgument
    )
}

/// The partition or topic is not on the broker (deleted, or never there).
fn is_gone(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::UnknownTopic
        )
    )
}

/// What the broker has of the topics a source reads.
#[derive(Debug, Default)]
pub struct Layout {
    /// Each partition and its earliest and next offsets.
    pub partitions: Vec<(Partition, (i64, i64))>,
    /// Named topics the broker does not have.
    pub missing: Vec<String>,
}

/// How keys and values become columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// UTF-8 text (`Utf8`); a record that is not is reported and skipped.
    Text,
    /// Bytes as they are (`Binary`).
    Raw,
}

pub struct Reader {
    consumer: BaseConsumer,
    format: Format,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client's configuration may hold secrets: not shown.
        f.debug_struct("Reader")
            .field("format", &self.format)
            .finish()
    }
}

/// Key and value columns of either format.
enum Bytes {
    Text(StringBuilder),
    Raw(BinaryBuilder),
}

impl Bytes {
    fn new(format: Format) -> Self {
        match format {
            Format::Text => Self::Text(StringBuilder::new()),
            Format::Raw => Self::Raw(BinaryBuilder::new()),
        }
    }

    fn append(&mut self, value: Option<&[u8]>) {
        match self {
            // Checked to be UTF-8 before anything of the record is appended.
            Self::Text(b) => b.append_option(value.and_then(|v| std::str::from_utf8(v).ok())),
            Self::Raw(b) => b.append_option(value),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Text(b) => Arc::new(b.finish()),
            Self::Raw(b) => Arc::new(b.finish()),
        }
    }
}

/// The builders of one range's rows.
struct Columns {
    keys: Bytes,
    values: Bytes,
    topics: StringBuilder,
    partitions: Int32Builder,
    offsets: Int64Builder,
    timestamps: TimestampMillisecondBuilder,
}

impl Columns {
    fn new(format: Format) -> Self {
        Self {
            keys: Bytes::new(format),
            values: Bytes::new(format),
            topics: StringBuilder::new(),
            partitions: Int32Builder::new(),
            offsets: Int64Builder::new(),
            timestamps: TimestampMillisecondBuilder::new(),
        }
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            self.keys.finish(),
            self.values.finish(),
            Arc::new(self.topics.finish()),
            Arc::new(self.partitions.finish()),
            Arc::new(self.offsets.finish()),
            Arc::new(self.timestamps.finish()),
        ];
        RecordBatch::try_new(Arc::clone(schema), columns)
    }
}

/// The partitions of a topic in the broker's metadata; `None` when the
/// broker does not have it.
fn partitions_of(t: &rdkafka::metadata::MetadataTopic) -> Result<Option<Vec<Partition>>, Trouble> {
    match t.error().map(RDKafkaErrorCode::from) {
        None => Ok(Some(
            t.partitions()
                .iter()
                .map(|p| (t.name().to_string(), p.id()))
                .collect(),
        )),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => Ok(None),
        Some(e) if is_refusal(e) => Err(Trouble::Fatal(format!("topic '{}': {e}", t.name()))),
        // A topic between leaders, or being created: later.
        Some(e) => Err(Trouble::Transient(format!("topic '{}': {e}", t.name()))),
    }
}

impl Reader {
    pub fn new(consumer: BaseConsumer, format: Format) -> Self {
        Self { consumer, format }
    }

    /// Every partition of `topics` and its offsets, as the broker has them
    /// now; the topics it does not have are listed as missing.
    pub fn layout(&self, topics: &Topics, timeout: Duration) -> Result<Layout, Trouble> {
        let mut layout = Layout::default();
        let mut partitions = Vec::new();
        let no_metadata = |e: KafkaError| Trouble::of(&e, format!("no metadata: {e}"));
        match topics {
            // One request for every topic, not one per topic.
            Topics::Named(names) => {
                let metadata = self
                    .consumer
                    .fetch_metadata(None, timeout)
                    .map_err(no_metadata)?;
                for topic in names {
                    match metadata.topics().iter().find(|t| t.name() == topic) {
                        Some(t) => match partitions_of(t)? {
                            Some(found) => partitions.extend(found),
                            None => layout.missing.push(topic.clone()),
                        },
                        None => layout.missing.push(topic.clone()),
                    }
                }
            }
            Topics::Pattern(pattern) => {
                let metadata = self
                    .consumer
                    .fetch_metadata(None, timeout)
                    .map_err(no_metadata)?;
                for t in metadata
                    .topics()
                    .iter()
                    .filter(|t| pattern.is_match(t.name()))
                {
                    // A topic deleted meanwhile is simply no longer matched.
                    partitions.extend(partitions_of(t)?.unwrap_or_default());
                }
            }
            Topics::Assigned(list) => partitions.extend(list.iter().cloned()),
        }
        partitions.sort();
        partitions.dedup();
        for p in partitions {
            let offsets = match self.consumer.fetch_watermarks(&p.0, p.1, timeout) {
                Ok(offsets) => offsets,
                // An assigned partition is not looked up in the metadata.
                Err(e) if is_gone(&e) && matches!(topics, Topics::Assigned(_)) => {
                    return Err(Trouble::Fatal(format!(
                        "partition {}:{} is not on the broker",
                        p.0, p.1
                    )));
                }
                // Deleted since the metadata: the next try will say.
                Err(e) => {
                    return Err(Trouble::of(
                        &e,
                        format!("no offsets of {}:{}: {e}", p.0, p.1),
                    ));
                }
            };
            layout.partitions.push((p, offsets));
        }
        Ok(layout)
    }

    /// The consumer group's committed next offsets of `partitions` (those
    /// that have one).
    pub fn committed(
        &self,
        partitions: &[Partition],
        timeout: Duration,
    ) -> Result<std::collections::BTreeMap<Partition, i64>, Trouble> {
        let mut list = TopicPartitionList::new();
        for (topic, p) in partitions {
            list.add_partition(topic, *p);
        }
        let committed = self
            .consumer
            .committed_offsets(list, timeout)
            .map_err(|e| {
                Trouble::of(
                    &e,
                    format!("cannot read the group's committed offsets: {e}"),
                )
            })?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(n) => Some(((e.topic().to_string(), e.partition()), n)),
                _ => None,
            })
            .collect())
    }

    /// Commits `next` (the next offset of each partition) to the group.
    pub fn commit(&self, next: &std::collections::BTreeMap<Partition, i64>) -> Result<(), String> {
        let mut list = TopicPartitionList::new();
        for ((topic, p), offset) in next {
            list.add_partition_offset(topic, *p, Offset::Offset(*offset))
                .map_err(|e| format!("{topic}:{p}: {e}"))?;
        }
        self.consumer
            .commit(&list, CommitMode::Sync)
            .map_err(|e| format!("cannot commit offsets to the group: {e}"))
    }

    /// Stops fetching between batches (nothing is prefetched for nothing).
    fn unassign(&self) {
        if let Err(e) = self.consumer.unassign() {
            log::warn!("kafka: {e}");
        }
    }

    /// Closes the open ranges whose partition's fetch position reached the
    /// range's end; returns how many.
    fn close_reached(&self, ranges: &[(Partition, i64, i64)], open: &mut [bool]) -> usize {
        let Ok(positions) = self.consumer.position() else {
            return 0;
        };
        let mut closed = 0;
        for e in positions.elements() {
            let Offset::Offset(at) = e.offset() else {
                continue;
            };
            if let Some(i) = ranges
                .iter()
                .position(|((t, p), _, until)| {
                    t == e.topic() && *p == e.partition() && at >= *until
                })
                .filter(|&i| open[i])
            {
                open[i] = false;
                closed += 1;
            }
        }
        closed
    }

    /// The records of each `(partition, from, until)` range, in one batch:
    /// partition by partition as they arrive, each in offset order. Gives
    /// up once `abandoned` is set (the cut that asked was dropped).
    pub fn read(
        &self,
        ranges: &[(Partition, i64, i64)],
        timeout: Duration,
        abandoned: &AtomicBool,
    ) -> Result<RecordBatch, Trouble> {
        // One set of builders per range, concatenated in range order: a
        // batch's rows are the same however the broker interleaves them.
        let mut columns: Vec<Columns> = ranges.iter().map(|_| Columns::new(self.format)).collect();
        // Per range: still being read.
        let mut open: Vec<bool> = ranges.iter().map(|(_, from, until)| from < until).collect();
        let mut remaining = open.iter().filter(|o| **o).count();
        let mut assignment = TopicPartitionList::new();
        for ((topic, partition), from, until) in ranges {
            if from < until {
                assignment
                    .add_partition_offset(topic, *partition, Offset::Offset(*from))
                    .map_err(|e| Trouble::Fatal(format!("{topic}:{partition}: {e}")))?;
            }
        }
        if remaining > 0 {
            self.consumer
                .assign(&assignment)
                .map_err(|e| Trouble::Fatal(format!("cannot read the batch's ranges: {e}")))?;
        }
        // Passing errors are logged once each per read.
        let mut told: Vec<String> = Vec::new();
        // A read fails only when the broker sends nothing for `timeout`.
        let mut deadline = Instant::now() + timeout;
        while remaining > 0 {
            if abandoned.load(Ordering::Relaxed) {
                self.unassign();
                return Err(Trouble::Fatal("the read was abandoned".into()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let waiting: Vec<String> = ranges
                    .iter()
                    .zip(&open)
                    .filter(|(_, o)| **o)
                    .map(|(((t, p), _, until), _)| format!("{t}:{p} (up to offset {until})"))
                    .collect();
                self.unassign();
                return Err(Trouble::Transient(format!(
                    "the broker sent nothing of {} for {timeout:?}",
                    waiting.join(", ")
                )));
            }
            let Some(message) = self.consumer.poll(left.min(Duration::from_millis(100))) else {
                // The range may end in offsets never delivered (transaction
                // markers, compacted records): the fetch position says.
                remaining -= self.close_reached(ranges, &mut open);
                continue;
            };
            let m = match message {
                Ok(m) => m,
                Err(e @ KafkaError::MessageConsumptionFatal(_)) => {
                    self.unassign();
                    return Err(Trouble::Fatal(format!("reading: {e}")));
                }
                Err(e) if e.rdkafka_error_code().is_some_and(is_refusal) => {
                    self.unassign();
                    return Err(Trouble::Fatal(format!("reading: {e}")));
                }
                // An offset of the ranges went out of range, or a topic
                // went away, since they were fixed: fix them again.
                Err(e)
                    if is_gone(&e)
                        || matches!(
                            e.rdkafka_error_code(),
                            Some(
                                RDKafkaErrorCode::OffsetOutOfRange
                                    | RDKafkaErrorCode::AutoOffsetReset
                            )
                        ) =>
                {
                    self.unassign();
                    return Err(Trouble::Transient(format!(
                        "{e}, since the batch's ranges were fixed"
                    )));
                }
                Err(e) => {
                    // Disconnects and the like: librdkafka retries by itself.
                    let e = e.to_string();
                    if !told.contains(&e) {
                        log::warn!("kafka: {e}; still reading");
                        told.push(e);
                    }
                    continue;
                }
            };
            let Some(i) = ranges
                .iter()
                .position(|((t, p), _, _)| t == m.topic() && *p == m.partition())
                .filter(|&i| open[i])
            else {
                continue;
            };
            deadline = Instant::now() + timeout;
            if m.offset() < ranges[i].1 {
                continue;
            }
            let until = ranges[i].2;
            let offset = m.offset();
            if offset + 1 >= until {
                open[i] = false;
                remaining -= 1;
            }
            if offset >= until {
                continue;
            }
            if self.format == Format::Text {
                let bad = [("key", m.key()), ("value", m.payload())]
                    .into_iter()
                    .find(|(_, b)| b.is_some_and(|b| std::str::from_utf8(b).is_err()));
                if let Some((what, _)) = bad {
                    log::warn!(
                        "kafka: {}:{} offset {offset}: the {what} is not UTF-8 text; record skipped",
                        m.topic(),
                        m.partition()
                    );
                    continue;
                }
            }
            let c = &mut columns[i];
            c.keys.append(m.key());
            c.values.append(m.payload());
            c.topics.append_value(m.topic());
            c.partitions.append_value(m.partition());
            c.offsets.append_value(offset);
            c.timestamps.append_option(m.timestamp().to_millis());
        }
        self.unassign();
        let schema = super::schema(self.format);
        let parts = columns
            .iter_mut()
            .map(|c| c.finish(&schema))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Trouble::Fatal(e.to_string()))?;
        concat_batches(&schema, &parts).map_err(|e| Trouble::Fatal(e.to_string()))
    }
}
