//! `unnest` of a lone list column without copying it: the word count's
//! `SELECT unnest(string_to_array(value, ' ')) AS word FROM lines`.
//!
//! DataFusion's `UnnestExec` builds an index per element and `take`s every
//! element into a new array (for text, every byte copied again). When the
//! list is the only column (nothing is repeated beside it), unnesting at depth
//! one is the list's values between its first and last offset, a zero-copy
//! slice, as long as no row is NULL (and, with
//! `NullHandling::PreserveAndExpandEmpty`, none is empty). Batches with such
//! rows are built with `take`, as DataFusion does. [`flatten_unnests`]
//! puts a [`FlattenListExec`] in place of each `UnnestExec` of that shape in a
//! stream's physical plan. Its rows are `UnnestExec`'s, in the same order
//! (checked in the tests below); its batches are one per input batch, not
//! cut to `batch_size`, which the aggregates and sinks after it do not mind.
//!
//! ```text
//! UnnestExec                     FlattenListExec
//!   ProjectionExec: string_to_array(value, ' ')   →   ProjectionExec: ...
//! ```

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Builder, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{NullHandling, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::unnest::UnnestExec;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::StreamExt;

/// Replaces every `UnnestExec` that unnests the only column of its input, a
/// `List`, at depth one, by a [`FlattenListExec`].
pub fn flatten_unnests(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(unnest) = node.downcast_ref::<UnnestExec>() else {
            return Ok(Transformed::no(node));
        };
        let input = unnest.input().schema();
        let flat = matches!(unnest.list_column_indices(), [l] if l.depth == 1 && l.index_in_input_schema == 0)
            && unnest.struct_column_indices().is_empty()
            && unnest.options().recursions.iter().all(|r| r.depth == 1)
            && input.fields().len() == 1
            && matches!(input.field(0).data_type(), DataType::List(_))
            && unnest.schema().fields().len() == 1;
        if !flat {
            return Ok(Transformed::no(node));
        }
        let unnest = Arc::new(unnest.clone());
        Ok(Transformed::yes(Arc::new(FlattenListExec { unnest }) as _))
    })
    .map(|t| t.data)
}

/// The unnest of a lone list column as a slice of its values (see the module docs).
#[derive(Debug)]
pub struct FlattenListExec {
    /// The node it stands for: its input, schema, properties and options.
    unnest: Arc<UnnestExec>,
}

impl DisplayAs for FlattenListExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "FlattenListExec")
    }
}

impl ExecutionPlan for FlattenListExec {
    fn name(&self) -> &str {
        "FlattenListExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.unnest.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.unnest.input()]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let unnest = Arc::clone(&self.unnest).replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?;
        flatten_unnests(unnest)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = self.unnest.schema();
        let null_handling = self.unnest.options().null_handling;
        let input = self.unnest.input().execute(partition, context)?;
        let out = Arc::clone(&schema);
        let batches = input.map(move |batch| flatten(&batch?, &out, null_handling));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// One batch's lists, unnested.
fn flatten(batch: &RecordBatch, schema: &SchemaRef, nulls: NullHandling) -> Result<RecordBatch> {
    let list = batch.column(0).as_list::<i32>();
    let offsets = list.value_offsets();
    let (first, last) = (offsets[0] as usize, offsets[list.len()] as usize);
    let expand_empty =
        nulls == NullHandling::PreserveAndExpandEmpty && offsets.windows(2).any(|w| w[0] == w[1]);
    let values = if list.null_count() == 0 && !expand_empty {
        list.values().slice(first, last - first)
    } else {
        // A NULL (or, expanded, an empty) row gives one NULL unless dropped.
        let mut take = Int64Builder::with_capacity(last - first + list.null_count());
        for row in 0..list.len() {
            let (start, end) = (offsets[row] as i64, offsets[row + 1] as i64);
            if list.is_valid(row) {
                for i in start..end {
                    take.append_value(i);
                }
                if start == end && nulls == NullHandling::PreserveAndExpandEmpty {
                    take.append_null();
                }
            } else if nulls != NullHandling::Drop {
                take.append_null();
            }
        }
        arrow::compute::take(list.values(), &take.finish(), None)?
    };
    Ok(RecordBatch::try_new(Arc::clone(schema), vec![values])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ListArray, StringArray};
    use arrow::datatypes::{Field, Schema};
    use datafusion::common::UnnestOptions;
    use datafusion::physical_plan::collect;
    use datafusion::physical_plan::test::TestMemoryExec;
    use datafusion::physical_plan::unnest::ListUnnest;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random_lists(rng: &mut StdRng) -> ListArray {
        let rows: Vec<Option<Vec<Option<String>>>> = (0..rng.random_range(0..30))
            .map(|_| {
                (rng.random_range(0..6) > 0).then(|| {
                    (0..rng.random_range(0..4))
                        .map(|i| (rng.random_range(0..8) > 0).then(|| format!("w{i}")))
                        .collect()
                })
            })
            .collect();
        let mut builder = arrow::array::ListBuilder::new(arrow::array::StringBuilder::new());
        for row in rows {
            match row {
                None => builder.append(false),
                Some(items) => {
                    for item in items {
                        builder.values().append_option(item);
                    }
                    builder.append(true);
                }
            }
        }
        builder.finish()
    }

    #[tokio::test]
    async fn same_rows_as_unnest_exec_on_random_lists() {
        let mut rng = StdRng::seed_from_u64(5);
        let item = Arc::new(Field::new_list_field(DataType::Utf8, true));
        let input_schema = Arc::new(Schema::new(vec![Field::new(
            "l",
            DataType::List(Arc::clone(&item)),
            true,
        )]));
        let output_schema = Arc::new(Schema::new(vec![Field::new("l", DataType::Utf8, true)]));
        for round in 0..60 {
            let batches: Vec<RecordBatch> = (0..3)
                .map(|_| {
                    let lists = random_lists(&mut rng);
                    let skip = rng.random_range(0..=lists.len().min(3));
                    let lists = lists.slice(skip, lists.len() - skip);
                    RecordBatch::try_new(Arc::clone(&input_schema), vec![Arc::new(lists)]).unwrap()
                })
                .collect();
            for nulls in [
                NullHandling::Drop,
                NullHandling::Preserve,
                NullHandling::PreserveAndExpandEmpty,
            ] {
                let source = TestMemoryExec::try_new_exec(
                    &[batches.clone()],
                    Arc::clone(&input_schema),
                    None,
                )
                .unwrap();
                let options = UnnestOptions {
                    null_handling: nulls,
                    recursions: vec![],
                };
                let unnest: Arc<dyn ExecutionPlan> = Arc::new(
                    UnnestExec::new(
                        source,
                        vec![ListUnnest {
                            index_in_input_schema: 0,
                            depth: 1,
                        }],
                        vec![],
                        Arc::clone(&output_schema),
                        options,
                    )
                    .unwrap(),
                );
                let flat = flatten_unnests(Arc::clone(&unnest)).unwrap();
                assert_eq!(flat.name(), "FlattenListExec");
                let ctx = Arc::new(TaskContext::default());
                let want = collect(unnest, Arc::clone(&ctx)).await.unwrap();
                let got = collect(flat, ctx).await.unwrap();
                let rows = |b: &[RecordBatch]| -> Vec<Option<String>> {
                    b.iter()
                        .flat_map(|b| {
                            b.column(0)
                                .as_any()
                                .downcast_ref::<StringArray>()
                                .unwrap()
                                .iter()
                                .map(|v| v.map(str::to_string))
                                .collect::<Vec<_>>()
                        })
                        .collect()
                };
                assert_eq!(rows(&got), rows(&want), "round {round}, {nulls:?}");
            }
        }
    }
}
