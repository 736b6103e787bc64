//! The socket source's write-ahead log, kept in the checkpoint directory
//! (`wal/<source>/`) when the job has a checkpoint: what a socket received
//! cannot be asked for again, so it is on disk before a batch uses it.
//!
//! - Received lines are appended to `open.log` as they arrive (one write
//!   per read from the socket), so a killed process loses none it read.
//! - Cutting batch `T` closes `open.log` as the segment `<T>.log`: fsynced,
//!   renamed, directory fsynced. The batch is that segment's lines.
//! - After a restart, a segment of a batch that was cut but not committed
//!   is found under its batch time and cut again as it was; `open.log`
//!   keeps what was received after it and goes into the next batch.
//! - Segments of committed batches are removed.
//!
//! ```
//! use sluice_connectors::socket::wal::Wal;
//! let dir = tempfile::tempdir().unwrap();
//! let mut wal = Wal::open(dir.path()).unwrap();
//! wal.append(&["a".to_string(), "b".to_string()]).unwrap();
//! assert_eq!(wal.cut(1000).unwrap(), vec!["a", "b"]);
//! // Killed before batch 1000 was committed: a new log cuts it again.
//! drop(wal);
//! let mut again = Wal::open(dir.path()).unwrap();
//! assert_eq!(again.cut(1000).unwrap(), vec!["a", "b"]);
//! again.forget_through(1000);
//! assert_eq!(again.cut(2000).unwrap(), Vec::<String>::new());
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const OPEN: &str = "open.log";
const SUFFIX: &str = ".log";

/// One source's log; see the module docs.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    open: File,
    /// Reused for each append: lines joined with `\n`.
    scratch: Vec<u8>,
}

impl Wal {
    /// Opens (or creates) the log in `dir`, appending to what it holds.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            open: open_append(&dir.join(OPEN))?,
            scratch: Vec::new(),
        })
    }

    /// Where the log is.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends received lines (not yet fsynced: that is per batch).
    pub fn append(&mut self, lines: &[String]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.scratch.clear();
        for l in lines {
            self.scratch.extend_from_slice(l.as_bytes());
            self.scratch.push(b'\n');
        }
        self.open.write_all(&self.scratch)
    }

    /// The lines of batch `t`: its segment if an earlier process cut it,
    /// else everything received since the last cut, made its segment.
    pub fn cut(&mut self, t: i64) -> io::Result<Vec<String>> {
        let segment = self.segment(t);
        if !segment.exists() {
            self.open.sync_all()?;
            std::fs::rename(self.dir.join(OPEN), &segment)?;
            File::open(&self.dir)?.sync_all()?;
            self.open = open_append(&self.dir.join(OPEN))?;
        }
        let bytes = std::fs::read(&segment)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not UTF-8: {e}", segment.display()),
            )
        })?;
        let body = text.strip_suffix('\n').unwrap_or(&text);
        if body.is_empty() && !text.starts_with('\n') {
            return Ok(Vec::new());
        }
        Ok(body.split('\n').map(str::to_string).collect())
    }

    /// Removes the segments of batches up to `t` (committed).
    pub fn forget_through(&self, t: i64) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(time) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            if time <= t
                && let Err(err) = std::fs::remove_file(e.path())
            {
                log::warn!("cannot remove {}: {err}", e.path().display());
            }
        }
    }

    fn segment(&self, t: i64) -> PathBuf {
        self.dir.join(format!("{t:020}{SUFFIX}"))
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}
