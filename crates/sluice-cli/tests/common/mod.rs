//! Helpers shared by the `sluice` binary's tests.
#![allow(dead_code)]

use std::process::Output;

pub const DASHES: &str = "-------------------------------------------";

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Splits console output into (batch time, rows) blocks, checking Spark's
/// exact framing: dashes, `Time: <ms> ms`, dashes, rows, blank line.
pub fn batches(text: &str) -> Vec<(i64, Vec<String>)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        assert_eq!(lines[i], DASHES, "line {i} of:\n{text}");
        let time = lines[i + 1]
            .strip_prefix("Time: ")
            .and_then(|t| t.strip_suffix(" ms"))
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("bad time line {:?}", lines[i + 1]));
        assert_eq!(lines[i + 2], DASHES);
        i += 3;
        let mut rows = Vec::new();
        while lines[i] != "" {
            rows.push(lines[i].to_string());
            i += 1;
        }
        i += 1; // the blank line that ends a batch
        out.push((time, rows));
    }
    out
}
