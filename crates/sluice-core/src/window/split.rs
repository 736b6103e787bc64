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
use datafusion::common::{Column, DFSchemaRef, TableReference};
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

impl AggregateSplit {
    /// The key and aggregates as written (after analysis): what a
    /// checkpoint compares to know saved state still fits.
    pub fn signature(&self) -> Vec<(&'static str, String)> {
        let list = |exprs: &[Expr]| {
            exprs
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            ("key", list(&self.keys)),
            ("aggregates", list(&self.aggregates)),
        ]
    }
}

/// Cuts `plan` (an analyzed plan reading the window table `window_table`)
/// or says why it cannot be incremental.
pub fn split_aggregate(plan: &LogicalPlan, window_table: &str) -> Result<AggregateSplit, String> {
    split_aggregate_over(plan, window_table, true)
}

/// The same over any table read a batch at a time (`window_bounds`: whether
/// its `window_start`/`window_end` are a window's bounds, constant per
/// emission, or plain columns).
pub fn split_aggregate_over(
    plan: &LogicalPlan,
    window_table: &str,
    window_bounds: bool,
) -> Result<AggregateSplit, String> {
    let mut window = Window::find(plan, window_table)?;
    window.bounds = window_bounds;
    if !contains_aggregate(plan) {
        return Err("the query has no aggregate (it selects rows)".into());
    }
    let mut node = plan;
    let aggregate = loop {
        if subqueries_read(node, window_table) {
            return Err("a subquery reads the window".into());
        }
        match node {
            LogicalPlan::Aggregate(a) => break a,
            other => {
                let inputs = other.inputs();
                if inputs.len() != 1 {
                    return Err(format!("{} above the aggregate", node_name(other)));
                }
                node = inputs[0];
            }
        }
    };
    if !reads(&aggregate.input, window_table) {
        return Err("the aggregate does not read the window".into());
    }
    let mut keys = Vec::new();
    let mut group_columns = Vec::new();
    for e in &aggregate.group_expr {
        if matches!(e, Expr::GroupingSet(_)) {
            return Err("GROUPING SETS, CUBE and ROLLUP are recomputed".into());
        }
        if let Some(bound) = window.bound(e) {
            group_columns.push(bound);
            continue;
        }
        if window.uses_bounds(e) {
            return Err(format!(
                "GROUP BY {e} uses window_start/window_end in an expression"
            ));
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
        if window.uses_bounds(e) {
            return Err(format!("{e} uses window_start/window_end"));
        }
    }
    per_row(&aggregate.input, &window)?;
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
                return datafusion::common::internal_err!(
                    "window: no single path to the aggregate"
                );
            };
            let new_input = replace_aggregate(input, replacement)?;
            other.with_new_exprs(other.expressions(), vec![new_input])
        }
    }
}

/// The window's table and the name its columns are qualified by.
struct Window {
    table: String,
    alias: TableReference,
    /// Whether `window_start`/`window_end` are bounds (else plain columns).
    bounds: bool,
}

impl Window {
    fn find(plan: &LogicalPlan, table: &str) -> Result<Self, String> {
        let mut alias = None;
        let _ = plan.apply_with_subqueries(|p| {
            match p {
                LogicalPlan::SubqueryAlias(a)
                    if matches!(a.input.as_ref(), LogicalPlan::TableScan(s) if s.table_name.table() == table) =>
                {
                    alias = Some(a.alias.clone());
                    return Ok(TreeNodeRecursion::Stop);
                }
                LogicalPlan::TableScan(s) if s.table_name.table() == table => {
                    alias = Some(s.table_name.clone());
                    return Ok(TreeNodeRecursion::Stop);
                }
                _ => {}
            }
            Ok(TreeNodeRecursion::Continue)
        });
        match alias {
            Some(alias) => Ok(Self {
                table: table.to_string(),
                alias,
                bounds: true,
            }),
            None => Err("the query does not read the window".into()),
        }
    }

    /// `window_start`/`window_end` of the window itself (not a column of
    /// that name from elsewhere, nor an unqualified one).
    fn is_bound(&self, c: &Column) -> Option<GroupColumn> {
        if !self.bounds {
            return None;
        }
        let bound = match c.name.as_str() {
            WINDOW_START => GroupColumn::WindowStart,
            WINDOW_END => GroupColumn::WindowEnd,
            _ => return None,
        };
        (c.relation.as_ref() == Some(&self.alias)).then_some(bound)
    }

    fn bound(&self, e: &Expr) -> Option<GroupColumn> {
        match e {
            Expr::Column(c) => self.is_bound(c),
            _ => None,
        }
    }

    /// Whether `e` may read a window bound: one of the window's, or an
    /// unqualified column of that name.
    fn uses_bounds(&self, e: &Expr) -> bool {
        self.bounds
            && e.column_refs().iter().any(|c| {
                self.is_bound(c).is_some()
                    || (c.relation.is_none() && (c.name == WINDOW_START || c.name == WINDOW_END))
            })
    }
}

fn contains_aggregate(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply(|p| {
        found = matches!(p, LogicalPlan::Aggregate(_));
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

fn node_name(plan: &LogicalPlan) -> String {
    plan.display()
        .to_string()
        .split(':')
        .next()
        .unwrap_or("a node")
        .to_string()
}

/// Whether an expression of `plan` (this node only) has a subquery that
/// reads `table`.
fn subqueries_read(plan: &LogicalPlan, table: &str) -> bool {
    plan.expressions().iter().any(|e| {
        let mut found = false;
        let _ = e.apply(|x| {
            let subquery = match x {
                Expr::ScalarSubquery(s) => Some(&s.subquery),
                Expr::Exists(x) => Some(&x.subquery.subquery),
                Expr::InSubquery(i) => Some(&i.subquery.subquery),
                _ => None,
            };
            if subquery.is_some_and(|s| reads(s, table)) {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        });
        found
    })
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
fn per_row(plan: &LogicalPlan, window: &Window) -> Result<(), String> {
    let table = window.table.as_str();
    if !reads(plan, table) {
        return Ok(());
    }
    if subqueries_read(plan, table) {
        return Err("a subquery reads the window".into());
    }
    for e in plan.expressions() {
        if window.uses_bounds(&e) {
            return Err(format!(
                "{e} uses window_start/window_end before the aggregate"
            ));
        }
    }
    match plan {
        LogicalPlan::TableScan(_) => Ok(()),
        LogicalPlan::Projection(p) => per_row(&p.input, window),
        LogicalPlan::Filter(f) => per_row(&f.input, window),
        LogicalPlan::SubqueryAlias(a) => per_row(&a.input, window),
        LogicalPlan::Unnest(u) => per_row(&u.input, window),
        LogicalPlan::Join(j) => {
            let (left, right) = (reads(&j.left, table), reads(&j.right, table));
            use JoinType::*;
            match (left, right, j.join_type) {
                (true, false, Inner | Left | LeftSemi | LeftAnti | LeftMark) => {
                    per_row(&j.left, window)
                }
                (false, true, Inner | Right | RightSemi | RightAnti | RightMark) => {
                    per_row(&j.right, window)
                }
                _ => Err(format!(
                    "a {} join keeps rows of the other side",
                    j.join_type
                )),
            }
        }
        other => Err(format!("{} under the aggregate", node_name(other))),
    }
}
