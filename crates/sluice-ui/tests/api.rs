//! The status page's JSON API and Prometheus text over real HTTP on
//! loopback, against a job on a manual clock: the numbers are the batches'.

use std::sync::Arc;
use std::time::Duration;

use datafusion::prelude::SessionContext;
use sluice_core::{BatchInfo, ClockChoice, ManualClock, StreamingContext, StreamingListener};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path`: (status line, content type, body).
async fn get(address: std::net::SocketAddr, path: &str) -> (String, String, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_string();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

#[derive(Default)]
struct Seen(std::sync::Mutex<Vec<String>>);

impl StreamingListener for Seen {
    fn on_batch_submitted(&self, t: i64) {
        self.0.lock().unwrap().push(format!("submitted {t}"));
    }
    fn on_batch_started(&self, t: i64) {
        self.0.lock().unwrap().push(format!("started {t}"));
    }
    fn on_batch_completed(&self, info: &BatchInfo) {
        self.0
            .lock()
            .unwrap()
            .push(format!("completed {}", info.batch_time));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_streams_and_metrics_report_the_job() {
    let ssc = StreamingContext::new(SessionContext::new(), Duration::from_secs(1));
    let clock = Arc::new(ManualClock::new(0));
    ssc.set_clock(ClockChoice::Manual(Arc::clone(&clock)));
    ssc.sql(
        "CREATE SOURCE nums (n BIGINT) WITH (connector = 'queue');
         CREATE STREAM odd AS SELECT n FROM nums WHERE n % 2 = 1;
         INSERT INTO nums VALUES (1), (2), (3);
         INSERT INTO nums VALUES (5), (6);",
    )
    .await
    .unwrap();
    ssc.foreach_batch("odd", |_, _| async { Ok(()) })
        .await
        .unwrap();
    let seen = Arc::new(Seen::default());
    ssc.add_listener(seen.clone());
    let ui = sluice_ui::serve(ssc.clone(), "127.0.0.1:0").await.unwrap();
    ssc.start().await.unwrap();
    for n in 1..=3 {
        clock.advance_ms(1000);
        ssc.wait_for_batches(n).await.unwrap();
    }

    let (status, content_type, body) = get(ui.address, "/api/batches").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(content_type, "application/json");
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(api["batch_interval_ms"], 1000);
    assert_eq!(api["completed"], 3);
    let batches = api["batches"].as_array().unwrap();
    let column = |key: &str| batches.iter().map(|b| b[key].clone()).collect::<Vec<_>>();
    assert_eq!(column("batch_time"), [1000, 2000, 3000]);
    assert_eq!(column("total_input_rows"), [3, 2, 0]);
    assert_eq!(
        batches[0]["input_rows"],
        serde_json::json!([{"name": "nums", "rows": 3}])
    );
    assert_eq!(batches[1]["output_rows"][0]["rows"], 1);
    for b in batches {
        let (sub, start, end) = (
            b["submission_time"].as_i64().unwrap(),
            b["processing_start_time"].as_i64().unwrap(),
            b["processing_end_time"].as_i64().unwrap(),
        );
        assert!(
            sub > 1_700_000_000_000 && sub <= start && start <= end,
            "{b}"
        );
        let total = b["total_delay_ms"].as_f64().unwrap();
        let parts =
            b["scheduling_delay_ms"].as_f64().unwrap() + b["processing_time_ms"].as_f64().unwrap();
        assert!((total - parts).abs() < 1e-6, "{b}");
    }

    let (_, _, body) = get(ui.address, "/api/streams").await;
    let graph: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(graph["sources"][0]["name"], "nums");
    assert_eq!(graph["sources"][0]["detail"], "queue");
    assert_eq!(graph["streams"][0]["name"], "odd");
    assert_eq!(graph["streams"][0]["inputs"], serde_json::json!(["nums"]));
    assert_eq!(graph["sinks"][0]["inputs"], serde_json::json!(["odd"]));

    let (status, content_type, metrics) = get(ui.address, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    for line in [
        "# TYPE sluice_batches_completed_total counter",
        "sluice_batches_completed_total 3",
        "sluice_input_rows_total{source=\"nums\"} 5",
        "sluice_output_rows_total{sink=\"foreach_batch_1\"} 3",
        "sluice_last_batch_time_ms 3000",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no '{line}' in:\n{metrics}"
        );
    }

    let (status, _, page) = get(ui.address, "/").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(page.contains("<script src=\"/uplot.js\"></script>"));
    let (_, content_type, js) = get(ui.address, "/uplot.js").await;
    assert_eq!(content_type, "text/javascript");
    assert!(js.len() > 40_000);

    ssc.stop(true).await.unwrap();
    let seen = seen.0.lock().unwrap().clone();
    for t in [1000, 2000, 3000] {
        let at = |what: &str| seen.iter().position(|s| *s == format!("{what} {t}"));
        let (s, b, c) = (at("submitted"), at("started"), at("completed"));
        assert!(
            s.is_some() && s < b && b < c,
            "listener calls for {t}: {seen:?}"
        );
    }
}
