//! What to ask of a peer and what to take from it unasked: how many
//! requests to keep in flight (a slow start, then its rate), and how many
//! blocks it may send that no request is out for.

use metainfo::BLOCK_SIZE;

use crate::rate::Rate;

/// Requests kept in flight to a peer: its rate times this, in blocks.
const REQUEST_QUEUE_TIME: f64 = 3.0;
/// Fewest requests in flight to a peer that is not snubbed.
const MIN_QUEUE: usize = 16;
/// Most requests in flight to one peer, whatever its rate.
pub(super) const MAX_QUEUE: usize = 1024;
/// Unrequested blocks a peer may send before it is dropped.
const MAX_UNREQUESTED: u32 = 512;

/// The blocks a peer sent that we did not ask for. Blocks we asked for and
/// then took back (cancelled once another peer delivered them, or when the
/// peer was snubbed or a piece failed) may come anyway, sent before the peer
/// knew: that many are late, not unasked. A steady stream of unasked blocks
/// gets the peer dropped.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Unasked {
    /// Unasked blocks, halved every second.
    count: u32,
    /// Blocks taken back that may still come, at most [`MAX_QUEUE`],
    /// halved every second.
    taken_back: u32,
}

impl Unasked {
    /// Counts `blocks` requests taken back.
    pub(super) fn took_back(&mut self, blocks: usize) {
        let blocks = u32::try_from(blocks).unwrap_or(u32::MAX);
        self.taken_back = self.taken_back.saturating_add(blocks).min(MAX_QUEUE as u32);
    }

    /// Counts a block that came without a request out for it; true when
    /// that makes too many.
    pub(super) fn arrived(&mut self) -> bool {
        if self.taken_back > 0 {
            self.taken_back -= 1;
            return false;
        }
        self.count += 1;
        self.count > MAX_UNREQUESTED
    }

    /// A second has passed. Blocks taken back come within a round trip or
    /// two if at all (a peer with the fast extension rejects them instead),
    /// so their allowance fades too.
    pub(super) fn tick(&mut self) {
        self.count /= 2;
        self.taken_back /= 2;
    }
}

/// The requests to keep in flight to a peer that is not snubbed: its rate
/// times [`REQUEST_QUEUE_TIME`], in blocks, within its `reqq`. Until its rate
/// has a whole second of transfer behind it (counted from its first block,
/// however late it unchokes us), a slow start: one more for every block
/// received, so the pipeline doubles every round trip instead of staying at
/// [`MIN_QUEUE`] for the first second.
pub(super) fn pipeline_depth(down: &Rate, reqq: usize) -> usize {
    let mut depth = (down.per_second() * REQUEST_QUEUE_TIME / f64::from(BLOCK_SIZE)) as usize;
    if down.ticks() < 2 {
        let received = usize::try_from(down.total() / u64::from(BLOCK_SIZE));
        depth = depth.max(MIN_QUEUE.saturating_add(received.unwrap_or(MAX_QUEUE)));
    }
    depth.clamp(MIN_QUEUE, MAX_QUEUE).min(reqq.max(1))
}

/// Requests kept in flight to a web seed: a third of a peer's, about a
/// second of its rate (at least [`MIN_QUEUE`]); it has no `reqq`. A web
/// seed answers a run of blocks with one HTTP request, so a second is
/// ample for pipelining; and a web seed, often a swarm's only or slowest
/// seed, then holds fewer pieces that peers would have had sooner.
/// `cargo xtask testnet --scenario webseed` (an 8 MiB/s web seed, 4
/// leechers, 32 MiB) finished in 5.0–7.5 s (median 6.4 s, six runs)
/// against 6.8–11.4 s (median 7.8 s, five runs) with a peer's depth.
pub(super) fn web_seed_depth(down: &Rate) -> usize {
    (pipeline_depth(down, MAX_QUEUE) / 3).max(MIN_QUEUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: u64 = BLOCK_SIZE as u64;

    #[test]
    fn blocks_taken_back_may_come_late_but_a_stream_of_unasked_blocks_is_too_many() {
        let mut unasked = Unasked::default();
        assert!(!(0..MAX_UNREQUESTED).any(|_| unasked.arrived()));
        assert!(unasked.arrived());
        // Halved every second: a trickle is forgiven.
        let mut unasked = Unasked::default();
        for _ in 0..10 {
            assert!(!(0..MAX_UNREQUESTED / 2).any(|_| unasked.arrived()));
            unasked.tick();
        }
        // Cancelled requests answered late do not count...
        let mut unasked = Unasked::default();
        unasked.took_back(600);
        assert!(!(0..600 + MAX_UNREQUESTED).any(|_| unasked.arrived()));
        // ...only as many as were taken back.
        assert!(unasked.arrived());
        // And no more than a full pipeline's worth is ever excused.
        let mut unasked = Unasked::default();
        unasked.took_back(usize::MAX);
        unasked.took_back(5);
        assert_eq!(
            (0..MAX_QUEUE as u32 + MAX_UNREQUESTED + 1)
                .filter(|_| unasked.arrived())
                .count(),
            1
        );
        // The allowance fades: a second later, only half is left.
        let mut unasked = Unasked::default();
        unasked.took_back(600);
        unasked.tick();
        assert!(!(0..300 + MAX_UNREQUESTED).any(|_| unasked.arrived()));
        assert!(unasked.arrived());
    }

    #[test]
    fn the_pipeline_starts_slow_and_grows_with_each_block_until_the_rate_is_known() {
        let mut down = Rate::default();
        assert_eq!(pipeline_depth(&down, 500), MIN_QUEUE);
        down.add(100 * BLOCK);
        assert_eq!(pipeline_depth(&down, 500), MIN_QUEUE + 100);
        // Within the peer's reqq, and within MAX_QUEUE.
        assert_eq!(pipeline_depth(&down, 50), 50);
        down.add(10_000 * BLOCK);
        assert_eq!(pipeline_depth(&down, 5000), MAX_QUEUE);
        // A first, partial second does not end the slow start.
        down.tick();
        assert_eq!(pipeline_depth(&down, 500), 500);
        // After a whole second, the rate decides: 10 blocks a second for
        // REQUEST_QUEUE_TIME seconds, at least MIN_QUEUE.
        down.add(10 * BLOCK);
        down.tick();
        let by_rate = ((10_100.0 + 10.0) / 2.0 * REQUEST_QUEUE_TIME) as usize;
        assert_eq!(pipeline_depth(&down, 5000), by_rate.min(MAX_QUEUE));
        for _ in 0..5 {
            down.add(BLOCK);
            down.tick();
        }
        assert_eq!(pipeline_depth(&down, 500), MIN_QUEUE);
    }

    #[test]
    fn a_web_seed_gets_a_third_of_a_peers_pipeline_and_never_less_than_the_least() {
        let mut down = Rate::default();
        assert_eq!(web_seed_depth(&down), MIN_QUEUE);
        down.add(300 * BLOCK);
        assert_eq!(web_seed_depth(&down), (MIN_QUEUE + 300) / 3);
        down.add(10_000 * BLOCK);
        assert_eq!(web_seed_depth(&down), MAX_QUEUE / 3);
    }
}
