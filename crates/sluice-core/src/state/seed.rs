//! `WITH (initial_state = '<table>')`: keyed state seeded from a static
//! table (Spark's `StateSpec.initialState`).
//!
//! The table has a column for each key and each aggregate of the stream,
//! named as the stream's output names them:
//!
//! ```sql
//! CREATE TABLE yesterday (word TEXT, n BIGINT) AS VALUES ('hello', 10), ('world', 3);
//! CREATE STREAM totals WITH (initial_state = 'yesterday') AS
//!   SELECT word, count(*) AS n FROM words GROUP BY word EMIT SNAPSHOT;
//! ```
//!
//! A value is an aggregate's running state only for aggregates whose state
//! is their value: `count`, `sum`, `min`, `max`, `bool_and`, `bool_or`.
//! Others (`avg`, `median`, DISTINCT, a UDAF) are refused with a hint to seed
//! what they are made of. Rows with the same key are combined as the
//! aggregate would (counts add up).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::{CastOptions, cast_with_options, concat_batches};
use arrow::datatypes::{Field, Schema};
use datafusion::common::Column;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::prelude::SessionContext;

use crate::window::split::AggregateSplit;

/// Aggregates whose partial state is their final value.
const SEEDABLE: &[&str] = &["count", "sum", "min", "max", "bool_and", "bool_or"];

/// The table's rows as the aggregate's values (key columns, then each
/// aggregate's value, typed as the aggregate's output), or why not.
pub async fn seed_values(
    session: &SessionContext,
    table: &str,
    split: &AggregateSplit,
    plan: &LogicalPlan,
) -> Result<RecordBatch, String> {
    let names = output_names(plan, split);
    let keys = split.keys.len();
    for (j, e) in split.aggregates.iter().enumerate() {
        if let Some(why) = not_seedable(e) {
            return Err(format!(
                "cannot seed {}: {why}",
                display_name(&names, keys + j, split.schema.field(keys + j).name())
            ));
        }
    }
    let df = session.table(table).await.map_err(|_| {
        format!(
            "no table '{table}' (create it first, e.g. CREATE TABLE {table} (...) AS VALUES ...)"
        )
    })?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df
        .collect()
        .await
        .map_err(|e| format!("reading table '{table}': {}", e.strip_backtrace()))?;
    let rows = concat_batches(&schema, &batches).map_err(|e| e.to_string())?;
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, (_, field)) in split.schema.iter().enumerate() {
        let Some(name) = &names[i] else {
            let what = if i < keys { "its key" } else { "its aggregate" };
            let what = format!("{what} {}", field.name());
            return Err(format!(
                "the stream does not select {what} as a column of its own, so no column of '{table}' can seed it (an aggregate used only in HAVING or EVICT WHEN must be selected too, to be seeded)"
            ));
        };
        let Ok(index) = schema.index_of(name) else {
            return Err(format!(
                "table '{table}' has no column '{name}' (it has: {})",
                schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let strict = CastOptions {
            safe: false,
            ..Default::default()
        };
        let column =
            cast_with_options(rows.column(index), field.data_type(), &strict).map_err(|e| {
                format!(
                    "column '{name}' of '{table}' ({}) does not convert to {}: {e}",
                    rows.column(index).data_type(),
                    field.data_type()
                )
            })?;
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(format!(
                "column '{name}' of '{table}' has NULLs, which the value it seeds never is"
            ));
        }
        fields.push(Field::new(field.name(), field.data_type().clone(), true));
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

fn not_seedable(e: &Expr) -> Option<String> {
    let inner = match e {
        Expr::Alias(a) => a.expr.as_ref(),
        other => other,
    };
    let Expr::AggregateFunction(f) = inner else {
        return Some("it is not an aggregate call".into());
    };
    let name = f.func.name();
    if f.params.distinct {
        return Some("a DISTINCT aggregate's state is its set of values, not its value".into());
    }
    if !SEEDABLE.contains(&name) {
        return Some(format!(
            "the running state of {name} is more than its value (seedable: {}; e.g. seed sum and count and divide in the SELECT)",
            SEEDABLE.join(", ")
        ));
    }
    None
}

fn display_name(names: &[Option<String>], i: usize, written: &str) -> String {
    match &names[i] {
        Some(n) if n != written => format!("'{n}' ({written})"),
        _ => written.to_string(),
    }
}

/// For each column of the aggregate's output, the name of the stream's
/// output column that is exactly it (`word`, `count(*) AS n`), if any.
fn output_names(plan: &LogicalPlan, split: &AggregateSplit) -> Vec<Option<String>> {
    let mut names = vec![None; split.schema.fields().len()];
    let mut node = plan;
    loop {
        if let LogicalPlan::Projection(p) = node {
            let mut below = p.input.as_ref();
            while let LogicalPlan::Filter(f) = below {
                below = f.input.as_ref();
            }
            if let LogicalPlan::Aggregate(_) = below {
                for (e, (_, out)) in p.expr.iter().zip(p.schema.iter()) {
                    let mut inner = e;
                    while let Expr::Alias(a) = inner {
                        inner = a.expr.as_ref();
                    }
                    if let Expr::Column(c) = inner
                        && let Some(i) = index_of(split, c)
                        && names[i].is_none()
                    {
                        names[i] = Some(out.name().clone());
                    }
                }
                return names;
            }
        }
        match node.inputs().as_slice() {
            [input] => node = input,
            _ => return names,
        }
    }
}

fn index_of(split: &AggregateSplit, c: &Column) -> Option<usize> {
    split.schema.index_of_column(c).ok()
}
