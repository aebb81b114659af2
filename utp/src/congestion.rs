//! How much a connection may have in flight: LEDBAT, which aims at a fixed
//! queueing delay rather than at filling every buffer on the path, and the
//! round-trip estimate that sets the retransmission timeout.

use std::time::{Duration, Instant};

/// The queueing delay LEDBAT aims at (BEP 29's `CCONTROL_TARGET`).
pub const TARGET: Duration = Duration::from_millis(100);

/// The most the window grows in a round trip, when no queue is seen
/// (BEP 29's `MAX_CWND_INCREASE_BYTES_PER_RTT`).
pub const MAX_GAIN_PER_RTT: f64 = 3000.0;

/// The base delay is the smallest sample of the last [`BASE_HISTORY`]
/// minutes, one bucket a minute (as RFC 6817's LEDBAT keeps it): long
/// enough that a queue LEDBAT itself keeps standing does not become the
/// base, short enough that a longer route does within ten minutes.
const BASE_DELAY_BUCKET: Duration = Duration::from_secs(60);
const BASE_HISTORY: usize = 10;

/// LEDBAT congestion control (BEP 29): the window grows while the one-way
/// delay is below the base delay plus [`TARGET`] and shrinks above it, in
/// proportion to how far off it is; a loss halves it, a timeout takes it
/// down to one packet.
///
/// A connection starts in slow start, as libtorrent's does and RFC 6817
/// allows: the window grows by what is acknowledged (doubling each round
/// trip) until the queue reaches half the target (the window then halves,
/// back to before the round trip that built it), a packet is lost or the
/// timer fires. At 3,000 bytes a round trip alone, filling a 20 Mbit/s
/// path 100 ms away would take forty seconds.
#[derive(Clone, Debug)]
pub struct Ledbat {
    window: f64,
    min_window: f64,
    max_window: f64,
    /// The smallest delay sample of this minute and of the ones before, in
    /// microseconds (newest first), and when this minute began.
    base: [Option<u32>; BASE_HISTORY],
    bucket_started: Instant,
    /// The last delay sample above the base, for reporting.
    queueing: Duration,
    /// Whether the window still grows by what is acknowledged.
    slow_start: bool,
}

impl Ledbat {
    /// A controller starting with a window of `initial` bytes, never below
    /// `min_window` (one packet) nor above `max_window` (what the receiver
    /// and the send buffer allow).
    pub fn new(now: Instant, initial: u32, min_window: u32, max_window: u32) -> Ledbat {
        let min_window = f64::from(min_window.max(1));
        let max_window = f64::from(max_window).max(min_window);
        Ledbat {
            window: f64::from(initial).clamp(min_window, max_window),
            min_window,
            max_window,
            base: [None; BASE_HISTORY],
            bucket_started: now,
            queueing: Duration::ZERO,
            slow_start: true,
        }
    }

    /// Whether the window still grows by what is acknowledged (until the
    /// first queue, loss or timeout).
    pub fn in_slow_start(&self) -> bool {
        self.slow_start
    }

    /// The bytes that may be in flight now.
    pub fn window(&self) -> u32 {
        // Between one packet and `max_window`, both u32.
        self.window as u32
    }

    /// The queueing delay the last sample showed (the sample less the
    /// base delay).
    pub fn queueing_delay(&self) -> Duration {
        self.queueing
    }

    /// An acknowledgement of `acked` bytes arrived, with the one-way delay
    /// the peer measured for our packets (`timestamp_difference`, in
    /// microseconds; its clock is not ours, so only differences between
    /// samples count), if it gave one: without, the queue is taken to be
    /// as the last sample showed.
    pub fn on_ack(&mut self, now: Instant, delay_us: Option<u32>, acked: u32) {
        let queueing_us = match delay_us {
            Some(delay_us) => self.sample(now, delay_us),
            None => self.queueing.as_micros() as f64,
        };
        self.grow(queueing_us, acked);
    }

    /// Takes a delay sample into the base history; the queueing delay it
    /// shows, in microseconds.
    fn sample(&mut self, now: Instant, delay_us: u32) -> f64 {
        if now.duration_since(self.bucket_started) >= BASE_DELAY_BUCKET {
            self.base.rotate_right(1);
            self.base[0] = None;
            self.bucket_started = now;
        }
        let current = &mut self.base[0];
        if current.is_none_or(|min| earlier(delay_us, min)) {
            *current = Some(delay_us);
        }
        let base = self
            .base
            .iter()
            .flatten()
            .copied()
            .reduce(|a, b| if earlier(a, b) { a } else { b })
            .unwrap_or(delay_us);
        // Clocks are not synchronised and the samples wrap: the distance
        // above the base, as a signed 32-bit difference.
        let above = delay_us.wrapping_sub(base) as i32;
        let queueing_us = f64::from(above.max(0));
        self.queueing = Duration::from_micros(queueing_us as u64);
        queueing_us
    }

    /// The window after `acked` bytes acknowledged with `queueing_us` of
    /// queue.
    fn grow(&mut self, queueing_us: f64, acked: u32) {
        let target_us = TARGET.as_micros() as f64;
        if self.slow_start {
            if queueing_us < target_us / 2.0 {
                self.window = (self.window + f64::from(acked)).min(self.max_window);
                return;
            }
            // The last round trip doubled the window into the queue seen:
            // back to what it was, and LEDBAT from there.
            self.slow_start = false;
            self.window = (self.window / 2.0).max(self.min_window);
            return;
        }
        let off_target = (target_us - queueing_us) / target_us;
        let gain = MAX_GAIN_PER_RTT * off_target * f64::from(acked) / self.window;
        self.window = (self.window + gain).clamp(self.min_window, self.max_window);
    }

    /// A packet was lost (three duplicate acks, or a selective ACK past
    /// it): the window halves.
    pub fn on_loss(&mut self) {
        self.slow_start = false;
        self.window = (self.window / 2.0).max(self.min_window);
    }

    /// The retransmission timer fired: nothing got through for a whole
    /// timeout, and the window starts again from one packet.
    pub fn on_timeout(&mut self) {
        self.slow_start = false;
        self.window = self.min_window;
    }

    /// The receiver's window or our send buffer changed what may be in
    /// flight at most.
    pub fn set_max_window(&mut self, max_window: u32) {
        self.max_window = f64::from(max_window).max(self.min_window);
        self.window = self.window.min(self.max_window);
    }
}

/// Whether sample `a` is before (smaller than) `b`, with wrap-around.
fn earlier(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// The round-trip estimate and the retransmission timeout it gives (BEP
/// 29: a smoothed round trip and its mean deviation, the timeout four
/// deviations past the mean and never under half a second).
#[derive(Clone, Copy, Debug)]
pub struct Rtt {
    smoothed: Option<Duration>,
    variance: Duration,
    /// Timeouts in a row since the last sample: each doubles the timeout.
    backoff: u32,
}

/// The timeout before any sample.
const INITIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// The shortest timeout.
const MIN_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest timeout, however many in a row.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for Rtt {
    fn default() -> Rtt {
        Rtt {
            smoothed: None,
            variance: Duration::ZERO,
            backoff: 0,
        }
    }
}

impl Rtt {
    /// A round trip measured on a packet sent once (a retransmitted one
    /// says nothing: which copy was answered?).
    pub fn on_sample(&mut self, sample: Duration) {
        self.backoff = 0;
        match self.smoothed {
            None => {
                self.smoothed = Some(sample);
                self.variance = sample / 2;
            }
            Some(rtt) => {
                let delta = rtt.abs_diff(sample);
                self.variance = (self.variance * 3 + delta) / 4;
                self.smoothed = Some((rtt * 7 + sample) / 8);
            }
        }
    }

    /// The retransmission timer fired: the next timeout is twice as long.
    pub fn on_timeout(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// The smoothed round trip, once there is a sample.
    pub fn smoothed(&self) -> Option<Duration> {
        self.smoothed
    }

    /// How long to wait for an acknowledgement before sending again.
    pub fn timeout(&self) -> Duration {
        let base = match self.smoothed {
            None => INITIAL_TIMEOUT,
            Some(rtt) => (rtt + self.variance * 4).max(MIN_TIMEOUT),
        };
        base.saturating_mul(1 << self.backoff.min(8))
            .min(MAX_TIMEOUT)
    }
}

#[cfg(test)]
mod tests;
