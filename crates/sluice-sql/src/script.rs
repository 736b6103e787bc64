//! Splitting a script into statements, each with its text and the place it starts.

use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::{Location, SqlError};
use crate::statement::{SluiceStatement, parse_statement_tokens};

/// One statement of a script: its 1-based position among the statements, where
/// it starts, its text, and what it parsed into.
#[derive(Debug, Clone)]
pub struct LocatedStatement {
    /// 1-based index among the script's statements.
    pub index: usize,
    pub location: Location,
    pub text: String,
    pub statement: SluiceStatement,
}

impl LocatedStatement {
    /// The statement's text preceded by blank lines and spaces so that a parser
    /// reading it reports the same line and column as in the whole script.
    pub fn positioned_text(&self) -> String {
        let mut s = "\n".repeat(self.location.line.saturating_sub(1) as usize);
        s.push_str(&" ".repeat(self.location.column.saturating_sub(1) as usize));
        s.push_str(&self.text);
        s
    }
}

/// A statement's tokens (whitespace and comments kept) and its text.
#[derive(Debug)]
pub struct RawStatement {
    pub location: Location,
    pub text: String,
    pub tokens: Vec<TokenWithSpan>,
}

/// Splits a script at top-level `;` (a `;` inside a string or comment does not split).
pub fn split_statements(script: &str) -> Result<Vec<RawStatement>, SqlError> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, script)
        .tokenize_with_location()
        .map_err(|e| SqlError::new(e.message, e.location.into()))?;
    let index = LineIndex::new(script);
    let mut out = Vec::new();
    let mut current: Vec<TokenWithSpan> = Vec::new();
    let mut flush = |current: &mut Vec<TokenWithSpan>| {
        let toks = std::mem::take(current);
        let first = toks.iter().find(|t| !is_blank(&t.token));
        let last = toks.iter().rev().find(|t| !is_blank(&t.token));
        if let (Some(first), Some(last)) = (first, last) {
            let start = index.offset(first.span.start.into());
            let end = index.offset(last.span.end.into());
            out.push(RawStatement {
                location: first.span.start.into(),
                text: script[start..end.max(start)].to_string(),
                tokens: toks,
            });
        }
    };
    for t in tokens {
        if t.token == Token::SemiColon {
            flush(&mut current);
        } else {
            current.push(t);
        }
    }
    flush(&mut current);
    Ok(out)
}

/// Splits and parses a whole script. The first error stops parsing and names
/// the place it was found.
pub fn parse_script(script: &str) -> Result<Vec<LocatedStatement>, SqlError> {
    split_statements(script)?
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let statement = parse_statement_tokens(raw.tokens, raw.location)?;
            Ok(LocatedStatement {
                index: i + 1,
                location: raw.location,
                text: raw.text,
                statement,
            })
        })
        .collect()
}

pub(crate) fn is_blank(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_) | Token::EOF)
}

/// Maps (line, column-in-characters) to byte offsets of the script.
struct LineIndex<'a> {
    script: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(script: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(script.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            script,
            line_starts,
        }
    }

    /// Byte offset of a location; sqlparser's span ends are exclusive columns.
    fn offset(&self, loc: Location) -> usize {
        let Some(&start) = self.line_starts.get(loc.line.saturating_sub(1) as usize) else {
            return self.script.len();
        };
        let line = &self.script[start..];
        let col = loc.column.saturating_sub(1) as usize;
        start
            + line
                .char_indices()
                .nth(col)
                .map(|(i, _)| i)
                .unwrap_or(line.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let s = "SELECT 'a;b';\n  -- comment; here\n  SELECT 2 ;\n\n";
        let parts = split_statements(s).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].text, "SELECT 'a;b'");
        assert_eq!(parts[1].text, "SELECT 2");
        assert_eq!(parts[1].location, Location::new(3, 3));
    }

    #[test]
    fn positioned_text_keeps_places() {
        let stmts = parse_script("SELECT 1;\n   SELECT 2").unwrap();
        assert_eq!(stmts[1].positioned_text(), "\n   SELECT 2");
        assert_eq!(stmts[1].index, 2);
    }

    #[test]
    fn unterminated_string_names_its_place() {
        let e = split_statements("SELECT 1;\nSELECT 'oops").unwrap_err();
        assert_eq!(e.location.line, 2);
        assert!(e.message.contains("Unterminated string"), "{}", e.message);
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let parts = split_statements("SELECT '词频';SELECT 2").unwrap();
        assert_eq!(parts[0].text, "SELECT '词频'");
        assert_eq!(parts[1].text, "SELECT 2");
    }
}
