//! Time dilation: how an overloaded sector degrades. Instead of overrunning its tick period, a sector whose tick
//! work exceeds its budget simulates less game time per wall-clock second.
//!
//! Every simulated tick still advances the game by the fixed step `dt` (the rules stay deterministic and the crash
//! journal replays exactly), but at factor `f` the sector runs on average `f` of its timer ticks: each timer tick
//! adds `f` to an accumulator and a simulated tick runs when it reaches 1. Game time, deltas, replies to requests
//! and the sector's CPU all drop to `f`.
//!
//! The factor follows the sector's smoothed tick work `w` (an exponentially weighted moving average of the whole
//! `run_tick`, measured with the two `Instant::now()` the tick already takes; quick to rise, slower to fall):
//! - it **falls at once** to `budget / w` (so that the sector's average work per timer tick, `f * w`, is the
//!   budget) whenever that is below the current factor;
//! - it **recovers** only towards `0.9 * budget / w` (a 10 % dead band: no oscillation around the budget), by at
//!   most [`RECOVERY_STEP`] per timer tick (a smooth ramp, 0.2 per second at 20 Hz);
//! - it never leaves `[floor, 1]`.
//!
//! Clients are told the factor (`time_dilation`) when it has moved by [`ANNOUNCE_STEP`] or more since they were
//! last told, or when it is back to exactly 1.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Weight of a new measurement in the smoothed work when it is above the average (reacts within a few ticks).
const ALPHA_UP: f64 = 0.5;
/// Weight of a new measurement when it is below the average (the load must stay away before the factor rises).
const ALPHA_DOWN: f64 = 0.25;
/// Recovery aims at this fraction of the budget: the dead band between falling and rising.
const HEADROOM: f64 = 0.9;
/// The most the factor rises per timer tick.
pub const RECOVERY_STEP: f32 = 0.01;
/// Clients are told the factor again once it has moved this much (or is back to exactly 1).
pub const ANNOUNCE_STEP: f32 = 0.05;

/// One sector's dilation controller. Pure arithmetic: the sector feeds it timer ticks and measured work.
#[derive(Debug, Clone)]
pub struct Dilation {
    /// Work budget of one simulated tick, in seconds.
    budget: f64,
    floor: f32,
    factor: f32,
    /// Where recovery may take the factor (from the last measurement).
    ceiling: f32,
    /// Smoothed tick work in seconds; `None` before the first measurement.
    work: Option<f64>,
    /// Simulated-tick credit: a simulated tick runs when it reaches 1.
    credit: f32,
    /// The factor clients were last told.
    announced: f32,
}

impl Dilation {
    /// A controller for `budget` of work per simulated tick, never below `floor`, starting at `factor` (1, or what
    /// a restarted sector's clients were last told).
    pub fn new(budget: Duration, floor: f32, factor: f32) -> Self {
        let floor = if floor.is_finite() { floor.clamp(0.01, 1.0) } else { 1.0 };
        let factor = if factor.is_finite() {
            factor.clamp(floor, 1.0)
        } else {
            1.0
        };
        Self {
            budget: budget.as_secs_f64(),
            floor,
            factor,
            ceiling: factor,
            work: None,
            credit: 0.0,
            announced: factor,
        }
    }

    /// The current factor: game seconds simulated per wall-clock second.
    pub fn factor(&self) -> f32 {
        self.factor
    }

    /// Whether the sector runs slower than real time.
    pub fn is_dilated(&self) -> bool {
        self.factor < 1.0
    }

    /// The smoothed work of one simulated tick.
    pub fn work(&self) -> Option<Duration> {
        self.work.map(Duration::from_secs_f64)
    }

    /// A timer tick: steps recovery and says whether a simulated tick runs now.
    pub fn on_timer(&mut self) -> bool {
        if self.factor < self.ceiling {
            self.factor = (self.factor + RECOVERY_STEP).min(self.ceiling);
        }
        self.credit += self.factor;
        if self.credit >= 1.0 - 1e-4 {
            self.credit = (self.credit - 1.0).max(0.0);
            true
        } else {
            false
        }
    }

    /// The measured work of the simulated tick that just ran.
    pub fn observe(&mut self, work: Duration) {
        let w = work.as_secs_f64();
        let smoothed = match self.work {
            None => w,
            Some(avg) if w > avg => avg + ALPHA_UP * (w - avg),
            Some(avg) => avg + ALPHA_DOWN * (w - avg),
        };
        self.work = Some(smoothed);
        let fit = |budget: f64| -> f32 {
            if smoothed <= budget {
                1.0
            } else {
                ((budget / smoothed) as f32).clamp(self.floor, 1.0)
            }
        };
        let target = fit(self.budget);
        if target < self.factor {
            self.factor = target;
        }
        self.ceiling = fit(self.budget * HEADROOM).max(self.factor);
    }

    /// Resets to real time (a sector going to sleep: nothing to simulate, nobody watching).
    pub fn reset(&mut self) {
        self.factor = 1.0;
        self.ceiling = 1.0;
        self.work = None;
        self.credit = 0.0;
    }

    /// The factor to tell clients, if it moved enough since they were last told (and records it as told).
    pub fn announce(&mut self) -> Option<f64> {
        let f = self.factor;
        let moved = (f - self.announced).abs() >= ANNOUNCE_STEP || (f == 1.0 && self.announced != 1.0);
        if !moved {
            return None;
        }
        self.announced = f;
        Some(self.announced())
    }

    /// The factor clients were last told, rounded to hundredths (so that JSON shows `0.45`, not the f32's digits).
    pub fn announced(&self) -> f64 {
        ((f64::from(self.announced) * 100.0).round() / 100.0).clamp(0.01, 1.0)
    }

    /// The longest gap between two simulated ticks at the current factor, plus half a period: an interval above
    /// it is an overrun. At factor 1, 1.5 periods.
    pub fn overrun_threshold(&self, period: Duration) -> Duration {
        let gap = (1.0 / self.factor.max(0.01)).ceil() as u32;
        period * (2 * gap + 1) / 2
    }
}

/// The dilated sectors of this process and their announced factors, for the `orrery_dilated_sectors` and
/// `orrery_time_dilation_min` gauges. Updated only when a sector's announced factor changes.
#[derive(Debug, Default)]
pub struct DilationBoard {
    factors: Mutex<HashMap<usize, f64>>,
}

impl DilationBoard {
    /// The board shared by every sector of this process.
    pub fn global() -> &'static DilationBoard {
        static BOARD: OnceLock<DilationBoard> = OnceLock::new();
        BOARD.get_or_init(DilationBoard::default)
    }

    /// Records sector `key`'s announced factor (1 removes it) and updates the gauges.
    pub fn set(&self, key: usize, factor: f64) {
        let mut factors = self.factors.lock().unwrap_or_else(|e| e.into_inner());
        if factor < 1.0 {
            factors.insert(key, factor);
        } else {
            factors.remove(&key);
        }
        let min = factors.values().copied().fold(1.0f64, f64::min);
        metrics::gauge!("orrery_dilated_sectors").set(factors.len() as f64);
        metrics::gauge!("orrery_time_dilation_min").set(min);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_millis(50);

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Runs `timer_ticks` timer ticks with `work` per simulated tick; returns the simulated ticks run.
    fn drive(d: &mut Dilation, timer_ticks: u32, work: Duration) -> u32 {
        let mut ran = 0;
        for _ in 0..timer_ticks {
            if d.on_timer() {
                d.observe(work);
                ran += 1;
            }
        }
        ran
    }

    #[test]
    fn an_undemanding_sector_runs_every_timer_tick() {
        let mut d = Dilation::new(ms(25), 0.1, 1.0);
        assert_eq!(drive(&mut d, 100, ms(10)), 100);
        assert_eq!(d.factor(), 1.0);
        assert_eq!(d.announce(), None);
    }

    #[test]
    fn overload_falls_quickly_to_the_budget_and_never_below_the_floor() {
        let mut d = Dilation::new(ms(25), 0.1, 1.0);
        // Twice the budget: within a few simulated ticks the factor is about one half.
        drive(&mut d, 10, ms(50));
        assert!((d.factor() - 0.5).abs() < 0.05, "{}", d.factor());
        // Forty times the budget: down to the floor, never below.
        for _ in 0..200 {
            drive(&mut d, 1, ms(1000));
            assert!(d.factor() >= 0.1);
        }
        assert_eq!(d.factor(), 0.1);
        // At the floor, one timer tick in ten simulates.
        assert_eq!(drive(&mut d, 1000, ms(1000)), 100);
    }

    #[test]
    fn recovery_is_a_bounded_ramp_back_to_exactly_one() {
        let mut d = Dilation::new(ms(25), 0.1, 1.0);
        drive(&mut d, 200, ms(1000));
        assert_eq!(d.factor(), 0.1);
        let mut last = d.factor();
        let mut timer_ticks = 0;
        while d.factor() < 1.0 {
            drive(&mut d, 1, ms(1));
            assert!(d.factor() >= last, "recovery never goes back down");
            assert!(d.factor() - last <= RECOVERY_STEP + 1e-6, "bounded step");
            last = d.factor();
            timer_ticks += 1;
            assert!(timer_ticks < 1000, "recovers");
        }
        assert_eq!(d.factor(), 1.0);
        assert!(timer_ticks >= 90, "a ramp, not a jump: {timer_ticks}");
    }

    #[test]
    fn work_near_the_budget_does_not_oscillate() {
        let mut d = Dilation::new(ms(25), 0.1, 1.0);
        drive(&mut d, 40, ms(40));
        let settled = d.factor();
        // Noisy work within the dead band: the factor holds (or drifts within a few hundredths).
        for i in 0..2000u64 {
            let work = ms(38 + i % 5);
            drive(&mut d, 1, work);
            assert!((d.factor() - settled).abs() < 0.06, "{} vs {settled}", d.factor());
        }
    }

    #[test]
    fn announcements_need_a_noticeable_change_or_exactly_one() {
        let mut d = Dilation::new(ms(25), 0.1, 1.0);
        drive(&mut d, 20, ms(50));
        let told = d.announce().expect("the factor fell by more than 0.05");
        assert!((told - 0.5).abs() < 0.05);
        assert_eq!(d.announce(), None, "told once");
        drive(&mut d, 2000, ms(1));
        assert_eq!(d.factor(), 1.0);
        assert_eq!(d.announce(), Some(1.0));
        assert_eq!(d.announce(), None);
    }

    #[test]
    fn overruns_are_judged_against_the_dilated_period() {
        let d = Dilation::new(ms(25), 0.1, 1.0);
        assert_eq!(d.overrun_threshold(PERIOD), ms(75));
        let d = Dilation::new(ms(25), 0.1, 0.9);
        assert_eq!(
            d.overrun_threshold(PERIOD),
            ms(125),
            "gaps of 2 periods are normal at 0.9"
        );
        let d = Dilation::new(ms(25), 0.1, 0.1);
        assert_eq!(d.overrun_threshold(PERIOD), ms(525));
    }

    #[test]
    fn a_floor_of_one_disables_dilation() {
        let mut d = Dilation::new(ms(25), 1.0, 1.0);
        assert_eq!(drive(&mut d, 100, ms(1000)), 100);
        assert_eq!(d.factor(), 1.0);
    }
}
