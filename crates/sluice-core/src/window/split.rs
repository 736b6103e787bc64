//! Which windowed queries are computed incrementally, and how they are cut.
//!
//! A query over a window is incremental when it is, from the top: any chain of
//! single-input nodes (projection, HAVING, ORDER BY, LIMIT, ...) over one
//! `Aggregate` whose input works row by row on the window's rows (filters,
//! projections, unnest, joins with static tables that keep the window's side).
//! Such an input gives the same rows for the window as the union of what it
//! gives for each batch, so the aggregate's partial states can be kept per
//! batch (a pane) and combined.
//!
//! Anything else — a plain `SELECT` of the window's rows, an aggregate over an
//! aggregate, `window_start` used inside an expression — is recomputed over
//! the covered batches' rows at each emission; `EXPLAIN` says why.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchemaRef};
use datafusion::logical_expr::{Expr, JoinType, LogicalPlan};

use crate::slot::{WINDOW_END, WINDOW_START};

/// A group column of the aggregate's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupColumn {
    /// The i-th key kept per pane.
    Key(usize),
    WindowStart,
    WindowEnd,
}

/// An incremental windowed aggregate, cut in three.
#[derive(Debug, Clone)]
pub struct AggregateSplit {
    /// The aggregate's input: reads one pane (batch) of the window.
    pub input: LogicalPlan,
    /// The GROUP BY expressions kept per pane (window bounds removed).
    pub keys: Vec<Expr>,
    /// For each group column of the aggregate's output, where it comes from.
    pub group_columns: Vec<GroupColumn>,
    pub aggregates: Vec<Expr>,
    /// The aggregate's output schema.
    pub schema: DFSchemaRef,
}

/// Cuts `plan` (an analyzed plan reading the window table `window_table`)
/// or says why it cannot be incremental.
pub fn split_aggregate(plan: &LogicalPlan, window_table: &str) -> Result<AggregateSplit, String> {
    let mut node = plan;
    let aggregate = loop {
        match node {
            LogicalPlan::Aggregate(a) => break a,
            LogicalPlan::TableScan(_) => {
                return Err("the query has no aggregate: the window's rows are selected".into());
            }
            other => {
                let inputs = other.inputs();
                if inputs.len() != 1 {
                    return Err(format!(
                        "{} above the aggregate",
                        other.display().to_string().split(':').next().unwrap_or("a join")
                    ));
                }
                node = inputs[0];
            }
        }
    };
    let mut keys = Vec::new();
    let mut group_columns = Vec::new();
    for e in &aggregate.group_expr {
        if matches!(e, Expr::GroupingSet(_)) {
            return Err("GROUPING SETS, CUBE and ROLLUP are recomputed".into());
        }
        if let Some(bound) = window_bound(e) {
            group_columns.push(bound);
            continue;
        }
        if uses_window_bounds(e) {
            return Err(format!("GROUP BY {e} uses window_start/window_end in an expression"));
        }
        group_columns.push(GroupColumn::Key(keys.len()));
        keys.push(e.clone());
    }
    for e in &aggregate.aggr_expr {
        let inner = match e {
            Expr::Alias(a) => a.expr.as_ref(),
            other => other,
        };
        if !matches!(inner, Expr::AggregateFunction(_)) {
            return Err(format!("{e} is not an aggregate call"));
        }
        if uses_window_bounds(e) {
            return Err(format!("{e} uses window_start/window_end"));
        }
    }
    per_row(&aggregate.input, window_table)?;
    Ok(AggregateSplit {
        input: aggregate.input.as_ref().clone(),
        keys,
        group_columns,
        aggregates: aggregate.aggr_expr.clone(),
        schema: aggregate.schema.clone(),
    })
}

/// Replaces the aggregate of `plan` (found as `split_aggregate` found it) by
/// `replacement`, which must have the aggregate's schema.
pub fn replace_aggregate(
    plan: &LogicalPlan,
    replacement: LogicalPlan,
) -> datafusion::error::Result<LogicalPlan> {
    match plan {
        LogicalPlan::Aggregate(_) => Ok(replacement),
        other => {
            let inputs = other.inputs();
            let [input] = inputs.as_slice() else {
                return datafusion::common::internal_err!("window: no single path to the aggregate");
            };
            let new_input = replace_aggregate(input, replacement)?;
            other.with_new_exprs(other.expressions(), vec![new_input])
        }
    }
}

fn is_bound(c: &Column) -> Option<GroupColumn> {
    match c.name.as_str() {
        WINDOW_START => Some(GroupColumn::WindowStart),
        WINDOW_END => Some(GroupColumn::WindowEnd),
        _ => None,
    }
}

fn window_bound(e: &Expr) -> Option<GroupColumn> {
    match e {
        Expr::Column(c) => is_bound(c),
        _ => None,
    }
}

fn uses_window_bounds(e: &Expr) -> bool {
    e.column_refs().iter().any(|c| is_bound(c).is_some())
}

fn reads(plan: &LogicalPlan, table: &str) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|p| {
        if let LogicalPlan::TableScan(s) = p
            && s.table_name.table() == table
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Whether `plan` gives, for the union of panes, the union of what it gives
/// for each pane.
fn per_row(plan: &LogicalPlan, window_table: &str) -> Result<(), String> {
    if !reads(plan, window_table) {
        return Ok(());
    }
    let expressions_read_window = || {
        plan.expressions().iter().any(|e| {
            let mut found = false;
            let _ = e.apply(|x| {
                if let Expr::ScalarSubquery(s) | Expr::Exists(datafusion::logical_expr::expr::Exists { subquery: s, .. }) = x
                    && reads(&s.subquery, window_table)
                {
                    found = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                if let Expr::InSubquery(i) = x
                    && reads(&i.subquery.subquery, window_table)
                {
                    found = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            });
            found
        })
    };
    if expressions_read_window() {
        return Err("a subquery reads the window".into());
    }
    for e in plan.expressions() {
        if uses_window_bounds(&e) {
            return Err(format!("{e} uses window_start/window_end before the aggregate"));
        }
    }
    match plan {
        LogicalPlan::TableScan(_) => Ok(()),
        LogicalPlan::Projection(p) => per_row(&p.input, window_table),
        LogicalPlan::Filter(f) => per_row(&f.input, window_table),
        LogicalPlan::SubqueryAlias(a) => per_row(&a.input, window_table),
        LogicalPlan::Unnest(u) => per_row(&u.input, window_table),
        LogicalPlan::Join(j) => {
            let (left, right) = (reads(&j.left, window_table), reads(&j.right, window_table));
            use JoinType::*;
            match (left, right, j.join_type) {
                (true, false, Inner | Left | LeftSemi | LeftAnti | LeftMark) => {
                    per_row(&j.left, window_table)
                }
                (false, true, Inner | Right | RightSemi | RightAnti | RightMark) => {
                    per_row(&j.right, window_table)
                }
                _ => Err(format!("a {} join keeps rows of the other side", j.join_type)),
            }
        }
        other => Err(format!(
            "{} under the aggregate",
            other.display().to_string().split(':').next().unwrap_or("a node")
        )),
    }
}
