//! `EMIT ... EVICT WHEN <predicate>`: dropping keys from SQL.
//!
//! After each batch, the keys that batch touched are tested: a key whose
//! running values satisfy the predicate is emitted as usual (its last
//! values), then its state is dropped; if it comes back it starts fresh.
//! The predicate is over the stream's output columns (by their names, as in
//! `HAVING`) and may use any aggregate:
//!
//! ```sql
//! CREATE STREAM sessions AS
//!   SELECT user_id, count(*) AS clicks, bool_or(action = 'logout') AS done
//!   FROM clicks GROUP BY user_id
//!   EMIT CHANGES EVICT WHEN done OR clicks >= 1000;
//! ```
//!
//! How: the predicate (aliases replaced by what they name) becomes a hidden
//! column of the query, so DataFusion plans it with the other aggregates,
//! which then share one state store. The hidden column is cut out of the
//! stream's output, and a second small plan over the same aggregate values
//! computes `(key columns, evict)`.

use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::{Column, DFSchema};
use datafusion::error::Result as DFResult;
use datafusion::logical_expr::ExprSchemable;
use datafusion::logical_expr::{Expr, LogicalPlan, Projection};
use sluice_sql::normalize_ident;
use sluice_sql::sqlparser::ast::{self, Ident, Query, SelectItem, SetExpr, visit_expressions_mut};

/// The hidden column holding the predicate.
pub const EVICT_COLUMN: &str = "__sluice_evict";

/// Adds `predicate` to `query`'s select list as the hidden column, each
/// unqualified name of a select alias replaced by the aliased expression.
pub fn add_evict_column(query: &mut Query, predicate: &ast::Expr) -> Result<(), String> {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err("EVICT WHEN needs a plain SELECT ... GROUP BY".into());
    };
    let aliases: Vec<(String, ast::Expr)> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { expr, alias } => {
                Some((normalize_ident(alias), expr.clone()))
            }
            _ => None,
        })
        .collect();
    let mut predicate = predicate.clone();
    let _ = visit_expressions_mut(&mut predicate, |e| {
        if let ast::Expr::Identifier(id) = e
            && let Some((_, aliased)) = aliases.iter().find(|(a, _)| *a == normalize_ident(id))
        {
            *e = ast::Expr::Nested(Box::new(aliased.clone()));
        }
        ControlFlow::<()>::Continue(())
    });
    select.projection.push(SelectItem::ExprWithAlias {
        expr: predicate,
        alias: Ident::new(EVICT_COLUMN),
    });
    Ok(())
}

/// The names the predicate may use besides columns and aggregates: the
/// select list's aliases and plain column names, for error hints.
pub fn output_names(query: &Query) -> Vec<String> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Vec::new();
    };
    select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(normalize_ident(alias)),
            SelectItem::UnnamedExpr(ast::Expr::Identifier(id)) => Some(normalize_ident(id)),
            _ => None,
        })
        .collect()
}

/// Cuts the analyzed plan of a query with the hidden column in two: the
/// stream's plan (without the column) and the eviction plan, `(key columns,
/// evict)` over the same `Aggregate`.
pub fn split_evict_plan(plan: &LogicalPlan) -> DFResult<(LogicalPlan, LogicalPlan)> {
    // The projection right above the aggregate (maybe through a HAVING).
    let mut node = plan;
    let (projection, aggregate) = loop {
        match node {
            LogicalPlan::Projection(p) => {
                let mut below = p.input.as_ref();
                while let LogicalPlan::Filter(f) = below {
                    below = f.input.as_ref();
                }
                if let LogicalPlan::Aggregate(_) = below {
                    break (p, below);
                }
                node = p.input.as_ref();
            }
            other => match other.inputs().as_slice() {
                [input] => node = input,
                _ => return datafusion::common::plan_err!("EVICT WHEN needs a GROUP BY query"),
            },
        }
    };
    let LogicalPlan::Aggregate(agg) = aggregate else {
        return datafusion::common::plan_err!("EVICT WHEN needs a GROUP BY query");
    };
    let Some(flag) = projection.expr.iter().find_map(|e| match e {
        Expr::Alias(a) if a.name == EVICT_COLUMN => Some(a.expr.as_ref().clone()),
        _ => None,
    }) else {
        return datafusion::common::plan_err!("EVICT WHEN: the predicate's column was lost");
    };
    let data_type = flag.get_type(agg.schema.as_ref())?;
    if data_type != DataType::Boolean {
        return datafusion::common::plan_err!(
            "EVICT WHEN needs a predicate (true or false); this one is {data_type}"
        );
    }
    let groups = agg.group_expr.len();
    let mut exprs: Vec<Expr> = agg
        .schema
        .iter()
        .take(groups)
        .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name())))
        .collect();
    exprs.push(flag.alias(EVICT_COLUMN));
    let evict = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(aggregate.clone()))?);
    let main = without_column(plan, EVICT_COLUMN)?;
    Ok((main, evict))
}

/// `plan` with its output column `name` projected away.
fn without_column(plan: &LogicalPlan, name: &str) -> DFResult<LogicalPlan> {
    let schema: &DFSchema = plan.schema();
    let exprs: Vec<Expr> = schema
        .iter()
        .filter(|(_, f)| f.name() != name)
        .map(|(q, f)| Expr::Column(Column::new(q.cloned(), f.name())))
        .collect();
    Ok(LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(plan.clone()),
    )?))
}
