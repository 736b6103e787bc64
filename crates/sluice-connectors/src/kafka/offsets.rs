//! Where a kafka source keeps how far the job got (`offset_store`):
//!
//! - `checkpoint` (the default): in the job's checkpoint, with the rest of
//!   the batch (the source's position); without a checkpoint, nowhere.
//! - `kafka`: committed to the consumer group (`group_id`) once every sink
//!   has the batch, as Spark's `commitAsync` after output; read back at start.
//! - `redis`: the tutorial's layout, hash `kafka:topic:<topic>:<group_id>`,
//!   field = partition, value = the next offset; one `HSET` per topic per
//!   batch, read with `HGETALL` at start.
//!
//! Offsets are stored only after the batch is done, so a crash repeats at
//! most the batch in progress (at least once; exactly once with the
//! checkpoint store and idempotent sinks).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::reader::{Partition, Reader, Trouble};

/// How long Redis may take to answer a command.
const ANSWER: Duration = Duration::from_secs(5);

/// The stores of `offset_store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    Checkpoint,
    Kafka,
    Redis(String),
}

/// An offset store other than the checkpoint.
pub struct OffsetStore {
    kind: StoreKind,
    group_id: String,
    reader: Arc<Reader>,
    redis: Option<redis::aio::MultiplexedConnection>,
}

impl std::fmt::Debug for OffsetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffsetStore")
            .field("kind", &self.kind)
            .field("group_id", &self.group_id)
            .finish()
    }
}

/// A Redis URL as shown in messages: without its password.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// A Redis error: a refused login fails at once, anything else is tried
/// again.
fn refused_or_transient(e: &redis::RedisError, message: String) -> Trouble {
    let refused = e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"));
    if refused {
        Trouble::Fatal(message)
    } else {
        Trouble::Transient(message)
    }
}

/// The tutorial's Redis key of a topic's offsets.
pub fn redis_key(topic: &str, group_id: &str) -> String {
    format!("kafka:topic:{topic}:{group_id}")
}

impl OffsetStore {
    pub fn new(kind: StoreKind, group_id: String, reader: Arc<Reader>) -> Self {
        Self {
            kind,
            group_id,
            reader,
            redis: None,
        }
    }

    pub fn kind(&self) -> &StoreKind {
        &self.kind
    }

    async fn redis(&mut self) -> Result<redis::aio::MultiplexedConnection, Trouble> {
        if let Some(c) = &self.redis {
            return Ok(c.clone());
        }
        let StoreKind::Redis(url) = &self.kind else {
            return Err(Trouble::Fatal("not a redis store".into()));
        };
        let client = redis::Client::open(url.as_str())
            .map_err(|e| Trouble::Fatal(format!("redis offset store {}: {e}", shown(url))))?;
        let url = shown(url);
        let connection = tokio::time::timeout(ANSWER, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| {
                Trouble::Transient(format!(
                    "redis offset store {url}: no answer within {ANSWER:?}"
                ))
            })?
            .map_err(|e| refused_or_transient(&e, format!("redis offset store {url}: {e}")))?;
        self.redis = Some(connection.clone());
        Ok(connection)
    }

    /// Runs `cmd` within [`ANSWER`]; a failure drops the connection (the
    /// next call opens another).
    async fn query<T: redis::FromRedisValue>(
        &mut self,
        c: &mut redis::aio::MultiplexedConnection,
        cmd: &redis::Cmd,
    ) -> Result<T, Trouble> {
        let answer = match tokio::time::timeout(ANSWER, cmd.query_async(c)).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => refused_or_transient(&e, e.to_string()),
            Err(_) => Trouble::Transient(format!("no answer within {ANSWER:?}")),
        };
        self.redis = None;
        Err(answer)
    }

    /// The stored next offset of each of `partitions` that has one.
    pub async fn load(
        &mut self,
        partitions: &[Partition],
    ) -> Result<BTreeMap<Partition, i64>, Trouble> {
        match self.kind.clone() {
            StoreKind::Checkpoint => Ok(BTreeMap::new()),
            StoreKind::Kafka => {
                let reader = Arc::clone(&self.reader);
                let partitions = partitions.to_vec();
                tokio::task::spawn_blocking(move || {
                    reader.committed(&partitions, super::REQUEST_TIMEOUT)
                })
                .await
                .map_err(|e| Trouble::Fatal(e.to_string()))?
            }
            StoreKind::Redis(url) => {
                let url = shown(&url);
                let mut c = self.redis().await?;
                let mut out = BTreeMap::new();
                let mut topics: Vec<&str> = partitions.iter().map(|p| p.0.as_str()).collect();
                topics.dedup();
                for topic in topics {
                    let key = redis_key(topic, &self.group_id);
                    let mut cmd = redis::cmd("HGETALL");
                    cmd.arg(&key);
                    let stored: BTreeMap<String, String> =
                        self.query(&mut c, &cmd).await.map_err(|t| {
                            t.context(&format!("redis offset store {url}: HGETALL {key}"))
                        })?;
                    for (field, value) in stored {
                        let (Ok(p), Ok(offset)) = (field.parse::<i32>(), value.parse::<i64>())
                        else {
                            return Err(Trouble::Fatal(format!(
                                "redis offset store {url}: {key} field '{field}' = '{value}' is not partition = offset"
                            )));
                        };
                        // Only this source's partitions (a group may be shared).
                        let partition = (topic.to_string(), p);
                        if partitions.contains(&partition) {
                            out.insert(partition, offset);
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    /// Stores the next offset of every partition.
    pub async fn store(&mut self, next: &BTreeMap<Partition, i64>) -> Result<(), String> {
        match self.kind.clone() {
            StoreKind::Checkpoint => Ok(()),
            StoreKind::Kafka => {
                let reader = Arc::clone(&self.reader);
                let next = next.clone();
                tokio::task::spawn_blocking(move || reader.commit(&next))
                    .await
                    .map_err(|e| e.to_string())?
            }
            StoreKind::Redis(url) => {
                let url = shown(&url);
                let mut c = self.redis().await.map_err(|t| t.message().to_string())?;
                let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
                for ((topic, p), offset) in next {
                    by_topic
                        .entry(topic.as_str())
                        .or_default()
                        .push((*p, *offset));
                }
                for (topic, fields) in by_topic {
                    let key = redis_key(topic, &self.group_id);
                    let mut cmd = redis::cmd("HSET");
                    cmd.arg(&key);
                    for (p, offset) in fields {
                        cmd.arg(p).arg(offset);
                    }
                    let _: i64 = self.query(&mut c, &cmd).await.map_err(|t| {
                        format!("redis offset store {url}: HSET {key}: {}", t.message())
                    })?;
                }
                Ok(())
            }
        }
    }
}
