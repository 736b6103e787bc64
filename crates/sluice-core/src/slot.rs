//! The leaf every stream plan reads: a [`BatchSlot`] whose contents are swapped
//! each batch, exposed to DataFusion as [`SlotTable`] / [`SlotScanExec`].
//!
//! A stream's SQL is planned once against the slot tables of its inputs; each
//! batch the engine puts the batch's rows into the slots and executes the same
//! physical plan again. The scan hands out whatever the slot holds at
//! `execute` time (unlike `MemTable`, which copies its batches into the plan).
//!
//! Every slot table has a `batch_time` column (timestamp, ms) holding the
//! batch's time; it costs nothing unless selected.
//!
//! The scan splits the batch into `target_partitions` contiguous row ranges
//! (zero-copy slices), each cut into chunks of at most `batch_size` rows, so a
//! plan built with more partitions runs them in parallel.

use std::fmt;
use std::sync::{Arc, RwLock};

use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::Result as DFResult;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};

/// The name of the column every stream and source can select.
pub const BATCH_TIME: &str = "batch_time";

/// The type of `batch_time`.
pub fn batch_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

/// What a slot holds for one batch.
#[derive(Debug, Clone, Default)]
pub struct SlotContents {
    pub batch_time: i64,
    pub batches: Arc<Vec<RecordBatch>>,
    pub rows: usize,
}

/// The current batch of one source or stream.
#[derive(Debug, Default)]
pub struct BatchSlot {
    contents: RwLock<SlotContents>,
}

impl BatchSlot {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Puts a batch's rows in the slot.
    pub fn set(&self, batch_time: i64, batches: Vec<RecordBatch>) {
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let mut c = self.contents.write().unwrap_or_else(|e| e.into_inner());
        *c = SlotContents {
            batch_time,
            batches: Arc::new(batches),
            rows,
        };
    }

    /// Empties the slot (the batch is done; its memory can go).
    pub fn clear(&self) {
        let mut c = self.contents.write().unwrap_or_else(|e| e.into_inner());
        c.batches = Arc::new(Vec::new());
        c.rows = 0;
    }

    /// A cheap snapshot of what the slot holds now.
    pub fn get(&self) -> SlotContents {
        self.contents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn rows(&self) -> usize {
        self.contents.read().unwrap_or_else(|e| e.into_inner()).rows
    }
}

/// A source's or stream's current batch as a DataFusion table.
#[derive(Debug)]
pub struct SlotTable {
    /// The rows' own schema.
    data_schema: SchemaRef,
    /// `data_schema` plus `batch_time` when the data has none.
    table_schema: SchemaRef,
    slot: Arc<BatchSlot>,
}

impl SlotTable {
    pub fn new(data_schema: SchemaRef, slot: Arc<BatchSlot>) -> Self {
        let table_schema = if data_schema.column_with_name(BATCH_TIME).is_some() {
            Arc::clone(&data_schema)
        } else {
            let mut fields: Vec<_> = data_schema.fields().iter().cloned().collect();
            fields.push(Arc::new(Field::new(BATCH_TIME, batch_time_type(), false)));
            Arc::new(Schema::new_with_metadata(
                fields,
                data_schema.metadata().clone(),
            ))
        };
        Self {
            data_schema,
            table_schema,
            slot,
        }
    }

    pub fn slot(&self) -> &Arc<BatchSlot> {
        &self.slot
    }
}

#[async_trait]
impl TableProvider for SlotTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.table_schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.table_schema.fields().len()).collect(),
        };
        let partitions = state.config().target_partitions().max(1);
        Ok(Arc::new(SlotScanExec::new(
            Arc::clone(&self.slot),
            &self.table_schema,
            self.data_schema.fields().len(),
            projection,
            partitions,
        )?))
    }
}

/// Reads a [`BatchSlot`] at execute time; see the module docs.
#[derive(Debug)]
pub struct SlotScanExec {
    slot: Arc<BatchSlot>,
    /// For each output column: the data column it is, or `None` for `batch_time`.
    columns: Vec<Option<usize>>,
    schema: SchemaRef,
    partitions: usize,
    properties: Arc<PlanProperties>,
}

impl SlotScanExec {
    fn new(
        slot: Arc<BatchSlot>,
        table_schema: &SchemaRef,
        data_columns: usize,
        projection: Vec<usize>,
        partitions: usize,
    ) -> DFResult<Self> {
        let schema = Arc::new(table_schema.project(&projection)?);
        let columns = projection
            .iter()
            .map(|&i| (i < data_columns).then_some(i))
            .collect();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Self {
            slot,
            columns,
            schema,
            partitions,
            properties,
        })
    }

    /// The chunks of `contents` that partition `partition` of `partitions` reads.
    fn chunks(
        &self,
        contents: &SlotContents,
        partition: usize,
        chunk_rows: usize,
    ) -> DFResult<Vec<RecordBatch>> {
        let total = contents.rows;
        let (from, to) = (
            total * partition / self.partitions,
            total * (partition + 1) / self.partitions,
        );
        let chunk_rows = chunk_rows.max(1);
        let mut out = Vec::with_capacity((to - from) / chunk_rows + 1);
        let mut time_column: Option<ArrayRef> = None;
        let mut offset = 0; // rows before the current input batch
        for batch in contents.batches.iter() {
            let n = batch.num_rows();
            let (start, end) = (from.max(offset), to.min(offset + n));
            let mut at = start;
            while at < end {
                let len = chunk_rows.min(end - at);
                let piece = batch.slice(at - offset, len);
                let mut arrays = Vec::with_capacity(self.columns.len());
                for c in &self.columns {
                    arrays.push(match c {
                        Some(i) => Arc::clone(piece.column(*i)),
                        None => {
                            let full = time_column.get_or_insert_with(|| {
                                Arc::new(TimestampMillisecondArray::from_value(
                                    contents.batch_time,
                                    chunk_rows,
                                )) as ArrayRef
                            });
                            full.slice(0, len)
                        }
                    });
                }
                out.push(RecordBatch::try_new_with_options(
                    Arc::clone(&self.schema),
                    arrays,
                    &RecordBatchOptions::new().with_row_count(Some(len)),
                )?);
                at += len;
            }
            offset += n;
            if offset >= to {
                break;
            }
        }
        Ok(out)
    }
}

impl DisplayAs for SlotScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SlotScanExec: partitions={}", self.partitions)
    }
}

impl ExecutionPlan for SlotScanExec {
    fn name(&self) -> &str {
        "SlotScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DFResult<TreeNodeRecursion>,
    ) -> DFResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DFResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DFResult<SendableRecordBatchStream> {
        let contents = self.slot.get();
        let chunk_rows = context.session_config().batch_size();
        let chunks = self.chunks(&contents, partition, chunk_rows)?;
        Ok(Box::pin(MemoryStream::try_new(
            chunks,
            Arc::clone(&self.schema),
            None,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array};

    fn batch(values: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(values))]).unwrap()
    }

    fn exec(partitions: usize, projection: Vec<usize>) -> (Arc<BatchSlot>, SlotScanExec) {
        let slot = BatchSlot::new();
        let table = SlotTable::new(batch(0..0).schema(), Arc::clone(&slot));
        let e = SlotScanExec::new(
            Arc::clone(&slot),
            &table.schema(),
            1,
            projection,
            partitions,
        )
        .unwrap();
        (slot, e)
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn partitions_cover_every_row_once_in_chunks() {
        let (slot, e) = exec(3, vec![0]);
        slot.set(1000, vec![batch(0..7), batch(7..8), batch(8..20)]);
        let contents = slot.get();
        let mut all = Vec::new();
        for p in 0..3 {
            let chunks = e.chunks(&contents, p, 4).unwrap();
            assert!(chunks.iter().all(|c| c.num_rows() <= 4 && c.num_rows() > 0));
            all.extend(values(&chunks));
        }
        assert_eq!(all, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn batch_time_column_and_empty_projection() {
        let (slot, e) = exec(1, vec![1]);
        slot.set(5000, vec![batch(0..3)]);
        let chunks = e.chunks(&slot.get(), 0, 8192).unwrap();
        let t = chunks[0]
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        assert_eq!((t.len(), t.value(0), t.value(2)), (3, 5000, 5000));

        let (slot, e) = exec(2, vec![]);
        slot.set(5000, vec![batch(0..5)]);
        let rows: usize = (0..2)
            .map(|p| e.chunks(&slot.get(), p, 8192).unwrap()[0].num_rows())
            .sum();
        assert_eq!(rows, 5);
    }

    #[test]
    fn cleared_slot_reads_empty() {
        let (slot, e) = exec(1, vec![0]);
        slot.set(1, vec![batch(0..3)]);
        slot.clear();
        assert!(e.chunks(&slot.get(), 0, 10).unwrap().is_empty());
    }
}
