//! Sliding aggregation of partial states without an inverse (`min`, `max`,
//! `count(DISTINCT)`, ...): a two-stack queue whose flips are spread over
//! the batches, so no slide pays for the whole window.
//!
//! Each pane is one batch's partial aggregate (key columns and state columns,
//! as DataFusion's partial `AggregateExec` gives them). Panes are grouped in
//! segments of about a quarter of the window, oldest first. The newest
//! segment keeps a running merge of its panes (the classic two-stack's back).
//! A closed segment gets its suffix merges (the merge of a pane and every
//! later pane of the segment: the classic front) computed from its end, one
//! or two merges per batch, long before it becomes the oldest. The window is
//! then the oldest segment's suffix from its first remaining pane, the merged
//! totals of the middle segments, and the newest segment's total: three
//! tables of at most one row per key merged per slide, however many batches
//! the window spans, and no slide that turns
//! a whole stack around (the classic two-stack's flip costs one merge per
//! pane of the window, all in one slide).

use std::collections::VecDeque;

use arrow::array::RecordBatch;
use datafusion::error::Result as DFResult;

use super::merge::PartialMerger;

/// Suffix merges computed per pane pushed: a closed segment of `c` panes
/// needs `c - 1`, and the next one closes `c` pushes later.
const MERGES_PER_PUSH: usize = 1;

/// Consecutive panes.
struct Segment {
    times: Vec<i64>,
    panes: Vec<RecordBatch>,
    /// Panes before `start` have left the window.
    start: usize,
    /// The merge of every pane of the segment.
    total: Option<RecordBatch>,
    /// `suffix[i]`: the merge of `panes[i..]`, known for `i >= known_from`
    /// once the segment is closed.
    suffix: Vec<Option<RecordBatch>>,
    known_from: usize,
    closed: bool,
}

impl Segment {
    fn new() -> Self {
        Self {
            times: Vec::new(),
            panes: Vec::new(),
            start: 0,
            total: None,
            suffix: Vec::new(),
            known_from: 0,
            closed: false,
        }
    }

    fn close(&mut self) {
        let n = self.panes.len();
        self.closed = true;
        self.suffix = vec![None; n];
        if let Some(last) = self.panes.last() {
            self.suffix[n - 1] = Some(last.clone());
        }
        self.known_from = n.saturating_sub(1);
    }

    /// Whether a suffix the window needs is still missing.
    fn needs_work(&self) -> bool {
        self.closed && self.known_from > self.start
    }

    async fn work(&mut self, merger: &PartialMerger) -> DFResult<()> {
        let i = self.known_from - 1;
        let Some(later) = self.suffix[self.known_from].clone() else {
            return datafusion::common::internal_err!("window panes: a suffix is missing");
        };
        let merged = merger.merge(vec![self.panes[i].clone(), later]).await?;
        self.suffix[i] = Some(merged);
        self.known_from = i;
        Ok(())
    }

    /// Tables whose merge is this segment's panes from `start` on.
    fn parts(&self, out: &mut Vec<RecordBatch>) {
        if self.start == 0
            && let Some(t) = &self.total
        {
            out.push(t.clone());
            return;
        }
        if self.closed && self.known_from <= self.start {
            if let Some(s) = &self.suffix[self.start] {
                out.push(s.clone());
                return;
            }
        }
        // Suffixes not computed yet: the panes up to the first known one.
        let known = if self.closed {
            self.known_from
        } else {
            self.panes.len()
        };
        out.extend(
            self.panes[self.start..known.max(self.start)]
                .iter()
                .cloned(),
        );
        if self.closed
            && let Some(Some(s)) = self.suffix.get(known.max(self.start))
        {
            out.push(s.clone());
        }
    }
}

/// The panes of one window, see the module docs.
#[derive(Default)]
pub struct TwoStack {
    segments: VecDeque<Segment>,
    /// The merge of the totals of the segments between the oldest and the
    /// newest, kept until a segment closes or leaves.
    middle: Option<RecordBatch>,
}

impl TwoStack {
    /// Adds the pane of batch `t` (the newest). `window_panes`: how many
    /// panes the window spans (sets the segment size).
    pub async fn push(
        &mut self,
        t: i64,
        pane: RecordBatch,
        window_panes: usize,
        merger: &PartialMerger,
    ) -> DFResult<()> {
        let chunk = (window_panes / 4).max(1);
        let open = self
            .segments
            .back()
            .is_some_and(|s| !s.closed && s.panes.len() < chunk);
        if !open {
            if let Some(back) = self.segments.back_mut()
                && !back.closed
            {
                back.close();
            }
            self.segments.push_back(Segment::new());
            self.middle = None;
        }
        if let Some(back) = self.segments.back_mut() {
            back.total = Some(match back.total.take() {
                None => pane.clone(),
                Some(total) => merger.merge(vec![total, pane.clone()]).await?,
            });
            back.times.push(t);
            back.panes.push(pane);
        }
        // Suffix work, oldest segment first.
        for _ in 0..MERGES_PER_PUSH {
            match self.segments.iter_mut().find(|s| s.needs_work()) {
                Some(s) => s.work(merger).await?,
                None => break,
            }
        }
        Ok(())
    }

    /// Drops the panes with times up to `t`.
    pub fn evict_through(&mut self, t: i64) {
        while let Some(front) = self.segments.front_mut() {
            while front.start < front.panes.len() && front.times[front.start] <= t {
                // The pane's memory can go: later suffixes do not need it.
                let gone = &mut front.panes[front.start];
                *gone = RecordBatch::new_empty(gone.schema());
                if let Some(suffix) = front.suffix.get_mut(front.start) {
                    *suffix = None;
                }
                // The total covers the gone pane: only suffixes serve now.
                front.total = None;
                front.start += 1;
            }
            if front.start < front.panes.len() || !front.closed {
                break;
            }
            self.segments.pop_front();
            self.middle = None;
        }
    }

    /// The merged partial states of every pane in the window, one row per
    /// key (a lone pane can hold a key once per partition, so it is merged
    /// too).
    pub async fn total(&mut self, merger: &PartialMerger) -> DFResult<RecordBatch> {
        let n = self.segments.len();
        if n >= 3 && self.middle.is_none() {
            let totals = self
                .segments
                .range(1..n - 1)
                .filter_map(|s| s.total.clone())
                .collect();
            self.middle = Some(merger.merge(totals).await?);
        }
        let mut parts = Vec::with_capacity(4);
        for (i, s) in self.segments.iter().enumerate() {
            let in_middle = i > 0 && i + 1 < n;
            if in_middle {
                if i == 1
                    && let Some(m) = &self.middle
                {
                    parts.push(m.clone());
                }
            } else if s.start < s.panes.len() {
                s.parts(&mut parts);
            }
        }
        merger.merge(parts).await
    }

    /// Bytes held by the merges (the panes themselves are the window
    /// aggregate's, and counted there).
    pub fn size(&self) -> usize {
        self.segments
            .iter()
            .flat_map(|s| s.suffix.iter().flatten().chain(s.total.iter()))
            .chain(self.middle.iter())
            .map(|b| b.get_array_memory_size())
            .sum()
    }
}
