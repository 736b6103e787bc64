//! `string_to_array(text, delimiter)`, the split of every word count
//! (`unnest(string_to_array(value, ' '))`), done in one tight pass.
//!
//! DataFusion's version appends each part through a `ListBuilder` of
//! `StringBuilder`s. For the common case (a `Utf8` column split on a constant,
//! non-empty delimiter, no `null_str`) this one copies the parts into one
//! values buffer and writes the offsets directly; a one-byte delimiter is
//! found by a single pass over the whole column ([`crate::byte_positions`]), a longer one by
//! `memmem` row by row. Its share of a word count batch's CPU went from a
//! quarter to an eighth (perf; docs/performance.md). Every other case (other string types, a NULL or
//! empty delimiter, a delimiter per row, `null_str`) goes to DataFusion's own
//! function, and the result is the same either way: its type, its name, its
//! aliases, its documentation, and every list (checked against DataFusion on
//! random input in the tests below).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use datafusion::prelude::SessionContext;
//! let session = SessionContext::new();
//! sluice_core::split::register(&session);
//! let rows = session
//!     .sql("SELECT string_to_array(column1, ' ') AS parts FROM (VALUES ('to be  or'), (''), (NULL))")
//!     .await.unwrap().collect().await.unwrap();
//! let text = arrow::util::pretty::pretty_format_batches(&rows).unwrap().to_string();
//! assert!(text.contains("[to, be, , or]"));
//! # });
//! ```

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, StringArray};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field};
use datafusion::common::Result;
use datafusion::functions_nested::string::StringToArray;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

use crate::byte_positions::BytePositions;

/// Replaces the session's `string_to_array` (and its alias) with this one.
pub fn register(session: &SessionContext) {
    session.register_udf(ScalarUDF::new_from_impl(FastStringToArray::default()));
}

/// DataFusion's `string_to_array` with a fast path (see the module docs).
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct FastStringToArray {
    general: StringToArray,
}

impl ScalarUDFImpl for FastStringToArray {
    fn name(&self) -> &str {
        self.general.name()
    }

    fn aliases(&self) -> &[String] {
        self.general.aliases()
    }

    fn signature(&self) -> &Signature {
        self.general.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.general.return_type(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.general.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [ColumnarValue::Array(text), ColumnarValue::Scalar(delimiter)] = args.args.as_slice()
            && text.data_type() == &DataType::Utf8
            && let Some(delimiter) = delimiter.try_as_str().flatten()
            && !delimiter.is_empty()
            && let DataType::List(item) = &args.return_field.data_type()
        {
            let parts = split(text.as_string::<i32>(), delimiter, Arc::clone(item))?;
            return Ok(ColumnarValue::Array(Arc::new(parts)));
        }
        self.general.invoke_with_args(args)
    }
}

/// Parts this short are copied as one 16-byte chunk.
pub(crate) const SHORT: usize = 16;

/// Appends `bytes[from..to]` to `out`; a range of up to [`SHORT`] bytes as
/// one fixed-size copy from `from` (cut back to its length), not a `memcpy`
/// call, where `bytes` has that many from `from`. Short strings are what
/// text splits and groups mostly copy; give `out` [`SHORT`] bytes of slack
/// capacity so the copy never grows it.
#[inline]
pub(crate) fn append_range(out: &mut Vec<u8>, bytes: &[u8], from: usize, to: usize) {
    match bytes[from..].first_chunk::<SHORT>() {
        Some(chunk) if to - from <= SHORT => {
            let end = out.len() + (to - from);
            out.extend_from_slice(chunk);
            out.truncate(end);
        }
        _ => out.extend_from_slice(&bytes[from..to]),
    }
}

/// Each row's parts as a list: NULL stays NULL, `''` gives an empty list,
/// and empty parts between delimiters are kept (`'a  b'` → `[a, '', b]`).
fn split(text: &StringArray, delimiter: &str, item: Arc<Field>) -> Result<ListArray> {
    let offsets = text.value_offsets();
    let first = offsets[0] as usize;
    let last = offsets[text.len()] as usize;
    let bytes = &text.value_data()[first..last];
    // Parts hold at most the input's bytes, so their offsets fit in i32.
    // (The slack is for the 16-byte copies of short parts.)
    let mut values: Vec<u8> = Vec::with_capacity(bytes.len() + SHORT);
    let mut part_ends: Vec<i32> = Vec::with_capacity(text.len() * 2 + 1);
    part_ends.push(0);
    let mut list_ends: Vec<i32> = Vec::with_capacity(text.len() + 1);
    list_ends.push(0);
    // Appends the part `bytes[from..to]`.
    let push = |from: usize, to: usize, values: &mut Vec<u8>, part_ends: &mut Vec<i32>| {
        append_range(values, bytes, from, to);
        part_ends.push(values.len() as i32);
    };
    let rows = (0..text.len()).map(|row| {
        let (start, end) = (
            offsets[row] as usize - first,
            offsets[row + 1] as usize - first,
        );
        (row, start, end)
    });
    if let [byte] = delimiter.as_bytes() {
        // One byte: a match cannot straddle two rows, so the delimiters of
        // the whole column are found in one pass over its bytes.
        let mut hits = BytePositions::new(*byte, bytes);
        let mut next = hits.next();
        for (row, start, end) in rows {
            let mut from = start;
            // A NULL row's bytes (if any) are skipped.
            let parts = text.is_valid(row) && end > start;
            while let Some(at) = next.filter(|&at| at < end) {
                if parts {
                    push(from, at, &mut values, &mut part_ends);
                    from = at + 1;
                }
                next = hits.next();
            }
            if parts {
                push(from, end, &mut values, &mut part_ends);
            }
            list_ends.push((part_ends.len() - 1) as i32);
        }
    } else {
        let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
        for (row, start, end) in rows {
            if text.is_valid(row) && end > start {
                let mut from = start;
                for at in finder.find_iter(&bytes[start..end]) {
                    push(from, start + at, &mut values, &mut part_ends);
                    from = start + at + delimiter.len();
                }
                push(from, end, &mut values, &mut part_ends);
            }
            list_ends.push((part_ends.len() - 1) as i32);
        }
    }
    let part_ends = OffsetBuffer::new(ScalarBuffer::from(part_ends));
    // SAFETY: the parts are cut from valid UTF-8 at matches of a valid
    // UTF-8 delimiter, and UTF-8 is self-synchronising: a match starts and
    // ends on character boundaries, so each part is valid UTF-8; the ends
    // grow from 0 to `values.len()`.
    let parts = unsafe { StringArray::new_unchecked(part_ends, values.into(), None) };
    Ok(ListArray::try_new(
        item,
        OffsetBuffer::new(ScalarBuffer::from(list_ends)),
        Arc::new(parts) as ArrayRef,
        text.nulls().cloned(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::ScalarUDF;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn invoke(udf: &ScalarUDF, text: &StringArray, delimiter: &str) -> ArrayRef {
        let args = vec![
            ColumnarValue::Array(Arc::new(text.clone())),
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(delimiter.to_string()))),
        ];
        let arg_fields = vec![
            Arc::new(Field::new("text", DataType::Utf8, true)),
            Arc::new(Field::new("delimiter", DataType::Utf8, false)),
        ];
        let return_field = Arc::new(Field::new(
            "parts",
            udf.return_type(&[DataType::Utf8, DataType::Utf8]).unwrap(),
            true,
        ));
        let out = udf
            .invoke_with_args(ScalarFunctionArgs {
                args,
                arg_fields,
                number_rows: text.len(),
                return_field,
                config_options: Arc::default(),
            })
            .unwrap();
        match out {
            ColumnarValue::Array(a) => a,
            ColumnarValue::Scalar(_) => panic!("an array in, an array out"),
        }
    }

    /// Random text over a small alphabet (so delimiters repeat, lead and
    /// trail), with NULLs, empty strings, multi-byte characters, and slices.
    #[test]
    fn same_lists_as_datafusion_on_random_input() {
        let fast = ScalarUDF::new_from_impl(FastStringToArray::default());
        let general = ScalarUDF::new_from_impl(StringToArray::new());
        let alphabet = ["a", "b", " ", "  ", "é", ",", "ab"];
        let mut rng = StdRng::seed_from_u64(3);
        for round in 0..200 {
            let rows: Vec<Option<String>> = (0..rng.random_range(0..40))
                .map(|_| {
                    (rng.random_range(0..8) > 0).then(|| {
                        (0..rng.random_range(0..10))
                            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                            .collect()
                    })
                })
                .collect();
            let text = StringArray::from(rows);
            let skip = if text.is_empty() {
                0
            } else {
                rng.random_range(0..text.len())
            };
            let text = text.slice(skip, text.len() - skip);
            for delimiter in [" ", "  ", ",", "ab", "é"] {
                assert_eq!(
                    invoke(&fast, &text, delimiter).as_ref(),
                    invoke(&general, &text, delimiter).as_ref(),
                    "round {round}, delimiter {delimiter:?}, text {text:?}"
                );
            }
        }
    }

    /// A NULL slot may hold bytes (delimiters included): they are not parts.
    #[test]
    fn null_slots_holding_bytes_are_skipped() {
        let fast = ScalarUDF::new_from_impl(FastStringToArray::default());
        let general = ScalarUDF::new_from_impl(StringToArray::new());
        let text = StringArray::new(
            OffsetBuffer::new(ScalarBuffer::from(vec![0, 3, 8, 11])),
            "a b c d e f g".as_bytes()[..11].to_vec().into(),
            Some(vec![true, false, true].into()),
        );
        let fast_parts = invoke(&fast, &text, " ");
        assert_eq!(fast_parts.as_ref(), invoke(&general, &text, " ").as_ref());
        let lists = fast_parts.as_list::<i32>();
        assert!(lists.is_null(1));
        assert_eq!(
            lists.value(2).as_string::<i32>().iter().collect::<Vec<_>>(),
            [Some("e"), Some("f")]
        );
    }

    #[tokio::test]
    async fn other_cases_go_to_datafusion() {
        let session = SessionContext::new();
        register(&session);
        let rows = session
            .sql(
                "SELECT string_to_array('a,b', ',') AS s, string_to_list('a-x-b', '-', 'x') AS n, \
                 string_to_array('ab', NULL) AS c, string_to_array('ab', '') AS e",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&rows)
            .unwrap()
            .to_string();
        assert!(
            text.contains("| [a, b] | [a, , b] | [a, b] | [ab] |"),
            "{text}"
        );
    }
}
