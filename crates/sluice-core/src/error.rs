//! sluice's one error type. Each kind carries the structured place it happened
//! (statement and location, stream, source, sink, batch time) rather than a
//! pre-formatted string, so callers can both print it and act on it.

use datafusion::error::DataFusionError;
use sluice_sql::{Location, SqlError};

pub type Result<T, E = SluiceError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum SluiceError {
    /// A statement of a script failed to parse or plan.
    #[error("statement {statement} at {location}: {message}")]
    Statement {
        statement: usize,
        location: Location,
        message: String,
    },

    /// A syntax or option error with its place.
    #[error("{0}")]
    Sql(#[from] SqlError),

    /// A stream, source or sink definition is not valid.
    #[error("{message}")]
    Plan {
        message: String,
        location: Option<Location>,
    },

    /// Running a stream's plan for a batch failed.
    #[error("stream '{stream}', batch {batch_time} ms: {source}")]
    Execution {
        stream: String,
        batch_time: i64,
        source: DataFusionError,
    },

    /// A source could not produce a batch.
    #[error("source '{name}', batch {batch_time} ms: {message}")]
    Source {
        name: String,
        batch_time: i64,
        message: String,
    },

    /// A sink could not write a batch.
    #[error("sink '{name}', batch {batch_time} ms: {message}")]
    Sink {
        name: String,
        batch_time: i64,
        message: String,
    },

    /// A checkpoint could not be written, or read back whole.
    #[error("checkpoint {location}: {message}")]
    Checkpoint { location: String, message: String },

    /// A setting or API call that does not fit the context's state.
    #[error("{0}")]
    Config(String),

    #[error("{}", .0.strip_backtrace())]
    DataFusion(#[from] DataFusionError),

    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),

    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl SluiceError {
    /// The most precise place this error knows of, if any.
    pub fn location(&self) -> Option<Location> {
        match self {
            SluiceError::Statement { location, .. } => Some(*location),
            SluiceError::Sql(e) => Some(e.location),
            SluiceError::Plan { location, .. } => *location,
            SluiceError::DataFusion(e) => datafusion_location(e),
            _ => None,
        }
    }

    /// The message without its place (the place is shown by [`SluiceError::Statement`]).
    pub fn message(&self) -> String {
        match self {
            SluiceError::Sql(e) => e.message.clone(),
            SluiceError::Plan { message, .. } => message.clone(),
            SluiceError::DataFusion(e) => match sql_parser_error(e) {
                Some(parsed) => parsed.message,
                None => e.strip_backtrace(),
            },
            other => other.to_string(),
        }
    }

    /// Wraps an error of statement `statement` (starting at `start`) with the
    /// statement's number and the most precise location known.
    pub fn in_statement(self, statement: usize, start: Location) -> SluiceError {
        match self {
            SluiceError::Statement { .. } => self,
            other => SluiceError::Statement {
                statement,
                location: other.location().unwrap_or(start),
                message: other.message(),
            },
        }
    }
}

/// DataFusion attaches spans to some planning errors (unknown column, unknown
/// table) when `sql_parser.collect_spans` is on.
fn datafusion_location(e: &DataFusionError) -> Option<Location> {
    if let Some(parsed) = sql_parser_error(e) {
        return (parsed.location.line > 0).then_some(parsed.location);
    }
    let span = e.diagnostic()?.span?;
    (span.start.line > 0).then(|| Location::new(span.start.line, span.start.column))
}

/// A syntax error DataFusion's parser found, with its place lifted out of the message.
fn sql_parser_error(e: &DataFusionError) -> Option<SqlError> {
    match e.find_root() {
        DataFusionError::SQL(parser_error, _) => Some(SqlError::from_parser(
            (**parser_error).clone(),
            Location::default(),
        )),
        _ => None,
    }
}

/// Returns early with a [`SluiceError::Plan`] built from a format string.
///
/// ```
/// use sluice_core::{plan_err, Result};
/// fn check(n: usize) -> Result<()> {
///     if n == 0 { return plan_err!("stream '{}' reads nothing", "s"); }
///     Ok(())
/// }
/// assert_eq!(check(0).unwrap_err().to_string(), "stream 's' reads nothing");
/// ```
#[macro_export]
macro_rules! plan_err {
    ($($arg:tt)*) => {
        Err($crate::SluiceError::Plan { message: format!($($arg)*), location: None })
    };
}

/// Returns early with a [`SluiceError::Config`] built from a format string.
#[macro_export]
macro_rules! config_err {
    ($($arg:tt)*) => {
        Err($crate::SluiceError::Config(format!($($arg)*)))
    };
}

/// A plan error at a known place.
pub fn plan_error_at(message: impl Into<String>, location: Location) -> SluiceError {
    SluiceError::Plan {
        message: message.into(),
        location: Some(location),
    }
}
