//! `/metrics`: Prometheus text format (version 0.0.4). Counters since the
//! job started; gauges for the last batch.

use std::fmt::Write;

use sluice_core::StreamingContext;

/// A label value, escaped as the format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render(ssc: &StreamingContext) -> String {
    let totals = ssc.totals();
    let last = ssc.batch_infos().pop();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in lines {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    metric(
        "sluice_batches_completed_total",
        "counter",
        "Batches run to completion.",
        vec![(String::new(), totals.batches as f64)],
    );
    metric(
        "sluice_input_rows_total",
        "counter",
        "Rows taken from each source.",
        totals
            .input_rows
            .iter()
            .map(|(s, n)| (format!("{{source=\"{}\"}}", label(s)), *n as f64))
            .collect(),
    );
    metric(
        "sluice_output_rows_total",
        "counter",
        "Rows written to each sink.",
        totals
            .output_rows
            .iter()
            .map(|(s, n)| (format!("{{sink=\"{}\"}}", label(s)), *n as f64))
            .collect(),
    );
    metric(
        "sluice_scheduling_delay_seconds_total",
        "counter",
        "Time batches waited between being cut and starting.",
        vec![(String::new(), totals.scheduling_delay.as_secs_f64())],
    );
    metric(
        "sluice_processing_seconds_total",
        "counter",
        "Time spent running batches.",
        vec![(String::new(), totals.processing_time.as_secs_f64())],
    );
    if let Some(b) = last {
        metric(
            "sluice_last_batch_time_ms",
            "gauge",
            "Batch time of the last completed batch.",
            vec![(String::new(), b.batch_time as f64)],
        );
        metric(
            "sluice_last_batch_scheduling_delay_seconds",
            "gauge",
            "Scheduling delay of the last completed batch.",
            vec![(String::new(), b.scheduling_delay.as_secs_f64())],
        );
        metric(
            "sluice_last_batch_processing_seconds",
            "gauge",
            "Processing time of the last completed batch.",
            vec![(String::new(), b.processing_time.as_secs_f64())],
        );
        metric(
            "sluice_last_batch_total_delay_seconds",
            "gauge",
            "Total delay of the last completed batch.",
            vec![(String::new(), b.total_delay().as_secs_f64())],
        );
    }
    out
}
