//! The page: one HTML file with its script, and uPlot (MIT, shipped inside
//! the binary; see `assets/uplot/README`). The script polls `/api/batches`
//! and `/api/streams` each second and redraws.
//!
//! Each chart's element carries `data-points` (how many batches it plots)
//! and each average its value, for tests and scripts that read the page.

use axum::http::header;
use axum::response::{Html, IntoResponse};

const INDEX: &str = include_str!("../assets/index.html");
const UPLOT_JS: &str = include_str!("../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../assets/uplot/uPlot.min.css");

pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

pub async fn uplot_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript")], UPLOT_JS)
}

pub async fn uplot_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css")], UPLOT_CSS)
}
