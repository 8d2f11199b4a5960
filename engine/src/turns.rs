//! The lazily regenerating turn pool: integer math, no timers, time passed in.

use serde::{Deserialize, Serialize};

use crate::game::Millis;

const MINUTE_MS: u128 = 60_000;

/// How many turns a pool holds at most and how fast it refills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnConfig {
    /// The cap: a full pool holds this many turns.
    pub max: u32,
    /// Whole turns regained per minute (0 = no regeneration).
    pub regen_per_minute: u32,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            max: 100,
            regen_per_minute: 60,
        }
    }
}

/// A spend that the pool cannot cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not enough turns: {needed} needed, {available} available")]
pub struct NotEnoughTurns {
    pub needed: u32,
    pub available: u32,
}

/// Turns stored at `updated_at`; the turns regained since then are computed on demand.
///
/// **Invariant:** regeneration keeps the fractional progress towards the next turn across spends (never
/// granting a turn early), and a clock that goes backwards neither panics nor grants or removes turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnPool {
    pub turns: u32,
    pub updated_at: Millis,
}

impl TurnPool {
    /// A full pool at `now`.
    pub fn full(now: Millis, cfg: &TurnConfig) -> TurnPool {
        TurnPool {
            turns: cfg.max,
            updated_at: now,
        }
    }

    /// Turns available at `now`: stored turns plus whole turns regained since `updated_at`, capped at `cfg.max`.
    pub fn available(&self, now: Millis, cfg: &TurnConfig) -> u32 {
        let (gained, _) = self.regained(now, cfg);
        let total = u128::from(self.turns).saturating_add(gained);
        u32::try_from(total.min(u128::from(cfg.max))).unwrap_or(cfg.max)
    }

    /// Spends `n` turns at `now`, or changes nothing and says how many were available.
    pub fn spend(&mut self, n: u32, now: Millis, cfg: &TurnConfig) -> Result<(), NotEnoughTurns> {
        let available = self.available(now, cfg);
        if n > available {
            return Err(NotEnoughTurns { needed: n, available });
        }
        self.settle(now, cfg);
        self.turns -= n;
        Ok(())
    }

    /// Folds the turns regained up to `now` into `turns`, moving `updated_at` forward by exactly the time those
    /// whole turns took (so partial progress is kept), or to `now` when the pool is full.
    pub fn settle(&mut self, now: Millis, cfg: &TurnConfig) {
        let (gained, used_ms) = self.regained(now, cfg);
        let total = u128::from(self.turns).saturating_add(gained);
        if total >= u128::from(cfg.max) {
            // Full (or over a lowered cap): regeneration restarts from now.
            self.turns = cfg.max;
            self.updated_at = self.updated_at.max(now);
        } else {
            // total < cfg.max so it fits in u32.
            self.turns = u32::try_from(total).unwrap_or(cfg.max);
            let used = i64::try_from(used_ms).unwrap_or(i64::MAX);
            self.updated_at = self.updated_at.saturating_add(used);
        }
    }

    /// Whole turns regained since `updated_at` and the milliseconds those turns took (rounded up, never more than
    /// the elapsed time).
    fn regained(&self, now: Millis, cfg: &TurnConfig) -> (u128, u128) {
        let rate = u128::from(cfg.regen_per_minute);
        if rate == 0 || now <= self.updated_at {
            return (0, 0);
        }
        let elapsed = u128::from(now.abs_diff(self.updated_at));
        let gained = elapsed * rate / MINUTE_MS;
        let used = (gained * MINUTE_MS).div_ceil(rate).min(elapsed);
        (gained, used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: TurnConfig = TurnConfig {
        max: 100,
        regen_per_minute: 60,
    };

    fn pool(turns: u32, at: Millis) -> TurnPool {
        TurnPool { turns, updated_at: at }
    }

    #[test]
    fn regenerates_one_turn_per_second_at_sixty_per_minute() {
        let p = pool(10, 1_000);
        assert_eq!(p.available(1_000, &CFG), 10);
        assert_eq!(p.available(1_999, &CFG), 10);
        assert_eq!(p.available(2_000, &CFG), 11);
        assert_eq!(p.available(31_000, &CFG), 40);
    }

    #[test]
    fn available_is_capped_at_max() {
        let p = pool(95, 0);
        assert_eq!(p.available(10_000, &CFG), 100);
        assert_eq!(p.available(i64::MAX, &CFG), 100);
        assert_eq!(
            pool(500, 0).available(0, &CFG),
            100,
            "a lowered cap applies to stored turns too"
        );
    }

    #[test]
    fn spend_takes_regenerated_turns_into_account() {
        let mut p = pool(0, 0);
        assert_eq!(
            p.spend(5, 4_999, &CFG),
            Err(NotEnoughTurns {
                needed: 5,
                available: 4
            })
        );
        assert_eq!(p, pool(0, 0), "a refused spend changes nothing");
        p.spend(5, 5_000, &CFG).unwrap();
        assert_eq!(p.available(5_000, &CFG), 0);
        assert_eq!(p.available(6_000, &CFG), 1);
    }

    #[test]
    fn spend_keeps_partial_progress_towards_next_turn() {
        let mut p = pool(0, 0);
        // 2.5 s in: 2 turns regained, half a turn of progress.
        p.spend(2, 2_500, &CFG).unwrap();
        assert_eq!(p.turns, 0);
        assert_eq!(p.updated_at, 2_000);
        assert_eq!(p.available(2_999, &CFG), 0);
        assert_eq!(p.available(3_000, &CFG), 1);
    }

    #[test]
    fn non_integral_turn_period_never_grants_early() {
        let cfg = TurnConfig {
            max: 1_000,
            regen_per_minute: 7,
        }; // one turn every 8571.43 ms
        let mut p = pool(0, 0);
        assert_eq!(p.available(8_571, &cfg), 0);
        assert_eq!(p.available(8_572, &cfg), 1);
        p.spend(1, 8_572, &cfg).unwrap();
        // Whole milliseconds: a settle may delay the next turn by under 1 ms, never advance it.
        assert_eq!(p.available(17_143, &cfg), 0);
        assert_eq!(p.available(17_144, &cfg), 1);
        // Many spends in a row still follow the exact schedule: after 70 minutes, 490 turns regained.
        let mut q = pool(0, 0);
        let mut spent = 0;
        for minute in 1..=70 {
            let now = minute * 60_000;
            let got = q.available(now, &cfg);
            q.spend(got, now, &cfg).unwrap();
            spent += got;
        }
        assert_eq!(spent, 490);
    }

    #[test]
    fn spending_from_a_full_pool_restarts_regeneration_from_now() {
        let mut p = pool(100, 0);
        p.spend(1, 600_000, &CFG).unwrap();
        assert_eq!(p, pool(99, 600_000));
        assert_eq!(p.available(600_999, &CFG), 99);
        assert_eq!(p.available(601_000, &CFG), 100);
    }

    #[test]
    fn time_going_backwards_neither_panics_nor_changes_turns() {
        let mut p = pool(10, 50_000);
        assert_eq!(p.available(0, &CFG), 10);
        assert_eq!(p.available(i64::MIN, &CFG), 10);
        p.spend(3, i64::MIN, &CFG).unwrap();
        assert_eq!(p, pool(7, 50_000), "updated_at never moves backwards");
        let mut far = pool(0, i64::MIN);
        assert_eq!(far.available(i64::MAX, &CFG), 100);
        far.spend(100, i64::MAX, &CFG).unwrap();
        assert_eq!(far.available(i64::MAX, &CFG), 0);
    }

    #[test]
    fn zero_regeneration_and_zero_spend() {
        let cfg = TurnConfig {
            max: 10,
            regen_per_minute: 0,
        };
        let mut p = pool(3, 0);
        assert_eq!(p.available(1_000_000, &cfg), 3);
        p.spend(0, 5, &cfg).unwrap();
        assert_eq!(
            p.spend(4, 5, &cfg),
            Err(NotEnoughTurns {
                needed: 4,
                available: 3
            })
        );
        assert_eq!(TurnPool::full(7, &cfg), pool(10, 7));
    }
}
