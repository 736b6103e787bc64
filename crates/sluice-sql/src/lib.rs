//! # sluice-sql
//!
//! The SQL surface of sluice: a script is split into statements (each with the
//! line and column it starts at), and sluice's own statements are parsed into
//! [`SluiceStatement`]s. Everything else (`CREATE TABLE`, `CREATE EXTERNAL
//! TABLE`, `SELECT`, DataFusion `SET`s, ...) is kept as text for DataFusion.
//!
//! ```
//! use sluice_sql::{parse_script, SluiceStatement};
//!
//! let script = "SET batch_interval = '1 second';\n\
//!               CREATE SOURCE lines WITH (connector = 'words', seed = 7);\n\
//!               CREATE STREAM words AS SELECT unnest(string_to_array(value, ' ')) AS word FROM lines;\n\
//!               CREATE SINK out FROM words WITH (connector = 'console');";
//! let statements = parse_script(script).unwrap();
//! assert_eq!(statements.len(), 4);
//! assert!(matches!(statements[1].statement, SluiceStatement::CreateSource(_)));
//! assert_eq!(statements[2].location.line, 3);
//! ```
//!
//! Durations (`'5 seconds'`) and `WITH (...)` options live here too, so that every
//! connector reads its options the same way and reports the same errors.

mod duration;
mod error;
mod options;
mod script;
mod statement;

pub use duration::{format_duration, parse_duration};
pub use error::{Location, SqlError};
pub use options::{OptionValue, Options};
pub use script::{LocatedStatement, parse_script, split_statements};
pub use statement::{
    ColumnSpec, CreateSink, CreateSource, CreateStream, Describe, DropNode, EmitMode, EvictWhen,
    ExplainStream, SetVariable, Show, ShowKind, SluiceStatement, normalize_ident,
};

/// The sqlparser this crate parses with (the one DataFusion uses).
pub use sqlparser;
