//! The leaf every stream plan reads: a [`BatchSlot`] whose contents are swapped
//! each batch, exposed to DataFusion as [`SlotTable`] / [`SlotScanExec`].
//!
//! A stream's SQL is planned once against the slot tables of its inputs; each
//! batch the engine puts the batch's rows into the slots and executes the same
//! physical plan again. The scan hands out whatever the slot holds at
//! `execute` time (unlike `MemTable`, which copies its batches into the plan).
//!
//! Every slot table has a `batch_time` column (timestamp, ms) holding the
//! batch's time; it costs nothing unless selected. A window's slot holds the
//! rows of several batches, each with its own time, and has two more such
//! columns, `window_start` and `window_end`.
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

/// The columns a window's slot table adds (see [`SlotTable::windowed`]).
pub const WINDOW_START: &str = "window_start";
pub const WINDOW_END: &str = "window_end";

/// The type of `batch_time`, `window_start` and `window_end`.
pub fn batch_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

/// What a slot holds for one batch.
#[derive(Debug, Clone, Default)]
pub struct SlotContents {
    pub batch_time: i64,
    pub batches: Arc<Vec<RecordBatch>>,
    pub rows: usize,
    /// The batch time of each of `batches`, when they come from several
    /// batches (a window); otherwise all are `batch_time`.
    pub batch_times: Option<Arc<Vec<i64>>>,
    /// `(window_start, window_end)` of a window's slot.
    pub window: Option<(i64, i64)>,
    /// The stream emitted nothing this batch (a window between slides): its
    /// sinks are not written and streams reading it do not run.
    pub absent: bool,
}

impl SlotContents {
    /// The time of the rows of `batches[i]`.
    pub fn time_of(&self, i: usize) -> i64 {
        self.batch_times
            .as_ref()
            .and_then(|t| t.get(i).copied())
            .unwrap_or(self.batch_time)
    }
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
            ..Default::default()
        };
    }

    /// Puts prepared contents (a window's) in the slot.
    pub fn set_contents(&self, contents: SlotContents) {
        *self.contents.write().unwrap_or_else(|e| e.into_inner()) = contents;
    }

    /// Marks the slot as having nothing at all this batch (not even an
    /// empty result): a windowed stream between two slides.
    pub fn set_absent(&self, batch_time: i64) {
        self.set_contents(SlotContents {
            batch_time,
            absent: true,
            ..Default::default()
        });
    }

    /// Empties the slot (the batch is done; its memory can go).
    pub fn clear(&self) {
        let mut c = self.contents.write().unwrap_or_else(|e| e.into_inner());
        *c = SlotContents {
            batch_time: c.batch_time,
            ..Default::default()
        };
    }

    pub fn is_absent(&self) -> bool {
        self.contents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .absent
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

/// A column a slot table adds to its rows, built only when selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Virtual {
    BatchTime,
    WindowStart,
    WindowEnd,
}

/// A source's or stream's current batch as a DataFusion table.
#[derive(Debug)]
pub struct SlotTable {
    /// The rows' own schema.
    data_schema: SchemaRef,
    /// `data_schema` plus the virtual columns.
    table_schema: SchemaRef,
    virtuals: Vec<Virtual>,
    slot: Arc<BatchSlot>,
    /// The source whose batch this table belongs to, when it is not the
    /// table's own (`offsets(s)` belongs to `s`).
    reads: Option<String>,
}

impl SlotTable {
    /// The table of a source or stream: its rows plus `batch_time` when the
    /// rows have none.
    pub fn new(data_schema: SchemaRef, slot: Arc<BatchSlot>) -> Self {
        Self::with_virtuals(data_schema, slot, false)
    }

    /// The table of a window: also `window_start` and `window_end`.
    pub fn windowed(data_schema: SchemaRef, slot: Arc<BatchSlot>) -> Self {
        Self::with_virtuals(data_schema, slot, true)
    }

    fn with_virtuals(data_schema: SchemaRef, slot: Arc<BatchSlot>, window: bool) -> Self {
        let mut virtuals = Vec::new();
        if data_schema.column_with_name(BATCH_TIME).is_none() {
            virtuals.push(Virtual::BatchTime);
        }
        if window {
            virtuals.extend([Virtual::WindowStart, Virtual::WindowEnd]);
        }
        let mut fields: Vec<_> = data_schema.fields().iter().cloned().collect();
        for v in &virtuals {
            let name = match v {
                Virtual::BatchTime => BATCH_TIME,
                Virtual::WindowStart => WINDOW_START,
                Virtual::WindowEnd => WINDOW_END,
            };
            fields.push(Arc::new(Field::new(name, batch_time_type(), false)));
        }
        let table_schema = Arc::new(Schema::new_with_metadata(
            fields,
            data_schema.metadata().clone(),
        ));
        Self {
            data_schema,
            table_schema,
            virtuals,
            slot,
            reads: None,
        }
    }

    pub fn slot(&self) -> &Arc<BatchSlot> {
        &self.slot
    }

    /// Marks the table as part of `relation`'s batch: a stream scanning it
    /// reads `relation` (and runs when it does).
    pub fn reading(mut self, relation: &str) -> Self {
        self.reads = Some(relation.to_string());
        self
    }

    /// The relation set by [`SlotTable::reading`].
    pub fn reads(&self) -> Option<&str> {
        self.reads.as_deref()
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
        Ok(Arc::new(self.scan_exec(projection, partitions)?))
    }
}

impl SlotTable {
    /// A scan of `projection` (indices into the table's schema) in
    /// `partitions` partitions.
    pub fn scan_exec(&self, projection: Vec<usize>, partitions: usize) -> DFResult<SlotScanExec> {
        let data_columns = self.data_schema.fields().len();
        let columns = projection
            .iter()
            .map(|&i| match i.checked_sub(data_columns) {
                None => Ok(Column::Data(i)),
                Some(v) => self
                    .virtuals
                    .get(v)
                    .copied()
                    .map(Column::Virtual)
                    .ok_or_else(|| {
                        datafusion::error::DataFusionError::Internal(format!(
                            "slot scan: no column {i}"
                        ))
                    }),
            })
            .collect::<DFResult<Vec<_>>>()?;
        SlotScanExec::new(
            Arc::clone(&self.slot),
            &self.table_schema,
            columns,
            projection,
            partitions,
        )
    }
}

/// Where a scanned column comes from.
#[derive(Debug, Clone, Copy)]
enum Column {
    Data(usize),
    Virtual(Virtual),
}

/// Reads a [`BatchSlot`] at execute time; see the module docs.
#[derive(Debug)]
pub struct SlotScanExec {
    slot: Arc<BatchSlot>,
    /// For each output column: where it comes from.
    columns: Vec<Column>,
    schema: SchemaRef,
    partitions: usize,
    properties: Arc<PlanProperties>,
}

impl SlotScanExec {
    fn new(
        slot: Arc<BatchSlot>,
        table_schema: &SchemaRef,
        columns: Vec<Column>,
        projection: Vec<usize>,
        partitions: usize,
    ) -> DFResult<Self> {
        let schema = Arc::new(table_schema.project(&projection)?);
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
        let mut constants = ConstantColumns::new(chunk_rows);
        let mut offset = 0; // rows before the current input batch
        for (b, batch) in contents.batches.iter().enumerate() {
            let n = batch.num_rows();
            let (start, end) = (from.max(offset), to.min(offset + n));
            let mut at = start;
            while at < end {
                let len = chunk_rows.min(end - at);
                let piece = batch.slice(at - offset, len);
                let mut arrays = Vec::with_capacity(self.columns.len());
                for c in &self.columns {
                    arrays.push(match c {
                        Column::Data(i) => Arc::clone(piece.column(*i)),
                        Column::Virtual(v) => {
                            let value = match v {
                                Virtual::BatchTime => contents.time_of(b),
                                Virtual::WindowStart => contents.window.map_or(0, |w| w.0),
                                Virtual::WindowEnd => contents.window.map_or(0, |w| w.1),
                            };
                            constants.get(value, len)
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

/// Timestamp columns of one value, shared between chunks.
struct ConstantColumns {
    rows: usize,
    made: Vec<(i64, ArrayRef)>,
}

impl ConstantColumns {
    fn new(rows: usize) -> Self {
        Self {
            rows,
            made: Vec::new(),
        }
    }

    fn get(&mut self, value: i64, len: usize) -> ArrayRef {
        let i = match self.made.iter().position(|(v, _)| *v == value) {
            Some(i) => i,
            None => {
                // Few values are live at once (batch_time, window bounds).
                if self.made.len() >= 4 {
                    self.made.remove(0);
                }
                let array: ArrayRef =
                    Arc::new(TimestampMillisecondArray::from_value(value, self.rows));
                self.made.push((value, array));
                self.made.len() - 1
            }
        };
        self.made[i].1.slice(0, len)
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
        let table = SlotTable::windowed(batch(0..0).schema(), Arc::clone(&slot));
        let e = table.scan_exec(projection, partitions).unwrap();
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
    fn window_slot_has_per_batch_times_and_bounds() {
        let (slot, e) = exec(1, vec![0, 1, 2, 3]);
        slot.set_contents(SlotContents {
            batch_time: 3000,
            batches: Arc::new(vec![batch(0..2), batch(2..3)]),
            rows: 3,
            batch_times: Some(Arc::new(vec![2000, 3000])),
            window: Some((1000, 3000)),
            absent: false,
        });
        let chunks = e.chunks(&slot.get(), 0, 8192).unwrap();
        let column = |i: usize| -> Vec<i64> {
            chunks
                .iter()
                .flat_map(|c| {
                    let a = c.column(i).as_any();
                    a.downcast_ref::<TimestampMillisecondArray>()
                        .unwrap()
                        .values()
                        .to_vec()
                })
                .collect()
        };
        assert_eq!(values(&chunks), vec![0, 1, 2]);
        assert_eq!(column(1), vec![2000, 2000, 3000]);
        assert_eq!(column(2), vec![1000, 1000, 1000]);
        assert_eq!(column(3), vec![3000, 3000, 3000]);
    }

    #[test]
    fn cleared_slot_reads_empty() {
        let (slot, e) = exec(1, vec![0]);
        slot.set(1, vec![batch(0..3)]);
        slot.clear();
        assert!(e.chunks(&slot.get(), 0, 10).unwrap().is_empty());
    }
}
