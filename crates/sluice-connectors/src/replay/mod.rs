//! `connector = 'replay'`: Spark's `queueStream` over files. Each file of a
//! directory, in name order, is one batch of text lines (column `value`);
//! with `one_at_a_time = false` every file goes into the first batch. After
//! the last file, batches are empty.
//!
//! ```sql
//! CREATE SOURCE nums WITH (connector = 'replay', path = 'sql-examples/data/rdd_queue');
//! ```

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use sluice_core::byte_positions::BytePositions;
use sluice_core::source::{Source, SourceContext, SourceFactory, SourceSpec};
use sluice_core::{Result, SluiceError};

pub struct ReplaySourceFactory;

#[async_trait]
impl SourceFactory for ReplaySourceFactory {
    fn name(&self) -> &'static str {
        "replay"
    }

    fn option_names(&self) -> &'static [&'static str] {
        &["path", "one_at_a_time"]
    }

    async fn create(&self, spec: SourceSpec, _ctx: &SourceContext) -> Result<Box<dyn Source>> {
        let path = spec.options.require("path", "the 'replay' source")?;
        let one_at_a_time = spec.options.get_bool("one_at_a_time")?.unwrap_or(true);
        Ok(Box::new(ReplaySource::open(
            &spec.name,
            path,
            one_at_a_time,
        )?))
    }
}

/// Text lines as one `value` column.
pub fn text_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        "value",
        DataType::Utf8,
        false,
    )]))
}

/// Splits text into lines (`\n` or `\r\n`; a final newline ends the last
/// line), as `str::lines` does. The text's own buffer becomes the lines'
/// values: each line is moved down over the newlines before it, so there is
/// no second copy and no per-line builder call.
pub fn lines_batch(schema: &SchemaRef, text: String) -> Result<RecordBatch> {
    let mut bytes = text.into_bytes();
    let too_big = || SluiceError::Config("a text batch over 2 GiB".into());
    let mut ends: Vec<i32> = Vec::with_capacity(bytes.len() / 16 + 2);
    ends.push(0);
    // Newlines are found a block at a time, 64 bytes per comparison
    // ([`BytePositions`]), not with a search per line: lines are short, and
    // a search costs more to set up. Moving a line only writes below its
    // start, so the block being read is never written.
    const BLOCK: usize = 64 * 1024;
    // A line this short is moved as one fixed-size copy, not a `memmove` call.
    const SHORT: usize = 16;
    let mut newlines: Vec<usize> = Vec::with_capacity(BLOCK / 8);
    let (mut start, mut kept, mut scanned) = (0, 0, 0);
    let mut push_line = |bytes: &mut Vec<u8>, start: usize, end: usize| {
        if end - start <= SHORT && start - kept >= SHORT && start + SHORT <= bytes.len() {
            // A short line, far enough above where it goes: one 16-byte
            // load and store (what follows it there was already moved).
            let mut line = [0u8; SHORT];
            line.copy_from_slice(&bytes[start..start + SHORT]);
            bytes[kept..kept + SHORT].copy_from_slice(&line);
        } else {
            bytes.copy_within(start..end, kept);
        }
        kept += end - start;
        ends.push(i32::try_from(kept).map_err(|_| too_big())?);
        Ok::<(), SluiceError>(())
    };
    while scanned < bytes.len() {
        let block = scanned..(scanned + BLOCK).min(bytes.len());
        newlines.clear();
        let found = BytePositions::new(b'\n', &bytes[block.clone()]);
        newlines.extend(found.map(|at| block.start + at));
        for &newline in &newlines {
            let crlf = newline > start && bytes[newline - 1] == b'\r';
            push_line(&mut bytes, start, if crlf { newline - 1 } else { newline })?;
            start = newline + 1;
        }
        scanned = block.end;
    }
    // A last line without a newline.
    if start < bytes.len() {
        let end = bytes.len();
        push_line(&mut bytes, start, end)?;
    }
    bytes.truncate(kept);
    let offsets = OffsetBuffer::new(ScalarBuffer::from(ends));
    // SAFETY: `bytes` was a `String` and only whole ASCII `\r`/`\n` bytes
    // were taken out, so every line is a run of valid UTF-8 between char
    // boundaries; the offsets start at 0, never decrease and end at its length.
    let lines = unsafe { StringArray::new_unchecked(offsets, Buffer::from_vec(bytes), None) };
    Ok(RecordBatch::try_new(
        Arc::clone(schema),
        vec![Arc::new(lines)],
    )?)
}

#[derive(Debug)]
pub struct ReplaySource {
    name: String,
    schema: SchemaRef,
    files: VecDeque<PathBuf>,
    one_at_a_time: bool,
    /// Files handed out so far, and the name of the last (the checkpoint
    /// position).
    taken: usize,
    last: Option<String>,
}

impl ReplaySource {
    /// Lists the directory's files now; they are read when their batch is cut.
    pub fn open(name: &str, dir: &str, one_at_a_time: bool) -> Result<Self> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            SluiceError::Config(format!(
                "replay source '{name}': cannot list directory '{dir}': {e}"
            ))
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry?;
            let file_name = entry.file_name();
            let hidden = file_name.to_string_lossy().starts_with('.');
            if entry.file_type()?.is_file() && !hidden {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(Self {
            name: name.to_string(),
            schema: text_schema(),
            files: files.into(),
            one_at_a_time,
            taken: 0,
            last: None,
        })
    }

    fn read(&self, path: &PathBuf, batch_time: i64) -> Result<RecordBatch> {
        let bytes = std::fs::read(path).map_err(|e| SluiceError::Source {
            name: self.name.clone(),
            batch_time,
            message: format!("cannot read '{}': {e}", path.display()),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| SluiceError::Source {
            name: self.name.clone(),
            batch_time,
            message: format!(
                "'{}' is not UTF-8 text (byte offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ),
        })?;
        lines_batch(&self.schema, text)
    }
}

#[async_trait]
impl Source for ReplaySource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    async fn cut(&mut self, batch_time: i64) -> Result<Vec<RecordBatch>> {
        let take = if self.one_at_a_time {
            1.min(self.files.len())
        } else {
            self.files.len()
        };
        let files: Vec<PathBuf> = self.files.drain(..take).collect();
        self.taken += files.len();
        if let Some(f) = files.last() {
            self.last = f.file_name().map(|n| n.to_string_lossy().into_owned());
        }
        files.iter().map(|f| self.read(f, batch_time)).collect()
    }

    /// `{"files_taken": n, "last": name}`: files are taken in name order;
    /// a restart goes on after `last`, wherever it now is in the listing.
    fn position(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "files_taken": self.taken, "last": self.last }))
    }

    fn restore(&mut self, position: &serde_json::Value) -> Result<()> {
        let fail = |m: String| SluiceError::Config(format!("replay source '{}': {m}", self.name));
        let taken = position["files_taken"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                fail(format!(
                    "the checkpoint's position {position} has no files_taken"
                ))
            })?;
        if self.taken != 0 {
            return Err(fail("restored after it was cut".into()));
        }
        let at = match position["last"].as_str() {
            None if taken == 0 => 0,
            None => {
                return Err(fail(format!(
                    "the checkpoint's position {position} has no last file"
                )));
            }
            Some(last) => {
                let last = std::path::Path::new(last);
                match self
                    .files
                    .iter()
                    .position(|f| f.file_name() == Some(last.as_os_str()))
                {
                    Some(i) => i + 1,
                    None => {
                        return Err(fail(format!(
                            "the file the checkpoint took last, {}, is no longer in the directory",
                            last.display()
                        )));
                    }
                }
            }
        };
        self.files.drain(..at);
        self.taken = taken;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;

    #[tokio::test]
    async fn each_file_is_a_batch_then_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.txt"), "3\n4\n").unwrap();
        std::fs::write(dir.path().join("a.txt"), "1\r\n2").unwrap();
        std::fs::write(dir.path().join(".hidden"), "x").unwrap();
        let mut s = ReplaySource::open("r", dir.path().to_str().unwrap(), true).unwrap();
        let first = s.cut(1000).await.unwrap();
        let col = first[0]
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(col.iter().flatten().collect::<Vec<_>>(), vec!["1", "2"]);
        assert_eq!(s.cut(2000).await.unwrap()[0].num_rows(), 2);
        assert!(s.cut(3000).await.unwrap().is_empty());

        let mut all = ReplaySource::open("r", dir.path().to_str().unwrap(), false).unwrap();
        assert_eq!(all.cut(1000).await.unwrap().len(), 2);
        assert!(all.cut(2000).await.unwrap().is_empty());
    }

    #[test]
    fn lines_are_those_of_str_lines() {
        let schema = text_schema();
        let pieces = ["a", "b c", "\n", "\r\n", "\r", "é", ""];
        let mut state = 1u64;
        for seed in 0..500u64 {
            // A pseudo-random mix of the pieces (a linear congruential
            // generator), trailing newlines and a lone \r included; one
            // text in three long enough for lines to be moved far (the
            // 16-byte copy of short lines).
            let pieces_in_text = seed % 9 + if seed % 3 == 0 { 90 } else { 0 };
            let text: String = (0..pieces_in_text)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    pieces[((state >> 33) % pieces.len() as u64) as usize]
                })
                .collect();
            let batch = lines_batch(&schema, text.clone()).unwrap();
            let got: Vec<&str> = batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .iter()
                .map(|v| v.unwrap())
                .collect();
            assert_eq!(got, text.lines().collect::<Vec<_>>(), "{text:?}");
        }
    }

    /// Newlines are searched 64 KiB at a time: a `\r\n` cut by a block's
    /// end, and lines across several blocks, are still whole lines.
    #[test]
    fn lines_cross_search_blocks() {
        let schema = text_schema();
        let text = format!(
            "{}\r\n{}{}\ntail\r",
            "a".repeat(64 * 1024 - 1),
            "b é\r\n\n".repeat(40_000),
            "c".repeat(200_000)
        );
        let batch = lines_batch(&schema, text.clone()).unwrap();
        let got: Vec<&str> = batch
            .column(0)
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(got, text.lines().collect::<Vec<_>>());
    }

    #[test]
    fn missing_directory_is_named() {
        let e = ReplaySource::open("r", "/no/such/dir", true).unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot list directory '/no/such/dir'"),
            "{e}"
        );
    }
}
