//! Stateful streams in a checkpoint: what each commit writes of windows and
//! keyed state, and how a restart rebuilds them.
//!
//! - A window's state is the inputs still in it. Each batch's input is
//!   written once, as `data/input/<source or stream>/<ms>.arrow` (shared by
//!   the windows over it), and named by every manifest until it leaves the
//!   window; a restart takes them in again.
//! - Keyed state (`EMIT CHANGES` / `EMIT SNAPSHOT`) is written as a full
//!   snapshot every `checkpoint_interval`, and in between as deltas: the
//!   rows the batch put and the keys it removed ([`crate::state::changelog`]),
//!   so a batch costs what it touched, not the whole state. A restart
//!   applies the snapshot, then the deltas.
//! - A Rust function's state (`map_with_state`) is written whole each batch.
//!
//! Files are Arrow IPC, written before the manifest that names them. Each
//! stream's state is saved with its signature (key, aggregates, window,
//! columns); a restart whose stream differs in one is refused, naming the
//! stream and what changed.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;

use super::manifest::{DATA_DIR, SavedState, StatePart};
use crate::engine::Engine;
use crate::stateful::StateChanges;

/// A file to write before the manifest: its relative name and bytes.
pub type DataFile = (String, Vec<u8>);

/// The checkpoint's view of every stateful stream's saved state.
#[derive(Debug, Default)]
pub struct StreamStates {
    /// As the last commit (or the resumed manifest) left it.
    pub saved: BTreeMap<String, SavedState>,
    /// A full snapshot of keyed state every this many commits.
    pub snapshot_every: usize,
}

/// What a stream's state fits: its own signature, and for a window the
/// columns of what it reads (its inputs are saved as they came).
pub async fn signature(engine: &Engine, name: &str) -> Option<BTreeMap<String, String>> {
    let stream = engine.streams.iter().find(|s| s.name == name)?;
    let stateful = stream.stateful.as_ref()?.lock().await;
    let mut out: BTreeMap<String, String> = stateful
        .signature(engine.batch_interval)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    if let (crate::stateful::StatefulStream::Window(_), Some((_, schema))) =
        (&*stateful, engine.relation(stateful.input()))
    {
        out.insert("input columns".into(), crate::catalog::columns(&schema));
    }
    Some(out)
}

impl StreamStates {
    /// Takes every stateful stream's changes since the last commit (batch
    /// `t`): the files to write, and each stream's saved state once they
    /// are. Call [`committed`](Self::committed) after the manifest is.
    pub async fn collect(
        &self,
        engine: &Engine,
        t: i64,
    ) -> Result<(Vec<DataFile>, BTreeMap<String, SavedState>), String> {
        let mut files: Vec<DataFile> = Vec::new();
        let mut written: BTreeMap<String, StatePart> = BTreeMap::new();
        let mut states = BTreeMap::new();
        for stream in &engine.streams {
            let Some(stateful) = &stream.stateful else {
                continue;
            };
            let owner = owner_of(stateful);
            // Parts of another stream of the same name (dropped and created
            // again while the job runs) do not apply.
            let mut parts = match self.saved.get(&stream.name) {
                Some(before) if before.owner == owner => before.parts.clone(),
                _ => Vec::new(),
            };
            let full = parts.is_empty() || parts.len() >= self.snapshot_every.max(1);
            let (changes, input, started) = {
                let mut stateful = stateful.lock().await;
                let changes = stateful
                    .take_changes(full)
                    .map_err(|e| format!("stream '{}': {}", stream.name, e.strip_backtrace()))?;
                (
                    changes,
                    stateful.input().to_string(),
                    !stateful.seed_pending(),
                )
            };
            match changes {
                StateChanges::Window(w) => {
                    let dir = format!("{DATA_DIR}/input/{}", directory_name(&input));
                    for (time, batches) in &w.inputs {
                        let file = format!("{dir}/{time:020}.arrow");
                        // Another window over the same input wrote it.
                        let part = match written.get(&file) {
                            Some(part) => part.clone(),
                            None => {
                                let (part, bytes) = encode_part(*time, "input", &file, batches)?;
                                files.push((file.clone(), bytes));
                                written.insert(file, part.clone());
                                part
                            }
                        };
                        parts.push(part);
                    }
                    parts.retain(|p| p.batch_time > w.leaving);
                }
                StateChanges::Keyed { changes, full } => {
                    let dir = format!("{DATA_DIR}/{}", directory_name(&stream.name));
                    if full || changes.num_rows() > 0 {
                        let kind = if full { "full" } else { "delta" };
                        let file = format!("{dir}/{kind}-{t:020}.arrow");
                        let (part, bytes) = encode_part(t, kind, &file, &[changes])?;
                        files.push((file, bytes));
                        if full {
                            parts.clear();
                        }
                        parts.push(part);
                    }
                }
                StateChanges::None => parts.clear(),
            }
            let signature = signature(engine, &stream.name).await.unwrap_or_default();
            states.insert(
                stream.name.clone(),
                SavedState {
                    signature,
                    parts,
                    started,
                    owner,
                },
            );
        }
        Ok((files, states))
    }

    /// The streams' states are committed.
    pub fn committed(&mut self, states: BTreeMap<String, SavedState>) {
        self.saved = states;
    }
}

/// The address of a running stateful stream: who its saved parts belong to.
pub fn owner_of(
    stateful: &std::sync::Arc<tokio::sync::Mutex<crate::stateful::StatefulStream>>,
) -> usize {
    std::sync::Arc::as_ptr(stateful) as *const () as usize
}

/// Restores stream `name` of `engine` from its saved parts, read by
/// `read`; `zero`: the stream's first batch time minus the interval;
/// `last`: the last committed batch. Returns the stream's owner address.
pub async fn restore<F, Fut>(
    engine: &Engine,
    name: &str,
    saved: &SavedState,
    zero: i64,
    last: i64,
    read: F,
) -> Result<usize, String>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<bytes::Bytes, String>>,
{
    let Some(stateful) = engine
        .streams
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| s.stateful.as_ref())
    else {
        return Ok(0);
    };
    let mut parts = Vec::with_capacity(saved.parts.len());
    for p in &saved.parts {
        let bytes = read(p.file.clone()).await?;
        let batches = decode(&bytes).map_err(|e| {
            format!(
                "the saved state of stream '{name}', {}, is damaged: {e}",
                p.file
            )
        })?;
        parts.push((p.batch_time, batches));
    }
    stateful
        .lock()
        .await
        .restore(parts, zero, last, engine.batch_interval, saved.started)
        .await
        .map_err(|e| format!("stream '{name}': {}", e.strip_backtrace()))?;
    Ok(owner_of(stateful))
}

/// What differs between a saved signature and the stream's now, as
/// "its key changed from `a` to `b`"; `None` if nothing.
pub fn difference(
    saved: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Option<String> {
    let mut what: Vec<&String> = saved.keys().chain(now.keys()).collect();
    what.sort();
    what.dedup();
    let none = String::from("(none)");
    what.into_iter().find_map(|k| {
        let (a, b) = (saved.get(k).unwrap_or(&none), now.get(k).unwrap_or(&none));
        (a != b).then(|| format!("its {k} changed from `{a}` to `{b}`"))
    })
}

fn encode_part(
    t: i64,
    kind: &str,
    file: &str,
    batches: &[RecordBatch],
) -> Result<(StatePart, Vec<u8>), String> {
    let Some(schema) = batches.first().map(|b| b.schema()) else {
        return Err(format!("{file}: nothing to write"));
    };
    let bytes = encode(&schema, batches).map_err(|e| format!("cannot encode {file}: {e}"))?;
    let part = StatePart {
        batch_time: t,
        kind: kind.to_string(),
        file: file.to_string(),
        rows: batches.iter().map(|b| b.num_rows()).sum(),
        bytes: bytes.len(),
    };
    Ok((part, bytes))
}

/// Batches as an Arrow IPC file.
pub fn encode(schema: &SchemaRef, batches: &[RecordBatch]) -> arrow::error::Result<Vec<u8>> {
    let mut writer = FileWriter::try_new(Vec::new(), schema)?;
    for b in batches {
        writer.write(b)?;
    }
    writer.finish()?;
    writer.into_inner()
}

/// The batches of an Arrow IPC file.
pub fn decode(bytes: &bytes::Bytes) -> arrow::error::Result<Vec<RecordBatch>> {
    FileReader::try_new(Cursor::new(bytes.as_ref()), None)?.collect()
}

/// A stream's or source's folder in the checkpoint: its name if plain, else hex.
pub fn directory_name(stream: &str) -> String {
    if !stream.is_empty()
        && stream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        stream.to_string()
    } else {
        let hex: String = stream.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x{hex}")
    }
}

/// Commits between full snapshots of keyed state, for a checkpoint
/// interval (default: ten batches, as Spark's ten slides).
pub fn snapshot_every(interval: Option<Duration>, batch_interval: Duration) -> usize {
    match interval {
        Some(i) => (i.as_millis() / batch_interval.as_millis().max(1)).max(1) as usize,
        None => 10,
    }
}
