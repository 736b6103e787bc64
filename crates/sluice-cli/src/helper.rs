//! The REPL's line editor helper (rustyline): a statement goes on until its
//! `;` (a backslash command is one line), keywords and strings are
//! highlighted, and Tab completes keywords and the names the job knows
//! (sources, streams, sinks, tables, columns, connectors, option keys).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

/// Keywords offered by Tab (upper case, or lower case if the word typed is).
const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "AS",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "JOIN",
    "LEFT",
    "ON",
    "UNION",
    "ALL",
    "DISTINCT",
    "CREATE",
    "SOURCE",
    "STREAM",
    "SINK",
    "TABLE",
    "EXTERNAL",
    "WITH",
    "SET",
    "SHOW",
    "STREAMS",
    "SOURCES",
    "SINKS",
    "TABLES",
    "BATCHES",
    "DESCRIBE",
    "EXPLAIN",
    "EMIT",
    "CHANGES",
    "SNAPSHOT",
    "EVICT",
    "WHEN",
    "INSERT",
    "INTO",
    "VALUES",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "UNNEST",
    "WINDOW",
    "BATCH_INTERVAL",
    "CASE",
    "THEN",
    "ELSE",
    "END",
    "IN",
    "IS",
    "LIKE",
    "BETWEEN",
    "CAST",
];

/// The helper; `words` is refreshed by the REPL after each statement.
#[derive(Default, Clone)]
pub struct ReplHelper {
    pub words: Arc<Mutex<Vec<String>>>,
}

impl ReplHelper {
    pub fn set_words(&self, words: Vec<String>) {
        *self.words.lock().unwrap_or_else(|e| e.into_inner()) = words;
    }
}

/// Whether `text` (one or more lines) is a whole input: a backslash
/// command, or statements ending with `;` outside quotes and comments.
pub fn is_complete(text: &str) -> bool {
    let t = text.trim();
    if t.is_empty() || t.starts_with('\\') {
        return true;
    }
    let (mut quote, mut last) = (None::<char>, ' ');
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '-' && chars.peek() == Some(&'-') => {
                // A comment, to the end of the line.
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                continue;
            }
            None => {}
        }
        if !c.is_whitespace() {
            last = c;
        }
    }
    quote.is_none() && last == ';'
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

/// The candidates for `word`.
pub fn candidates(word: &str, words: &[String]) -> Vec<String> {
    if word.is_empty() {
        return Vec::new();
    }
    let lower = word.chars().next().is_some_and(char::is_lowercase);
    let upper_word = word.to_ascii_uppercase();
    let mut out: Vec<String> = words
        .iter()
        .filter(|w| w.starts_with(word) && w.as_str() != word)
        .cloned()
        .collect();
    out.extend(
        KEYWORDS
            .iter()
            .filter(|k| k.starts_with(&upper_word) && **k != upper_word)
            .map(|k| {
                if lower {
                    k.to_ascii_lowercase()
                } else {
                    k.to_string()
                }
            }),
    );
    out.sort();
    out.dedup();
    out
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let words = self.words.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let pairs = candidates(&line[start..pos], &words)
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

/// Keywords bold blue, strings green, numbers yellow (ANSI colours).
pub fn highlight(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == '\'')
                .map_or(chars.len(), |p| i + 2 + p);
            out.push_str("\x1b[32m");
            out.extend(&chars[i..end]);
            out.push_str("\x1b[0m");
            i = end;
        } else if c.is_alphabetic() || c == '_' {
            let end = chars[i..]
                .iter()
                .position(|d| !(d.is_alphanumeric() || *d == '_'))
                .map_or(chars.len(), |p| i + p);
            let word: String = chars[i..end].iter().collect();
            if KEYWORDS.contains(&word.to_ascii_uppercase().as_str()) {
                out.push_str("\x1b[1;34m");
                out.push_str(&word);
                out.push_str("\x1b[0m");
            } else {
                out.push_str(&word);
            }
            i = end;
        } else if c.is_ascii_digit() {
            let end = chars[i..]
                .iter()
                .position(|d| !(d.is_ascii_digit() || *d == '.'))
                .map_or(chars.len(), |p| i + p);
            out.push_str("\x1b[33m");
            out.extend(&chars[i..end]);
            out.push_str("\x1b[0m");
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Owned(highlight(line))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        true
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_whole_at_its_semicolon() {
        assert!(!is_complete("CREATE STREAM s AS\nSELECT word"));
        assert!(is_complete("CREATE STREAM s AS\nSELECT word FROM w;"));
        assert!(!is_complete("SELECT 'a;"));
        assert!(is_complete("SELECT 'a;';"));
        assert!(!is_complete("SELECT 1 -- done;"));
        assert!(is_complete("SELECT 1; -- done"));
        assert!(is_complete("\\q"));
    }

    #[test]
    fn completion_offers_names_and_keywords_in_the_case_typed() {
        let words = vec![
            "counts".to_string(),
            "connector".to_string(),
            "lines".to_string(),
        ];
        assert_eq!(candidates("co", &words), ["connector", "count", "counts"]);
        assert_eq!(candidates("SEL", &words), ["SELECT"]);
        assert_eq!(candidates("sel", &words), ["select"]);
        assert!(candidates("", &words).is_empty());
    }

    #[test]
    fn completion_after_a_wide_character_starts_at_the_word() {
        let helper = ReplHelper::default();
        helper.set_words(vec!["counts".into()]);
        let history = rustyline::history::DefaultHistory::new();
        let ctx = Context::new(&history);
        let line = "SELECT a，cou";
        let (start, pairs) = helper.complete(line, line.len(), &ctx).unwrap();
        assert_eq!(&line[start..], "cou");
        assert_eq!(
            pairs
                .iter()
                .map(|p| p.replacement.as_str())
                .collect::<Vec<_>>(),
            ["count", "counts"]
        );
    }

    #[test]
    fn keywords_strings_and_numbers_are_coloured() {
        assert_eq!(
            highlight("select 'x' from t1 limit 5"),
            "\x1b[1;34mselect\x1b[0m \x1b[32m'x'\x1b[0m \x1b[1;34mfrom\x1b[0m t1 \x1b[1;34mlimit\x1b[0m \x1b[33m5\x1b[0m"
        );
    }
}
