//! sluice's own statements: `CREATE SOURCE`, `CREATE STREAM ... AS SELECT`,
//! `CREATE SINK ... FROM`, and `SET batch_interval / checkpoint`. Any other
//! statement is [`SluiceStatement::DataFusion`], run by DataFusion as written.

use sqlparser::ast::{Ident, Query};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{Location, SqlError};
use crate::options::Options;
use crate::script::is_blank;

/// A column declared by `CREATE SOURCE name (col TYPE, ...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    pub name: String,
    /// The SQL type as written (e.g. `INT`, `VARCHAR`), for DataFusion to map.
    pub data_type: String,
    pub location: Location,
}

/// `CREATE SOURCE name [(columns)] WITH (connector = '...', ...)`
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSource {
    pub name: String,
    pub location: Location,
    pub columns: Vec<ColumnSpec>,
    pub options: Options,
}

/// What a stream emits across batches (keyed state, `GROUP BY ... EMIT ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitMode {
    /// `EMIT CHANGES`: only keys that got rows this batch (mapWithState).
    Changes,
    /// `EMIT SNAPSHOT`: every key, every batch (updateStateByKey).
    Snapshot,
}

/// `CREATE STREAM name [WITH (...)] AS <query> [EMIT CHANGES | EMIT SNAPSHOT [EVICT WHEN <predicate>]]`
#[derive(Debug, Clone, PartialEq)]
pub struct CreateStream {
    pub name: String,
    pub location: Location,
    pub options: Options,
    pub query: Box<Query>,
    /// Where the query starts.
    pub query_location: Location,
    pub emit: Option<EmitMode>,
    /// `EVICT WHEN <predicate>` (only after `EMIT`).
    pub evict: Option<EvictWhen>,
}

/// `CREATE SINK name FROM stream WITH (connector = '...', ...)`
#[derive(Debug, Clone, PartialEq)]
pub struct CreateSink {
    pub name: String,
    pub location: Location,
    pub from: String,
    pub from_location: Location,
    pub options: Options,
}

/// `SET batch_interval = '5 seconds'` / `SET checkpoint = 'dir'`: sluice's own
/// settings. Other `SET`s go to DataFusion.
#[derive(Debug, Clone, PartialEq)]
pub struct SetVariable {
    pub name: String,
    pub value: String,
    pub location: Location,
}

/// `EXPLAIN <stream>`: how a stream is computed (its window and the
/// strategy of each aggregate, its plans).
#[derive(Debug, Clone, PartialEq)]
pub struct ExplainStream {
    pub name: String,
    pub location: Location,
}

/// What `SHOW <kind>` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowKind {
    Streams,
    Sources,
    Sinks,
    /// The last batches' metrics.
    Batches,
}

/// `SHOW STREAMS | SOURCES | SINKS | BATCHES`.
#[derive(Debug, Clone, PartialEq)]
pub struct Show {
    pub kind: ShowKind,
    pub location: Location,
}

/// `DESCRIBE <name>`: of a source, stream or sink (a static table's goes to
/// DataFusion).
#[derive(Debug, Clone, PartialEq)]
pub struct Describe {
    pub name: String,
    pub location: Location,
}

/// `DROP SOURCE | STREAM | SINK [IF EXISTS] name`.
#[derive(Debug, Clone, PartialEq)]
pub struct DropNode {
    /// `source`, `stream` or `sink`.
    pub kind: &'static str,
    pub name: String,
    pub if_exists: bool,
    pub location: Location,
}

/// One statement of a script.
#[derive(Debug, Clone, PartialEq)]
pub enum SluiceStatement {
    CreateSource(CreateSource),
    CreateStream(CreateStream),
    CreateSink(CreateSink),
    Set(SetVariable),
    ExplainStream(ExplainStream),
    Show(Show),
    Describe(Describe),
    Drop(DropNode),
    /// Anything else: given to DataFusion as written.
    DataFusion,
}

/// sluice's own settings (`SET <name> = ...`).
pub const SLUICE_SETTINGS: &[&str] = &["batch_interval", "checkpoint", "checkpoint_interval"];

/// Parses one statement's tokens. Positions in errors are the script's.
pub(crate) fn parse_statement_tokens(
    tokens: Vec<TokenWithSpan>,
    start: Location,
) -> Result<SluiceStatement, SqlError> {
    let words: Vec<(String, Location)> = tokens
        .iter()
        .filter(|t| !is_blank(&t.token))
        .take(3)
        .map(|t| (word_upper(&t.token), t.span.start.into()))
        .collect();
    let solid: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !is_blank(&t.token) && t.token != Token::SemiColon)
        .collect();
    if let [first, Token::Word(w)] = solid.iter().map(|t| &t.token).collect::<Vec<_>>()[..]
        && word_upper(first) == "EXPLAIN"
    {
        return Ok(SluiceStatement::ExplainStream(ExplainStream {
            name: normalize_ident(&w.clone().into_ident(solid[1].span)),
            location: solid[1].span.start.into(),
        }));
    }
    if let [first, second] = solid.iter().map(|t| &t.token).collect::<Vec<_>>()[..] {
        let kind = match (word_upper(first).as_str(), word_upper(second).as_str()) {
            ("SHOW", "STREAMS") => Some(ShowKind::Streams),
            ("SHOW", "SOURCES") => Some(ShowKind::Sources),
            ("SHOW", "SINKS") => Some(ShowKind::Sinks),
            ("SHOW", "BATCHES") => Some(ShowKind::Batches),
            _ => None,
        };
        if let Some(kind) = kind {
            return Ok(SluiceStatement::Show(Show {
                kind,
                location: solid[0].span.start.into(),
            }));
        }
        if let ("DESCRIBE" | "DESC", Token::Word(w)) = (word_upper(first).as_str(), second) {
            return Ok(SluiceStatement::Describe(Describe {
                name: normalize_ident(&w.clone().into_ident(solid[1].span)),
                location: solid[1].span.start.into(),
            }));
        }
    }
    if let [drop, kind, rest @ ..] = &solid[..]
        && word_upper(&drop.token) == "DROP"
    {
        let kind_name = match word_upper(&kind.token).as_str() {
            "SOURCE" => Some("source"),
            "STREAM" => Some("stream"),
            "SINK" => Some("sink"),
            _ => None,
        };
        if let Some(kind_name) = kind_name {
            let (if_exists, rest) = match rest {
                [i, e, rest @ ..]
                    if word_upper(&i.token) == "IF" && word_upper(&e.token) == "EXISTS" =>
                {
                    (true, rest)
                }
                _ => (false, rest),
            };
            return match rest {
                [t] if matches!(t.token, Token::Word(_)) => {
                    let Token::Word(w) = &t.token else {
                        unreachable!()
                    };
                    Ok(SluiceStatement::Drop(DropNode {
                        kind: kind_name,
                        name: normalize_ident(&w.clone().into_ident(t.span)),
                        if_exists,
                        location: t.span.start.into(),
                    }))
                }
                _ => Err(SqlError::new(
                    format!(
                        "expected DROP {} [IF EXISTS] <name>",
                        kind_name.to_ascii_uppercase()
                    ),
                    kind.span.start.into(),
                )),
            };
        }
    }
    let first = words.first().map(|w| w.0.as_str()).unwrap_or("");
    let second = words.get(1).map(|w| w.0.as_str()).unwrap_or("");
    match (first, second) {
        ("CREATE", "SOURCE") => StatementParser::new(tokens, start).create_source(),
        ("CREATE", "STREAM") => {
            let (tokens, emit, evict) = strip_emit(tokens)?;
            StatementParser::new(tokens, start).create_stream(emit, evict)
        }
        ("CREATE", "SINK") => StatementParser::new(tokens, start).create_sink(),
        ("SET", name) if SLUICE_SETTINGS.contains(&name.to_ascii_lowercase().as_str()) => {
            StatementParser::new(tokens, start).set()
        }
        _ => Ok(SluiceStatement::DataFusion),
    }
}

/// `EVICT WHEN <predicate>` after `EMIT ...`: keys whose running values
/// satisfy the predicate after a batch are emitted, then dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct EvictWhen {
    pub predicate: sqlparser::ast::Expr,
    /// Where the predicate starts.
    pub location: Location,
}

/// Takes a trailing `EMIT CHANGES | EMIT SNAPSHOT [EVICT WHEN <predicate>]`
/// off a stream's tokens before the query is parsed (else `FROM t EMIT
/// CHANGES` reads `EMIT` as an alias).
fn strip_emit(
    mut tokens: Vec<TokenWithSpan>,
) -> Result<(Vec<TokenWithSpan>, Option<EmitMode>, Option<EvictWhen>), SqlError> {
    let solid: Vec<usize> = (0..tokens.len())
        .filter(|&i| !is_blank(&tokens[i].token) && tokens[i].token != Token::SemiColon)
        .collect();
    let mut depth = 0i32;
    let mut found = None;
    for (n, &i) in solid.iter().enumerate() {
        match &tokens[i].token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            // The clause ends the statement, or is followed by EVICT; else
            // `emit` is a column's name.
            t if depth == 0
                && word_upper(t) == "EMIT"
                && solid.get(n + 1).is_some()
                && solid
                    .get(n + 2)
                    .is_none_or(|&j| word_upper(&tokens[j].token) == "EVICT") =>
            {
                let mode_token = &tokens[solid[n + 1]];
                match word_upper(&mode_token.token).as_str() {
                    "CHANGES" => found = Some((n, EmitMode::Changes)),
                    "SNAPSHOT" => found = Some((n, EmitMode::Snapshot)),
                    _ => {
                        return Err(SqlError::new(
                            format!(
                                "expected CHANGES or SNAPSHOT after EMIT, found {}",
                                mode_token.token
                            ),
                            mode_token.span.start.into(),
                        ));
                    }
                }
                break;
            }
            _ => {}
        }
    }
    let Some((n, mode)) = found else {
        return Ok((tokens, None, None));
    };
    let rest: Vec<TokenWithSpan> = solid[n + 2..].iter().map(|&i| tokens[i].clone()).collect();
    let evict = if rest.is_empty() {
        None
    } else {
        let wrong = if word_upper(&rest[0].token) != "EVICT" {
            Some(&rest[0])
        } else {
            rest.get(1).filter(|t| word_upper(&t.token) != "WHEN")
        };
        if rest.len() == 1 && wrong.is_none() {
            return Err(SqlError::new(
                "expected WHEN <predicate> after EVICT",
                rest[0].span.end.into(),
            ));
        }
        if let Some(t) = wrong {
            return Err(SqlError::new(
                format!(
                    "expected EVICT WHEN <predicate> or the end of the statement after EMIT, found {}",
                    t.token
                ),
                t.span.start.into(),
            ));
        }
        let Some(first) = rest.get(2) else {
            return Err(SqlError::new(
                "expected a predicate after EVICT WHEN",
                rest[rest.len() - 1].span.end.into(),
            ));
        };
        let location: Location = first.span.start.into();
        let mut parser = Parser::new(&DIALECT).with_tokens_with_locations(rest[2..].to_vec());
        let predicate = parser
            .parse_expr()
            .map_err(|e| SqlError::from_parser(e, location))?;
        let next = parser.next_token();
        if next.token != Token::EOF {
            return Err(SqlError::new(
                format!("unexpected {} after the EVICT WHEN predicate", next.token),
                next.span.start.into(),
            ));
        }
        Some(EvictWhen {
            predicate,
            location,
        })
    };
    tokens.truncate(solid[n]);
    Ok((tokens, Some(mode), evict))
}

fn word_upper(t: &Token) -> String {
    match t {
        Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
        _ => String::new(),
    }
}

/// Lower-cases an unquoted identifier, as DataFusion does; a quoted one is kept.
pub fn normalize_ident(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    }
}

struct StatementParser {
    parser: Parser<'static>,
    start: Location,
}

static DIALECT: GenericDialect = GenericDialect {};

impl StatementParser {
    fn new(tokens: Vec<TokenWithSpan>, start: Location) -> Self {
        Self {
            parser: Parser::new(&DIALECT).with_tokens_with_locations(tokens),
            start,
        }
    }

    fn here(&self) -> Location {
        let loc: Location = self.parser.peek_token_ref().span.start.into();
        if loc.line == 0 { self.start } else { loc }
    }

    fn err<T>(&self, e: sqlparser::parser::ParserError) -> Result<T, SqlError> {
        Err(SqlError::from_parser(e, self.here()))
    }

    fn expect_word(&mut self, word: &str) -> Result<(), SqlError> {
        let t = self.parser.next_token();
        if word_upper(&t.token) == word {
            Ok(())
        } else {
            Err(SqlError::new(
                format!("expected {word}, found {}", t.token),
                t.span.start.into(),
            ))
        }
    }

    fn name(&mut self) -> Result<(String, Location), SqlError> {
        let loc = self.here();
        match self.parser.parse_identifier() {
            Ok(id) => Ok((normalize_ident(&id), loc)),
            Err(e) => self.err(e),
        }
    }

    fn expect_end(&mut self) -> Result<(), SqlError> {
        let t = self.parser.peek_token();
        match t.token {
            Token::EOF => Ok(()),
            other => Err(SqlError::new(
                format!("unexpected {other} after the end of the statement (missing ';'?)"),
                t.span.start.into(),
            )),
        }
    }

    fn create_source(mut self) -> Result<SluiceStatement, SqlError> {
        self.expect_word("CREATE")?;
        self.expect_word("SOURCE")?;
        let (name, location) = self.name()?;
        let mut columns = Vec::new();
        if self.parser.consume_token(&Token::LParen) {
            loop {
                let loc = self.here();
                let col = match self.parser.parse_column_def() {
                    Ok(c) => c,
                    Err(e) => return self.err(e),
                };
                columns.push(ColumnSpec {
                    name: normalize_ident(&col.name),
                    data_type: col.data_type.to_string(),
                    location: loc,
                });
                if !self.parser.consume_token(&Token::Comma) {
                    break;
                }
            }
            if let Err(e) = self.parser.expect_token(&Token::RParen) {
                return self.err(e);
            }
        }
        let options = self.with_options(true)?;
        self.expect_end()?;
        Ok(SluiceStatement::CreateSource(CreateSource {
            name,
            location,
            columns,
            options,
        }))
    }

    fn create_stream(
        mut self,
        emit: Option<EmitMode>,
        evict: Option<EvictWhen>,
    ) -> Result<SluiceStatement, SqlError> {
        self.expect_word("CREATE")?;
        self.expect_word("STREAM")?;
        let (name, location) = self.name()?;
        let options = self.with_options(false)?;
        if !self.parser.parse_keyword(Keyword::AS) {
            let t = self.parser.peek_token();
            return Err(SqlError::new(
                format!(
                    "expected AS SELECT ... after CREATE STREAM {name}, found {}",
                    t.token
                ),
                t.span.start.into(),
            ));
        }
        let query_location = self.here();
        let query = match self.parser.parse_query() {
            Ok(q) => q,
            Err(e) => return self.err(e),
        };
        if self.parser.peek_token_ref().token != Token::EOF {
            self.expect_word("EMIT")?;
            let t = self.parser.next_token();
            return Err(SqlError::new(
                format!("expected CHANGES or SNAPSHOT after EMIT, found {}", t.token),
                t.span.start.into(),
            ));
        }
        self.expect_end()?;
        Ok(SluiceStatement::CreateStream(CreateStream {
            name,
            location,
            options,
            query,
            query_location,
            emit,
            evict,
        }))
    }

    fn create_sink(mut self) -> Result<SluiceStatement, SqlError> {
        self.expect_word("CREATE")?;
        self.expect_word("SINK")?;
        let (name, location) = self.name()?;
        self.expect_word("FROM")?;
        let (from, from_location) = self.name()?;
        let options = self.with_options(true)?;
        self.expect_end()?;
        Ok(SluiceStatement::CreateSink(CreateSink {
            name,
            location,
            from,
            from_location,
            options,
        }))
    }

    fn set(mut self) -> Result<SluiceStatement, SqlError> {
        self.expect_word("SET")?;
        let (name, location) = self.name()?;
        if !(self.parser.consume_token(&Token::Eq) || self.parser.parse_keyword(Keyword::TO)) {
            let t = self.parser.peek_token();
            return Err(SqlError::new(
                format!("expected = after SET {name}, found {}", t.token),
                t.span.start.into(),
            ));
        }
        let (value, _) = self.option_value()?;
        self.expect_end()?;
        Ok(SluiceStatement::Set(SetVariable {
            name,
            value,
            location,
        }))
    }

    /// `WITH (key = value, ...)`; `required` makes a missing clause an error.
    fn with_options(&mut self, required: bool) -> Result<Options, SqlError> {
        let location = self.here();
        if !self.parser.parse_keyword(Keyword::WITH) {
            if required {
                let t = self.parser.peek_token();
                return Err(SqlError::new(
                    format!("expected WITH (connector = '...', ...), found {}", t.token),
                    location,
                ));
            }
            return Ok(Options::new(location));
        }
        let mut options = Options::new(location);
        if let Err(e) = self.parser.expect_token(&Token::LParen) {
            return self.err(e);
        }
        if self.parser.consume_token(&Token::RParen) {
            return Ok(options);
        }
        loop {
            let key_location = self.here();
            let key = self.option_key()?;
            if let Err(e) = self.parser.expect_token(&Token::Eq) {
                return self.err(e);
            }
            let (value, value_location) = self.option_value()?;
            if options.entry(&key.to_ascii_lowercase()).is_some() {
                return Err(SqlError::new(
                    format!("option '{key}' is given twice"),
                    key_location,
                ));
            }
            options.insert(&key, value, value_location);
            if self.parser.consume_token(&Token::Comma) {
                continue;
            }
            if let Err(e) = self.parser.expect_token(&Token::RParen) {
                return self.err(e);
            }
            return Ok(options);
        }
    }

    /// `key`, `a.b.c` or `'any text'`.
    fn option_key(&mut self) -> Result<String, SqlError> {
        let t = self.parser.next_token();
        let mut key = match t.token {
            Token::Word(w) => w.value,
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => return Ok(s),
            other => {
                return Err(SqlError::new(
                    format!("expected an option name, found {other}"),
                    t.span.start.into(),
                ));
            }
        };
        while self.parser.consume_token(&Token::Period) {
            let t = self.parser.next_token();
            match t.token {
                Token::Word(w) => {
                    key.push('.');
                    key.push_str(&w.value);
                }
                other => {
                    return Err(SqlError::new(
                        format!("expected an option name after '.', found {other}"),
                        t.span.start.into(),
                    ));
                }
            }
        }
        Ok(key)
    }

    /// A string, number, boolean or bare word.
    fn option_value(&mut self) -> Result<(String, Location), SqlError> {
        let t = self.parser.next_token();
        let loc: Location = t.span.start.into();
        let negative = t.token == Token::Minus;
        let t = if negative {
            self.parser.next_token()
        } else {
            t
        };
        let value = match t.token {
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s,
            Token::Number(n, _) => {
                if negative {
                    format!("-{n}")
                } else {
                    n
                }
            }
            Token::Word(w) if !negative => w.value,
            other => {
                return Err(SqlError::new(
                    format!(
                        "expected a value (a 'string', a number, true or false), found {other}"
                    ),
                    t.span.start.into(),
                ));
            }
        };
        Ok((value, loc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_script;

    fn one(sql: &str) -> SluiceStatement {
        parse_script(sql).unwrap().remove(0).statement
    }

    #[test]
    fn create_source_with_columns_and_options() {
        let SluiceStatement::CreateSource(s) = one(
            "CREATE SOURCE Lines (a INT, \"B\" TEXT) WITH (connector = 'replay', path = 'data', one_at_a_time = false, n = 3, kafka.security.protocol = 'SSL')",
        ) else {
            panic!()
        };
        assert_eq!(s.name, "lines");
        assert_eq!(s.columns.len(), 2);
        assert_eq!(s.columns[1].name, "B");
        assert_eq!(s.columns[0].data_type, "INT");
        assert_eq!(s.options.get("connector"), Some("replay"));
        assert_eq!(s.options.get("one_at_a_time"), Some("false"));
        assert_eq!(s.options.get("n"), Some("3"));
        assert_eq!(s.options.get("kafka.security.protocol"), Some("SSL"));
    }

    #[test]
    fn create_stream_with_emit() {
        let SluiceStatement::CreateStream(s) = one(
            "CREATE STREAM totals AS SELECT word, count(*) FROM words GROUP BY word EMIT CHANGES",
        ) else {
            panic!()
        };
        assert_eq!(s.emit, Some(EmitMode::Changes));
        assert_eq!(
            s.query.to_string(),
            "SELECT word, count(*) FROM words GROUP BY word"
        );
        assert_eq!(s.query_location, Location::new(1, 25));
        let SluiceStatement::CreateStream(s) =
            one("CREATE STREAM all AS SELECT * FROM words emit snapshot")
        else {
            panic!()
        };
        assert_eq!(s.emit, Some(EmitMode::Snapshot));
        assert_eq!(s.query.to_string(), "SELECT * FROM words");
        assert_eq!(s.evict, None);
    }

    #[test]
    fn create_stream_with_evict_when() {
        let SluiceStatement::CreateStream(s) = one(
            "CREATE STREAM t AS SELECT word, count(*) AS n FROM words GROUP BY word\nEMIT CHANGES EVICT WHEN n >= (3 + 1);",
        ) else {
            panic!()
        };
        assert_eq!(s.emit, Some(EmitMode::Changes));
        let evict = s.evict.unwrap();
        assert_eq!(evict.predicate.to_string(), "n >= (3 + 1)");
        assert_eq!(evict.location, Location::new(2, 25));
        assert_eq!(
            s.query.to_string(),
            "SELECT word, count(*) AS n FROM words GROUP BY word"
        );
        let err = |sql: &str| parse_script(sql).unwrap_err().message;
        assert!(
            err("CREATE STREAM t AS SELECT k, count(*) FROM s GROUP BY k EMIT CHANGES EVICT n > 1")
                .contains("expected EVICT WHEN <predicate> or the end of the statement after EMIT, found n"),
        );
        assert!(
            err("CREATE STREAM t AS SELECT k, count(*) FROM s GROUP BY k EMIT CHANGES EVICT WHEN")
                .contains("expected a predicate after EVICT WHEN")
        );
        assert!(
            err("CREATE STREAM t AS SELECT k, count(*) FROM s GROUP BY k EMIT CHANGES EVICT")
                .contains("expected WHEN <predicate> after EVICT")
        );
        assert!(err("CREATE STREAM t AS SELECT k, count(*) FROM s GROUP BY k EMIT CHANGES EVICT WHEN n > 1 2").contains("unexpected 2 after the EVICT WHEN predicate"));
        assert!(
            err("CREATE STREAM t AS SELECT k FROM s EMIT CHANGE")
                .contains("expected CHANGES or SNAPSHOT after EMIT, found CHANGE")
        );
        assert!(err("CREATE STREAM t AS SELECT k, count(*) FROM s GROUP BY k EMIT CHANGE EVICT WHEN n > 1").contains("expected CHANGES or SNAPSHOT after EMIT, found CHANGE"));
        // A column called emit is still a column, even aliased `snapshot`.
        for sql in [
            "CREATE STREAM t AS SELECT emit FROM s",
            "CREATE STREAM t AS SELECT emit snapshot FROM s",
        ] {
            let SluiceStatement::CreateStream(s) = one(sql) else {
                panic!()
            };
            assert_eq!(s.emit, None, "{sql}");
        }
    }

    #[test]
    fn create_sink_and_set() {
        let SluiceStatement::CreateSink(s) =
            one("CREATE SINK out FROM counts WITH (connector = 'console', rows = 20)")
        else {
            panic!()
        };
        assert_eq!((s.name.as_str(), s.from.as_str()), ("out", "counts"));
        assert_eq!(s.options.get_usize("rows").unwrap(), Some(20));
        assert_eq!(
            one("SET batch_interval = '5 seconds'"),
            SluiceStatement::Set(SetVariable {
                name: "batch_interval".into(),
                value: "5 seconds".into(),
                location: Location::new(1, 5)
            })
        );
        assert_eq!(
            one("SET datafusion.execution.batch_size = 10"),
            SluiceStatement::DataFusion
        );
        assert_eq!(
            one("CREATE TABLE t AS VALUES (1)"),
            SluiceStatement::DataFusion
        );
    }

    #[test]
    fn errors_name_the_place() {
        let e = parse_script(
            "SET batch_interval = '1 second';\nCREATE SINK out counts WITH (connector = 'console')",
        )
        .unwrap_err();
        assert_eq!(e.message, "expected FROM, found counts");
        assert_eq!(e.location, Location::new(2, 17));
        let e = parse_script("CREATE SOURCE s").unwrap_err();
        assert!(
            e.message.starts_with("expected WITH (connector"),
            "{}",
            e.message
        );
        let e = parse_script("CREATE STREAM s AS SELEC 1").unwrap_err();
        assert_eq!(e.location, Location::new(1, 20), "{e}");
        let e = parse_script("CREATE SINK o FROM s WITH (rows = 1, rows = 2)").unwrap_err();
        assert_eq!(e.message, "option 'rows' is given twice");
        let e = parse_script("CREATE STREAM s AS SELECT 1 FROM t EMIT SOMETIMES").unwrap_err();
        assert!(e.message.contains("expected CHANGES or SNAPSHOT"), "{e}");
    }
}
