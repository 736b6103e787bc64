//! The derived inverse of `count`, `sum` and `avg`: their partial states
//! (counts and sums) add when a pane enters the window and subtract when it
//! leaves, per key, in place.
//!
//! Each state column keeps, per key, a running total and the number of
//! contributions that were not null, so a `sum` whose non-null values have
//! all left the window is null again (as a recomputation would say), and its
//! total restarts from exactly zero. Integer and decimal totals wrap as
//! DataFusion's own `sum` does, and are exact.
//!
//! Float totals ([`FloatTotals`]) are compensated (Neumaier), so a large value
//! leaving does not take the small ones' digits with it (`1e17 + 1 - 1e17` is
//! 1, not 0), and count NaN and infinite contributions apart, so one NaN
//! makes the key's sum NaN while it is in the window and no longer once it
//! has left. What remains is a float sum's usual last-bit difference from a
//! sum taken in another order.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    ArrowNativeTypeOp, ArrowPrimitiveType, DataType, Decimal128Type, Float64Type, Int64Type,
    UInt64Type,
};

/// Whether a pane enters or leaves the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Enter,
    Leave,
}

/// One additive state column, per key.
pub trait AdditiveColumn: Send + Sync {
    /// Adds (or subtracts) `array[row]` into the total of key `keys[row]`.
    fn apply(&mut self, array: &ArrayRef, keys: &[usize], key_count: usize, d: Direction);
    /// Keeps the keys `live` marks, in order.
    fn retain(&mut self, live: &BooleanArray);
    /// The totals of all keys, as a state column.
    fn emit(&self) -> ArrayRef;
    fn size(&self) -> usize;
}

/// The additive column for a state of type `data_type`, if it is one.
pub fn additive_column(data_type: &DataType) -> Option<Box<dyn AdditiveColumn>> {
    Some(match data_type {
        DataType::Int64 => Box::new(Totals::<Int64Type>::new(data_type.clone())),
        DataType::UInt64 => Box::new(Totals::<UInt64Type>::new(data_type.clone())),
        DataType::Float64 => Box::new(FloatTotals::default()),
        DataType::Decimal128(_, _) => Box::new(Totals::<Decimal128Type>::new(data_type.clone())),
        _ => return None,
    })
}

/// Per-key totals of one primitive state column.
pub struct Totals<T: ArrowPrimitiveType> {
    data_type: DataType,
    values: Vec<T::Native>,
    /// Contributions that were not null, per key.
    valid: Vec<i64>,
}

impl<T: ArrowPrimitiveType> Totals<T> {
    pub fn new(data_type: DataType) -> Self {
        Self {
            data_type,
            values: Vec::new(),
            valid: Vec::new(),
        }
    }

    /// The total of key `k`.
    pub fn value(&self, k: usize) -> T::Native {
        self.values.get(k).copied().unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn grow(&mut self, key_count: usize) {
        if self.values.len() < key_count {
            self.values.resize(key_count, T::Native::default());
            self.valid.resize(key_count, 0);
        }
    }
}

impl<T: ArrowPrimitiveType> AdditiveColumn for Totals<T> {
    fn apply(&mut self, array: &ArrayRef, keys: &[usize], key_count: usize, d: Direction) {
        self.grow(key_count);
        let array = array.as_primitive::<T>();
        let values = array.values();
        let step = if d == Direction::Enter { 1 } else { -1 };
        for (row, &k) in keys.iter().enumerate() {
            if array.is_null(row) {
                continue;
            }
            let v = values[row];
            let total = &mut self.values[k];
            *total = match d {
                Direction::Enter => total.add_wrapping(v),
                Direction::Leave => total.sub_wrapping(v),
            };
            self.valid[k] += step;
            if self.valid[k] == 0 {
                *total = T::Native::default();
            }
        }
    }

    fn retain(&mut self, live: &BooleanArray) {
        self.grow(live.len());
        retain_by(&mut self.values, live);
        retain_by(&mut self.valid, live);
    }

    fn emit(&self) -> ArrayRef {
        let nulls = NullBuffer::from_iter(self.valid.iter().map(|&n| n > 0));
        Arc::new(
            PrimitiveArray::<T>::new(self.values.clone().into(), Some(nulls))
                .with_data_type(self.data_type.clone()),
        )
    }

    fn size(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<T::Native>() + self.valid.capacity() * 8
    }
}

/// Keeps the items of `v` whose position `live` marks.
pub fn retain_by<T>(v: &mut Vec<T>, live: &BooleanArray) {
    let mut at = 0;
    v.retain(|_| {
        let keep = at < live.len() && live.value(at);
        at += 1;
        keep
    });
}

/// Per-key compensated totals of a Float64 state column; NaN and infinite
/// contributions are counted, not added.
#[derive(Default)]
pub struct FloatTotals {
    sum: Vec<f64>,
    /// Neumaier compensation: the low-order parts `sum` lost.
    compensation: Vec<f64>,
    valid: Vec<i64>,
    nan: Vec<i64>,
    positive_infinity: Vec<i64>,
    negative_infinity: Vec<i64>,
}

impl FloatTotals {
    fn grow(&mut self, key_count: usize) {
        if self.sum.len() < key_count {
            for v in [&mut self.sum, &mut self.compensation] {
                v.resize(key_count, 0.0);
            }
            for v in [
                &mut self.valid,
                &mut self.nan,
                &mut self.positive_infinity,
                &mut self.negative_infinity,
            ] {
                v.resize(key_count, 0);
            }
        }
    }

    fn add(&mut self, k: usize, x: f64) {
        let s = self.sum[k];
        let t = s + x;
        self.compensation[k] += if s.abs() >= x.abs() {
            (s - t) + x
        } else {
            (x - t) + s
        };
        self.sum[k] = t;
    }

    fn value(&self, k: usize) -> f64 {
        if self.nan[k] > 0 || (self.positive_infinity[k] > 0 && self.negative_infinity[k] > 0) {
            f64::NAN
        } else if self.positive_infinity[k] > 0 {
            f64::INFINITY
        } else if self.negative_infinity[k] > 0 {
            f64::NEG_INFINITY
        } else {
            self.sum[k] + self.compensation[k]
        }
    }
}

impl AdditiveColumn for FloatTotals {
    fn apply(&mut self, array: &ArrayRef, keys: &[usize], key_count: usize, d: Direction) {
        self.grow(key_count);
        let array = array.as_primitive::<Float64Type>();
        let values = array.values();
        let step = if d == Direction::Enter { 1 } else { -1 };
        for (row, &k) in keys.iter().enumerate() {
            if array.is_null(row) {
                continue;
            }
            let x = values[row];
            self.valid[k] += step;
            if x.is_nan() {
                self.nan[k] += step;
            } else if x == f64::INFINITY {
                self.positive_infinity[k] += step;
            } else if x == f64::NEG_INFINITY {
                self.negative_infinity[k] += step;
            } else {
                self.add(k, if d == Direction::Enter { x } else { -x });
            }
            if self.valid[k] == 0 {
                self.sum[k] = 0.0;
                self.compensation[k] = 0.0;
            }
        }
    }

    fn retain(&mut self, live: &BooleanArray) {
        self.grow(live.len());
        retain_by(&mut self.sum, live);
        retain_by(&mut self.compensation, live);
        retain_by(&mut self.valid, live);
        retain_by(&mut self.nan, live);
        retain_by(&mut self.positive_infinity, live);
        retain_by(&mut self.negative_infinity, live);
    }

    fn emit(&self) -> ArrayRef {
        let values: Vec<f64> = (0..self.sum.len()).map(|k| self.value(k)).collect();
        let nulls = NullBuffer::from_iter(self.valid.iter().map(|&n| n > 0));
        Arc::new(PrimitiveArray::<Float64Type>::new(
            values.into(),
            Some(nulls),
        ))
    }

    fn size(&self) -> usize {
        self.sum.capacity() * 8 * 6
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    #[test]
    fn float_totals_keep_small_values_and_forget_nan() {
        use arrow::array::Float64Array;
        let mut t = FloatTotals::default();
        let big: ArrayRef = Arc::new(Float64Array::from(vec![1e17, f64::NAN]));
        let one: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
        t.apply(&big, &[0, 0], 1, Direction::Enter);
        t.apply(&one, &[0], 1, Direction::Enter);
        assert!(t.emit().as_primitive::<Float64Type>().value(0).is_nan());
        t.apply(&big, &[0, 0], 1, Direction::Leave);
        assert_eq!(t.emit().as_primitive::<Float64Type>().value(0), 1.0);
    }

    #[test]
    fn totals_add_subtract_and_go_null() {
        let mut t = Totals::<Int64Type>::new(DataType::Int64);
        let a: ArrayRef = Arc::new(Int64Array::from(vec![Some(5), None, Some(2)]));
        t.apply(&a, &[0, 1, 0], 2, Direction::Enter);
        let b: ArrayRef = Arc::new(Int64Array::from(vec![Some(1)]));
        t.apply(&b, &[1], 2, Direction::Enter);
        assert_eq!(
            t.emit()
                .as_primitive::<Int64Type>()
                .iter()
                .collect::<Vec<_>>(),
            vec![Some(7), Some(1)]
        );
        t.apply(&b, &[1], 2, Direction::Leave);
        assert_eq!(
            t.emit()
                .as_primitive::<Int64Type>()
                .iter()
                .collect::<Vec<_>>(),
            vec![Some(7), None]
        );
        t.retain(&BooleanArray::from(vec![false, true]));
        assert_eq!(t.emit().len(), 1);
        assert!(t.emit().is_null(0));
    }
}
