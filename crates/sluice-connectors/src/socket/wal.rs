//! The socket source's write-ahead log, kept in the checkpoint directory
//! (`wal/<source>/`) when the job has a checkpoint: what a socket received
//! cannot be asked for again, so it is on disk before a batch uses it.
//!
//! - Received lines are appended to `open.log` as they arrive (one write
//!   per read from the socket), so a killed process loses none it read.
//! - Cutting batch `T` closes `open.log` as the segment `<T>.log`: fsynced,
//!   renamed, directory fsynced. The batch is that segment's lines.
//! - After a restart, segments of batches that were cut but not committed
//!   are still there. The first cut takes every one up to its time, oldest
//!   first: a batch cut again at the same time gets the same lines; one at
//!   a later time (the wall clock moved on) gets them all, then what was
//!   received since. `open.log` keeps what was received after the last cut
//!   and goes into the next batch. Each line is in one file only, so none is
//!   lost or repeated however often the process dies.
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
    /// The last batch this process cut: segments up to it were handed out.
    cut_through: Option<i64>,
}

impl Wal {
    /// Opens (or creates) the log in `dir`, appending to what it holds.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            open: open_append(&dir.join(OPEN))?,
            scratch: Vec::new(),
            cut_through: None,
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

    /// The lines of batch `t`: the segments not handed out yet up to `t`
    /// (after a restart, those an earlier process cut), oldest first; what
    /// was received since the last cut becomes segment `t` unless an
    /// earlier process already cut one at `t`.
    pub fn cut(&mut self, t: i64) -> io::Result<Vec<String>> {
        let segment = self.segment(t);
        if !segment.exists() {
            self.open.sync_all()?;
            std::fs::rename(self.dir.join(OPEN), &segment)?;
            File::open(&self.dir)?.sync_all()?;
            self.open = open_append(&self.dir.join(OPEN))?;
        }
        let after = self.cut_through.unwrap_or(i64::MIN);
        let mut lines = Vec::new();
        for (time, path) in self.segments()? {
            if time > after && time <= t {
                read_lines(&path, &mut lines)?;
            }
        }
        self.cut_through = Some(t);
        Ok(lines)
    }

    /// The segments in the directory, oldest first.
    fn segments(&self) -> io::Result<Vec<(i64, PathBuf)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)?.flatten() {
            let name = e.file_name();
            if let Some(time) = name
                .to_str()
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse::<i64>().ok())
            {
                out.push((time, e.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes the segments of batches up to `t` (committed).
    pub fn forget_through(&self, t: i64) {
        let Ok(segments) = self.segments() else {
            return;
        };
        for (time, path) in segments {
            if time <= t
                && let Err(err) = std::fs::remove_file(&path)
            {
                log::warn!("cannot remove {}: {err}", path.display());
            }
        }
    }

    fn segment(&self, t: i64) -> PathBuf {
        self.dir.join(format!("{t:020}{SUFFIX}"))
    }
}

/// Appends the lines of a segment to `out`.
fn read_lines(path: &Path, out: &mut Vec<String>) -> io::Result<()> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not UTF-8: {e}", path.display()),
        )
    })?;
    if let Some(body) = text.strip_suffix('\n') {
        out.extend(body.split('\n').map(str::to_string));
    } else if !text.is_empty() {
        out.extend(text.split('\n').map(str::to_string));
    }
    Ok(())
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Batches cut and queued (not committed) are handed out once each; a
    /// restart on another batch grid (the wall clock moved on) gets every
    /// uncommitted segment in its first batch, then goes on.
    #[test]
    fn uncommitted_segments_are_cut_once_whatever_the_next_batch_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(dir.path()).unwrap();
        wal.append(&lines(&["a", ""])).unwrap();
        assert_eq!(wal.cut(1000).unwrap(), lines(&["a", ""]));
        wal.append(&lines(&["b"])).unwrap();
        assert_eq!(wal.cut(2000).unwrap(), lines(&["b"]), "1000 was handed out");
        wal.append(&lines(&["c"])).unwrap();
        drop(wal); // killed: nothing committed, c not cut

        let mut again = Wal::open(dir.path()).unwrap();
        again.append(&lines(&["d"])).unwrap();
        assert_eq!(again.cut(7000).unwrap(), lines(&["a", "", "b", "c", "d"]));
        again.forget_through(7000);
        assert_eq!(again.cut(8000).unwrap(), Vec::<String>::new());
        assert_eq!(again.segments().unwrap().len(), 1, "only 8000 is left");
    }
}
