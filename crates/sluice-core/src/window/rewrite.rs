//! `FROM window(<stream>, '<length>' [, '<slide>'])` in a stream's query.
//!
//! Before the query is planned, the call is replaced by the window's own
//! table (a slot table holding the covered batches' rows, or one pane of
//! them), under the alias the user gave or the stream's name, so columns are
//! qualified as they would be reading the stream itself.
//!
//! `window_start` and `window_end` are the same for every row of a window, so
//! a grouped query may select them without grouping by them: they are added to
//! its GROUP BY.
//!
//! ```
//! use sluice_core::window::rewrite::replace_window_calls;
//! use sluice_sql::sqlparser::{dialect::GenericDialect, parser::Parser, ast::Statement};
//! let sql = "SELECT window_end, word, count(*) FROM window(words, '20 seconds', '10 seconds') GROUP BY word";
//! let mut stmt = Parser::parse_sql(&GenericDialect {}, sql).unwrap().remove(0);
//! let Statement::Query(q) = &mut stmt else { unreachable!() };
//! let calls = replace_window_calls(q, "__window", &|f: &str| f == "count").unwrap();
//! assert_eq!(calls[0].input, "words");
//! assert_eq!(q.to_string(), "SELECT window_end, word, count(*) FROM __window AS words GROUP BY word, window_end");
//! ```

use std::ops::ControlFlow;
use std::time::Duration;

use sluice_sql::sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, GroupByExpr, Ident, ObjectName, Query, Select, SelectItem,
    SetExpr, Spanned, TableAlias, TableFactor, Value, VisitMut, VisitorMut,
};
use sluice_sql::{Location, SqlError, normalize_ident, parse_duration};

use crate::slot::{WINDOW_END, WINDOW_START};

/// One `window(...)` call as written.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowCall {
    /// The source or stream windowed.
    pub input: String,
    pub length: Duration,
    /// `None`: slide by the batch interval.
    pub slide: Option<Duration>,
    /// Where the call starts.
    pub location: Location,
}

const USAGE: &str =
    "window(<stream>, '<length>' [, '<slide>']), e.g. window(words, '20 seconds', '10 seconds')";

/// Replaces every `window(...)` relation in `query` by `table` and returns
/// the calls, in order. `is_aggregate` tells aggregate function names apart
/// (for adding `window_start`/`window_end` to GROUP BY).
pub fn replace_window_calls(
    query: &mut Query,
    table: &str,
    is_aggregate: &dyn Fn(&str) -> bool,
) -> Result<Vec<WindowCall>, SqlError> {
    let mut v = Replacer {
        table,
        calls: Vec::new(),
        error: None,
        is_aggregate,
    };
    let _ = query.visit(&mut v);
    match v.error {
        Some(e) => Err(e),
        None => Ok(v.calls),
    }
}

struct Replacer<'a> {
    table: &'a str,
    calls: Vec<WindowCall>,
    error: Option<SqlError>,
    is_aggregate: &'a dyn Fn(&str) -> bool,
}

impl VisitorMut for Replacer<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias,
            args: Some(args),
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let is_window = name.0.len() == 1
            && name.0[0]
                .as_ident()
                .is_some_and(|i| normalize_ident(i) == "window");
        if !is_window {
            return ControlFlow::Continue(());
        }
        let location: Location = name.span().start.into();
        match parse_call(&args.args, location) {
            Ok((call, input_ident)) => {
                let alias_name = alias
                    .as_ref()
                    .map(|a| a.name.clone())
                    .unwrap_or(input_ident);
                *factor = TableFactor::Table {
                    name: ObjectName::from(vec![Ident::new(self.table)]),
                    alias: Some(TableAlias {
                        explicit: true,
                        name: alias_name,
                        columns: alias
                            .as_ref()
                            .map(|a| a.columns.clone())
                            .unwrap_or_default(),
                        at: None,
                    }),
                    args: None,
                    with_hints: vec![],
                    version: None,
                    with_ordinality: false,
                    partitions: vec![],
                    json_path: None,
                    sample: None,
                    index_hints: vec![],
                };
                self.calls.push(call);
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            self.group_by_window_bounds(select);
        }
        ControlFlow::Continue(())
    }
}

impl Replacer<'_> {
    /// Adds bare `window_start`/`window_end` select items to a grouped
    /// SELECT over the window's table.
    fn group_by_window_bounds(&self, select: &mut Select) {
        let reads_window = select.from.iter().any(|t| {
            std::iter::once(&t.relation)
                .chain(t.joins.iter().map(|j| &j.relation))
                .any(|f| matches!(f, TableFactor::Table { name, .. } if name.to_string() == self.table))
        });
        if !reads_window {
            return;
        }
        let GroupByExpr::Expressions(group_by, _) = &mut select.group_by else {
            return;
        };
        let grouped = !group_by.is_empty()
            || select.projection.iter().any(|item| match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    calls_aggregate(e, self.is_aggregate)
                }
                _ => false,
            });
        if !grouped {
            return;
        }
        for item in &select.projection {
            let expr = match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
                _ => continue,
            };
            if window_bound(expr).is_some() && !group_by.iter().any(|g| same_bound(g, expr)) {
                group_by.push(expr.clone());
            }
        }
    }
}

/// `window_start` / `window_end`, bare or qualified.
fn window_bound(expr: &Expr) -> Option<String> {
    let ident = match expr {
        Expr::Identifier(i) => i,
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => &parts[1],
        _ => return None,
    };
    let name = normalize_ident(ident);
    (name == WINDOW_START || name == WINDOW_END).then_some(name)
}

fn same_bound(a: &Expr, b: &Expr) -> bool {
    window_bound(a).is_some() && window_bound(a) == window_bound(b)
}

fn calls_aggregate(expr: &Expr, is_aggregate: &dyn Fn(&str) -> bool) -> bool {
    let mut found = false;
    let _ = sluice_sql::sqlparser::ast::visit_expressions(expr, |e| {
        if let Expr::Function(f) = e {
            let name = f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(normalize_ident)
                .unwrap_or_default();
            if is_aggregate(&name) {
                found = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    found
}

/// The call's stream and durations, or an error naming what is wrong.
fn parse_call(args: &[FunctionArg], location: Location) -> Result<(WindowCall, Ident), SqlError> {
    let bad = |what: String| SqlError::new(format!("{what}; write {USAGE}"), location);
    if args.len() < 2 || args.len() > 3 {
        return Err(bad(format!(
            "window() takes a stream and one or two durations, got {} argument(s)",
            args.len()
        )));
    }
    let exprs: Vec<&Expr> = args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(e),
            other => Err(bad(format!("window(): unexpected argument {other}"))),
        })
        .collect::<Result<_, _>>()?;
    let input_ident = match exprs[0] {
        Expr::Identifier(i) => i.clone(),
        other => {
            return Err(bad(format!(
                "window(): the first argument must name a source or stream, not {other}"
            )));
        }
    };
    let duration = |e: &Expr, what: &str| -> Result<Duration, SqlError> {
        let text = match e {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) => s.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        if text.is_empty() {
            return Err(bad(format!(
                "window(): the {what} must be a quoted duration such as '10 seconds', not {e}"
            )));
        }
        parse_duration(&text)
            .map_err(|m| SqlError::new(format!("window(): the {what}: {m}"), e.span().start.into()))
    };
    let length = duration(exprs[1], "length")?;
    let slide = exprs.get(2).map(|e| duration(e, "slide")).transpose()?;
    let call = WindowCall {
        input: normalize_ident(&input_ident),
        length,
        slide,
        location,
    };
    Ok((call, input_ident))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sql::sqlparser::ast::Statement;
    use sluice_sql::sqlparser::dialect::GenericDialect;
    use sluice_sql::sqlparser::parser::Parser;

    fn rewrite(sql: &str) -> Result<(String, Vec<WindowCall>), SqlError> {
        let mut stmt = Parser::parse_sql(&GenericDialect {}, sql)
            .unwrap()
            .remove(0);
        let Statement::Query(q) = &mut stmt else {
            panic!()
        };
        let calls = replace_window_calls(q, "__w", &|f: &str| f == "count" || f == "sum")?;
        Ok((q.to_string(), calls))
    }

    #[test]
    fn calls_become_the_window_table() {
        let (sql, calls) =
            rewrite("SELECT * FROM window(words, '4 seconds', '2 seconds') w").unwrap();
        assert_eq!(sql, "SELECT * FROM __w AS w");
        assert_eq!(calls[0].input, "words");
        assert_eq!(calls[0].length, Duration::from_secs(4));
        assert_eq!(calls[0].slide, Some(Duration::from_secs(2)));
        let (_, calls) = rewrite("SELECT * FROM window(Words, '4 s')").unwrap();
        assert_eq!((calls[0].input.as_str(), calls[0].slide), ("words", None));
    }

    #[test]
    fn window_bounds_join_the_group_by() {
        let (sql, _) =
            rewrite("SELECT window_start, w.window_end, count(*) FROM window(s, '2 s') w").unwrap();
        assert_eq!(
            sql,
            "SELECT window_start, w.window_end, count(*) FROM __w AS w GROUP BY window_start, w.window_end"
        );
        let (sql, _) = rewrite("SELECT window_end, x FROM window(s, '2 s')").unwrap();
        assert_eq!(sql, "SELECT window_end, x FROM __w AS s");
        let (sql, _) =
            rewrite("SELECT window_end, k, sum(v) FROM window(s, '2 s') GROUP BY window_end, k")
                .unwrap();
        assert!(sql.ends_with("GROUP BY window_end, k"), "{sql}");
    }

    #[test]
    fn bad_calls_say_what_is_wrong() {
        let e = rewrite("SELECT * FROM window(words)").unwrap_err();
        assert!(
            e.message.contains("one or two durations, got 1"),
            "{}",
            e.message
        );
        let e = rewrite("SELECT * FROM window(words, 10)").unwrap_err();
        assert!(
            e.message.contains("the length must be a quoted duration"),
            "{}",
            e.message
        );
        let e = rewrite("SELECT * FROM window(words, '10 parsecs')").unwrap_err();
        assert!(
            e.message.contains("'10 parsecs' is not a duration"),
            "{}",
            e.message
        );
        let e = rewrite("SELECT * FROM window('words', '10 s')").unwrap_err();
        assert!(
            e.message.contains("must name a source or stream"),
            "{}",
            e.message
        );
    }
}
