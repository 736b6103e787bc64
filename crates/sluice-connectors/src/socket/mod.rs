//! `connector = 'socket'`: Spark's `socketTextStream`. A TCP client to
//! `host:port` (e.g. `nc -lk 9999`, or `sluice tools socket-words`); each
//! line is a row (column `value`). Batch `T` takes the lines received by the
//! time it is cut (with the wall clock: those of `[T - interval, T)`).
//!
//! A background task connects, reads and splits lines; it reconnects with
//! backoff (100 ms doubling to 5 s) when the server is not up yet or goes
//! away, and says so in the log. A line that is not UTF-8 is reported (log,
//! with its number) and skipped; it never stops the stream. `\r\n` endings
//! are accepted; a last line without `\n` counts when the server closes.
//!
//! With a checkpoint, received lines go to a write-ahead log in the
//! checkpoint directory ([`wal`]) before a batch takes them, so a restart
//! loses none the source had read, and cuts a batch that was in progress
//! again with the same lines.
//!
//! ```sql
//! CREATE SOURCE lines WITH (connector = 'socket', host = 'localhost', port = 9999);
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use sluice_core::source::{Source, SourceContext, SourceFactory, SourceSpec};
use sluice_core::{Result, SluiceError, plan_err};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::replay::text_schema;

pub mod wal;
use wal::Wal;

/// The longest wait between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// A longer line is reported and skipped (a peer that never sends `\n`).
const MAX_LINE: usize = 16 << 20;
/// Lines kept while nothing cuts (no sink yet, a stopped job); beyond
/// that the oldest are dropped, with a warning.
const MAX_BUFFERED: usize = 1 << 20;

pub struct SocketSourceFactory;

#[async_trait]
impl SourceFactory for SocketSourceFactory {
    fn name(&self) -> &'static str {
        "socket"
    }

    fn option_names(&self) -> &'static [&'static str] {
        &["host", "port"]
    }

    async fn create(&self, spec: SourceSpec, _ctx: &SourceContext) -> Result<Box<dyn Source>> {
        let o = &spec.options;
        let host = o.get("host").unwrap_or("localhost").to_string();
        let Some(port) = o.get_u64("port")? else {
            return plan_err!(
                "socket source '{}' needs the option 'port' (e.g. port = 9999)",
                spec.name
            );
        };
        let Ok(port) = u16::try_from(port) else {
            return plan_err!(
                "socket source '{}': port {port} is not a TCP port",
                spec.name
            );
        };
        if let Some(schema) = &spec.declared_schema
            && (schema.fields().len() != 1
                || schema.field(0).name() != "value"
                || !matches!(
                    schema.field(0).data_type(),
                    arrow::datatypes::DataType::Utf8 | arrow::datatypes::DataType::Utf8View
                ))
        {
            return plan_err!(
                "socket source '{}' has one text column, value; declare none or (value TEXT)",
                spec.name
            );
        }
        Ok(Box::new(SocketSource::connect(&spec.name, host, port)))
    }
}

/// Lines received and not yet cut, and how many lines were skipped.
#[derive(Debug, Default)]
struct Received {
    /// Lines waiting for the next cut (without a log).
    lines: Vec<String>,
    bad_lines: u64,
    /// With a checkpoint: received lines go here instead.
    wal: Option<Wal>,
    /// A failed append: the next cut fails with it.
    wal_error: Option<String>,
}

impl Received {
    fn keep(&mut self, name: &str, lines: Vec<String>) {
        match self.wal.as_mut() {
            // After a failed append, nothing more is appended (a partial
            // line would run into the next): the next cut fails the job.
            Some(_) if self.wal_error.is_some() => {}
            Some(wal) => {
                if let Err(e) = wal.append(&lines) {
                    log::error!(
                        "socket source '{name}': cannot append to its write-ahead log in {}: {e}",
                        wal.dir().display()
                    );
                    self.wal_error.get_or_insert(format!(
                        "cannot append to its write-ahead log in {}: {e}",
                        wal.dir().display()
                    ));
                }
            }
            None => self.lines.extend(lines),
        }
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct SocketSource {
    name: String,
    schema: SchemaRef,
    received: Arc<Mutex<Received>>,
    reader: JoinHandle<()>,
    /// The last batch cut (with a log).
    last_cut: Option<i64>,
}

impl SocketSource {
    /// Starts the background reader of `host:port`.
    pub fn connect(name: &str, host: String, port: u16) -> Self {
        let received = Arc::new(Mutex::new(Received::default()));
        let reader = tokio::spawn(read_forever(
            name.to_string(),
            host,
            port,
            Arc::clone(&received),
        ));
        Self {
            name: name.to_string(),
            schema: text_schema(),
            received,
            reader,
            last_cut: None,
        }
    }

    fn received(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lines skipped for not being UTF-8, so far.
    pub fn bad_lines(&self) -> u64 {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .bad_lines
    }
}

impl Drop for SocketSource {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

#[async_trait]
impl Source for SocketSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    async fn cut(&mut self, batch_time: i64) -> Result<Vec<RecordBatch>> {
        let name = &self.name;
        let fail = |message: String| SluiceError::Source {
            name: name.clone(),
            batch_time,
            message,
        };
        let (lines, logged) = {
            let mut received = self.received.lock().unwrap_or_else(|e| e.into_inner());
            let received = &mut *received;
            match received.wal.as_mut() {
                None => (std::mem::take(&mut received.lines), false),
                Some(wal) => {
                    if let Some(e) = received.wal_error.clone() {
                        return Err(fail(e));
                    }
                    let lines = wal.cut(batch_time).map_err(|e| {
                        fail(format!("write-ahead log in {}: {e}", wal.dir().display()))
                    })?;
                    (lines, true)
                }
            }
        };
        if logged {
            self.last_cut = Some(batch_time);
        }
        let values = StringArray::from(lines);
        Ok(vec![RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![Arc::new(values)],
        )?])
    }

    fn keep_log(&mut self, dir: &std::path::Path) -> Result<bool> {
        let mut wal = Wal::open(dir).map_err(|e| {
            SluiceError::Config(format!(
                "socket source '{}': cannot open its write-ahead log in {}: {e}",
                self.name,
                dir.display()
            ))
        })?;
        let mut received = self.received();
        // Lines read before the log was there go in first.
        let early = std::mem::take(&mut received.lines);
        wal.append(&early).map_err(|e| {
            SluiceError::Config(format!(
                "socket source '{}': cannot write its write-ahead log in {}: {e}",
                self.name,
                dir.display()
            ))
        })?;
        received.wal = Some(wal);
        Ok(true)
    }

    fn position(&self) -> Option<serde_json::Value> {
        self.received().wal.as_ref()?;
        Some(serde_json::json!({ "cut": self.last_cut }))
    }

    fn restore(&mut self, position: &serde_json::Value) -> Result<()> {
        let received = self.received();
        let Some(wal) = received.wal.as_ref() else {
            return Err(SluiceError::Config(format!(
                "socket source '{}' resumes only with its write-ahead log",
                self.name
            )));
        };
        if let Some(t) = position["cut"].as_i64() {
            wal.forget_through(t);
        }
        Ok(())
    }

    async fn done(&mut self, position: &serde_json::Value) -> Result<()> {
        if let (Some(wal), Some(t)) = (self.received().wal.as_ref(), position["cut"].as_i64()) {
            wal.forget_through(t);
        }
        Ok(())
    }
}

/// Connects, reads, splits lines; reconnects with backoff. Ends only when
/// aborted (the source dropped).
async fn read_forever(name: String, host: String, port: u16, received: Arc<Mutex<Received>>) {
    let mut backoff = FIRST_BACKOFF;
    let mut line_number = 0u64;
    loop {
        let mut stream = match TcpStream::connect((host.as_str(), port)).await {
            Ok(s) => {
                log::info!("socket source '{name}': connected to {host}:{port}");
                s
            }
            Err(e) => {
                log::warn!(
                    "socket source '{name}': cannot connect to {host}:{port} ({e}); retrying in {backoff:?}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let mut pending: Vec<u8> = Vec::new();
        // Inside a line too long to keep.
        let mut skipping = false;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) => {
                    log::warn!(
                        "socket source '{name}': {host}:{port} closed the connection; reconnecting"
                    );
                    break;
                }
                Ok(n) => {
                    // Data: the server is really up.
                    backoff = FIRST_BACKOFF;
                    let before = pending.len();
                    pending.extend_from_slice(&buffer[..n]);
                    // Only the new bytes can hold the last newline.
                    let whole = match pending[before..].iter().rposition(|&b| b == b'\n') {
                        Some(i) => before + i + 1,
                        None if pending.len() > MAX_LINE => {
                            line_number += 1;
                            log::warn!(
                                "socket source '{name}': line {line_number} is longer than {MAX_LINE} bytes; skipped"
                            );
                            pending.clear();
                            received.lock().unwrap_or_else(|e| e.into_inner()).bad_lines += 1;
                            skipping = true;
                            continue;
                        }
                        None => continue,
                    };
                    let whole = if std::mem::take(&mut skipping) {
                        // Drop the rest of the skipped line; keep what follows.
                        let end = before
                            + pending[before..]
                                .iter()
                                .position(|&b| b == b'\n')
                                .unwrap_or(0)
                            + 1;
                        pending.drain(..end);
                        match pending.iter().rposition(|&b| b == b'\n') {
                            Some(i) => i + 1,
                            None => continue,
                        }
                    } else {
                        whole
                    };
                    let rest = pending.split_off(whole);
                    let chunk = std::mem::replace(&mut pending, rest);
                    take_lines(&name, &chunk, &mut line_number, &received);
                }
                Err(e) => {
                    log::warn!("socket source '{name}': reading {host}:{port}: {e}; reconnecting");
                    break;
                }
            }
        }
        // A last line without its newline still counts.
        if !pending.is_empty() {
            pending.push(b'\n');
            take_lines(&name, &pending, &mut line_number, &received);
        }
        tokio::time::sleep(backoff).await;
    }
}

/// Adds the `\n`-ended lines of `chunk` to `received` (UTF-8 checked).
fn take_lines(name: &str, chunk: &[u8], line_number: &mut u64, received: &Mutex<Received>) {
    let mut good = Vec::new();
    let mut bad = 0;
    // `chunk` ends with '\n': every piece before it is a line.
    let body = chunk.strip_suffix(b"\n").unwrap_or(chunk);
    for raw in body.split(|&b| b == b'\n') {
        *line_number += 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        match std::str::from_utf8(raw) {
            Ok(line) => good.push(line.to_string()),
            Err(e) => {
                bad += 1;
                log::warn!(
                    "socket source '{name}': line {line_number} is not UTF-8 ({e}); skipped"
                );
            }
        }
    }
    let mut r = received.lock().unwrap_or_else(|e| e.into_inner());
    r.keep(name, good);
    r.bad_lines += bad;
    if r.lines.len() > MAX_BUFFERED {
        let dropped = r.lines.len() - MAX_BUFFERED;
        r.lines.drain(..dropped);
        log::warn!(
            "socket source '{name}': {dropped} lines dropped: more than {MAX_BUFFERED} waiting and no batch is being cut"
        );
    }
}
