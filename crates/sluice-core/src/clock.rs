//! Batch clocks: when batch `T` may be cut.
//!
//! Batch times are epoch-aligned multiples of the batch interval, in
//! milliseconds; batch `T` holds what arrived in `[T - interval, T)`, so it is
//! cut when the clock reaches `T`.
//!
//! - [`SystemClock`]: wall-clock time; the scheduler sleeps until `T`.
//! - [`SimulatedClock`]: batches back to back; time jumps to each batch time without waiting.
//! - [`ManualClock`]: tests move time by hand; nothing is cut until they do.
//!
//! ```
//! use sluice_core::clock::{first_batch_time, ManualClock, BatchClock};
//! assert_eq!(first_batch_time(1_234, 1_000), 2_000);
//! let clock = ManualClock::new(0);
//! clock.advance_ms(1_000);
//! assert_eq!(clock.now_ms(), 1_000);
//! ```

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::watch;

/// A source of "now" that the scheduler waits on before cutting a batch.
#[async_trait]
pub trait BatchClock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the epoch, as this clock sees it.
    fn now_ms(&self) -> i64;
    /// Returns once the clock has reached `t_ms`.
    async fn wait_until(&self, t_ms: i64);
    /// Whether batches run back to back, each cut only when the previous one
    /// is nearly done (simulated time), rather than when their time comes.
    fn back_to_back(&self) -> bool {
        false
    }
}

/// The first batch time strictly after `now_ms`, aligned to the interval.
pub fn first_batch_time(now_ms: i64, interval_ms: i64) -> i64 {
    (now_ms.div_euclid(interval_ms) + 1) * interval_ms
}

/// Wall-clock time.
#[derive(Debug, Default)]
pub struct SystemClock;

#[async_trait]
impl BatchClock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    async fn wait_until(&self, t_ms: i64) {
        loop {
            let now = self.now_ms();
            if now >= t_ms {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis((t_ms - now) as u64)).await;
        }
    }
}

/// Batches back to back: waiting for `T` sets the time to `T` at once.
#[derive(Debug, Default)]
pub struct SimulatedClock {
    now: AtomicI64,
}

impl SimulatedClock {
    pub fn new(start_ms: i64) -> Self {
        Self {
            now: AtomicI64::new(start_ms),
        }
    }
}

#[async_trait]
impl BatchClock for SimulatedClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    async fn wait_until(&self, t_ms: i64) {
        self.now.fetch_max(t_ms, Ordering::SeqCst);
    }

    fn back_to_back(&self) -> bool {
        true
    }
}

/// Time that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<i64>,
}

impl ManualClock {
    pub fn new(start_ms: i64) -> Self {
        Self {
            now: watch::Sender::new(start_ms),
        }
    }

    /// Moves time forward by `ms`.
    pub fn advance_ms(&self, ms: i64) {
        self.now.send_modify(|t| *t += ms);
    }

    /// Sets the time (never backwards).
    pub fn set_ms(&self, t_ms: i64) {
        self.now.send_modify(|t| *t = (*t).max(t_ms));
    }
}

#[async_trait]
impl BatchClock for ManualClock {
    fn now_ms(&self) -> i64 {
        *self.now.borrow()
    }

    async fn wait_until(&self, t_ms: i64) {
        let mut rx = self.now.subscribe();
        // The sender lives as long as `self`, so this only ends when time is reached.
        let _ = rx.wait_for(|now| *now >= t_ms).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn batch_times_are_aligned_multiples() {
        assert_eq!(first_batch_time(0, 1_000), 1_000);
        assert_eq!(first_batch_time(999, 1_000), 1_000);
        assert_eq!(first_batch_time(1_000, 1_000), 2_000);
        assert_eq!(first_batch_time(12_345, 5_000), 15_000);
    }

    #[tokio::test]
    async fn manual_clock_waits_until_advanced() {
        let clock = Arc::new(ManualClock::new(0));
        let c = clock.clone();
        let waiter = tokio::spawn(async move { c.wait_until(2_000).await });
        tokio::task::yield_now().await;
        clock.advance_ms(1_000);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        clock.advance_ms(1_000);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(clock.now_ms(), 2_000);
    }

    #[tokio::test]
    async fn simulated_clock_jumps_without_waiting() {
        let clock = SimulatedClock::new(0);
        clock.wait_until(1_000_000).await;
        assert_eq!(clock.now_ms(), 1_000_000);
        clock.wait_until(5).await;
        assert_eq!(clock.now_ms(), 1_000_000, "time never goes back");
    }
}
