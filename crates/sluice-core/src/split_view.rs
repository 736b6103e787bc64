//! `split_part` whose result is cast to a string view, as views into the
//! input: no byte of the text is copied.
//!
//! Sources give text as `Utf8`; a table's `TEXT` column is a `Utf8View`. So
//! the tutorial's `ON split_part(l.value, ' ', 2) = b.word` is planned as
//! `CAST(split_part(value, ' ', 2) AS Utf8View)`: DataFusion copies each field
//! into a new string array, then the cast builds a view of each copy. The
//! field is already a slice of the line, so [`SplitPartView`] builds those
//! views straight away, pointing into the input's own bytes (fields of 12
//! bytes or less are held in the view itself, as Arrow's views always do).
//!
//! [`split_parts_as_views`] puts a [`SplitPartView`] in place of each such
//! cast in a stream's projections, when the text is `Utf8`, the delimiter a
//! non-empty literal and the position a positive literal. Its values are the
//! cast's (checked against DataFusion on random text in the tests below).
//!
//! ```text
//! ProjectionExec: CAST(split_part(value@0, ' ', 2) AS Utf8View)
//!                        →  ProjectionExec: split_part_view(value@0, ' ', 2)
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::builder::make_view;
use arrow::array::{Array, ArrayRef, AsArray, StringViewArray};
use arrow::buffer::{NullBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::expressions::{CastExpr, Literal};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use memchr::memmem;

use crate::byte_positions::mask_16;

/// Replaces, in every projection of `plan`, each `CAST(split_part(text,
/// 'delimiter', n) AS Utf8View)` over `Utf8` text, with a non-empty delimiter
/// and `n > 0`, by a [`SplitPartView`].
pub fn split_parts_as_views(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(projection) = node.downcast_ref::<ProjectionExec>() else {
            return Ok(Transformed::no(node));
        };
        let schema = projection.input().schema();
        let mut changed = false;
        let mut exprs = Vec::with_capacity(projection.expr().len());
        for e in projection.expr() {
            let rewritten = Arc::clone(&e.expr).transform_up(|expr| {
                Ok(match SplitPartView::replacing(&expr, &schema)? {
                    Some(view) => Transformed::yes(Arc::new(view) as Arc<dyn PhysicalExpr>),
                    None => Transformed::no(expr),
                })
            })?;
            changed |= rewritten.transformed;
            exprs.push(ProjectionExpr::new(rewritten.data, e.alias.clone()));
        }
        if !changed {
            return Ok(Transformed::no(node));
        }
        let input = Arc::clone(projection.input());
        Ok(Transformed::yes(
            Arc::new(ProjectionExec::try_new(exprs, input)?) as _,
        ))
    })
    .map(|t| t.data)
}

/// `CAST(split_part(input, delimiter, field + 1) AS Utf8View)` for `Utf8`
/// input, as views into the input's bytes (see the module docs).
#[derive(Debug)]
pub struct SplitPartView {
    /// The text.
    input: Arc<dyn PhysicalExpr>,
    /// The `split_part` call it stands for: evaluated, then cast, for a
    /// constant input.
    function: Arc<dyn PhysicalExpr>,
    delimiter: Delimiter,
    /// The field wanted, from 0.
    field: usize,
}

/// How a delimiter is searched for, string by string: one byte 16 bytes at
/// a time ([`byte_field`]), more with a prepared `memmem` finder.
#[derive(Debug)]
enum Delimiter {
    Byte(u8),
    Bytes(Box<memmem::Finder<'static>>),
}

impl Delimiter {
    fn new(bytes: &[u8]) -> Self {
        match bytes {
            [b] => Self::Byte(*b),
            _ => Self::Bytes(Box::new(memmem::Finder::new(bytes).into_owned())),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Self::Byte(b) => std::slice::from_ref(b),
            Self::Bytes(f) => f.needle(),
        }
    }

    /// The byte range of field `n` (from 0) of `text`, searched with
    /// `finder`; empty when `text` has fewer fields (PostgreSQL's, and
    /// DataFusion's, `split_part`).
    fn field(finder: &memmem::Finder, text: &[u8], n: usize) -> (usize, usize) {
        let mut start = 0;
        for _ in 0..n {
            match finder.find(&text[start..]) {
                Some(at) => start += at + finder.needle().len(),
                None => return (0, 0),
            }
        }
        let end = finder
            .find(&text[start..])
            .map_or(text.len(), |at| start + at);
        (start, end)
    }

    /// Hands `found` the byte range in `bytes` of field `n` (from 0) of each
    /// string of a string array (`offsets`, `nulls`), or `None` for a NULL.
    fn fields(
        &self,
        bytes: &[u8],
        offsets: &[i32],
        nulls: Option<&NullBuffer>,
        n: usize,
        mut found: impl FnMut(Option<(usize, usize)>),
    ) {
        // Offsets of a valid array are in order and within `bytes`.
        let ranges = offsets.windows(2).map(|w| (w[0] as usize, w[1] as usize));
        let is_null = |i: usize| nulls.is_some_and(|nulls| nulls.is_null(i));
        match self {
            Self::Byte(delimiter) => {
                for (i, (from, to)) in ranges.enumerate() {
                    found((!is_null(i)).then(|| byte_field(bytes, from, to, *delimiter, n)));
                }
            }
            Self::Bytes(finder) => {
                for (i, (from, to)) in ranges.enumerate() {
                    found((!is_null(i)).then(|| {
                        let (start, end) = Self::field(finder, &bytes[from..to], n);
                        (from + start, from + end)
                    }));
                }
            }
        }
    }
}

/// The byte range of field `n` (from 0) of `bytes[from..to]` split on the
/// one byte `delimiter`; `(from, from)` (empty) when it has fewer fields.
///
/// The string is compared 16 bytes at a time into a bit mask
/// ([`mask_16`]), so a field near the start of a short string (the usual
/// case) costs one comparison and a few bit operations: no search is set up,
/// and the bytes after the field are never read.
#[inline]
fn byte_field(bytes: &[u8], from: usize, to: usize, delimiter: u8, n: usize) -> (usize, usize) {
    let (mut start, mut field) = (from, 0);
    let mut at = from;
    while at < to {
        let mut hits = mask_16(bytes, at, delimiter);
        if to - at < 16 {
            hits &= (1 << (to - at)) - 1;
        }
        while hits != 0 {
            let hit = at + hits.trailing_zeros() as usize;
            if field == n {
                return (start, hit);
            }
            field += 1;
            start = hit + 1;
            hits &= hits - 1;
        }
        at += 16;
    }
    if field == n {
        (start, to)
    } else {
        (from, from)
    }
}

impl SplitPartView {
    /// The view standing for `expr`, when `expr` is such a cast (see
    /// [`split_parts_as_views`]) over a row of `schema`.
    pub fn replacing(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Result<Option<Self>> {
        let Some(cast) = expr.downcast_ref::<CastExpr>() else {
            return Ok(None);
        };
        let Some(call) = cast.expr().downcast_ref::<ScalarFunctionExpr>() else {
            return Ok(None);
        };
        if cast.cast_type() != &DataType::Utf8View || call.name() != "split_part" {
            return Ok(None);
        }
        let [input, delimiter, position] = call.args() else {
            return Ok(None);
        };
        let literal =
            |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Literal>().map(|l| l.value().clone());
        let delimiter = match literal(delimiter) {
            Some(
                ScalarValue::Utf8(Some(d))
                | ScalarValue::Utf8View(Some(d))
                | ScalarValue::LargeUtf8(Some(d)),
            ) if !d.is_empty() => d,
            _ => return Ok(None),
        };
        let field = match literal(position) {
            Some(ScalarValue::Int64(Some(n))) if n > 0 => n - 1,
            _ => return Ok(None),
        };
        if input.data_type(schema)? != DataType::Utf8 {
            return Ok(None);
        }
        let Ok(field) = usize::try_from(field) else {
            return Ok(None);
        };
        Ok(Some(Self {
            input: Arc::clone(input),
            function: Arc::clone(cast.expr()),
            delimiter: Delimiter::new(delimiter.as_bytes()),
            field,
        }))
    }

    /// The field of each string of `text`, as views into its bytes.
    fn views(&self, text: &ArrayRef) -> Result<ArrayRef> {
        let Some(text) = text.as_string_opt::<i32>() else {
            return internal_err!(
                "split_part_view over {} text, planned for Utf8",
                text.data_type()
            );
        };
        let bytes = text.values();
        let mut views = Vec::with_capacity(text.len());
        self.delimiter.fields(
            bytes,
            text.value_offsets(),
            text.nulls(),
            self.field,
            |field| {
                views.push(field.map_or(0, |(start, end)| view_of(bytes, start, end)));
            },
        );
        let nulls = text.nulls();
        // SAFETY: each view is a slice of one valid string of `text`, cut
        // where the delimiter (a whole UTF-8 string) was found or at the
        // string's ends: UTF-8 character boundaries; buffer 0 is `bytes`,
        // and every offset and length is within it.
        let array = unsafe {
            StringViewArray::new_unchecked(
                ScalarBuffer::from(views),
                vec![bytes.clone()],
                nulls.cloned(),
            )
        };
        #[cfg(debug_assertions)]
        array.to_data().validate_full()?;
        Ok(Arc::new(array))
    }
}

/// The view of `bytes[start..end]` in buffer 0 (Arrow's layout: the length;
/// then the bytes themselves up to 12, else a 4-byte prefix, the buffer and
/// the offset), loading 16 bytes at once where `bytes` has them instead of
/// the copy of variable length [`make_view`] makes.
fn view_of(bytes: &[u8], start: usize, end: usize) -> u128 {
    let len = end - start;
    let Some(Ok(chunk)) = bytes.get(start..start + 16).map(<[u8; 16]>::try_from) else {
        // `bytes` is under 2 GiB (i32 offsets), so every offset fits a u32.
        return make_view(&bytes[start..end], 0, start as u32);
    };
    let chunk = u128::from_le_bytes(chunk);
    if len <= 12 {
        (len as u128) | ((chunk & ((1u128 << (len * 8)) - 1)) << 32)
    } else {
        (len as u128) | ((chunk & 0xffff_ffff) << 32) | ((start as u128) << 96)
    }
}

impl fmt::Display for SplitPartView {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let delimiter = String::from_utf8_lossy(self.delimiter.bytes());
        write!(
            f,
            "split_part_view({}, '{delimiter}', {})",
            self.input,
            self.field + 1
        )
    }
}

impl PartialEq for SplitPartView {
    fn eq(&self, other: &Self) -> bool {
        self.function.eq(&other.function)
    }
}

impl Eq for SplitPartView {}

impl Hash for SplitPartView {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.function.hash(state);
    }
}

impl PhysicalExpr for SplitPartView {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(DataType::Utf8View)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.input.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        match self.input.evaluate(batch)? {
            ColumnarValue::Array(text) => Ok(ColumnarValue::Array(self.views(&text)?)),
            ColumnarValue::Scalar(_) => self
                .function
                .evaluate(batch)?
                .cast_to(&DataType::Utf8View, None),
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let [input] = <[_; 1]>::try_from(children).map_err(|c| {
            datafusion::common::internal_datafusion_err!(
                "split_part_view takes one child, given {}",
                c.len()
            )
        })?;
        let mut args: Vec<_> = self.function.children().into_iter().cloned().collect();
        args[0] = Arc::clone(&input);
        let function = Arc::clone(&self.function).with_new_children(args)?;
        Ok(Arc::new(Self {
            input,
            function,
            delimiter: Delimiter::new(self.delimiter.bytes()),
            field: self.field,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CAST(")?;
        self.function.fmt_sql(f)?;
        write!(f, " AS VARCHAR)")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::Result;
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::physical_plan::projection::ProjectionExec;
    use datafusion::prelude::SessionContext;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::SplitPartView;
    use crate::plan::physical_plan;
    use crate::slot::{BatchSlot, SlotTable};

    /// Random text: fields of ASCII, multi-byte characters and delimiters,
    /// some empty, some NULL.
    fn random_text(rng: &mut StdRng, rows: usize) -> StringArray {
        let pieces = [
            "a",
            "bc",
            "défg",
            " ",
            "  ",
            "::",
            ":",
            "ü:",
            "long field of text",
            "",
            "€ €",
        ];
        (0..rows)
            .map(|_| {
                if rng.random_bool(0.1) {
                    return None;
                }
                let n = rng.random_range(0..8);
                Some(
                    (0..n)
                        .map(|_| pieces[rng.random_range(0..pieces.len())])
                        .collect::<String>(),
                )
            })
            .collect()
    }

    /// A session with `t (value)` over a slot holding `text`.
    fn session(text: StringArray) -> Result<SessionContext> {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![Field::new("value", DataType::Utf8, true)]));
        let slot = BatchSlot::new();
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(text) as ArrayRef])?;
        slot.set(0, vec![batch]);
        ctx.register_table("t", Arc::new(SlotTable::new(schema, slot)))?;
        Ok(ctx)
    }

    /// Every position and delimiter gives the cast's values, NULLs included.
    #[tokio::test]
    async fn views_equal_the_cast_of_split_part() -> Result<()> {
        let mut rng = StdRng::seed_from_u64(5);
        let ctx = session(random_text(&mut rng, 2000))?;
        for delimiter in [" ", ":", "::", "€", "ü:"] {
            for position in [1, 2, 3, 7] {
                let sql = format!(
                    "SELECT arrow_cast(split_part(value, '{delimiter}', {position}), 'Utf8View') AS f FROM t"
                );
                let logical = ctx.sql(&sql).await?.into_optimized_plan()?;
                let plan = physical_plan(&ctx, &logical, 1).await?;
                let mut replaced = 0;
                plan.apply(|node| {
                    if let Some(p) = node.downcast_ref::<ProjectionExec>() {
                        replaced += p
                            .expr()
                            .iter()
                            .filter(|e| e.expr.downcast_ref::<SplitPartView>().is_some())
                            .count();
                    }
                    Ok(TreeNodeRecursion::Continue)
                })?;
                assert_eq!(replaced, 1, "{sql}: {plan:?}");
                let ours = datafusion::physical_plan::collect(plan, ctx.task_ctx()).await?;
                let theirs = ctx.sql(&sql).await?.collect().await?;
                let values = |batches: &[RecordBatch]| -> Vec<Option<String>> {
                    batches
                        .iter()
                        .flat_map(|b| {
                            let a = b.column(0).as_string_view();
                            (0..a.len())
                                .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
                                .collect::<Vec<_>>()
                        })
                        .collect()
                };
                assert_eq!(values(&ours), values(&theirs), "{sql}");
                assert_eq!(values(&ours).len(), 2000);
            }
        }
        Ok(())
    }

    /// A position below 1, an empty delimiter or a computed one keep DataFusion's function.
    #[tokio::test]
    async fn other_calls_are_left_alone() -> Result<()> {
        let ctx = session(StringArray::from(vec![Some("a b"), None]))?;
        for call in [
            "split_part(value, ' ', -1)",
            "split_part(value, '', 1)",
            "split_part(value, value, 1)",
            "split_part(value, ' ', length(value))",
        ] {
            let sql = format!("SELECT arrow_cast({call}, 'Utf8View') AS f FROM t");
            let logical = ctx.sql(&sql).await?.into_optimized_plan()?;
            let plan = physical_plan(&ctx, &logical, 1).await?;
            let shown = format!(
                "{}",
                datafusion::physical_plan::displayable(plan.as_ref()).indent(false)
            );
            assert!(!shown.contains("split_part_view"), "{call}: {shown}");
        }
        Ok(())
    }
}
