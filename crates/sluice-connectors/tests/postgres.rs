//! The PostgreSQL sink against a real server (Debian's, started here on
//! 127.0.0.1 in a throwaway data directory): rows of every supported type
//! arrive unchanged; with `key`, a replayed batch does not duplicate and the
//! last row of a key wins; mistakes are reported when the sink is created;
//! a lost server is retried, and a batch that cannot be written fails the
//! stream with nothing of it committed.

mod common;
#[path = "common/outside.rs"]
mod outside;
#[path = "common/postgres_server.rs"]
mod postgres_server;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
    Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::prelude::SessionContext;
use postgres_server::PgServer;

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

fn counts(rows: &[(&str, i64)]) -> RecordBatch {
    batch(vec![
        (
            "word",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
        ),
        (
            "count",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
        ),
    ])
}

/// The table's rows as text, sorted.
async fn table(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<_, Option<String>>(i))
                .collect()
        })
        .collect()
}

fn row(values: &[Option<&str>]) -> Vec<Option<String>> {
    values.iter().map(|v| v.map(str::to_string)).collect()
}

#[tokio::test]
async fn rows_of_every_type_arrive_unchanged() {
    let Some(pg) = PgServer::start() else { return };
    let client = pg.client().await;
    client
        .batch_execute(
            "CREATE TABLE events (i INTEGER, n BIGINT, f DOUBLE PRECISION, b BOOLEAN, s TEXT,
               d DATE, ts TIMESTAMP, amount NUMERIC(10, 2), raw BYTEA, note TEXT DEFAULT 'kept')",
        )
        .await
        .unwrap();
    let b = batch(vec![
        ("i", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
        ("n", Arc::new(Int64Array::from(vec![Some(10), None]))),
        ("f", Arc::new(Float64Array::from(vec![2.5, -0.125]))),
        ("b", Arc::new(BooleanArray::from(vec![Some(true), None]))),
        (
            "s",
            Arc::new(StringArray::from(vec![
                Some("tab\there\nnew line \\ back 'q' \"dq\" é"),
                Some(""),
            ])),
        ),
        ("d", Arc::new(Date32Array::from(vec![19_723, 0]))),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(vec![
                1_704_067_200_123_456,
                0,
            ])),
        ),
        (
            "amount",
            Arc::new(
                Decimal128Array::from(vec![12_345, -5])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ),
        (
            "raw",
            Arc::new(BinaryArray::from(vec![&b"\x00\xff"[..], &b""[..]])),
        ),
    ]);
    let session = SessionContext::new();
    let mut sink = common::sink(
        &session,
        "postgres",
        b.schema(),
        &[("url", &pg.url()), ("table", "events")],
    )
    .await
    .unwrap();
    sink.write(1000, std::slice::from_ref(&b)).await.unwrap();
    // An empty batch writes nothing and needs no round trip.
    sink.write(2000, &[RecordBatch::new_empty(b.schema())])
        .await
        .unwrap();
    assert_eq!(
        table(
            &client,
            "SELECT i::text, n::text, f::text, b::text, s, d::text, ts::text, amount::text,
                    encode(raw, 'hex'), note FROM events ORDER BY i"
        )
        .await,
        [
            row(&[
                Some("1"),
                Some("10"),
                Some("2.5"),
                Some("true"),
                Some("tab\there\nnew line \\ back 'q' \"dq\" é"),
                Some("2024-01-01"),
                Some("2024-01-01 00:00:00.123456"),
                Some("123.45"),
                Some("00ff"),
                Some("kept"),
            ]),
            row(&[
                Some("2"),
                None,
                Some("-0.125"),
                None,
                Some(""),
                Some("1970-01-01"),
                Some("1970-01-01 00:00:00"),
                Some("-0.05"),
                Some(""),
                Some("kept"),
            ]),
        ]
    );
}

#[tokio::test]
async fn with_a_key_a_replayed_batch_does_not_duplicate() {
    let Some(pg) = PgServer::start() else { return };
    let client = pg.client().await;
    client
        .batch_execute(
            "CREATE TABLE totals (id BIGINT GENERATED ALWAYS AS IDENTITY, word TEXT PRIMARY KEY,
                                  count BIGINT NOT NULL);
             CREATE TABLE appended (word TEXT, count BIGINT);
             CREATE TABLE seen (word TEXT, count BIGINT, PRIMARY KEY (word, count))",
        )
        .await
        .unwrap();
    let session = SessionContext::new();
    let schema = counts(&[]).schema();
    let url = pg.url();
    let mut upsert = common::sink(
        &session,
        "postgres",
        schema.clone(),
        &[("url", &url), ("table", "totals"), ("key", "word")],
    )
    .await
    .unwrap();
    let mut append = common::sink(
        &session,
        "postgres",
        schema.clone(),
        &[("url", &url), ("table", "appended")],
    )
    .await
    .unwrap();
    let mut every_column = common::sink(
        &session,
        "postgres",
        schema,
        &[("url", &url), ("table", "seen"), ("key", "word, count")],
    )
    .await
    .unwrap();
    let first = counts(&[("a", 1), ("b", 2)]);
    for sink in [&mut upsert, &mut append, &mut every_column] {
        // The batch, then its replay (as after a restart).
        sink.write(1000, std::slice::from_ref(&first))
            .await
            .unwrap();
        sink.write(1000, std::slice::from_ref(&first))
            .await
            .unwrap();
    }
    let q = |t: &str| format!("SELECT word, count::text FROM {t} ORDER BY word, count");
    let ab = [row(&[Some("a"), Some("1")]), row(&[Some("b"), Some("2")])];
    assert_eq!(table(&client, &q("totals")).await, ab);
    assert_eq!(table(&client, &q("seen")).await, ab);
    assert_eq!(
        table(&client, &q("appended")).await.len(),
        4,
        "without a key, rows are appended"
    );
    // A NULL key cannot be matched: the batch fails before writing.
    let null_key = batch(vec![
        (
            "word",
            Arc::new(StringArray::from(vec![Some("z"), None])) as ArrayRef,
        ),
        ("count", Arc::new(Int64Array::from(vec![1, 2]))),
    ]);
    let err = upsert
        .write(1500, &[null_key])
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "sink 'out', batch 1500 ms: key column 'word' is NULL in a row; an upsert needs a value to match on (nothing of this batch was written)"
    );
    // A key twice in one batch: its last row wins; other keys are kept.
    upsert
        .write(2000, &[counts(&[("a", 5), ("c", 1)]), counts(&[("a", 6)])])
        .await
        .unwrap();
    assert_eq!(
        table(&client, &q("totals")).await,
        [
            row(&[Some("a"), Some("6")]),
            row(&[Some("b"), Some("2")]),
            row(&[Some("c"), Some("1")])
        ]
    );
}

async fn create_error(
    pg: &PgServer,
    schema: arrow::datatypes::SchemaRef,
    pairs: &[(&str, &str)],
) -> String {
    let url = pg.url();
    let mut all = vec![("url", url.as_str())];
    all.extend_from_slice(pairs);
    match common::sink(&SessionContext::new(), "postgres", schema, &all).await {
        Ok(_) => panic!("{pairs:?} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn mistakes_are_reported_when_the_sink_is_created() {
    let Some(pg) = PgServer::start() else { return };
    let client = pg.client().await;
    client
        .batch_execute("CREATE TABLE plain (word TEXT, total BIGINT)")
        .await
        .unwrap();
    let schema = counts(&[]).schema();
    let at = format!("postgres sink 'out' (127.0.0.1:{}/postgres)", pg.port);

    let err = create_error(
        &pg,
        schema.clone(),
        &[("table", "missing"), ("key", "word")],
    )
    .await;
    assert_eq!(
        err,
        format!(
            "{at}: table 'missing' does not exist; create it, e.g. CREATE TABLE missing (\"word\" TEXT, \"count\" BIGINT, PRIMARY KEY (\"word\"))"
        )
    );
    let err = create_error(&pg, schema.clone(), &[("table", "plain")]).await;
    assert_eq!(
        err,
        format!("{at}: table 'plain' has no column 'count' for 'numbers' (it has word, total)")
    );
    client
        .batch_execute("ALTER TABLE plain RENAME total TO count")
        .await
        .unwrap();
    let err = create_error(&pg, schema.clone(), &[("table", "plain"), ("key", "word")]).await;
    assert!(
        err.starts_with(&format!(
            "{at}: key: there is no unique or exclusion constraint"
        )) && err
            .ends_with("the table needs a primary key or unique index on exactly the key columns"),
        "{err}"
    );
    let err = create_error(&pg, schema.clone(), &[("table", "plain"), ("key", "id")]).await;
    assert_eq!(
        err,
        format!("{at}: key column 'id' is not a column of 'numbers' (word, count)")
    );
    let nested = arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new_list(
        "tags",
        arrow::datatypes::Field::new_list_field(arrow::datatypes::DataType::Utf8, true),
        true,
    )]);
    let err = create_error(&pg, Arc::new(nested), &[("table", "plain")]).await;
    assert!(
        err.starts_with(&format!("{at}: column 'tags' is List("))
            && err.ends_with("cast it (e.g. to TEXT)"),
        "{err}"
    );
    // Nothing listening: the error names the server, not a password.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("postgres://sluice:secret@127.0.0.1:{port}/app");
    let err = match common::sink(
        &SessionContext::new(),
        "postgres",
        schema,
        &[("url", &url), ("table", "plain")],
    )
    .await
    {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with(&format!(
            "postgres sink 'out' (127.0.0.1:{port}/app): cannot connect: "
        )),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
}

#[tokio::test]
async fn a_lost_server_is_retried_and_a_failed_batch_commits_nothing() {
    let Some(pg) = PgServer::start() else { return };
    pg.client()
        .await
        .batch_execute(
            "CREATE TABLE totals (word TEXT PRIMARY KEY, count BIGINT NOT NULL CHECK (count > 0))",
        )
        .await
        .unwrap();
    let session = SessionContext::new();
    let url = pg.url();
    let open = |retries: &'static str| {
        let session = session.clone();
        let url = url.clone();
        async move {
            common::sink(
                &session,
                "postgres",
                counts(&[]).schema(),
                &[
                    ("url", &url),
                    ("table", "totals"),
                    ("key", "word"),
                    ("retries", retries),
                ],
            )
            .await
            .unwrap()
        }
    };
    let mut patient = open("8").await;
    let mut hasty = open("1").await;
    patient.write(1000, &[counts(&[("a", 1)])]).await.unwrap();
    hasty.write(1000, &[counts(&[("a", 1)])]).await.unwrap();

    // The server goes away; the write waits and retries until it is back.
    pg.halt();
    let restart = async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        pg.resume();
    };
    let b = [counts(&[("b", 2)])];
    let (written, ()) = tokio::join!(patient.write(2000, &b), restart);
    written.unwrap();

    // With too few retries the batch fails, naming the table and the batch.
    pg.halt();
    let err = hasty
        .write(3000, &[counts(&[("c", 3)])])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "sink 'out', batch 3000 ms: writing to table 'totals' at 127.0.0.1:{}/postgres after 2 attempts: ",
            pg.port
        )) && err.ends_with("(nothing of this batch was committed)"),
        "{err}"
    );
    pg.resume();
    // Replayed once the server is back: written once.
    hasty.write(3000, &[counts(&[("c", 3)])]).await.unwrap();

    // Bad data fails at once, and the batch's good rows are not committed.
    let err = patient
        .write(4000, &[counts(&[("d", 4), ("e", -1)])])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("violates check constraint \"totals_count_check\" (SQLSTATE 23514)")
            && !err.contains("attempts"),
        "{err}"
    );
    let client = pg.client().await;
    assert_eq!(
        table(
            &client,
            "SELECT word, count::text FROM totals ORDER BY word"
        )
        .await,
        [
            row(&[Some("a"), Some("1")]),
            row(&[Some("b"), Some("2")]),
            row(&[Some("c"), Some("3")])
        ]
    );
}
