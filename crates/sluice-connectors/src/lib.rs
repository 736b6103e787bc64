//! # sluice-connectors
//!
//! sluice's sources and sinks, one folder per connector, each behind
//! `sluice-core`'s [`SourceFactory`] / [`SinkFactory`] traits and found by
//! name (`connector = '...'`) in a [`ConnectorRegistry`].
//!
//! | connector | kind | Spark Streaming |
//! |---|---|---|
//! | `replay` | source | `queueStream` over files: each file of a directory is one batch |
//! | `constant` | source | `ConstantInputDStream`: the same rows every batch |
//! | `words` | source | the tutorial's `SocketLikeNC`: random words, seeded |
//! | `rate` | source | `timestamp, value` at N rows per second |
//! | `directory` | source | `textFileStream(dir)`: new files each batch; text, csv, json, parquet |
//! | `socket` | source | `socketTextStream(host, port)`: a line per row, reconnecting |
//! | `kafka` | source | `KafkaUtils.createDirectStream`: offset ranges per partition per batch; offsets in the checkpoint, the group or Redis |
//! | `queue` | source | `queueStream` fed by the application (in `sluice-core`) |
//! | `console` | sink | `print(n)` |
//! | `text` | sink | `saveAsTextFiles(prefix, suffix)` |
//! | `parquet`, `csv`, `json` | sinks | one file per batch: a local path, `file://`, `memory://`, `s3://`, or a store registered in the session |
//! | `postgres` | sink | `foreachRDD` writing to PostgreSQL: `COPY` per batch, upsert with `key` |
//! | `kafka` | sink | `KafkaProducer.send` per row, acknowledged before the batch counts as written |
//!
//! ```
//! let registry = sluice_connectors::registry();
//! assert!(registry.source("words").is_ok());
//! assert!(registry.sink("console").is_ok());
//! ```

use std::sync::Arc;

use sluice_core::ConnectorRegistry;
use sluice_core::sink::SinkFactory;
use sluice_core::source::SourceFactory;

pub mod console;
pub mod constant;
pub mod directory;
pub mod files;
pub mod kafka;
pub mod postgres;
pub mod rate;
pub mod replay;
pub mod socket;
pub mod store;
pub mod text;
pub mod word_server;
pub mod words;

/// Adds every connector of this crate to `registry`.
pub fn register_all(registry: &mut ConnectorRegistry) {
    let sources: Vec<Arc<dyn SourceFactory>> = vec![
        Arc::new(replay::ReplaySourceFactory),
        Arc::new(constant::ConstantSourceFactory),
        Arc::new(words::WordsSourceFactory),
        Arc::new(rate::RateSourceFactory),
        Arc::new(socket::SocketSourceFactory),
        Arc::new(directory::DirectorySourceFactory),
        Arc::new(kafka::KafkaSourceFactory),
    ];
    for s in sources {
        registry.register_source(s);
    }
    let sinks: Vec<Arc<dyn SinkFactory>> = vec![
        Arc::new(console::ConsoleSinkFactory),
        Arc::new(text::TextSinkFactory),
        Arc::new(files::FileSinkFactory::new(files::FileFormat::Parquet)),
        Arc::new(files::FileSinkFactory::new(files::FileFormat::Csv)),
        Arc::new(files::FileSinkFactory::new(files::FileFormat::Json)),
        Arc::new(postgres::PostgresSinkFactory),
        Arc::new(kafka::sink::KafkaSinkFactory),
    ];
    for s in sinks {
        registry.register_sink(s);
    }
}

/// The core's connectors plus all of this crate's.
pub fn registry() -> ConnectorRegistry {
    let mut r = ConnectorRegistry::with_builtins();
    register_all(&mut r);
    r
}
