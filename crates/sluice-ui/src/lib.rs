//! # sluice-ui
//!
//! The status page of a running job, as Spark's Streaming tab shows it:
//! input rate, scheduling delay, processing time and total delay as
//! timelines and histograms with averages, the stream graph (sources →
//! streams → sinks) and the recent batches, updating live. Also a JSON API
//! (`/api/batches`, `/api/streams`) and Prometheus text (`/metrics`).
//!
//! - [`api`]: the JSON documents;
//! - [`prometheus`]: the `/metrics` text;
//! - [`page`]: the page and its chart library (uPlot, shipped inside the
//!   binary: no CDN).
//!
//! ```no_run
//! # async fn run(ssc: sluice_core::StreamingContext) -> std::io::Result<()> {
//! let ui = sluice_ui::serve(ssc, "127.0.0.1:4040").await?;
//! println!("status page at http://{}/", ui.address);
//! # Ok(()) }
//! ```

pub mod api;
pub mod page;
pub mod prometheus;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use sluice_core::StreamingContext;
use tokio::task::JoinHandle;

/// A running status page.
pub struct UiHandle {
    /// Where it listens (the port is the real one when asked for port 0).
    pub address: SocketAddr,
    pub task: JoinHandle<()>,
}

/// The routes over `ssc`.
pub fn router(ssc: StreamingContext) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/uplot.js", get(page::uplot_js))
        .route("/uplot.css", get(page::uplot_css))
        .route("/api/batches", get(batches))
        .route("/api/streams", get(streams))
        .route("/metrics", get(metrics))
        .with_state(ssc)
}

/// Serves the status page of `ssc` on `address` (e.g. `127.0.0.1:4040`)
/// until `task` is aborted (or the runtime ends).
pub async fn serve(ssc: StreamingContext, address: &str) -> std::io::Result<UiHandle> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let address = listener.local_addr()?;
    let app = router(ssc);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("status page: {e}");
        }
    });
    Ok(UiHandle { address, task })
}

async fn batches(State(ssc): State<StreamingContext>) -> Json<api::Batches> {
    Json(api::batches(&ssc).await)
}

async fn streams(State(ssc): State<StreamingContext>) -> Json<api::Streams> {
    Json(api::streams(&ssc).await)
}

async fn metrics(State(ssc): State<StreamingContext>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus::render(&ssc),
    )
}
