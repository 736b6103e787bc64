//! `offsets(<source>)`: the offset ranges a source's batch was cut from,
//! Spark's `HasOffsetRanges`. A source that reads from a log (Kafka) fixes,
//! when batch `T` is cut, a range `[from_offset, until_offset)` per
//! partition; a stream reads them as a table with one row per partition:
//! `topic, partition, from_offset, until_offset` (and `batch_time`).
//!
//! ```sql
//! CREATE STREAM ranges AS
//!   SELECT topic, partition, from_offset, until_offset FROM offsets(events);
//! ```
//!
//! The Rust API's `foreach_batch_with_offsets` hands them to the callback
//! as [`OffsetRange`]s.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result as DFResult;
use datafusion::logical_expr::Expr;

use crate::slot::{BatchSlot, SlotTable};

/// The name of the table function.
pub const FUNCTION: &str = "offsets";

/// The columns of `offsets(<source>)`.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("from_offset", DataType::Int64, false),
        Field::new("until_offset", DataType::Int64, false),
    ]))
}

/// One partition's range in a batch (Spark's `OffsetRange`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRange {
    /// The sluice source that read it (set by the engine).
    pub source: String,
    pub topic: String,
    pub partition: i32,
    pub from_offset: i64,
    /// One past the last offset read: where the next batch starts.
    pub until_offset: i64,
}

/// `ranges` as `offsets(<source>)` shows them.
pub fn ranges_batch(ranges: &[OffsetRange]) -> RecordBatch {
    let offsets =
        |f: fn(&OffsetRange) -> i64| Arc::new(Int64Array::from_iter_values(ranges.iter().map(f)));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            ranges.iter().map(|r| r.topic.as_str()),
        )),
        Arc::new(Int32Array::from_iter_values(
            ranges.iter().map(|r| r.partition),
        )),
        offsets(|r| r.from_offset),
        offsets(|r| r.until_offset),
    ];
    // The columns are built to the schema's types and lengths.
    RecordBatch::try_new(schema(), columns).unwrap_or_else(|_| RecordBatch::new_empty(schema()))
}

/// The `offsets` table function: the slot of each source that has offset
/// ranges, by name. `offsets(s)` is a slot table reading `s`'s ranges, and
/// counts as reading `s` (see [`SlotTable::reads`]).
#[derive(Debug, Default)]
pub struct OffsetsFunction {
    slots: RwLock<BTreeMap<String, Arc<BatchSlot>>>,
}

impl OffsetsFunction {
    /// Makes `offsets(source)` read `slot`.
    pub fn add(&self, source: &str, slot: Arc<BatchSlot>) {
        self.write().insert(source.to_string(), slot);
    }

    pub fn remove(&self, source: &str) {
        self.write().remove(source);
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<BatchSlot>>> {
        self.slots.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl TableFunctionImpl for OffsetsFunction {
    fn call_with_args(&self, args: TableFunctionArgs) -> DFResult<Arc<dyn TableProvider>> {
        let name = match args.exprs() {
            [Expr::Column(c)] if c.relation.is_none() => c.name.clone(),
            [Expr::Literal(ScalarValue::Utf8(Some(s)), _)] => s.clone(),
            _ => return plan_err!("offsets() takes one source name, e.g. offsets(events)"),
        };
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        match slots.get(&name) {
            Some(slot) => Ok(Arc::new(
                SlotTable::new(schema(), Arc::clone(slot)).reading(&name),
            )),
            None => {
                let known: Vec<&str> = slots.keys().map(String::as_str).collect();
                plan_err!(
                    "offsets({name}): '{name}' is not a source with offset ranges (a kafka source); {}",
                    if known.is_empty() {
                        "there is none yet".to_string()
                    } else {
                        format!("these have them: {}", known.join(", "))
                    }
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn offsets_reads_the_slot_of_a_source_that_has_ranges() {
        let function = Arc::new(OffsetsFunction::default());
        let session = SessionContext::new();
        session.register_udtf(FUNCTION, Arc::clone(&function) as _);
        let slot = BatchSlot::new();
        function.add("events", Arc::clone(&slot));
        let range = OffsetRange {
            source: "events".into(),
            topic: "t".into(),
            partition: 2,
            from_offset: 10,
            until_offset: 15,
        };
        slot.set(1000, vec![ranges_batch(&[range])]);
        let rows = session
            .sql("SELECT topic, partition, until_offset - from_offset AS n FROM offsets(events)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let shown = arrow::util::pretty::pretty_format_batches(&rows)
            .unwrap()
            .to_string();
        assert!(shown.contains("| t     | 2         | 5 |"), "{shown}");

        let e = session
            .sql("SELECT * FROM offsets(lines)")
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains(
                "offsets(lines): 'lines' is not a source with offset ranges (a kafka source); these have them: events"
            ),
            "{e}"
        );
    }
}
