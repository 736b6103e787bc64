//! Errors of the SQL surface: what is wrong and where (line, column).

use std::fmt;

/// A place in a script: 1-based line and column (column in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Location {
    pub line: u64,
    pub column: u64,
}

impl Location {
    pub fn new(line: u64, column: u64) -> Self {
        Self { line, column }
    }
}

impl From<sqlparser::tokenizer::Location> for Location {
    fn from(l: sqlparser::tokenizer::Location) -> Self {
        Self {
            line: l.line,
            column: l.column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A syntax or option error, with the place it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at {location})")]
pub struct SqlError {
    pub message: String,
    pub location: Location,
}

impl SqlError {
    pub fn new(message: impl Into<String>, location: Location) -> Self {
        Self {
            message: message.into(),
            location,
        }
    }

    /// Turns a sqlparser error into one with a location. sqlparser puts the
    /// place at the end of its message (`... at Line: 3, Column: 7`); we lift
    /// it into [`Location`] so it can be shown the same way as ours.
    pub fn from_parser(err: sqlparser::parser::ParserError, fallback: Location) -> Self {
        let text = match err {
            sqlparser::parser::ParserError::TokenizerError(s)
            | sqlparser::parser::ParserError::ParserError(s) => s,
            sqlparser::parser::ParserError::RecursionLimitExceeded => {
                "statement is nested too deeply".to_string()
            }
        };
        let (message, location) = split_location_suffix(&text).unwrap_or((text.clone(), fallback));
        Self { message, location }
    }
}

/// Splits `"... at Line: 3, Column: 7"` into the message and the location.
pub(crate) fn split_location_suffix(text: &str) -> Option<(String, Location)> {
    let at = text.rfind(" at Line: ")?;
    let rest = &text[at + " at Line: ".len()..];
    let (line, column) = rest.split_once(", Column: ")?;
    let line = line.trim().parse().ok()?;
    let column = column.trim().parse().ok()?;
    Some((text[..at].to_string(), Location { line, column }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifts_parser_location() {
        let (m, l) = split_location_suffix("Expected: ), found: x at Line: 3, Column: 7").unwrap();
        assert_eq!(m, "Expected: ), found: x");
        assert_eq!(l, Location::new(3, 7));
        assert!(split_location_suffix("no place here").is_none());
    }
}
