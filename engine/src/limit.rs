//! Rate limits: one token bucket per direction, shared by every connection
//! of a session.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket of `rate` bytes per second. A taker may go into debt;
/// it then waits until the debt is paid, so takers queue up fairly and the
/// average rate holds exactly, whatever the block sizes.
#[derive(Debug)]
pub(crate) struct Limiter {
    rate: f64,
    /// Most tokens saved up while idle: a tenth of a second's worth, at
    /// least one block, so a burst after a pause stays small.
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Limiter {
    pub(crate) fn new(rate: u64) -> Limiter {
        let rate = rate.max(1) as f64;
        let burst = (rate / 10.0).max(f64::from(metainfo::BLOCK_SIZE));
        Limiter {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes `bytes` tokens, waiting as long as that is over the rate.
    pub(crate) async fn take(&self, bytes: u64) {
        let wait = self.reserve(bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes `bytes` tokens now and says how long to wait before using
    /// them (zero if within the rate), for a caller that has other work
    /// meanwhile.
    pub(crate) fn reserve(&self, bytes: u64) -> Duration {
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let (tokens, last) = *state;
            let refilled =
                (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
            let left = refilled - bytes as f64;
            *state = (left, now);
            if left >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-left / self.rate)
            }
        }
    }

    /// Gives back tokens taken for bytes that will not be sent after all
    /// (a cancelled or choked upload), so the next takers wait less.
    pub(crate) fn refund(&self, bytes: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = (state.0 + bytes as f64).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn takers_wait_for_their_share_of_the_rate() {
        let limiter = Limiter::new(100_000);
        let start = Instant::now();
        // The burst (a block's worth) goes at once; the rest at the rate.
        for _ in 0..10 {
            limiter.take(16_384).await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let expected = (10.0 * 16_384.0 - 16_384.0) / 100_000.0;
        assert!((elapsed - expected).abs() < 0.01, "{elapsed} vs {expected}");
    }

    #[tokio::test(start_paused = true)]
    async fn refunded_tokens_shorten_the_next_wait_but_never_pass_the_burst() {
        let limiter = Limiter::new(100_000);
        // The burst is one block: the first goes at once, the second
        // leaves a debt.
        assert!(limiter.reserve(16_384).is_zero());
        let debt = limiter.reserve(16_384);
        assert!((debt.as_secs_f64() - 0.16384).abs() < 1e-6, "{debt:?}");
        // Both blocks are given back: the debt is paid off, and no more
        // than the burst is saved.
        limiter.refund(2 * 16_384);
        assert!(limiter.reserve(16_384).is_zero());
        let wait = limiter.reserve(1_000);
        assert!((wait.as_secs_f64() - 0.01).abs() < 1e-6, "{wait:?}");
    }
}
