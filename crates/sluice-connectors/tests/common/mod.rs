//! What the connector tests share: a directory source made from options,
//! rows as text, and one scenario run against every kind of store
//! (`file://`, `memory://`, `s3://`), and a sink made from options.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use object_store::ObjectStoreExt;
use sluice_core::sink::{SinkContext, SinkSpec};
use sluice_core::sluice_sql::{Location, Options};
use sluice_core::source::{Source, SourceContext, SourceSpec};

fn options(pairs: &[(&str, &str)]) -> Options {
    let mut o = Options::new(Location::new(1, 1));
    for (k, v) in pairs {
        o.insert(k, *v, Location::new(1, 1));
    }
    o
}

/// A directory source named `files`; `declared` is a query whose columns
/// are declared (`None`: inferred).
pub async fn source(
    session: &SessionContext,
    declared: Option<&str>,
    pairs: &[(&str, &str)],
) -> sluice_core::Result<Box<dyn Source>> {
    source_of(session, "directory", declared, pairs).await
}

/// A `connector` source named `files`, with 1-second batches.
pub async fn source_of(
    session: &SessionContext,
    connector: &str,
    declared: Option<&str>,
    pairs: &[(&str, &str)],
) -> sluice_core::Result<Box<dyn Source>> {
    let declared_schema = match declared {
        None => None,
        Some(sql) => {
            let df = session.sql(sql).await.unwrap();
            Some(Arc::new(df.schema().as_arrow().clone()))
        }
    };
    let spec = SourceSpec {
        name: "files".into(),
        declared_schema,
        options: options(pairs),
    };
    let ctx = SourceContext {
        session: session.clone(),
        batch_interval: Duration::from_secs(1),
    };
    let factory = sluice_connectors::registry().source(connector).unwrap();
    factory.create(spec, &ctx).await
}

/// Rows as `a,b` lines (NULLs left out).
pub fn text(batches: &[RecordBatch]) -> Vec<String> {
    let t = pretty_format_batches(batches).unwrap().to_string();
    t.lines()
        .filter(|l| l.starts_with("| "))
        .skip(1)
        .map(|l| {
            l.split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

/// The directory source and a file sink on the store at `base` (a URL ending
/// in `/`), through object_store only: what a user of that store sees.
pub async fn directory_and_sink_on(session: &SessionContext, base: &str) {
    let inbox = format!("{base}inbox/");
    let at = sluice_connectors::store::resolve(session, &inbox).unwrap();
    let put = |name: &str, body: &str| {
        let store = Arc::clone(&at.store);
        let path = at.child(name);
        let body = body.to_string();
        async move { store.put(&path, body.into()).await.unwrap() }
    };
    put("old.txt", "before the start\n").await;
    // A "subdirectory": objects under a deeper prefix.
    put("sub/inner.txt", "in a subdirectory\n").await;
    let mut s = source(session, None, &[("path", &inbox)]).await.unwrap();
    assert!(
        text(&s.cut(1000).await.unwrap()).is_empty(),
        "existing files are ignored ({base})"
    );
    put("a.txt", "a1\na2\n").await;
    put(".partial.txt", "not yet").await;
    assert_eq!(text(&s.cut(2000).await.unwrap()), ["a1", "a2"], "{base}");
    // Overwritten after being taken: not read again; a new file is.
    put("a.txt", "a1\na2\na3\n").await;
    put("b.txt", "b1\n").await;
    assert_eq!(text(&s.cut(3000).await.unwrap()), ["b1"], "{base}");
    assert!(text(&s.cut(4000).await.unwrap()).is_empty(), "{base}");

    // csv with declared columns; a file that does not fit names itself.
    let sales = format!("{base}sales/");
    let mut s = source(
        session,
        Some("SELECT CAST(NULL AS BIGINT) AS id, CAST(NULL AS DOUBLE) AS amount"),
        &[("path", &sales), ("format", "csv")],
    )
    .await
    .unwrap();
    let at = sluice_connectors::store::resolve(session, &sales).unwrap();
    at.store
        .put(&at.child("1.csv"), "id,amount\n1,2.5\n2,4\n".into())
        .await
        .unwrap();
    assert_eq!(
        text(&s.cut(1000).await.unwrap()),
        ["1,2.5", "2,4.0"],
        "{base}"
    );
    at.store
        .put(&at.child("2.csv"), "id,amount\nthree,1\n".into())
        .await
        .unwrap();
    let err = s.cut(2000).await.unwrap_err().to_string();
    assert!(
        err.contains("sales/2.csv does not read as (id Int64, amount Float64)"),
        "{err}"
    );

    // A parquet sink: one object per batch, named by batch time; a rerun of
    // the batch replaces it.
    let out = format!("{base}out");
    let rows = session
        .sql("SELECT 1 AS n UNION ALL SELECT 2")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut sink = sink(session, "parquet", rows[0].schema(), &[("path", &out)])
        .await
        .unwrap();
    sink.write(5000, &rows).await.unwrap();
    sink.write(5000, &rows).await.unwrap();
    let read = session
        .read_parquet(format!("{out}/"), Default::default())
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        text(&read).len(),
        2,
        "one file for the batch, not two ({base})"
    );
    let at = sluice_connectors::store::resolve(session, &out).unwrap();
    let listed = at.store.list_with_delimiter(Some(&at.path)).await.unwrap();
    let names: Vec<_> = listed
        .objects
        .iter()
        .filter_map(|m| m.location.filename())
        .collect();
    assert_eq!(names, ["batch-5000.parquet"], "{base}");
}

/// A `connector` sink named `out`, reading stream `numbers` of `schema`.
pub async fn sink(
    session: &SessionContext,
    connector: &str,
    schema: arrow::datatypes::SchemaRef,
    pairs: &[(&str, &str)],
) -> sluice_core::Result<Box<dyn sluice_core::sink::Sink>> {
    let spec = SinkSpec {
        name: "out".into(),
        from: "numbers".into(),
        schema,
        options: options(pairs),
    };
    let ctx = SinkContext {
        session: session.clone(),
        console: sluice_core::sink::ConsoleOutput::Stdout,
    };
    sluice_connectors::registry()
        .sink(connector)
        .unwrap()
        .create(spec, &ctx)
        .await
}
