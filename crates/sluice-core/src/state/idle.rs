//! When each key last got rows, for `state_timeout` (Spark's
//! `StateSpec.timeout`): the keys idle for longer than the timeout are found
//! without scanning every key.
//!
//! Each batch appends the keys it touched, with its time, to a queue. Batch
//! times only grow, so the queue is in time order: the keys last touched
//! before a threshold are at its front. An entry whose key was touched again
//! later is stale and skipped (the key's own time says so). A touch is
//! queued once and popped once: amortized O(1) per touched key.
//!
//! ```
//! use sluice_core::state::IdleKeys;
//!
//! let mut idle = IdleKeys::default();
//! idle.touch(&[0, 1], 1000);
//! idle.touch(&[1], 2000);
//! // Keys last touched before 1500: key 0 only (key 1 was touched again).
//! assert_eq!(idle.take_before(1500, |_| true), vec![0]);
//! assert_eq!(idle.take_before(2500, |_| true), vec![1]);
//! ```

use std::collections::VecDeque;

use arrow::array::BooleanArray;

/// Per key index (from the store's key index), its last touch; see the
/// module docs.
#[derive(Debug, Default)]
pub struct IdleKeys {
    /// Per key index: the time it last got rows (`i64::MIN`: never, or taken).
    touched: Vec<i64>,
    /// `(batch time, keys touched then)`, oldest first.
    queue: VecDeque<(i64, Vec<u32>)>,
}

impl IdleKeys {
    /// Marks `keys` as touched at `t` (not before any earlier touch).
    pub fn touch(&mut self, keys: &[usize], t: i64) {
        if keys.is_empty() {
            return;
        }
        if let Some(&max) = keys.iter().max()
            && self.touched.len() <= max
        {
            self.touched.resize(max + 1, i64::MIN);
        }
        for &k in keys {
            self.touched[k] = t;
        }
        self.queue
            .push_back((t, keys.iter().map(|&k| k as u32).collect()));
    }

    /// When key `k` last got rows, if it has not been taken since.
    pub fn last_touch(&self, k: usize) -> Option<i64> {
        self.touched.get(k).copied().filter(|&t| t != i64::MIN)
    }

    /// The keys whose last touch is before `threshold` and that `live`
    /// says still have state, each once; they are forgotten.
    pub fn take_before(&mut self, threshold: i64, live: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut out = Vec::new();
        while let Some((t, _)) = self.queue.front() {
            if *t >= threshold {
                break;
            }
            let Some((t, keys)) = self.queue.pop_front() else {
                break;
            };
            for k in keys {
                let k = k as usize;
                if self.touched[k] == t {
                    self.touched[k] = i64::MIN;
                    if live(k) {
                        out.push(k);
                    }
                }
            }
        }
        out
    }

    /// Follows a compaction of the key index: `kept[i]` says whether old
    /// index `i` survives; survivors are renumbered in order.
    pub fn retain(&mut self, kept: &BooleanArray) {
        let mut new_index = Vec::with_capacity(kept.len());
        let mut next = 0u32;
        for i in 0..kept.len() {
            if kept.value(i) {
                new_index.push(next);
                next += 1;
            } else {
                new_index.push(u32::MAX);
            }
        }
        let mut touched = vec![i64::MIN; next as usize];
        for (old, &t) in self.touched.iter().enumerate() {
            if let Some(&new) = new_index.get(old)
                && new != u32::MAX
            {
                touched[new as usize] = t;
            }
        }
        self.touched = touched;
        for (_, keys) in self.queue.iter_mut() {
            keys.retain_mut(|k| match new_index.get(*k as usize) {
                Some(&new) if new != u32::MAX => {
                    *k = new;
                    true
                }
                _ => false,
            });
        }
        self.queue.retain(|(_, keys)| !keys.is_empty());
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.touched.capacity() * 8
            + self
                .queue
                .iter()
                .map(|(_, k)| 16 + k.capacity() * 4)
                .sum::<usize>()
    }
}
