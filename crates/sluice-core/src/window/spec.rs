//! When a window is emitted and which batches it covers: Spark's
//! `window(length, slide)` exactly.
//!
//! The stream's zero time is its first batch time minus the batch interval. A
//! window is emitted at each batch time `T` with `T - zero` a multiple of the
//! slide, and covers the batches with times in `(T - length, T]`; its rows
//! carry `window_start = T - length` and `window_end = T`.
//!
//! ```
//! use std::time::Duration;
//! use sluice_core::window::WindowSpec;
//! let s = WindowSpec::new("words", Duration::from_secs(4), Some(Duration::from_secs(2)));
//! s.check("counts", Duration::from_secs(1)).unwrap();
//! let zero = 0; // the first batch is at 1 s
//! let i = Duration::from_secs(1);
//! assert!(!s.emits_at(1_000, zero, i) && s.emits_at(2_000, zero, i));
//! assert!(s.covers(2_000, 1_000) && !s.covers(5_000, 1_000));
//! ```

use std::time::Duration;

use sluice_sql::format_duration;

/// A `window(input, length, slide)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpec {
    /// The source or stream windowed.
    pub input: String,
    pub length: Duration,
    /// `None` until checked: the batch interval.
    pub slide: Option<Duration>,
}

impl WindowSpec {
    pub fn new(input: &str, length: Duration, slide: Option<Duration>) -> Self {
        Self {
            input: input.to_string(),
            length,
            slide,
        }
    }

    /// Fails unless length and slide are positive multiples of `interval`;
    /// the message names the stream and the durations.
    pub fn check(&self, stream: &str, interval: Duration) -> Result<(), String> {
        let slide = self.slide.unwrap_or(interval);
        let call = format!(
            "window({}, '{}', '{}')",
            self.input,
            format_duration(self.length),
            format_duration(slide)
        );
        for (what, d) in [("length", self.length), ("slide", slide)] {
            if d.is_zero() {
                return Err(format!(
                    "stream '{stream}': {call}: the {what} must be positive"
                ));
            }
            if d.as_millis() % interval.as_millis().max(1) != 0 {
                return Err(format!(
                    "stream '{stream}': {call}: the {what} ({}) must be a multiple of the batch interval ({})",
                    format_duration(d),
                    format_duration(interval)
                ));
            }
        }
        Ok(())
    }

    /// Fails unless length and slide are multiples of `input_slide`, how
    /// often the input (itself a window, or a stream of one) has rows.
    pub fn check_over(
        &self,
        stream: &str,
        input_slide: Duration,
        interval: Duration,
    ) -> Result<(), String> {
        let slide = self.slide_or(interval);
        let every = input_slide.as_millis().max(1);
        if self.length.as_millis() % every != 0 || slide.as_millis() % every != 0 {
            return Err(format!(
                "stream '{stream}': window({}, '{}', '{}'): '{}' has rows every {} (it is a window), so the length and slide must be multiples of {}",
                self.input,
                format_duration(self.length),
                format_duration(slide),
                self.input,
                format_duration(input_slide),
                format_duration(input_slide)
            ));
        }
        Ok(())
    }

    fn length_ms(&self) -> i64 {
        self.length.as_millis() as i64
    }

    /// The slide, the batch interval when none was given.
    pub fn slide_or(&self, interval: Duration) -> Duration {
        self.slide.unwrap_or(interval)
    }

    /// Whether a window is emitted at batch time `t`. `zero` is the first
    /// batch time minus the interval.
    pub fn emits_at(&self, t: i64, zero: i64, interval: Duration) -> bool {
        let slide = (self.slide_or(interval).as_millis() as i64).max(1);
        (t - zero).rem_euclid(slide) == 0
    }

    /// Whether the window emitted at `t` covers the batch at `batch_time`.
    pub fn covers(&self, t: i64, batch_time: i64) -> bool {
        batch_time <= t && batch_time > t - self.length_ms()
    }

    /// `(window_start, window_end)` of the window emitted at `t`.
    pub fn bounds(&self, t: i64) -> (i64, i64) {
        (t - self.length_ms(), t)
    }

    /// The number of batches a window spans.
    pub fn batches(&self, interval: Duration) -> u64 {
        (self.length.as_millis() / interval.as_millis().max(1)) as u64
    }

    /// How the window reads, for EXPLAIN: `window(words, 20 seconds, 10 seconds)`.
    pub fn describe(&self, interval: Duration) -> String {
        let slide = self.slide_or(interval);
        format!(
            "window({}, '{}', '{}'): {} batches of {}, emitted every {} batch(es)",
            self.input,
            format_duration(self.length),
            format_duration(slide),
            self.batches(interval),
            format_duration(interval),
            slide.as_millis() / interval.as_millis().max(1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(l: u64, s: Option<u64>) -> WindowSpec {
        WindowSpec::new("w", Duration::from_secs(l), s.map(Duration::from_secs))
    }

    #[test]
    fn emission_and_coverage_follow_spark() {
        // interval 1 s, first batch at 1 s: zero time 0.
        let s = spec(4, Some(2));
        let emitted: Vec<i64> = (1..=8)
            .map(|b| b * 1000)
            .filter(|&t| s.emits_at(t, 0, Duration::from_secs(1)))
            .collect();
        assert_eq!(emitted, vec![2000, 4000, 6000, 8000]);
        let covered = |t| {
            (1..=8)
                .map(|b| b * 1000)
                .filter(|&b| s.covers(t, b))
                .collect::<Vec<_>>()
        };
        assert_eq!(covered(2000), vec![1000, 2000]);
        assert_eq!(covered(6000), vec![3000, 4000, 5000, 6000]);
        assert_eq!(s.bounds(6000), (2000, 6000));
    }

    #[test]
    fn durations_must_be_positive_multiples_of_the_interval() {
        let i = Duration::from_secs(2);
        assert_eq!(
            spec(3, Some(2)).check("hot", i).unwrap_err(),
            "stream 'hot': window(w, '3 seconds', '2 seconds'): the length (3 seconds) must be a multiple of the batch interval (2 seconds)"
        );
        assert!(
            spec(4, Some(1))
                .check("hot", i)
                .unwrap_err()
                .contains("the slide (1 second)")
        );
        assert!(
            spec(0, None)
                .check("hot", i)
                .unwrap_err()
                .contains("the length must be positive")
        );
        assert!(spec(4, None).check("hot", i).is_ok());
    }
}
