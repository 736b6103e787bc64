//! A join of a stream with a static table builds its hash table on the table.
//!
//! DataFusion builds a hash join on its left input unless statistics say the
//! right one is smaller. A stream's slot reports no statistics (its contents
//! change every batch), and neither does a CSV table, so the tutorial's
//! `lines l LEFT JOIN blacklist b ON ...` would collect the whole batch into
//! one hash table, in one thread, every batch, and probe it with the table.
//! [`StaticBuildSide`] runs right after DataFusion's `join_selection` and turns
//! such joins around: the static side is collected into the hash table
//! (`CollectLeft`), and the batch, in its partitions, probes it. Nothing of
//! the batch is repartitioned or collected, and its rows keep their order.
//!
//! ```text
//! HashJoinExec: mode=CollectLeft, join_type=Left     HashJoinExec: mode=CollectLeft, join_type=Right
//!   <the batch>                                  →     DataSourceExec: blacklist.csv
//!   DataSourceExec: blacklist.csv                      <the batch>
//! ```
//!
//! The hash table is built again every batch. So a table whose statistics
//! give more rows than the optimizer setting
//! `hash_join_single_partition_threshold_rows` (128Ki by default) is left
//! where DataFusion put it; a table without statistics (a CSV file) is turned.
//!
//! A side is static when every leaf under it is a `DataSourceExec` (files, or
//! the rows a `MemTable` had when the stream was planned), an `EmptyExec` or a
//! `PlaceholderRowExec`. Anything else (a slot, a window, a table provider of
//! the embedding application) may change between batches and is left alone.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::placeholder_row::PlaceholderRowExec;
use datafusion::physical_plan::{ExecutionPlan, StatisticsArgs, StatisticsContext};

/// The name of DataFusion's rule [`StaticBuildSide`] runs after.
const JOIN_SELECTION: &str = "join_selection";

/// Builds hash joins between a stream and a static table on the static side
/// (see the module docs).
#[derive(Debug, Default)]
pub struct StaticBuildSide;

impl StaticBuildSide {
    /// `rules` with this rule placed right after `join_selection` (which may
    /// swap sides by statistics first), or at the end when there is none.
    pub fn placed_in(
        mut rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
    ) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
        let at = rules
            .iter()
            .position(|r| r.name() == JOIN_SELECTION)
            .map_or(rules.len(), |i| i + 1);
        rules.insert(at, Arc::new(StaticBuildSide));
        rules
    }
}

impl PhysicalOptimizerRule for StaticBuildSide {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let most_rows = config.optimizer.hash_join_single_partition_threshold_rows;
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if join.null_aware || !join.join_type().supports_swap() {
                return Ok(Transformed::no(node));
            }
            match (is_static(join.left())?, is_static(join.right())?) {
                (false, true) if !known_larger(join.right(), most_rows)? => Ok(Transformed::yes(
                    join.swap_inputs(PartitionMode::CollectLeft)?,
                )),
                (true, false)
                    if join.partition_mode() != &PartitionMode::CollectLeft
                        && !known_larger(join.left(), most_rows)? =>
                {
                    Ok(Transformed::yes(Arc::new(
                        join.builder()
                            .with_partition_mode(PartitionMode::CollectLeft)
                            .build()?,
                    ) as _))
                }
                _ => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sluice_static_build_side"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `plan`'s statistics say it has more than `rows` rows. A table
/// that large stays on the side DataFusion chose: its hash table would be
/// built again every batch.
fn known_larger(plan: &Arc<dyn ExecutionPlan>, rows: usize) -> Result<bool> {
    let stats = StatisticsContext::new().compute(plan.as_ref(), &StatisticsArgs::new())?;
    Ok(stats.num_rows.get_value().is_some_and(|&n| n > rows))
}

/// Whether every leaf under `plan` holds the same rows every batch.
pub(crate) fn is_static(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    let mut all_static = true;
    plan.apply(|node| {
        if node.children().is_empty() {
            let leaf_is_static = node.downcast_ref::<DataSourceExec>().is_some()
                || node.downcast_ref::<EmptyExec>().is_some()
                || node.downcast_ref::<PlaceholderRowExec>().is_some();
            if !leaf_is_static {
                all_static = false;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(all_static)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray};
    use arrow::array::{RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::common::{JoinType, Result};
    use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
    use datafusion::prelude::SessionContext;

    use super::is_static;
    use crate::lookup_join::LookupJoinExec;
    use crate::plan::{StreamPlan, physical_plan};
    use crate::slot::{BatchSlot, SlotTable};

    /// A session with the static table `blacklist (word, flag)` and the
    /// streams `lines (value)` and `other (value)`, with `lines`' slot.
    async fn session() -> Result<(SessionContext, Arc<BatchSlot>)> {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE blacklist (word TEXT, flag BOOLEAN) AS VALUES ('spark', true), ('scala', false)")
            .await?
            .collect()
            .await?;
        let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)]));
        let lines = BatchSlot::new();
        ctx.register_table(
            "lines",
            Arc::new(SlotTable::new(Arc::clone(&schema), Arc::clone(&lines))),
        )?;
        ctx.register_table("other", Arc::new(SlotTable::new(schema, BatchSlot::new())))?;
        Ok((ctx, lines))
    }

    /// The hash joins of `sql`'s plans (a lookup join's among them) with
    /// each of `partitions`: (join type, mode, whether its build side is
    /// static).
    async fn plan_joins(
        ctx: &SessionContext,
        sql: &str,
        partitions: &[usize],
    ) -> Result<Vec<(JoinType, PartitionMode, bool)>> {
        let logical = ctx.sql(sql).await?.into_optimized_plan()?;
        let mut found = Vec::new();
        for &partitions in partitions {
            let plan = physical_plan(ctx, &logical, partitions).await?;
            plan.apply(|node| {
                let join = node.downcast_ref::<HashJoinExec>().or_else(|| {
                    node.downcast_ref::<LookupJoinExec>()
                        .and_then(LookupJoinExec::hash_join)
                });
                if let Some(join) = join {
                    found.push((
                        *join.join_type(),
                        *join.partition_mode(),
                        is_static(join.left())?,
                    ));
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(found)
    }

    /// [`plan_joins`] in a fresh [`session`], with 1 and 2 partitions.
    async fn joins(sql: &str) -> Result<Vec<(JoinType, PartitionMode, bool)>> {
        let (ctx, _) = session().await?;
        plan_joins(&ctx, sql, &[1, 2]).await
    }

    #[tokio::test]
    async fn a_stream_joined_with_a_table_builds_on_the_table() -> Result<()> {
        let sql = "SELECT l.value FROM lines l LEFT JOIN blacklist b ON l.value = b.word \
                   WHERE NOT coalesce(b.flag, false)";
        let expected = (JoinType::Right, PartitionMode::CollectLeft, true);
        assert_eq!(joins(sql).await?, vec![expected; 2]);
        Ok(())
    }

    /// A table known to be larger than DataFusion's single-partition threshold
    /// stays on the side DataFusion chose.
    #[tokio::test]
    async fn a_large_table_is_left_where_datafusion_put_it() -> Result<()> {
        let sql = "SELECT l.value FROM lines l LEFT JOIN blacklist b ON l.value = b.word";
        let (ctx, _) = session().await?;
        ctx.sql("SET datafusion.optimizer.hash_join_single_partition_threshold_rows = 1")
            .await?
            .collect()
            .await?;
        let found: Vec<_> = plan_joins(&ctx, sql, &[1])
            .await?
            .into_iter()
            .map(|(join_type, _, build_static)| (join_type, build_static))
            .collect();
        assert_eq!(found, vec![(JoinType::Left, false)]);
        Ok(())
    }

    #[tokio::test]
    async fn a_table_joined_with_a_stream_keeps_building_on_the_table() -> Result<()> {
        let sql = "SELECT b.word, l.value FROM blacklist b LEFT JOIN lines l ON l.value = b.word";
        let expected = (JoinType::Left, PartitionMode::CollectLeft, true);
        assert_eq!(joins(sql).await?, vec![expected; 2]);
        Ok(())
    }

    #[tokio::test]
    async fn two_streams_are_joined_as_datafusion_plans_them() -> Result<()> {
        let sql = "SELECT l.value FROM lines l JOIN other o ON l.value = o.value";
        for (join_type, _, build_static) in joins(sql).await? {
            assert_eq!((join_type, build_static), (JoinType::Inner, false));
        }
        Ok(())
    }

    /// The turned-around join gives the left join's rows, every batch.
    #[tokio::test]
    async fn the_turned_join_keeps_the_streams_rows() -> Result<()> {
        let (ctx, lines) = session().await?;
        let sql = "SELECT l.value, b.flag FROM lines l LEFT JOIN blacklist b ON l.value = b.word";
        let logical = ctx.sql(sql).await?.into_optimized_plan()?;
        let plan = StreamPlan::new(&ctx, &logical)
            .await?
            .with_parallel_threshold(2);
        for (t, words) in [
            (1000, vec!["spark", "kafka", "scala", "spark"]),
            (2000, vec!["hive"]),
        ] {
            let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)]));
            let batch =
                RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(words.clone()))])?;
            lines.set(t, vec![batch]);
            let out = plan.execute(words.len()).await?;
            let mut rows: Vec<(String, Option<bool>)> = Vec::new();
            for b in &out {
                let (value, flag) = (b.column(0).as_string::<i32>(), b.column(1).as_boolean());
                rows.extend((0..b.num_rows()).map(|i| {
                    (
                        value.value(i).to_string(),
                        flag.is_valid(i).then(|| flag.value(i)),
                    )
                }));
            }
            rows.sort();
            let expected: Vec<(String, Option<bool>)> = match t {
                1000 => vec![
                    ("kafka", None),
                    ("scala", Some(false)),
                    ("spark", Some(true)),
                    ("spark", Some(true)),
                ],
                _ => vec![("hive", None)],
            }
            .into_iter()
            .map(|(w, f)| (w.to_string(), f))
            .collect();
            assert_eq!(rows, expected, "batch {t}");
        }
        Ok(())
    }
}
