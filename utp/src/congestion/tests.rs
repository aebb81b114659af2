//! LEDBAT against a simulated bottleneck, and the round-trip estimate.

use std::time::{Duration, Instant};

use super::*;

const PACKET: u32 = 1400;

/// A bottleneck of `rate` bytes a second with `base` one-way delay each
/// way, and a peer whose clock is `offset` µs off ours: round after round
/// the whole window is sent, the part past the bandwidth-delay product
/// waits in the bottleneck's queue, and every packet's ack carries the
/// delay the peer saw. Returns the queueing delay of each round.
fn simulate(
    ledbat: &mut Ledbat,
    start: Instant,
    rounds: usize,
    rate: f64,
    base: Duration,
    offset: u32,
) -> (Vec<Duration>, Instant) {
    let mut now = start;
    let mut delays = Vec::new();
    for _ in 0..rounds {
        let window = f64::from(ledbat.window());
        let bdp = rate * (base * 2).as_secs_f64();
        let queue = Duration::from_secs_f64((window - bdp).max(0.0) / rate);
        let one_way = base + queue;
        let sample = offset.wrapping_add(one_way.as_micros() as u32);
        let packets = (window as u32).div_ceil(PACKET);
        for _ in 0..packets {
            ledbat.on_ack(now, Some(sample), PACKET);
        }
        delays.push(queue);
        now += base * 2 + queue;
    }
    (delays, now)
}

fn mean(delays: &[Duration]) -> Duration {
    delays.iter().sum::<Duration>() / delays.len() as u32
}

#[test]
fn the_queueing_delay_settles_near_the_target() {
    for offset in [0, 123_456_789, u32::MAX - 5_000] {
        let start = Instant::now();
        let mut ledbat = Ledbat::new(start, 2 * PACKET, PACKET, 4 << 20);
        // 10 Mbit/s, 20 ms each way.
        let (delays, _) = simulate(
            &mut ledbat,
            start,
            1500,
            1_250_000.0,
            Duration::from_millis(20),
            offset,
        );
        let settled = mean(&delays[1300..]);
        assert!(
            settled > Duration::from_millis(85) && settled < Duration::from_millis(115),
            "offset {offset}: queueing delay {settled:?}"
        );
        // The window is the bandwidth-delay product plus the target's
        // worth of queue: about 175 KB.
        let window = ledbat.window();
        assert!((150_000..200_000).contains(&window), "window {window}");
    }
}

#[test]
fn past_slow_start_without_a_queue_the_window_grows_by_at_most_3000_bytes_a_round_trip() {
    let start = Instant::now();
    let mut ledbat = Ledbat::new(start, 20 * PACKET, PACKET, 4 << 20);
    ledbat.on_loss();
    let before = ledbat.window();
    // A fast path: no queue at this window.
    let (_, _) = simulate(&mut ledbat, start, 10, 1e9, Duration::from_millis(10), 0);
    let grown = ledbat.window() - before;
    assert!(
        grown > 25_000 && grown <= 30_000,
        "grew {grown} bytes in 10 round trips"
    );
}

#[test]
fn a_loss_halves_the_window_and_a_timeout_takes_it_to_one_packet() {
    let start = Instant::now();
    let mut ledbat = Ledbat::new(start, 100 * PACKET, PACKET, 4 << 20);
    ledbat.on_loss();
    assert_eq!(ledbat.window(), 50 * PACKET);
    ledbat.on_timeout();
    assert_eq!(ledbat.window(), PACKET);
    ledbat.on_loss();
    assert_eq!(ledbat.window(), PACKET, "never under one packet");
    ledbat.set_max_window(PACKET / 2);
    assert_eq!(
        ledbat.window(),
        PACKET,
        "nor under one packet by the receiver's window"
    );
}

#[test]
fn a_longer_path_becomes_the_new_base_within_ten_minutes() {
    let start = Instant::now();
    let mut ledbat = Ledbat::new(start, 2 * PACKET, PACKET, 4 << 20);
    let rate = 1_250_000.0;
    let (_, now) = simulate(&mut ledbat, start, 600, rate, Duration::from_millis(20), 0);
    let before = ledbat.window();
    // The route changes: 150 ms more each way. At first that reads as
    // queueing past the target, and the window shrinks (the real queue
    // with it).
    let longer = Duration::from_millis(170);
    let (delays, now) = simulate(&mut ledbat, now, 100, rate, longer, 0);
    assert!(
        ledbat.window() < before,
        "{} then {before}",
        ledbat.window()
    );
    assert!(mean(&delays[80..]) < Duration::from_millis(60));
    // Once the old minimums have aged out (ten minutes), the longer path is
    // the base, and the window grows until the queue is at the target.
    let changed = now;
    let mut now = now;
    while now.duration_since(changed) < Duration::from_secs(10 * 60 + 30) {
        now = simulate(&mut ledbat, now, 100, rate, longer, 0).1;
    }
    let (delays, _) = simulate(&mut ledbat, now, 300, rate, longer, 0);
    let settled = mean(&delays[200..]);
    assert!(
        settled > Duration::from_millis(85) && settled < Duration::from_millis(115),
        "queueing delay {settled:?}"
    );
}

#[test]
fn the_timeout_follows_the_round_trip_and_backs_off() {
    let mut rtt = Rtt::default();
    assert_eq!(rtt.timeout(), Duration::from_secs(1));
    rtt.on_sample(Duration::from_millis(100));
    // 100 ms ± 50: 300 ms, raised to the half-second floor.
    assert_eq!(rtt.timeout(), Duration::from_millis(500));
    for _ in 0..50 {
        rtt.on_sample(Duration::from_millis(800));
    }
    let smoothed = rtt.smoothed().unwrap();
    assert!(smoothed > Duration::from_millis(790) && smoothed <= Duration::from_millis(800));
    let settled = rtt.timeout();
    assert!(
        settled >= Duration::from_millis(800) && settled < Duration::from_millis(850),
        "{settled:?}"
    );
    rtt.on_timeout();
    rtt.on_timeout();
    assert_eq!(rtt.timeout(), settled * 4);
    for _ in 0..20 {
        rtt.on_timeout();
    }
    assert_eq!(rtt.timeout(), Duration::from_secs(60));
    rtt.on_sample(Duration::from_millis(800));
    assert!(
        rtt.timeout() < Duration::from_secs(1),
        "a sample ends the backoff"
    );
}

#[test]
fn slow_start_fills_a_distant_path_in_a_few_round_trips_then_keeps_the_target() {
    let start = Instant::now();
    let mut ledbat = Ledbat::new(start, 2 * PACKET, PACKET, 4 << 20);
    // 20 Mbit/s, 50 ms each way: a bandwidth-delay product of 250 KB.
    let rate = 2_500_000.0;
    let base = Duration::from_millis(50);
    let (delays, now) = simulate(&mut ledbat, start, 12, rate, base, 7);
    assert!(!ledbat.in_slow_start(), "still in slow start: {delays:?}");
    // Out once the queue passed half the target (the round trip that
    // overshot it is undone at once), with the path's worth in flight.
    let window = ledbat.window();
    assert!(window > 250_000, "window {window} after {:?}", now - start);
    let over = delays.iter().filter(|d| **d > TARGET).count();
    assert!(over <= 1, "{delays:?}");
    // Then LEDBAT keeps the queue near the target.
    let (delays, _) = simulate(&mut ledbat, now, 400, rate, base, 7);
    let settled = mean(&delays[300..]);
    assert!(
        settled > Duration::from_millis(85) && settled < Duration::from_millis(115),
        "queueing delay {settled:?}"
    );
}

#[test]
fn a_loss_or_a_timeout_ends_slow_start() {
    for end in [Ledbat::on_loss, Ledbat::on_timeout] {
        let start = Instant::now();
        let mut ledbat = Ledbat::new(start, 20 * PACKET, PACKET, 4 << 20);
        assert!(ledbat.in_slow_start());
        end(&mut ledbat);
        assert!(!ledbat.in_slow_start());
        let before = ledbat.window();
        let (_, _) = simulate(&mut ledbat, start, 1, 1e9, Duration::from_millis(10), 0);
        assert!(ledbat.window() - before <= 3000);
    }
}
