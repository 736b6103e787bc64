//! `connector = 'directory'`: Spark's `textFileStream`. Watches one
//! directory (a local path or an object_store URL: `file://`, `memory://`, or
//! a store registered in the session); each batch takes the files that
//! appeared since the last one, oldest first (by modification time, then
//! name). As in Spark, files must arrive whole: write them elsewhere (or as
//! a `.`-name) and move them in; a file written in place may be read
//! half-written. A file taken once is never read again, even if modified
//! later (or replaced under the same name).
//! Subdirectories and names starting with `.` are ignored; files present
//! when the source is created are ignored unless `include_existing = true`.
//! There is no receiver thread: the directory is listed when a batch is cut.
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
            taken: HashSet::new(),
        };
        let existing = source.list().await?;
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
            source
                .taken
                .extend(existing.into_iter().map(|m| m.location));
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
    /// Files already taken (or present at start).
    taken: HashSet<Path>,
}

impl DirectorySource {
    /// The directory's files (not subdirectories, not `.` names), oldest first.
    async fn list(&self) -> Result<Vec<ObjectMeta>> {
        let listed = self
            .location
            .store
            .list_with_delimiter(Some(&self.location.path))
            .await
            .map_err(|e| self.error(format!("cannot list: {e}")))?;
        let mut files: Vec<ObjectMeta> = listed
            .objects
            .into_iter()
            .filter(|m| !m.location.filename().is_some_and(|n| n.starts_with('.')))
            .collect();
        files.sort_by(|a, b| {
            (a.last_modified, a.location.as_ref()).cmp(&(b.last_modified, b.location.as_ref()))
        });
        Ok(files)
    }

    fn error(&self, message: String) -> SluiceError {
        SluiceError::Config(format!(
            "directory source '{}' ({}): {message}",
            self.name, self.location.display
        ))
    }

    async fn fetch(&self, file: &ObjectMeta) -> Result<Bytes> {
        let got = self
            .location
            .store
            .get(&file.location)
            .await
            .map_err(|e| self.error(format!("cannot read {}: {e}", file.location)))?;
        got.bytes()
            .await
            .map_err(|e| self.error(format!("cannot read {}: {e}", file.location)))
    }

    /// `file`'s bytes, or `None` if it is gone.
    async fn fetch_opt(&self, file: &ObjectMeta) -> Result<Option<Bytes>> {
        match self.location.store.get(&file.location).await {
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(format!("cannot read {}: {e}", file.location))),
            Ok(got) => got
                .bytes()
                .await
                .map(Some)
                .map_err(|e| self.error(format!("cannot read {}: {e}", file.location))),
        }
    }

    /// The columns of `file` (csv, json, parquet).
    async fn infer(&self, file: &ObjectMeta) -> Result<SchemaRef> {
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
                file.location
            ))
        })
    }

    /// The rows of one file, in the source's schema.
    fn parse(&self, bytes: Bytes) -> std::result::Result<Vec<RecordBatch>, String> {
        let batches: Vec<RecordBatch> = match self.format {
            Format::Text => {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|e| format!("not UTF-8 at byte {}", e.valid_up_to()))?;
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
                    if names(&found) != names(&self.schema) {
                        return Err(format!(
                            "its header ({}) is not the columns ({})",
                            names(&found).join(", "),
                            names(&self.schema).join(", ")
                        ));
                    }
                }
                arrow::csv::ReaderBuilder::new(Arc::clone(&self.schema))
                    .with_header(header)
                    .build(Cursor::new(bytes))
                    .map_err(|e| e.to_string())?
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| e.to_string())?
            }
            // Strict: a key that is not a column is an error, not ignored.
            Format::Json => arrow::json::ReaderBuilder::new(Arc::clone(&self.schema))
                .with_strict_mode(true)
                .build(Cursor::new(bytes))
                .map_err(|e| e.to_string())?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| e.to_string())?,
            Format::Parquet => {
                let read: Vec<RecordBatch> =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                        .and_then(|b| b.build())
                        .map_err(|e| e.to_string())?
                        .collect::<std::result::Result<_, _>>()
                        .map_err(|e| e.to_string())?;
                // By name, then cast to the declared types.
                let mut fitted = Vec::with_capacity(read.len());
                for b in read {
                    let columns = self
                        .schema
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
                            self.schema
                                .fields()
                                .iter()
                                .zip(&columns)
                                .map(|(f, c)| {
                                    arrow::datatypes::Field::new(
                                        f.name(),
                                        c.data_type().clone(),
                                        true,
                                    )
                                })
                                .collect::<Vec<_>>(),
                        )),
                        columns,
                        &arrow::array::RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
                    )
                    .map_err(|e| e.to_string())?;
                    fitted.push(picked);
                }
                fitted
            }
        };
        conform_to_schema(batches, &self.schema, "the file").map_err(|e| e.to_string())
    }
}

#[async_trait]
impl Source for DirectorySource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    async fn cut(&mut self, _batch_time: i64) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for file in self.list().await? {
            if self.taken.contains(&file.location) {
                continue;
            }
            let bytes = match self.fetch_opt(&file).await? {
                Some(bytes) => bytes,
                None => {
                    // Gone between listing and reading (renamed away): not ours.
                    log::warn!(
                        "directory source '{}': {} vanished before it was read; skipped",
                        self.name,
                        file.location
                    );
                    continue;
                }
            };
            // Taken whatever happens: a bad file is reported once.
            self.taken.insert(file.location.clone());
            match self.parse(bytes) {
                Ok(batches) => out.extend(batches),
                Err(reason) => {
                    let message = format!(
                        "file {} does not read as ({}): {reason}",
                        file.location,
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
}
