//! `connector = 'rate'`: `timestamp, value` rows at `rows_per_second` (default
//! 1), spread evenly over each batch's interval `[T - interval, T)`; `value`
//! counts up from 0.
//!
//! ```sql
//! CREATE SOURCE ticks WITH (connector = 'rate', rows_per_second = 100);
//! ```

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use sluice_core::Result;
use sluice_core::source::{Source, SourceContext, SourceFactory, SourceSpec};

pub struct RateSourceFactory;

#[async_trait]
impl SourceFactory for RateSourceFactory {
    fn name(&self) -> &'static str {
        "rate"
    }

    fn option_names(&self) -> &'static [&'static str] {
        &["rows_per_second"]
    }

    async fn create(&self, spec: SourceSpec, ctx: &SourceContext) -> Result<Box<dyn Source>> {
        let rows_per_second = spec.options.get_u64("rows_per_second")?.unwrap_or(1);
        Ok(Box::new(RateSource::new(
            rows_per_second,
            ctx.batch_interval.as_millis() as i64,
        )))
    }
}

#[derive(Debug)]
pub struct RateSource {
    schema: SchemaRef,
    rows_per_second: u64,
    interval_ms: i64,
    next_value: i64,
    /// Fractional rows carried between batches (rate × interval need not be whole).
    carry_millirows: u64,
}

impl RateSource {
    pub fn new(rows_per_second: u64, interval_ms: i64) -> Self {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "timestamp",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                false,
            ),
            Field::new("value", DataType::Int64, false),
        ]));
        Self {
            schema,
            rows_per_second,
            interval_ms,
            next_value: 0,
            carry_millirows: 0,
        }
    }
}

#[async_trait]
impl Source for RateSource {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    async fn cut(&mut self, batch_time: i64) -> Result<Vec<RecordBatch>> {
        let millirows = self
            .rows_per_second
            .checked_mul(self.interval_ms as u64)
            .and_then(|m| m.checked_add(self.carry_millirows))
            .filter(|m| m / 1000 <= i64::MAX as u64)
            .ok_or_else(|| {
                sluice_core::SluiceError::Config(format!(
                    "rate source: rows_per_second {} is too large for a batch",
                    self.rows_per_second
                ))
            })?;
        let n = (millirows / 1000) as i64;
        self.carry_millirows = millirows % 1000;
        let start = batch_time - self.interval_ms;
        let times = TimestampMillisecondArray::from_iter_values(
            (0..n).map(|i| start + i * self.interval_ms / n.max(1)),
        );
        let values = Int64Array::from_iter_values(self.next_value..self.next_value + n);
        self.next_value += n;
        Ok(vec![RecordBatch::try_new(
            Arc::clone(&self.schema),
            vec![Arc::new(times), Arc::new(values)],
        )?])
    }

    /// The next value and the fraction of a row carried over.
    fn position(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({
            "next_value": self.next_value,
            "carry_millirows": self.carry_millirows,
        }))
    }

    fn restore(&mut self, position: &serde_json::Value) -> Result<()> {
        match (
            position["next_value"].as_i64(),
            position["carry_millirows"].as_u64(),
        ) {
            (Some(next), Some(carry)) if next >= 0 && carry < 1000 => {
                self.next_value = next;
                self.carry_millirows = carry;
                Ok(())
            }
            _ => Err(sluice_core::SluiceError::Config(format!(
                "rate source: the checkpoint's position {position} is not one it wrote"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rows_spread_over_the_interval_and_values_count_up() {
        let mut s = RateSource::new(4, 1000);
        let b = s.cut(5000).await.unwrap().remove(0);
        let t = b
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        assert_eq!(t.values().to_vec(), vec![4000, 4250, 4500, 4750]);
        let b = s.cut(6000).await.unwrap().remove(0);
        let v = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(v.values().to_vec(), vec![4, 5, 6, 7]);
    }

    #[tokio::test]
    async fn fractional_rates_carry_over() {
        let mut s = RateSource::new(1, 500);
        let mut rows = Vec::new();
        for i in 1..=4 {
            rows.push(s.cut(i * 500).await.unwrap()[0].num_rows());
        }
        assert_eq!(rows, vec![0, 1, 0, 1]);
    }
}
