//! Transfer rates over a sliding window.

use std::collections::VecDeque;
use std::time::Duration;

/// Bytes per second over the last few ticks.
#[derive(Clone, Debug, Default)]
pub struct Rate {
    /// Bytes counted since the last tick.
    current: u64,
    /// Bytes of each of the last ticks, newest last.
    window: VecDeque<u64>,
    /// All bytes ever counted.
    total: u64,
    /// Ticks closed since the first byte was counted, up to `WINDOW`.
    active: usize,
}

/// Ticks kept: with one tick a second, a five-second average.
const WINDOW: usize = 5;

impl Rate {
    /// Counts `bytes` transferred now.
    pub fn add(&mut self, bytes: u64) {
        self.current += bytes;
        self.total += bytes;
    }

    /// Closes the current tick (call once a second).
    pub fn tick(&mut self) {
        if self.window.len() == WINDOW {
            self.window.pop_front();
        }
        self.window.push_back(std::mem::take(&mut self.current));
        if self.total > 0 {
            self.active = (self.active + 1).min(WINDOW);
        }
    }

    /// Bytes per second, averaged over the window (each tick one second).
    pub fn per_second(&self) -> f64 {
        if self.window.is_empty() {
            return 0.0;
        }
        self.window.iter().sum::<u64>() as f64 / self.window.len() as f64
    }

    /// Ticks closed since the first byte was counted, up to the window's
    /// length: how many seconds of transfer [`Rate::per_second`] has to go
    /// on.
    pub fn ticks(&self) -> usize {
        self.active
    }

    /// All bytes counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The time `bytes` more would take at this rate.
    pub fn eta(&self, bytes: u64) -> Option<Duration> {
        let rate = self.per_second();
        (rate >= 1.0).then(|| Duration::from_secs_f64(bytes as f64 / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_over_the_window_and_forgets_old_ticks() {
        let mut rate = Rate::default();
        assert_eq!(rate.per_second(), 0.0);
        assert_eq!(rate.ticks(), 0);
        rate.add(1000);
        rate.tick();
        assert_eq!(rate.per_second(), 1000.0);
        rate.add(3000);
        rate.tick();
        assert_eq!(rate.per_second(), 2000.0);
        for _ in 0..WINDOW {
            rate.tick();
        }
        assert_eq!(rate.per_second(), 0.0);
        assert_eq!(rate.ticks(), WINDOW);
        assert_eq!(rate.total(), 4000);
        assert_eq!(rate.eta(10), None);
    }

    #[test]
    fn ticks_count_from_the_first_byte() {
        let mut rate = Rate::default();
        for _ in 0..3 {
            rate.tick();
        }
        assert_eq!(rate.ticks(), 0);
        rate.add(1);
        rate.tick();
        assert_eq!(rate.ticks(), 1);
    }
}
