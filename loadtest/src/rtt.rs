//! Input-to-visible round trips: a decoder's inputs waiting to be seen, the rule that resolves them, and the
//! latency histogram they feed.
//!
//! The rule (docs/loadtest.md, scenario "sector-sync"): an input is resolved by the first decoded delta or keyframe
//! in which the client's own ship's `(vx, vy)` equals the values of that input **or of any later input** of the same
//! client (the server handles one client's messages in order). Its round trip runs from just before its frame was
//! written to the moment that frame was decoded.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Inputs kept waiting at most; older ones are given up as unresolved (a server that never shows inputs would
/// otherwise grow this without bound).
const MAX_PENDING: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Pending {
    vx: f32,
    vy: f32,
    sent: Instant,
    /// Sent inside the measured window.
    measured: bool,
}

/// One decoder's inputs not yet seen, oldest first.
#[derive(Debug, Default)]
pub struct PendingInputs {
    q: VecDeque<Pending>,
    /// Measured inputs given up because the queue was full.
    pub overflowed: u64,
}

impl PendingInputs {
    /// Records an input about to be written.
    pub fn push(&mut self, vx: f32, vy: f32, sent: Instant, measured: bool) {
        if self.q.len() >= MAX_PENDING {
            if let Some(old) = self.q.pop_front() {
                self.overflowed += u64::from(old.measured);
            }
        }
        self.q.push_back(Pending { vx, vy, sent, measured });
    }

    /// The client's own ship shows `(vx, vy)` at `now`: resolves every input up to the latest one with those
    /// values, calling `sample(round trip)` for each measured one. Returns how many inputs were resolved.
    pub fn observe(&mut self, vx: f32, vy: f32, now: Instant, mut sample: impl FnMut(Duration)) -> usize {
        let Some(last) = self.q.iter().rposition(|p| p.vx == vx && p.vy == vy) else {
            return 0;
        };
        for p in self.q.drain(..=last) {
            if p.measured {
                sample(now.saturating_duration_since(p.sent));
            }
        }
        last + 1
    }

    /// Measured inputs still waiting.
    pub fn unresolved_measured(&self) -> u64 {
        self.q.iter().filter(|p| p.measured).count() as u64 + self.overflowed
    }

    pub fn len(&self) -> usize {
        self.q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }
}

/// A latency histogram in microseconds (1 µs to 1 h, 3 significant digits).
#[derive(Debug, Clone)]
pub struct Latency {
    h: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            h: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
        }
    }
}

/// Summary of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    pub samples: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        self.h
            .saturating_record(d.as_micros().clamp(1, u128::from(u64::MAX)) as u64);
    }

    pub fn add(&mut self, other: &Latency) {
        // Same bounds: cannot fail.
        let _ = self.h.add(&other.h);
    }

    pub fn len(&self) -> u64 {
        self.h.len()
    }

    pub fn is_empty(&self) -> bool {
        self.h.is_empty()
    }

    /// Percentiles in milliseconds (None without samples).
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(LatencySummary {
            samples: self.h.len(),
            p50_ms: ms(self.h.value_at_quantile(0.50)),
            p90_ms: ms(self.h.value_at_quantile(0.90)),
            p99_ms: ms(self.h.value_at_quantile(0.99)),
            max_ms: ms(self.h.max()),
            mean_ms: self.h.mean() / 1000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn an_input_resolves_when_its_own_values_show() {
        let t0 = Instant::now();
        let mut p = PendingInputs::default();
        p.push(1.0, 2.0, t0, true);
        let mut got = Vec::new();
        assert_eq!(
            p.observe(0.0, 0.0, t0 + ms(10), |d| got.push(d)),
            0,
            "old velocity: nothing resolved"
        );
        assert_eq!(p.observe(1.0, 2.0, t0 + ms(30), |d| got.push(d)), 1);
        assert_eq!(got, vec![ms(30)]);
        assert!(p.is_empty());
    }

    #[test]
    fn a_later_inputs_values_resolve_every_earlier_input() {
        let t0 = Instant::now();
        let mut p = PendingInputs::default();
        p.push(1.0, 1.0, t0, true);
        p.push(2.0, 2.0, t0 + ms(100), true);
        p.push(3.0, 3.0, t0 + ms(200), true);
        let mut got = Vec::new();
        // The patch shows the second input: the first was processed before it, so both resolve now.
        assert_eq!(p.observe(2.0, 2.0, t0 + ms(120), |d| got.push(d)), 2);
        assert_eq!(got, vec![ms(120), ms(20)]);
        assert_eq!(p.len(), 1);
        // Values that match only an already resolved input resolve nothing.
        assert_eq!(p.observe(1.0, 1.0, t0 + ms(130), |d| got.push(d)), 0);
        assert_eq!(p.unresolved_measured(), 1);
    }

    #[test]
    fn equality_is_on_both_axes_and_picks_the_latest_match() {
        let t0 = Instant::now();
        let mut p = PendingInputs::default();
        p.push(5.0, 1.0, t0, true);
        p.push(5.0, 2.0, t0 + ms(10), true);
        p.push(5.0, 1.0, t0 + ms(20), false);
        p.push(7.0, 7.0, t0 + ms(30), true);
        let mut got = Vec::new();
        assert_eq!(p.observe(5.0, 3.0, t0 + ms(40), |d| got.push(d)), 0, "vy differs");
        // (5, 1) is the values of inputs 0 and 2: the latest (2) counts, so 0, 1 and 2 resolve; 2 is unmeasured.
        assert_eq!(p.observe(5.0, 1.0, t0 + ms(50), |d| got.push(d)), 3);
        assert_eq!(got, vec![ms(50), ms(40)]);
        assert_eq!(p.unresolved_measured(), 1);
    }

    #[test]
    fn unmeasured_inputs_resolve_but_give_no_sample_and_overflow_counts_as_unresolved() {
        let t0 = Instant::now();
        let mut p = PendingInputs::default();
        for i in 0..(MAX_PENDING + 3) {
            p.push(i as f32, 0.0, t0, i % 2 == 0);
        }
        assert_eq!(p.len(), MAX_PENDING);
        assert_eq!(p.overflowed, 2, "inputs 0 and 2 were measured and dropped");
        let mut n = 0;
        p.observe((MAX_PENDING + 2) as f32, 0.0, t0, |_| n += 1);
        assert!(p.is_empty());
        assert_eq!(n, MAX_PENDING / 2);
    }

    #[test]
    fn latency_summary() {
        let mut l = Latency::default();
        assert!(l.summary().is_none());
        for i in 1..=100 {
            l.record(ms(i));
        }
        let s = l.summary().unwrap();
        assert_eq!(s.samples, 100);
        assert!((s.p50_ms - 50.0).abs() < 0.1, "{s:?}");
        assert!((s.p99_ms - 99.0).abs() < 0.1, "{s:?}");
        assert!((s.max_ms - 100.0).abs() < 0.1, "{s:?}");
    }
}
