//! `SELECT *` over a source or stream means its rows' columns, not the
//! `batch_time` column every slot table adds (as `lines.print()` prints lines,
//! not times). Before a stream's query is planned, wildcards over slot tables
//! whose `batch_time` is added get `EXCLUDE (batch_time)`; naming `batch_time`
//! still selects it.
//!
//! - `SELECT * FROM lines` → `SELECT * EXCLUDE (batch_time) FROM lines`
//! - `SELECT l.* FROM lines l JOIN t ON ...` → `SELECT l.* EXCLUDE (batch_time) ...`
//! - `SELECT * FROM lines l JOIN t ON ...` → `SELECT l.* EXCLUDE (batch_time), t.* ...`
//!   (each relation must have a name to qualify; otherwise the `*` is left alone)
//!
//! ```
//! use sluice_core::wildcard::hide_batch_time;
//! use sluice_sql::sqlparser::{dialect::GenericDialect, parser::Parser, ast::Statement};
//! let mut stmt = Parser::parse_sql(&GenericDialect {}, "SELECT * FROM lines l JOIN t ON l.value = t.w").unwrap().remove(0);
//! let Statement::Query(q) = &mut stmt else { unreachable!() };
//! hide_batch_time(q, &|name: &str| name == "lines");
//! assert_eq!(q.to_string(), "SELECT l.* EXCLUDE (batch_time), t.* FROM lines l JOIN t ON l.value = t.w");
//! ```

use std::ops::ControlFlow;

use sluice_sql::normalize_ident;
use sluice_sql::sqlparser::ast::{
    ExcludeSelectItem, Ident, ObjectName, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, TableFactor, VisitMut, VisitorMut,
    WildcardAdditionalOptions,
};

use crate::slot::BATCH_TIME;

/// Rewrites every `SELECT` of `query` (nested ones too). `adds_batch_time`
/// says whether a table name is a slot table whose `batch_time` is added.
pub fn hide_batch_time(query: &mut Query, adds_batch_time: &dyn Fn(&str) -> bool) {
    hide_columns(query, &|name: &str| {
        if adds_batch_time(name) {
            vec![BATCH_TIME]
        } else {
            vec![]
        }
    });
}

/// The same for any columns a table adds: `hidden` gives them per table
/// name (a window's table adds `window_start` and `window_end` too).
pub fn hide_columns(query: &mut Query, hidden: &dyn Fn(&str) -> Vec<&'static str>) {
    let mut v = Hider { hidden };
    let _ = query.visit(&mut v);
}

struct Hider<'a> {
    hidden: &'a dyn Fn(&str) -> Vec<&'static str>,
}

impl VisitorMut for Hider<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        self.set_expr(&mut query.body);
        ControlFlow::Continue(())
    }
}

/// A relation of a FROM clause: the name to qualify it by, and whether it is a
/// slot table whose `batch_time` is added.
struct Relation {
    qualifier: Option<ObjectName>,
    hides: Vec<&'static str>,
}

impl Hider<'_> {
    fn set_expr(&self, body: &mut SetExpr) {
        match body {
            SetExpr::Select(select) => self.select(select),
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left);
                self.set_expr(right);
            }
            _ => {}
        }
    }

    fn relation(&self, factor: &TableFactor) -> Relation {
        match factor {
            TableFactor::Table {
                name,
                alias,
                args: None,
                ..
            } => {
                let table = name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(normalize_ident)
                    .unwrap_or_default();
                let qualifier = match alias {
                    Some(a) => ObjectName::from(vec![a.name.clone()]),
                    None => name.clone(),
                };
                Relation {
                    qualifier: Some(qualifier),
                    hides: (self.hidden)(&table),
                }
            }
            TableFactor::Derived { alias: Some(a), .. } => Relation {
                qualifier: Some(ObjectName::from(vec![a.name.clone()])),
                hides: vec![],
            },
            _ => Relation {
                qualifier: None,
                hides: vec![],
            },
        }
    }

    fn select(&self, select: &mut Select) {
        let relations: Vec<Relation> = select
            .from
            .iter()
            .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
            .map(|f| self.relation(f))
            .collect();
        if relations.iter().all(|r| r.hides.is_empty()) {
            return;
        }
        let mut projection = Vec::with_capacity(select.projection.len());
        for item in select.projection.drain(..) {
            match item {
                SelectItem::Wildcard(mut opts) if relations.len() == 1 => {
                    add_exclude(&mut opts, &relations[0].hides);
                    projection.push(SelectItem::Wildcard(opts));
                }
                SelectItem::Wildcard(opts)
                    if is_plain(&opts) && relations.iter().all(|r| r.qualifier.is_some()) =>
                {
                    for r in &relations {
                        let mut o = opts.clone();
                        add_exclude(&mut o, &r.hides);
                        let q = r
                            .qualifier
                            .clone()
                            .unwrap_or_else(|| ObjectName::from(Vec::<Ident>::new()));
                        projection.push(SelectItem::QualifiedWildcard(
                            SelectItemQualifiedWildcardKind::ObjectName(q),
                            o,
                        ));
                    }
                }
                SelectItem::QualifiedWildcard(
                    SelectItemQualifiedWildcardKind::ObjectName(name),
                    mut opts,
                ) => {
                    if let Some(r) = relations
                        .iter()
                        .find(|r| r.qualifier.as_ref().is_some_and(|q| same(q, &name)))
                    {
                        add_exclude(&mut opts, &r.hides);
                    }
                    projection.push(SelectItem::QualifiedWildcard(
                        SelectItemQualifiedWildcardKind::ObjectName(name),
                        opts,
                    ));
                }
                other => projection.push(other),
            }
        }
        select.projection = projection;
    }
}

fn is_plain(opts: &WildcardAdditionalOptions) -> bool {
    opts.opt_exclude.is_none()
        && opts.opt_except.is_none()
        && opts.opt_ilike.is_none()
        && opts.opt_replace.is_none()
        && opts.opt_rename.is_none()
}

fn same(a: &ObjectName, b: &ObjectName) -> bool {
    let norm = |n: &ObjectName| {
        n.0.iter()
            .filter_map(|p| p.as_ident())
            .map(normalize_ident)
            .collect::<Vec<_>>()
    };
    norm(a) == norm(b)
}

/// Adds `columns` to the wildcard's EXCLUDE list (but those the user's
/// options already name; nothing with EXCEPT, which DataFusion does not
/// combine with EXCLUDE).
fn add_exclude(opts: &mut WildcardAdditionalOptions, columns: &[&'static str]) {
    if opts.opt_except.is_some() || columns.is_empty() {
        return;
    }
    let mut list = match opts.opt_exclude.take() {
        None => vec![],
        Some(ExcludeSelectItem::Single(n)) => vec![n],
        Some(ExcludeSelectItem::Multiple(v)) => v,
    };
    for c in columns {
        if !list.iter().any(|n| n.to_string().eq_ignore_ascii_case(c)) {
            list.push(ObjectName::from(vec![Ident::new(*c)]));
        }
    }
    opts.opt_exclude = Some(ExcludeSelectItem::Multiple(list));
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sql::sqlparser::ast::Statement;
    use sluice_sql::sqlparser::dialect::GenericDialect;
    use sluice_sql::sqlparser::parser::Parser;

    fn rewrite(sql: &str) -> String {
        let mut stmt = Parser::parse_sql(&GenericDialect {}, sql)
            .unwrap()
            .remove(0);
        let Statement::Query(q) = &mut stmt else {
            panic!()
        };
        hide_batch_time(q, &|n: &str| n == "lines" || n == "words");
        q.to_string()
    }

    #[test]
    fn wildcards_over_slots_skip_batch_time() {
        assert_eq!(
            rewrite("SELECT * FROM lines"),
            "SELECT * EXCLUDE (batch_time) FROM lines"
        );
        assert_eq!(rewrite("SELECT * FROM static"), "SELECT * FROM static");
        assert_eq!(
            rewrite("SELECT x.* FROM lines x JOIN static s ON true"),
            "SELECT x.* EXCLUDE (batch_time) FROM lines x JOIN static s ON true"
        );
        assert_eq!(
            rewrite("SELECT * FROM lines, words"),
            "SELECT lines.* EXCLUDE (batch_time), words.* EXCLUDE (batch_time) FROM lines, words"
        );
        assert_eq!(
            rewrite(
                "SELECT * FROM (SELECT * FROM words) AS w UNION ALL SELECT * EXCLUDE (v) FROM lines"
            ),
            "SELECT * FROM (SELECT * EXCLUDE (batch_time) FROM words) AS w UNION ALL SELECT * EXCLUDE (v, batch_time) FROM lines"
        );
        assert_eq!(
            rewrite("SELECT batch_time, * FROM lines"),
            "SELECT batch_time, * EXCLUDE (batch_time) FROM lines"
        );
    }
}
