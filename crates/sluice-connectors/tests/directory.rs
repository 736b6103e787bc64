//! The directory source on real files (and on `memory://`): files moved in
//! between batches land in the next batch, oldest first; a file taken once
//! is not read again when modified; subdirectories and dot-files are
//! ignored; existing files only with `include_existing`; each format; a file
//! that does not fit the columns fails the stream or is skipped, per
//! `on_error`, with its name in the error.

mod common;

use std::time::Duration;

use common::{source, text};
use datafusion::prelude::SessionContext;

/// Writes `name` atomically (a dot-file renamed in), as producers should.
fn put(dir: &std::path::Path, name: &str, body: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
    // Distinct modification times keep the order of arrival.
    std::thread::sleep(Duration::from_millis(15));
}

#[tokio::test]
async fn new_text_files_each_batch_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "old.txt", b"before the start\n");
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/inner.txt"), "in a subdirectory\n").unwrap();
    let session = SessionContext::new();
    let mut s = source(&session, None, &[("path", d.to_str().unwrap())])
        .await
        .unwrap();
    assert!(
        text(&s.cut(1000).await.unwrap()).is_empty(),
        "existing files are ignored"
    );
    put(d, "b.txt", b"b1\nb2\n");
    put(d, "a.txt", b"a1\r\n");
    // A file still being written under a dot-name is left alone.
    std::fs::write(d.join(".partial.txt"), "not yet").unwrap();
    assert_eq!(
        text(&s.cut(2000).await.unwrap()),
        ["b1", "b2", "a1"],
        "oldest first"
    );
    // Names object_store would percent-encode are read, once; a file
    // being written by an object_store put (`name#<n>`) is not.
    put(d, "odd ~%[1] name.txt", b"odd\n");
    std::fs::write(d.join("batch-1.txt#7"), "half written").unwrap();
    assert_eq!(text(&s.cut(2500).await.unwrap()), ["odd"]);
    assert!(text(&s.cut(2600).await.unwrap()).is_empty());
    // Modified after being taken: not read again.
    std::fs::write(d.join("b.txt"), "b1\nb2\nb3\n").unwrap();
    put(d, "c.txt", b"c1\n");
    assert_eq!(text(&s.cut(3000).await.unwrap()), ["c1"]);
    assert!(text(&s.cut(4000).await.unwrap()).is_empty());
}

#[tokio::test]
async fn a_directory_made_after_the_source_is_watched() {
    let parent = tempfile::tempdir().unwrap();
    let d = parent.path().join("later");
    let session = SessionContext::new();
    let mut s = source(&session, None, &[("path", d.to_str().unwrap())])
        .await
        .unwrap();
    assert!(text(&s.cut(1000).await.unwrap()).is_empty());
    std::fs::create_dir(&d).unwrap();
    put(&d, "first.txt", b"here now\n");
    assert_eq!(text(&s.cut(2000).await.unwrap()), ["here now"]);
}

#[tokio::test]
async fn include_existing_and_memory_urls() {
    let session = SessionContext::new();
    let store = sluice_connectors::store::resolve(&session, "memory://inbox/").unwrap();
    use object_store::ObjectStoreExt;
    store
        .store
        .put(&store.child("first.txt"), "one\ntwo\n".into())
        .await
        .unwrap();
    let mut s = source(
        &session,
        None,
        &[("path", "memory://inbox/"), ("include_existing", "true")],
    )
    .await
    .unwrap();
    assert_eq!(text(&s.cut(1000).await.unwrap()), ["one", "two"]);
    store
        .store
        .put(&store.child("second.txt"), "three\n".into())
        .await
        .unwrap();
    assert_eq!(text(&s.cut(2000).await.unwrap()), ["three"]);
}

#[tokio::test]
async fn the_same_on_file_and_memory_urls() {
    let session = SessionContext::new();
    common::directory_and_sink_on(&session, "memory://bucket/").await;
    let dir = tempfile::tempdir().unwrap();
    let base = format!("file://{}/", dir.path().display());
    common::directory_and_sink_on(&session, &base).await;
}

#[tokio::test]
async fn csv_json_and_parquet_with_declared_or_inferred_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let session = SessionContext::new();
    // csv, columns inferred from the file present at creation.
    put(d, "0.csv", b"id,name\n1,ann\n");
    let mut s = source(
        &session,
        None,
        &[
            ("path", d.to_str().unwrap()),
            ("format", "csv"),
            ("include_existing", "true"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        s.schema().field(0).data_type(),
        &arrow::datatypes::DataType::Int64
    );
    put(d, "1.csv", b"id,name\n2,bob\n3,cy\n");
    assert_eq!(
        text(&s.cut(1000).await.unwrap()),
        ["1,ann", "2,bob", "3,cy"]
    );

    // json lines, declared columns.
    let jdir = tempfile::tempdir().unwrap();
    let mut s = source(
        &session,
        Some("SELECT CAST(NULL AS BIGINT) AS id, CAST(NULL AS VARCHAR) AS name"),
        &[("path", jdir.path().to_str().unwrap()), ("format", "json")],
    )
    .await
    .unwrap();
    put(
        jdir.path(),
        "1.json",
        b"{\"id\": 7, \"name\": \"dee\"}\n{\"id\": 8}\n",
    );
    assert_eq!(text(&s.cut(1000).await.unwrap()), ["7,dee", "8"]);

    // parquet written by DataFusion, columns picked by name.
    let pdir = tempfile::tempdir().unwrap();
    let mut s = source(
        &session,
        Some("SELECT CAST(NULL AS BIGINT) AS n"),
        &[
            ("path", pdir.path().to_str().unwrap()),
            ("format", "parquet"),
        ],
    )
    .await
    .unwrap();
    let df = session
        .sql("SELECT 'x' AS label, 41 + 1 AS n")
        .await
        .unwrap();
    let batches = df.collect().await.unwrap();
    let mut buf = Vec::new();
    {
        let mut w =
            parquet::arrow::ArrowWriter::try_new(&mut buf, batches[0].schema(), None).unwrap();
        w.write(&batches[0]).unwrap();
        w.close().unwrap();
    }
    put(pdir.path(), "1.parquet", &buf);
    assert_eq!(text(&s.cut(1000).await.unwrap()), ["42"]);
}

/// A fresh directory watched with `options` (besides `path`), `files`
/// moved into it, and the first batch cut.
async fn first_batch(
    session: &SessionContext,
    declared: Option<&str>,
    options: &[(&str, &str)],
    files: &[(&str, &[u8])],
) -> sluice_core::Result<Vec<arrow::array::RecordBatch>> {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![("path", dir.path().to_str().unwrap())];
    all.extend_from_slice(options);
    let mut s = source(session, declared, &all).await.unwrap();
    for (name, body) in files {
        put(dir.path(), name, body);
    }
    s.cut(1000).await
}

#[tokio::test]
async fn a_file_that_does_not_fit_fails_or_is_skipped() {
    let session = SessionContext::new();
    let declared = Some("SELECT CAST(NULL AS BIGINT) AS id");
    let csv = [("format", "csv")];
    let err = first_batch(
        &session,
        declared,
        &csv,
        &[("bad.csv", b"id\n1\nnot a number\n")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("file ") && err.contains("bad.csv does not read as (id Int64)"),
        "{err}"
    );
    assert!(
        err.contains("'not a number'") && err.contains("at line 3"),
        "{err}"
    );
    assert!(err.contains("on_error = 'skip'"), "{err}");

    let read = first_batch(
        &session,
        declared,
        &[("format", "csv"), ("on_error", "skip")],
        &[
            ("bad.csv", b"id\nnot a number\n"),
            ("renamed.csv", b"ident\n6\n"),
            ("good.csv", b"id\n5\n"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(text(&read), ["5"]);

    // json: a key that is not a column does not pass as NULLs.
    let err = first_batch(
        &session,
        declared,
        &[("format", "json")],
        &[("other.json", b"{\"id\": 1}\n{\"user\": 1}\n")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("other.json does not read as (id Int64): line 2: "),
        "{err}"
    );

    // csv without a header: the line is still the file's.
    let err = first_batch(
        &session,
        declared,
        &[("format", "csv"), ("header", "false")],
        &[("plain.csv", b"1\nx\n")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("'x'") && err.contains("at line 2"), "{err}");

    // text: the line that is not UTF-8.
    let err = first_batch(&session, None, &[], &[("latin1.txt", b"ok\ncaf\xe9\n")])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("latin1.txt does not read as (value Utf8): line 2 is not UTF-8 (byte 6)"),
        "{err}"
    );

    // Nothing to infer from: the error says to declare the columns.
    let empty = tempfile::tempdir().unwrap();
    let err = source(
        &session,
        None,
        &[("path", empty.path().to_str().unwrap()), ("format", "csv")],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("no file in") && err.contains("declare them"),
        "{err}"
    );
}
