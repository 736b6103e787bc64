//! `connector = 'postgres'`: each batch into a PostgreSQL table, in one
//! transaction, through `COPY ... FROM STDIN` (never a statement per row).
//!
//! Options:
//! - `url` (required): `postgres://user:password@host:port/db`, or the
//!   `host=... user=... dbname=...` form libpq takes.
//! - `table`: the table (default: the sink's name). It must exist and have a
//!   column, by name, for every column of the stream; other columns take
//!   their defaults.
//! - `key = 'col, ...'`: upsert. The batch is copied into a temporary table
//!   and merged with `INSERT ... ON CONFLICT (key) DO UPDATE`, so replaying a
//!   batch leaves the table as it was; when a batch has a key twice, its last
//!   row wins. The table needs a primary key or unique index on exactly
//!   these columns. Without `key`, rows are appended.
//! - `pool_size` (default 2): connections kept open and reused across
//!   batches; a broken one is replaced.
//! - `retries` (default 3): a batch that fails for a reason that may pass
//!   (connection lost, server restarting, serialization failure) is tried
//!   again after 0.25 s, 0.5 s, 1 s, ...; then, or at once for an error in
//!   the data, the stream stops with the table, the batch time and the
//!   server's message. Nothing of a failed batch is committed (but see
//!   `COMMIT` below).
//!
//! The table, its columns, the key's index and whether each column's Arrow
//! type can be written are checked when the sink is created, so most
//! mistakes are reported before the first batch (a value the table's column
//! type rejects is reported by the server at its batch).
//!
//! Key columns must not be NULL: such a batch fails before anything is
//! written. If the connection is lost during `COMMIT`, the batch may or may
//! not be in the table: with `key` it is tried again (harmless), without it
//! the stream stops and says so rather than risk appending it twice.
//!
//! Connections are plain TCP (no TLS yet): use a server on loopback or a
//! private network.
//!
//! ```sql
//! CREATE SINK totals FROM word_totals WITH (
//!   connector = 'postgres', url = 'postgres://sluice@127.0.0.1:5432/sluice',
//!   table = 'word_totals', key = 'word');
//! ```

pub mod copy_text;

use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::SinkExt;
use sluice_core::sink::{Sink, SinkContext, SinkFactory, SinkSpec};
use sluice_core::{Result, SluiceError};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use copy_text::{CopyText, postgres_type};

/// Bytes sent to COPY per message.
const CHUNK: usize = 1 << 20;

pub struct PostgresSinkFactory;

#[async_trait]
impl SinkFactory for PostgresSinkFactory {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn option_names(&self) -> &'static [&'static str] {
        &["url", "table", "key", "pool_size", "retries"]
    }

    async fn create(&self, spec: SinkSpec, _ctx: &SinkContext) -> Result<Box<dyn Sink>> {
        let o = &spec.options;
        let what = format!("postgres sink '{}'", spec.name);
        let url = o.require("url", &what)?;
        let table = o.get("table").unwrap_or(&spec.name).to_string();
        let key: Vec<String> = o
            .get("key")
            .map(|k| k.split(',').map(|c| c.trim().to_string()).collect())
            .unwrap_or_default();
        let pool_size = o.get_usize("pool_size")?.unwrap_or(2).max(1);
        let retries = o.get_usize("retries")?.unwrap_or(3);
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| SluiceError::Config(format!("{what}: url: {e}")))?;
        let target = server_name(&config);
        let mut config = config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let fail = |message: String| SluiceError::Config(format!("{what} ({target}): {message}"));
        let encoder = CopyText::new(&spec.schema).map_err(&fail)?;
        let columns: Vec<String> = spec
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if let Some(k) = key.iter().find(|k| !columns.contains(k)) {
            return Err(fail(format!(
                "key column '{k}' is not a column of '{}' ({})",
                spec.from,
                columns.join(", ")
            )));
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(10)))
            .wait_timeout(Some(Duration::from_secs(30)))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let sink = PostgresSink {
            name: spec.name.clone(),
            target: target.clone(),
            pool,
            statements: Statements::new(&table, &columns, &key),
            table,
            key,
            schema: spec.schema.clone(),
            encoder,
            retries,
            buffer: Vec::new(),
        };
        sink.check(&spec.from).await.map_err(&fail)?;
        Ok(Box::new(sink))
    }
}

/// `host:port/db`, for messages (never the password).
fn server_name(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{}",
        config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
    )
}

/// A PostgreSQL identifier, quoted (column names keep their case).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The SQL the sink runs, written once.
#[derive(Debug)]
struct Statements {
    /// `COPY` into the table (no key) or into the staging table (key).
    copy: String,
    /// With a key: creates the staging table, then merges it.
    stage: Option<(String, String)>,
}

impl Statements {
    fn new(table: &str, columns: &[String], key: &[String]) -> Self {
        let list = columns
            .iter()
            .map(|c| quote(c))
            .collect::<Vec<_>>()
            .join(", ");
        if key.is_empty() {
            return Self {
                copy: format!("COPY {table} ({list}) FROM STDIN"),
                stage: None,
            };
        }
        let keys = key.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
        let updates: Vec<String> = columns
            .iter()
            .filter(|c| !key.contains(c))
            .map(|c| format!("{0} = EXCLUDED.{0}", quote(c)))
            .collect();
        let action = if updates.is_empty() {
            "NOTHING".to_string()
        } else {
            format!("UPDATE SET {}", updates.join(", "))
        };
        Self {
            copy: format!("COPY pg_temp.sluice_stage ({list}) FROM STDIN"),
            stage: Some((
                // The stream's columns with the table's types, no constraints
                // (an identity or NOT NULL column the stream lacks is the
                // table's business), and the order rows arrived in.
                format!(
                    "CREATE TEMP TABLE sluice_stage ON COMMIT DROP AS SELECT {list} FROM {table} WITH NO DATA; \
                     ALTER TABLE pg_temp.sluice_stage ADD COLUMN sluice_row BIGSERIAL"
                ),
                format!(
                    "INSERT INTO {table} ({list}) SELECT DISTINCT ON ({keys}) {list} FROM pg_temp.sluice_stage ORDER BY {keys}, sluice_row DESC ON CONFLICT ({keys}) DO {action}"
                ),
            )),
        }
    }
}

/// See the module docs.
pub struct PostgresSink {
    name: String,
    target: String,
    table: String,
    key: Vec<String>,
    pool: Pool,
    statements: Statements,
    schema: SchemaRef,
    encoder: CopyText,
    retries: usize,
    /// The batch as COPY text, reused from batch to batch.
    buffer: Vec<u8>,
}

/// Why a write failed, and whether trying again may help.
struct Failure {
    message: String,
    transient: bool,
    /// The connection was lost during COMMIT.
    maybe_committed: bool,
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        let transient = match e.code() {
            None => e.is_closed() || e.as_db_error().is_none(),
            Some(code) => {
                let c = code.code();
                c.starts_with("08") // connection exception
                    // operator intervention (shutdown), but not a statement
                    // timeout or cancel: that would fail again
                    || (c.starts_with("57") && code != &SqlState::QUERY_CANCELED)
                    || code == &SqlState::T_R_SERIALIZATION_FAILURE
                    || code == &SqlState::T_R_DEADLOCK_DETECTED
                    || code == &SqlState::TOO_MANY_CONNECTIONS
            }
        };
        Failure {
            message: describe(&e),
            transient,
            maybe_committed: false,
        }
    }
}

impl From<deadpool_postgres::PoolError> for Failure {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Failure {
                message: other.to_string(),
                transient: true,
                maybe_committed: false,
            },
        }
    }
}

/// The server's message, with its detail and hint, or the client's error
/// with its cause.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut m = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(d) = db.detail() {
            m.push_str(&format!("; {d}"));
        }
        if let Some(h) = db.hint() {
            m.push_str(&format!("; hint: {h}"));
        }
        return m;
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

impl PostgresSink {
    /// The table exists, has every column, and (with a key) a unique index on
    /// the key: checked by running the merge on an empty staging table, in a
    /// transaction that is rolled back (the server finds the index when it
    /// plans the statement, not when it parses it).
    async fn check(&self, from: &str) -> std::result::Result<(), String> {
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|e| format!("cannot connect: {}", Failure::from(e).message))?;
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&self.table])
            .await
            .map_err(|e| describe(&e))?
            .get(0);
        if !exists {
            return Err(format!(
                "table '{}' does not exist; create it, e.g. {}",
                self.table,
                self.suggested_table()
            ));
        }
        let found = client
            .prepare(&format!("SELECT * FROM {} LIMIT 0", self.table))
            .await
            .map_err(|e| describe(&e))?;
        let have: Vec<&str> = found.columns().iter().map(|c| c.name()).collect();
        let missing: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|c| !have.contains(c))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "table '{}' has no column {} for '{from}' (it has {})",
                self.table,
                missing
                    .iter()
                    .map(|c| format!("'{c}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                have.join(", ")
            ));
        }
        if let Some((create, merge)) = &self.statements.stage {
            let tx = client.transaction().await.map_err(|e| describe(&e))?;
            tx.batch_execute(create).await.map_err(|e| describe(&e))?;
            if let Err(e) = tx.execute(merge, &[]).await {
                return Err(format!(
                    "key: {}; the table needs a primary key or unique index on exactly the key columns",
                    describe(&e)
                ));
            }
            tx.rollback().await.map_err(|e| describe(&e))?;
        }
        Ok(())
    }

    /// A `CREATE TABLE` for the stream's columns.
    fn suggested_table(&self) -> String {
        let columns: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    quote(f.name()),
                    postgres_type(f.data_type()).unwrap_or_default()
                )
            })
            .collect();
        let key = if self.key.is_empty() {
            String::new()
        } else {
            let key: Vec<String> = self.key.iter().map(|k| quote(k)).collect();
            format!(", PRIMARY KEY ({})", key.join(", "))
        };
        format!("CREATE TABLE {} ({}{key})", self.table, columns.join(", "))
    }

    /// One attempt: the whole batch in one transaction.
    async fn attempt(&self) -> std::result::Result<(), Failure> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if let Some((create, _)) = &self.statements.stage {
            tx.batch_execute(create).await?;
        }
        let sink = tx.copy_in::<_, Bytes>(&self.statements.copy).await?;
        futures::pin_mut!(sink);
        for chunk in self.buffer.chunks(CHUNK) {
            sink.send(Bytes::copy_from_slice(chunk)).await?;
        }
        sink.as_mut().finish().await?;
        if let Some((_, merge)) = &self.statements.stage {
            tx.execute(merge, &[]).await?;
        }
        tx.commit().await.map_err(|e| {
            let mut f = Failure::from(e);
            if f.transient {
                // Lost while committing: the server may have committed.
                // With a key, trying again is harmless; appending again
                // could write the batch twice.
                f.transient = !self.key.is_empty();
                f.message = format!(
                    "{} while committing; the batch may or may not have been committed",
                    f.message
                );
                f.maybe_committed = true;
            }
            f
        })?;
        Ok(())
    }
}

#[async_trait]
impl Sink for PostgresSink {
    async fn write(&mut self, batch_time: i64, batches: &[RecordBatch]) -> Result<()> {
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(());
        }
        let fail = |message: String| SluiceError::Sink {
            name: self.name.clone(),
            batch_time,
            message,
        };
        for b in batches {
            for k in &self.key {
                if let Some(column) = b.column_by_name(k)
                    && column.null_count() > 0
                {
                    return Err(fail(format!(
                        "key column '{k}' is NULL in a row; an upsert needs a value to match on (nothing of this batch was written)"
                    )));
                }
            }
        }
        self.buffer.clear();
        for b in batches {
            self.encoder.encode(b, &mut self.buffer).map_err(fail)?;
        }
        let mut tries = 0;
        loop {
            match self.attempt().await {
                Ok(()) => return Ok(()),
                Err(f) if f.transient && tries < self.retries => {
                    let wait = Duration::from_millis(250 << tries.min(6));
                    tries += 1;
                    log::warn!(
                        "postgres sink '{}' ({}): batch {batch_time} failed ({}); try {} of {} in {:?}",
                        self.name,
                        self.target,
                        f.message,
                        tries + 1,
                        self.retries + 1,
                        wait
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(f) => {
                    let attempts = if tries > 0 {
                        format!(" after {} attempts", tries + 1)
                    } else {
                        String::new()
                    };
                    let committed = if f.maybe_committed {
                        ""
                    } else {
                        " (nothing of this batch was committed)"
                    };
                    return Err(SluiceError::Sink {
                        name: self.name.clone(),
                        batch_time,
                        message: format!(
                            "writing to table '{}' at {}{attempts}: {}{committed}",
                            self.table, self.target, f.message
                        ),
                    });
                }
            }
        }
    }
}
