//! `connector = 'directory'`: Spark's `textFileStream`. Watches one
//! directory (a local path or an object_store URL: `file://`, `memory://`,
//! `s3://`, or a store registered in the session); each batch takes the files that
//! appeared since the last one, oldest first (by modification time, then
//! name). As in Spark, files must arrive whole: write them elsewhere (or as
//! a `.`-name) and move them in; a file written in place may be read
//! half-written. A file taken once is never read again, even if modified
//! later (or replaced under the same name).
//! Subdirectories, names starting with `.` and object_store's files being
//! written (`name#<digits>`, as a file sink leaves them until renamed) are
//! ignored; files present
//! when the source is created are ignored unless `include_existing = true`.
//! There is no receiver thread: the directory is listed when a batch is cut,
//! and the new files are fetched and parsed one per core, taken in order.
//!
//! Formats (`format`): `text` (one column `value`, a row per line), `csv`
//! (`header`, default true), `json` (one object per line), `parquet`. The
//! columns are declared (`CREATE SOURCE s (a INT, b TEXT) WITH (...)`) or, for
//! csv/json/parquet, inferred from the first file present at creation.
//!
//! A file that does not read with the schema is reported with its name and
//! the reason, then, per `on_error`, fails the stream (`'fail'`, the
//! default: nothing is lost silently) or is skipped (`'skip'`, logged).
//!
//! ```sql
//! CREATE SOURCE logs WITH (connector = 'directory', path = 'data/incoming');
//! CREATE SOURCE sales (id BIGINT, amount DOUBLE)
//!   WITH (connector = 'directory', path = 'file:///data/sales', format = 'csv', on_error = 'skip');
//! ```

use std::collections::HashSet;
use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};
use sluice_core::conform::conform_to_schema;
use sluice_core::source::{Source, SourceContext, SourceFactory, SourceSpec};
use sluice_core::{Result, SluiceError, plan_err};

use crate::replay::text_schema;
use crate::store::{Location, resolve};

/// How files are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Csv { header: bool },
    Json,
    Parquet,
}

pub struct DirectorySourceFactory;

#[async_trait]
impl SourceFactory for DirectorySourceFactory {
    fn name(&self) -> &'static str {
        "directory"
    }

    fn option_names(&self) -> &'static [&'static str] {
        &["path", "format", "header", "include_existing", "on_error"]
    }

    async fn create(&self, spec: SourceSpec, ctx: &SourceContext) -> Result<Box<dyn Source>> {
        let o = &spec.options;
        let what = format!("directory source '{}'", spec.name);
        let path = o.require("path", &what)?;
        let format = match o
            .get_choice("format", &["text", "csv", "json", "parquet"])?
            .as_deref()
        {
            Some("csv") => Format::Csv {
                header: o.get_bool("header")?.unwrap_or(true),
            },
            Some("json") => Format::Json,
            Some("parquet") => Format::Parquet,
            _ => Format::Text,
        };
        let skip_bad = o.get_choice("on_error", &["fail", "skip"])?.as_deref() == Some("skip");
        let include_existing = o.get_bool("include_existing")?.unwrap_or(false);
        let location = resolve(&ctx.session, path)?;
        let mut source = DirectorySource {
            name: spec.name.clone(),
            location,
            format,
            schema: text_schema(),
            skip_bad,
            // Rows per Arrow batch, as DataFusion's own readers make them.
            batch_size: ctx.session.copied_config().batch_size(),
            taken: HashSet::new(),
        };
        if let Some(dir) = &source.location.local
            && !dir.exists()
        {
            log::warn!(
                "{what}: '{}' does not exist (yet); files that appear in it will be read",
                source.location.display
            );
        }
        // Nothing is taken yet: every file present, oldest first.
        let existing = source.list_new().await?;
        source.schema = match (&spec.declared_schema, format) {
            (Some(schema), Format::Text) if schema.fields().len() != 1 => {
                return plan_err!(
                    "{what}: format 'text' has one column, value; declare none or (value TEXT)"
                );
            }
            (Some(schema), _) => Arc::clone(schema),
            (None, Format::Text) => text_schema(),
            (None, _) => match existing.first() {
                Some(first) => source.infer(first).await?,
                None => {
                    return plan_err!(
                        "{what}: no file in '{}' to infer the columns from; declare them: CREATE SOURCE {} (a INT, b TEXT, ...) WITH (...)",
                        source.location.display,
                        spec.name
                    );
                }
            },
        };
        if !include_existing {
            source.taken.extend(existing.into_iter().map(|f| f.name));
        }
        Ok(Box::new(source))
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct DirectorySource {
    name: String,
    location: Location,
    format: Format,
    schema: SchemaRef,
    skip_bad: bool,
    batch_size: usize,
    /// Names of the files already taken (or present at start).
    taken: HashSet<String>,
}

impl DirectorySource {
    /// The directory's files (not subdirectories, not `.` names), in the
    /// store's order.
    async fn list(&self) -> Result<Vec<ObjectMeta>> {
        let listed = self
            .location
            .store
            .list_with_delimiter(Some(&self.location.path))
            .await
            .map_err(|e| self.error(format!("cannot list: {e}")))?;
        Ok(listed
            .objects
            .into_iter()
            .filter(|m| !m.location.filename().is_some_and(|n| n.starts_with('.')))
            .collect())
    }

    /// The files not taken yet, oldest first (then by name). Only these are
    /// sorted, and on a local disk only these are looked at beyond their
    /// name: a directory of 100k old files costs one `readdir` and a lookup
    /// per name, where object_store's listing would stat every file.
    async fn list_new(&self) -> Result<Vec<NewFile>> {
        let mut files: Vec<NewFile> = match &self.location.local {
            Some(dir) => {
                let names = blocking(read_names(dir.clone()))
                    .await
                    .map_err(|e| self.error(format!("cannot list: {e}")))?;
                let new: Vec<String> = names
                    .into_iter()
                    .filter(|n| !self.taken.contains(n))
                    .collect();
                blocking(modified_files(dir.clone(), new))
                    .await
                    .map_err(|e| self.error(format!("cannot list: {e}")))?
                    .into_iter()
                    .map(|(name, modified)| NewFile {
                        location: self.location.child(&name),
                        name,
                        modified,
                    })
                    .collect()
            }
            None => self
                .list()
                .await?
                .into_iter()
                .filter_map(|m| {
                    let name = m.location.filename()?.to_string();
                    (!self.taken.contains(&name)).then(|| NewFile {
                        name,
                        modified: m.last_modified.timestamp_nanos_opt().unwrap_or(i64::MAX),
                        location: m.location,
                    })
                })
                .collect(),
        };
        files.sort_by(|a, b| (a.modified, &a.name).cmp(&(b.modified, &b.name)));
        Ok(files)
    }

    /// A file as the user would write it: the directory as given, then the name.
    fn shown(&self, file: &NewFile) -> String {
        format!(
            "{}/{}",
            self.location.display.trim_end_matches('/'),
            file.name
        )
    }

    fn error(&self, message: String) -> SluiceError {
        SluiceError::Config(format!(
            "directory source '{}' ({}): {message}",
            self.name, self.location.display
        ))
    }

    /// `file`'s bytes (for inferring its columns).
    async fn fetch(&self, file: &NewFile) -> Result<Bytes> {
        let fail = |e: String| self.error(format!("cannot read {}: {e}", self.shown(file)));
        if let Some(dir) = &self.location.local {
            let path = dir.join(&file.name);
            return blocking(move || std::fs::read(path))
                .await
                .map(Bytes::from)
                .map_err(|e| fail(e.to_string()));
        }
        let got = self
            .location
            .store
            .get(&file.location)
            .await
            .map_err(|e| fail(e.to_string()))?;
        got.bytes().await.map_err(|e| fail(e.to_string()))
    }

    /// The columns of `file` (csv, json, parquet).
    async fn infer(&self, file: &NewFile) -> Result<SchemaRef> {
        let bytes = self.fetch(file).await?;
        let schema = match self.format {
            Format::Csv { header } => arrow::csv::reader::Format::default()
                .with_header(header)
                .infer_schema(Cursor::new(&bytes), Some(1000))
                .map(|(s, _)| s),
            Format::Json => arrow::json::reader::infer_json_schema(Cursor::new(&bytes), Some(1000))
                .map(|(s, _)| s),
            Format::Parquet => {
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .map(|b| b.schema().as_ref().clone())
                    .map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e)))
            }
            Format::Text => Ok(text_schema().as_ref().clone()),
        };
        schema.map(Arc::new).map_err(|e| {
            self.error(format!(
                "cannot infer the columns from {}: {e}",
                self.shown(file)
            ))
        })
    }
}

/// The rows of one file, in `schema`.
fn parse(
    format: Format,
    schema: &SchemaRef,
    batch_size: usize,
    input: Input,
) -> std::result::Result<Vec<RecordBatch>, String> {
    {
        let bytes = match (format, input) {
            (Format::Parquet, Input::File(file)) => {
                return parse_parquet(file, schema, batch_size);
            }
            (_, Input::File(mut file)) => {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut file, &mut v).map_err(|e| e.to_string())?;
                Bytes::from(v)
            }
            (_, Input::Bytes(bytes)) => bytes,
        };
        let batches: Vec<RecordBatch> = match format {
            Format::Text => {
                let text = std::str::from_utf8(&bytes).map_err(|e| {
                    let at = e.valid_up_to();
                    let line = 1 + bytes[..at].iter().filter(|b| **b == b'\n').count();
                    format!("line {line} is not UTF-8 (byte {at})")
                })?;
                let lines: Vec<&str> = text.lines().collect();
                vec![
                    RecordBatch::try_new(text_schema(), vec![Arc::new(StringArray::from(lines))])
                        .map_err(|e| e.to_string())?,
                ]
            }
            Format::Csv { header } => {
                if header {
                    // Columns are taken by position: the header must name them.
                    let (found, _) = arrow::csv::reader::Format::default()
                        .with_header(true)
                        .infer_schema(Cursor::new(&bytes), Some(0))
                        .map_err(|e| e.to_string())?;
                    let names = |s: &arrow::datatypes::Schema| {
                        s.fields()
                            .iter()
                            .map(|f| f.name().clone())
                            .collect::<Vec<_>>()
                    };
                    if names(&found) != names(schema) {
                        return Err(format!(
                            "its header ({}) is not the columns ({})",
                            names(&found).join(", "),
                            names(schema).join(", ")
                        ));
                    }
                }
                arrow::csv::ReaderBuilder::new(Arc::clone(schema))
                    .with_header(header)
                    .with_batch_size(batch_size)
                    .build(Cursor::new(bytes))
                    .map_err(|e| e.to_string())?
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| file_lines(e.to_string()))?
            }
            Format::Json => read_json(schema, batch_size, &bytes).map_err(|e| {
                // Arrow's message has no line: find the first that fails alone.
                let line = bytes
                    .split(|b| *b == b'\n')
                    .position(|l| read_json(schema, batch_size, l).is_err());
                match line {
                    Some(i) => format!("line {}: {e}", i + 1),
                    None => e,
                }
            })?,
            Format::Parquet => return parse_parquet(bytes, schema, batch_size),
        };
        conform_to_schema(batches, schema, "the file").map_err(|e| e.to_string())
    }
}

/// A Parquet file's rows: the declared columns picked by name, then cast.
fn parse_parquet<R: parquet::file::reader::ChunkReader + 'static>(
    reader: R,
    schema: &SchemaRef,
    batch_size: usize,
) -> std::result::Result<Vec<RecordBatch>, String> {
    let read: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(reader)
            .and_then(|b| b.with_batch_size(batch_size).build())
            .map_err(|e| e.to_string())?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| e.to_string())?;
    // By name, then cast to the declared types.
    let mut fitted = Vec::with_capacity(read.len());
    for b in read {
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                b.column_by_name(f.name())
                    .cloned()
                    .ok_or_else(|| format!("no column '{}'", f.name()))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let picked = RecordBatch::try_new_with_options(
            Arc::new(arrow::datatypes::Schema::new(
                schema
                    .fields()
                    .iter()
                    .zip(&columns)
                    .map(|(f, c)| {
                        arrow::datatypes::Field::new(f.name(), c.data_type().clone(), true)
                    })
                    .collect::<Vec<_>>(),
            )),
            columns,
            &arrow::array::RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
        )
        .map_err(|e| e.to_string())?;
        fitted.push(picked);
    }
    conform_to_schema(fitted, schema, "the file").map_err(|e| e.to_string())
}

/// A new file's contents: fetched bytes, or an open local file (read in
/// place: Parquet reads only its column chunks, without a copy first).
enum Input {
    Bytes(Bytes),
    File(std::fs::File),
}

/// Reads and parses a local file on the blocking pool.
fn read_local(
    format: Format,
    schema: &SchemaRef,
    batch_size: usize,
    path: &std::path::Path,
) -> Read {
    match std::fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Read::Gone,
        Err(e) => Read::Unreadable(e.to_string()),
        Ok(file) => Read::Parsed(parse(format, schema, batch_size, Input::File(file))),
    }
}

/// Arrow numbers csv records from 0, the header included ("at line 2" is
/// the file's third line): say the file's line, which an editor shows.
fn file_lines(message: String) -> String {
    let Some(at) = message.find(" at line ") else {
        return message;
    };
    let digits = &message[at + 9..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    match digits[..end].parse::<u64>() {
        Ok(n) => format!("{} at line {}{}", &message[..at], n + 1, &digits[end..]),
        _ => message,
    }
}

/// JSON lines, strictly: a key that is not a column is an error, not ignored.
fn read_json(
    schema: &SchemaRef,
    batch_size: usize,
    bytes: &[u8],
) -> std::result::Result<Vec<RecordBatch>, String> {
    arrow::json::ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(batch_size)
        .with_strict_mode(true)
        .build(Cursor::new(bytes))
        .map_err(|e| e.to_string())?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| e.to_string())
}

/// A file to take: its name (as on disk: the key of the taken set), where
/// the store has it, and when it was last modified (ns).
#[derive(Debug)]
struct NewFile {
    name: String,
    location: Path,
    modified: i64,
}

/// Runs `f` on tokio's blocking pool (file system calls).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

/// The names in `dir` that are not `.`-names nor object_store's staging
/// files (`name#<n>`, renamed to `name` once whole: a file sink's output
/// being written). UTF-8 ones only: object_store paths are UTF-8. A missing
/// directory has no names (yet).
fn read_names(dir: std::path::PathBuf) -> impl FnOnce() -> std::io::Result<Vec<String>> {
    move || {
        let mut names = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
            other => other?,
        };
        for entry in entries {
            match entry?.file_name().into_string() {
                Ok(name) if !name.starts_with('.') && !is_staging(&name) => names.push(name),
                Ok(_) => {}
                Err(name) => log::warn!(
                    "directory {}: {name:?} is not a UTF-8 name; ignored",
                    dir.display()
                ),
            }
        }
        Ok(names)
    }
}

/// object_store's name for a file being written: `<name>#<digits>`.
fn is_staging(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Of `names`, the regular files (symlinks followed) with their
/// modification times; subdirectories and vanished names are left out.
fn modified_files(
    dir: std::path::PathBuf,
    names: Vec<String>,
) -> impl FnOnce() -> std::io::Result<Vec<(String, i64)>> {
    move || {
        Ok(names
            .into_iter()
            .filter_map(|name| {
                let meta = std::fs::metadata(dir.join(&name)).ok()?;
                let modified = meta
                    .modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as i64);
                meta.is_file().then_some((name, modified))
            })
            .collect())
    }
}

/// What became of one new file.
enum Read {
    /// Removed after the listing.
    Gone,
    /// The store could not give its bytes.
    Unreadable(String),
    /// Its rows, or why they do not fit.
    Parsed(std::result::Result<Vec<RecordBatch>, String>),
}

#[async_trait]
impl Source for DirectorySource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    async fn cut(&mut self, _batch_time: i64) -> Result<Vec<RecordBatch>> {
        // Files are fetched and parsed a few at a time (one per core), and
        // taken in order.
        let reads = self.list_new().await?.into_iter().map(|file| {
            let store = Arc::clone(&self.location.store);
            let (format, schema, rows) = (self.format, Arc::clone(&self.schema), self.batch_size);
            let local = self.location.local.as_ref().map(|dir| dir.join(&file.name));
            async move {
                if let Some(path) = local {
                    let read = tokio::task::spawn_blocking(move || {
                        read_local(format, &schema, rows, &path)
                    })
                    .await
                    .unwrap_or_else(|e| Read::Parsed(Err(format!("the reader failed: {e}"))));
                    return (file, read);
                }
                let read = match store.get(&file.location).await {
                    Err(object_store::Error::NotFound { .. }) => Read::Gone,
                    Err(e) => Read::Unreadable(e.to_string()),
                    Ok(got) => match got.bytes().await {
                        Err(e) => Read::Unreadable(e.to_string()),
                        Ok(bytes) => Read::Parsed(
                            tokio::task::spawn_blocking(move || {
                                parse(format, &schema, rows, Input::Bytes(bytes))
                            })
                            .await
                            .unwrap_or_else(|e| Err(format!("the reader failed: {e}"))),
                        ),
                    },
                };
                (file, read)
            }
        });
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut reads = futures::stream::iter(reads).buffered(parallelism);
        let mut out = Vec::new();
        while let Some((file, read)) = reads.next().await {
            let parsed = match read {
                Read::Gone => {
                    // Gone between listing and reading (renamed away): not ours.
                    log::warn!(
                        "directory source '{}': {} vanished before it was read; skipped",
                        self.name,
                        self.shown(&file)
                    );
                    continue;
                }
                Read::Unreadable(e) => {
                    return Err(self.error(format!("cannot read {}: {e}", self.shown(&file))));
                }
                Read::Parsed(parsed) => parsed,
            };
            // Taken whatever happens: a bad file is reported once.
            self.taken.insert(file.name.clone());
            match parsed {
                Ok(batches) => out.extend(batches),
                Err(reason) => {
                    let message = format!(
                        "file {} does not read as ({}): {reason}",
                        self.shown(&file),
                        sluice_core::catalog::columns(&self.schema)
                    );
                    if self.skip_bad {
                        log::warn!(
                            "directory source '{}': {message}; skipped (on_error = 'skip')",
                            self.name
                        );
                    } else {
                        return Err(
                            self.error(format!("{message} (on_error = 'skip' skips such files)"))
                        );
                    }
                }
            }
        }
        if out.is_empty() {
            out.push(RecordBatch::new_empty(Arc::clone(&self.schema)));
        }
        Ok(out)
    }

    /// `{"taken": [names]}`, sorted: every file read (or present at start).
    fn position(&self) -> Option<serde_json::Value> {
        let mut taken: Vec<&String> = self.taken.iter().collect();
        taken.sort();
        Some(serde_json::json!({ "taken": taken }))
    }

    fn restore(&mut self, position: &serde_json::Value) -> Result<()> {
        let names = position["taken"].as_array().ok_or_else(|| {
            self.error(format!(
                "the checkpoint's position has no list of taken files: {position}"
            ))
        })?;
        let mut taken = HashSet::with_capacity(names.len());
        for n in names {
            let name = n.as_str().ok_or_else(|| {
                self.error(format!("the checkpoint's taken file {n} is not a name"))
            })?;
            taken.insert(name.to_string());
        }
        self.taken = taken;
        Ok(())
    }
}
