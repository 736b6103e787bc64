//! `sluice checkpoint inspect <dir>`: what a checkpoint holds, read-only:
//! its manifests, the last completed batch, each source's position, each
//! stateful stream's saved parts and sizes, and write-ahead logs.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let session = datafusion::prelude::SessionContext::new();
//! let text = sluice_core::checkpoint::inspect::describe(&session, "memory://none").await.unwrap();
//! assert!(text.contains("no completed batch"), "{text}");
//! # });
//! ```

use std::fmt::Write;

use datafusion::prelude::SessionContext;

use super::{ManifestStore, WAL_DIR};
use crate::error::Result;
use crate::store::resolve;

/// A report of the checkpoint at `location` (checked as a restart would).
pub async fn describe(session: &SessionContext, location: &str) -> Result<String> {
    let at = resolve(session, location)?;
    let local = at.local.clone();
    let manifests = ManifestStore::at(at);
    let times = manifests.times().await?;
    let mut out = String::new();
    let Some(m) = manifests.latest().await? else {
        return Ok(format!("checkpoint {location}: no completed batch\n"));
    };
    let _ = writeln!(
        out,
        "checkpoint {location}: {} manifest(s), batches {} ms .. {} ms",
        times.len(),
        times.first().copied().unwrap_or(m.batch_time),
        m.batch_time
    );
    let _ = writeln!(
        out,
        "last completed batch: {} ms ({} batches since the stream's first)",
        m.batch_time, m.batches
    );
    if !m.sources.is_empty() {
        let _ = writeln!(out, "\nsources:");
        for (name, entry) in &m.sources {
            let _ = writeln!(
                out,
                "  {name}: {} WITH ({})\n    position {}",
                entry["connector"].as_str().unwrap_or("?"),
                entry["options"].as_str().unwrap_or("?"),
                entry["position"]
            );
        }
    }
    if !m.streams.is_empty() {
        let _ = writeln!(out, "\nstate:");
        for (name, saved) in &m.streams {
            let rows: usize = saved.parts.iter().map(|p| p.rows).sum();
            let bytes: usize = saved.parts.iter().map(|p| p.bytes).sum();
            let _ = writeln!(
                out,
                "  {name}: {} part(s), {rows} rows, {bytes} bytes",
                saved.parts.len()
            );
            for (what, value) in &saved.signature {
                let _ = writeln!(out, "    {what}: {value}");
            }
            for p in &saved.parts {
                let _ = writeln!(
                    out,
                    "    {} at {} ms: {} rows, {} bytes ({})",
                    p.kind, p.batch_time, p.rows, p.bytes, p.file
                );
            }
        }
    }
    if let Some(dir) = &local {
        let logs = dir.join(WAL_DIR);
        if let Ok(entries) = std::fs::read_dir(&logs) {
            let _ = writeln!(out, "\nwrite-ahead logs:");
            for e in entries.flatten() {
                let files: Vec<_> = std::fs::read_dir(e.path())
                    .map(|d| d.flatten().collect())
                    .unwrap_or_default();
                let bytes: u64 = files
                    .iter()
                    .filter_map(|f| f.metadata().ok())
                    .map(|m| m.len())
                    .sum();
                let _ = writeln!(
                    out,
                    "  {}: {} file(s), {bytes} bytes not yet committed",
                    e.file_name().to_string_lossy(),
                    files.len()
                );
            }
        }
    }
    Ok(out)
}
