//! `connector = 'text'`: Spark's `saveAsTextFiles(prefix, suffix)`. Each batch
//! goes to the directory `<path>-<batch ms>[.<suffix>]` as `part-00000` (rows
//! rendered as `print` shows them) and an empty `_SUCCESS` written last, so a
//! reader that waits for `_SUCCESS` never sees half a batch. A rerun of the
//! same batch overwrites its directory.
//!
//! A batch of at least twice [`PART_ROWS`] rows is split into runs of
//! [`PART_ROWS`] or more consecutive rows, at most one per partition of the
//! session (`target_partitions`), as Spark writes one part per partition:
//! `part-00000`, `part-00001`, ..., read in that order. Each part is
//! rendered and written by its own thread.
//!
//! ```
//! assert_eq!(sluice_connectors::text::batch_dir_name("data/output/", None, 1000), "data/output/-1000");
//! assert_eq!(sluice_connectors::text::batch_dir_name("out/words", Some("txt"), 5000), "out/words-5000.txt");
//! ```

use arrow::array::RecordBatch;
use async_trait::async_trait;
use bytes::Bytes;
use datafusion::prelude::SessionContext;
use sluice_core::at_once::map_at_once;
use sluice_core::render::push_spark_rows;
use sluice_core::sink::{Sink, SinkContext, SinkFactory, SinkSpec};
use sluice_core::{Result, SluiceError};

use crate::store::resolve;

/// Spark's `rddToFileName`: `prefix-<ms>`, plus `.suffix` when given.
pub fn batch_dir_name(prefix: &str, suffix: Option<&str>, batch_time: i64) -> String {
    match suffix {
        Some(s) if !s.is_empty() => format!("{prefix}-{batch_time}.{s}"),
        _ => format!("{prefix}-{batch_time}"),
    }
}

pub struct TextSinkFactory;

#[async_trait]
impl SinkFactory for TextSinkFactory {
    fn name(&self) -> &'static str {
        "text"
    }

    fn option_names(&self) -> &'static [&'static str] {
        &["path", "suffix"]
    }

    async fn create(&self, spec: SinkSpec, ctx: &SinkContext) -> Result<Box<dyn Sink>> {
        let prefix = spec.options.require("path", "the 'text' sink")?.to_string();
        let suffix = spec.options.get("suffix").map(str::to_string);
        // Resolve now so a bad URL fails before the first batch.
        resolve(&ctx.session, &batch_dir_name(&prefix, suffix.as_deref(), 0))?;
        Ok(Box::new(TextSink {
            parts_at_most: ctx.session.state().config().target_partitions().max(1),
            session: ctx.session.clone(),
            name: spec.name,
            prefix,
            suffix,
        }))
    }
}

pub struct TextSink {
    session: SessionContext,
    name: String,
    prefix: String,
    suffix: Option<String>,
    /// The session's `target_partitions`.
    parts_at_most: usize,
}

/// A part holds at least this many rows (or the whole batch, if it has fewer).
pub const PART_ROWS: usize = 16 * 1024;

/// The rows of `batches` as `parts` runs of consecutive rows, of about the
/// same length (fewer when there are fewer rows): slices, not copies.
pub fn split_rows(batches: &[RecordBatch], parts: usize) -> Vec<Vec<RecordBatch>> {
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let parts = parts.clamp(1, total.max(1));
    let mut runs = vec![Vec::new(); parts];
    let mut offset = 0; // rows before `batch`
    for batch in batches {
        let n = batch.num_rows();
        for (part, run) in runs.iter_mut().enumerate() {
            let (from, to) = (total * part / parts, total * (part + 1) / parts);
            let (start, end) = (from.max(offset), to.min(offset + n));
            if start < end {
                run.push(batch.slice(start - offset, end - start));
            }
        }
        offset += n;
    }
    runs
}

/// `rows` as the text sink writes them ([`push_spark_rows`]).
fn render(rows: &[RecordBatch]) -> Result<Bytes> {
    let mut text = String::new();
    push_spark_rows(rows, usize::MAX, &mut text)?;
    Ok(Bytes::from(text.into_bytes()))
}

/// Each of `runs` rendered ([`render`]), at once ([`map_at_once`]).
fn render_at_once(runs: &[Vec<RecordBatch>]) -> Result<Vec<Bytes>> {
    map_at_once(runs, |run| render(run))
        .into_iter()
        .map(|text| {
            text.unwrap_or_else(|_| {
                Err(std::io::Error::other("the text sink's rendering thread panicked").into())
            })
        })
        .collect()
}

#[async_trait]
impl Sink for TextSink {
    async fn write(&mut self, batch_time: i64, batches: &[RecordBatch]) -> Result<()> {
        let dir = batch_dir_name(&self.prefix, self.suffix.as_deref(), batch_time);
        let location = resolve(&self.session, &dir)?;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let parts = (rows / PART_ROWS).clamp(1, self.parts_at_most);
        let mut files: Vec<(String, Bytes)> = render_at_once(&split_rows(batches, parts))?
            .into_iter()
            .enumerate()
            .map(|(i, part)| (format!("part-{i:05}"), part))
            .collect();
        files.push(("_SUCCESS".to_string(), Bytes::new()));
        location
            .put_dir_whole(files)
            .await
            .map_err(|e| SluiceError::Sink {
                name: self.name.clone(),
                batch_time,
                message: format!("writing '{dir}': {e}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use arrow::array::{ArrayRef, Int64Array};
    use std::sync::Arc;

    /// `[from, to)` as batches of `sizes` rows.
    fn numbers(sizes: &[usize]) -> Vec<RecordBatch> {
        let mut from = 0;
        sizes
            .iter()
            .map(|&n| {
                let column: ArrayRef =
                    Arc::new(Int64Array::from_iter_values(from..from + n as i64));
                from += n as i64;
                RecordBatch::try_from_iter([("n", column)]).unwrap()
            })
            .collect()
    }

    /// Runs are consecutive, cover every row once, and differ by a row at most.
    #[test]
    fn runs_cover_every_row_once_in_order() {
        for sizes in [&[10][..], &[3, 0, 7, 1], &[1, 1, 1], &[], &[0]] {
            let batches = numbers(sizes);
            let total: usize = sizes.iter().sum();
            for parts in 1..=5 {
                let runs = split_rows(&batches, parts);
                assert_eq!(
                    runs.len(),
                    parts.clamp(1, total.max(1)),
                    "{sizes:?} in {parts}"
                );
                let mut next = 0;
                let mut lengths = Vec::new();
                for run in &runs {
                    let mut length = 0;
                    for batch in run {
                        let n = batch
                            .column(0)
                            .as_any()
                            .downcast_ref::<Int64Array>()
                            .unwrap();
                        for v in n.values() {
                            assert_eq!(*v, next);
                            next += 1;
                        }
                        length += n.len();
                    }
                    lengths.push(length);
                }
                assert_eq!(next as usize, total);
                let (min, max) = (lengths.iter().min(), lengths.iter().max());
                assert!(max.unwrap() - min.unwrap() <= 1, "{lengths:?}");
            }
        }
    }

    /// Parts rendered on their own threads, put together, are the rows
    /// rendered in one go.
    #[test]
    fn parts_rendered_at_once_are_the_rows_in_order() {
        let batches = numbers(&[5000, 1, 20000]);
        let whole = render(&batches).unwrap();
        for parts in 1..=3 {
            let texts = render_at_once(&split_rows(&batches, parts)).unwrap();
            assert_eq!(texts.len(), parts);
            assert_eq!(texts.concat(), whole.as_ref());
        }
    }
}
