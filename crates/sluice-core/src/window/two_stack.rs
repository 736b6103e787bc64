//! Sliding aggregation of partial states without an inverse (`min`, `max`,
//! `count(DISTINCT)`, ...): the two-stack queue.
//!
//! Each pane is one batch's partial aggregate (key columns and state columns,
//! as DataFusion's partial `AggregateExec` gives them). Entering panes go on
//! the back, with a running merge of the whole back; the front holds suffix
//! merges (the merge of a pane and every pane after it, up to where the front
//! ends). The window is `front.top ⊕ back_total`, two tables of at most one
//! row per key, so a slide merges O(keys) rows however many panes the window
//! spans. When the front runs empty, the back is turned into suffix merges
//! (one merge per pane, amortized one per slide).

use arrow::array::RecordBatch;
use datafusion::error::Result as DFResult;

use super::merge::PartialMerger;

/// The panes of one window, merged from both ends.
#[derive(Default)]
pub struct TwoStack {
    /// Suffix merges, newest first; the last starts at the oldest pane.
    front: Vec<(i64, RecordBatch)>,
    /// Panes in arrival order.
    back: Vec<(i64, RecordBatch)>,
    back_total: Option<RecordBatch>,
}

impl TwoStack {
    /// Adds the pane of batch `t` (the newest).
    pub async fn push(&mut self, t: i64, pane: RecordBatch, merger: &PartialMerger) -> DFResult<()> {
        self.back_total = Some(match self.back_total.take() {
            None => pane.clone(),
            Some(total) => merger.merge(vec![total, pane.clone()]).await?,
        });
        self.back.push((t, pane));
        Ok(())
    }

    /// The time of the oldest pane.
    pub fn oldest(&self) -> Option<i64> {
        self.front
            .last()
            .or_else(|| self.back.first())
            .map(|(t, _)| *t)
    }

    /// Drops the panes with times up to `t`.
    pub async fn evict_through(&mut self, t: i64, merger: &PartialMerger) -> DFResult<()> {
        while self.oldest().is_some_and(|o| o <= t) {
            if self.front.is_empty() {
                self.flip(merger).await?;
            }
            self.front.pop();
        }
        Ok(())
    }

    async fn flip(&mut self, merger: &PartialMerger) -> DFResult<()> {
        let mut suffix: Option<RecordBatch> = None;
        for (t, pane) in self.back.drain(..).rev() {
            let merged = match suffix {
                None => pane,
                Some(s) => merger.merge(vec![pane, s]).await?,
            };
            suffix = Some(merged.clone());
            self.front.push((t, merged));
        }
        self.back_total = None;
        Ok(())
    }

    /// The merged partial states of every pane in the window, one row per
    /// key (a lone pane can hold a key once per partition, so it is merged
    /// too).
    pub async fn total(&self, merger: &PartialMerger) -> DFResult<RecordBatch> {
        let parts = self
            .front
            .last()
            .map(|(_, f)| f.clone())
            .into_iter()
            .chain(self.back_total.clone())
            .collect();
        merger.merge(parts).await
    }

    /// Bytes held (panes shared with other holders count here too).
    pub fn size(&self) -> usize {
        self.front
            .iter()
            .chain(&self.back)
            .map(|(_, b)| b.get_array_memory_size())
            .sum::<usize>()
            + self
                .back_total
                .as_ref()
                .map_or(0, |b| b.get_array_memory_size())
    }
}
