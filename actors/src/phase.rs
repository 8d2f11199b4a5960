//! Tick phases: when, within the tick period, each awake sector ticks.
//!
//! The sectors of a process share its runtime (one core in the benchmarks). A tick reads the sector's subscribers'
//! inputs and writes a delta to each of them, so ticks due at the same moment queue behind one another and the
//! last of a cluster runs late. With phases left to chance (taken from the id, or from the moment a sector woke
//! up), clusters form: the runtime then works in bursts of 20 ms and more and idles in between, and a sector at the
//! end of a burst misses its deadline (an interval over 1.5 periods is an overrun). So phases come from a wheel of
//! slots: an awake sector holds one; a sector that starts or wakes up takes the least occupied slot, scanning the
//! slots in bit-reversed order so that any number of sectors is spread evenly (two half a period apart, four a
//! quarter apart, and so on), and gives it back when it goes to sleep or stops.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Slots per tick period (at 20 Hz, one every 0.78 ms).
pub const SLOTS: usize = 64;

/// The phase slots of one process's awake sectors.
#[derive(Debug)]
pub struct PhaseWheel {
    occupied: Mutex<[u32; SLOTS]>,
    /// Phases are offsets from this instant, modulo the period.
    epoch: Instant,
}

/// A slot held by an awake sector; given back when dropped.
#[derive(Debug)]
pub struct PhaseSlot<'a> {
    wheel: &'a PhaseWheel,
    slot: usize,
}

impl Default for PhaseWheel {
    fn default() -> Self {
        Self {
            occupied: Mutex::new([0; SLOTS]),
            epoch: Instant::now(),
        }
    }
}

impl PhaseWheel {
    /// The wheel shared by every sector of this process (they share its runtime, whatever node they belong to).
    pub fn global() -> &'static PhaseWheel {
        static WHEEL: OnceLock<PhaseWheel> = OnceLock::new();
        WHEEL.get_or_init(PhaseWheel::default)
    }

    /// Takes the least occupied slot, the first of those in bit-reversed order.
    pub fn acquire(&self) -> PhaseSlot<'_> {
        let mut occupied = self.occupied.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (0..SLOTS).map(bit_reversed).min_by_key(|&s| occupied[s]).unwrap_or(0);
        occupied[slot] += 1;
        PhaseSlot { wheel: self, slot }
    }

    /// How many sectors hold each slot.
    #[cfg(test)]
    fn occupancy(&self) -> [u32; SLOTS] {
        *self.occupied.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release(&self, slot: usize) {
        let mut occupied = self.occupied.lock().unwrap_or_else(|e| e.into_inner());
        occupied[slot] = occupied[slot].saturating_sub(1);
    }
}

impl PhaseSlot<'_> {
    /// Which slot this is (0..SLOTS).
    pub fn index(&self) -> usize {
        self.slot
    }

    /// The time from `now` until this slot's phase next comes round (zero if it is now).
    pub fn delay_from(&self, now: Instant, period: Duration) -> Duration {
        let period_ns = period.as_nanos().max(1);
        let offset = period_ns * self.slot as u128 / SLOTS as u128;
        let position = now.saturating_duration_since(self.wheel.epoch).as_nanos() % period_ns;
        Duration::from_nanos(((offset + period_ns - position) % period_ns) as u64)
    }
}

impl Drop for PhaseSlot<'_> {
    fn drop(&mut self) {
        self.wheel.release(self.slot);
    }
}

/// `i` with its log2(SLOTS) low bits in reverse order: 0, 32, 16, 48, 8, 40, ... for SLOTS = 64.
fn bit_reversed(i: usize) -> usize {
    let bits = SLOTS.trailing_zeros();
    i.reverse_bits() >> (usize::BITS - bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_spread_evenly_and_are_reused_when_given_back() {
        let wheel = PhaseWheel::default();
        let first: Vec<PhaseSlot<'_>> = (0..4).map(|_| wheel.acquire()).collect();
        let idx: Vec<usize> = first.iter().map(PhaseSlot::index).collect();
        assert_eq!(idx, vec![0, 32, 16, 48], "four sectors a quarter of a period apart");
        // Every slot is taken once before any is taken twice.
        let rest: Vec<PhaseSlot<'_>> = (4..SLOTS).map(|_| wheel.acquire()).collect();
        assert!(wheel.occupancy().iter().all(|&n| n == 1));
        let extra = wheel.acquire();
        assert_eq!(extra.index(), 0);
        drop(rest);
        drop(extra);
        // A slot given back is the next one handed out.
        let mut first = first;
        let freed = first.remove(1).index();
        assert_eq!(wheel.acquire().index(), freed);
        drop(first);
        assert!(
            wheel.occupancy().iter().all(|&n| n == 0),
            "dropped slots are given back"
        );
    }

    #[test]
    fn delays_land_on_the_slot_phase() {
        let wheel = PhaseWheel::default();
        let period = Duration::from_millis(64);
        let slots: Vec<PhaseSlot<'_>> = (0..3).map(|_| wheel.acquire()).collect(); // slots 0, 32, 16
        for now_ms in [0u64, 5, 31, 32, 63, 64, 1_000] {
            let now = wheel.epoch + Duration::from_millis(now_ms);
            for slot in &slots {
                let delay = slot.delay_from(now, period);
                assert!(delay < period);
                // Slot k of 64 in a 64 ms period is k ms into the period.
                let at = (now_ms + delay.as_millis() as u64) % 64;
                assert_eq!(at, slot.index() as u64, "slot {} from {now_ms} ms", slot.index());
            }
        }
    }
}
