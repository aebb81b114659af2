//! Who gives way when a torrent's peer table is full and a new peer wants
//! in.
//!
//! A full table must not be a closed door: fifty connections that say
//! nothing would otherwise keep every honest peer out for as long as they
//! stay. Yet a peer that trades slowly, or waits its turn for an upload
//! slot, must not be thrown out while nobody else wants its place. So
//! nothing is closed for being idle alone; idleness decides only who goes
//! when someone waits:
//!
//! - A peer's *idle time* runs from the later of when it connected and the
//!   last block that passed either way. Keep-alives, haves and interest
//!   do not count: a block is the only proof of use.
//! - A *mute* peer has said nothing since its handshake but keep-alives:
//!   every client in use sends its pieces (or have-none) or its extension
//!   handshake at once. It gives way once idle for [`Grace::mute`].
//! - A peer with *nothing to trade* (neither side interested) gives way
//!   once idle for [`Grace::idle`].
//! - Both give way to a peer that dialled us, or to an address waiting to
//!   be dialled.
//! - A dial of ours not answered after [`Grace::mute`] gives way to a peer
//!   that dialled us: one is a guess, the other is there.
//! - Any other peer (it wants our pieces or has some we want, but no block
//!   passed) gives way once idle for [`Grace::stalled`], and only to a peer
//!   that dialled us: that one has shown it is alive and wants this torrent,
//!   which an address from a tracker has not. While we seed, never: a
//!   leecher that waits for its turn at an upload slot is what a seed is
//!   for, and a newcomer would only wait behind it (a leecher that is
//!   served and asks for nothing is the torrent's to drop, as libtorrent
//!   does after a minute).
//! - Of those who may go, the one idle longest goes first; every mute peer
//!   before any unanswered dial, those before any peer with nothing to
//!   trade, and those before any other.
//!
//! When nobody may go, the newcomer is refused. libtorrent refuses a peer at
//! a full torrent, or ranks by a hash of both addresses, and disconnects
//! peers with no mutual interest after ten minutes near the limit;
//! Transmission refuses at the limit and prunes peers without piece data
//! for 60 to 300 seconds as the table fills, whether or not anyone waits.
//! Here a slot frees the moment a newcomer needs it, and never before.
//!
//! Sans-IO: the torrent task describes its peers as [`Standing`]s with an
//! explicit `now` and drops the peer [`give_way`] names.

use std::time::{Duration, Instant};

use crate::picker::PeerKey;

/// How long peers may be idle before they give way to a newcomer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grace {
    /// For a peer that has said nothing since its handshake.
    pub mute: Duration,
    /// For a peer with nothing to trade (neither side interested).
    pub idle: Duration,
    /// For a peer that wants our pieces or has some we want, but with which
    /// no block passed.
    pub stalled: Duration,
}

impl Default for Grace {
    /// 2 s for a mute peer: an honest one speaks within a round trip of
    /// its handshake. 10 s with nothing to trade: an honest peer says
    /// whether it wants ours within a second or two. 60 s for a stalled
    /// one, the strictest of Transmission's idle limits: long enough for a
    /// choking round or two.
    fn default() -> Self {
        Grace {
            mute: Duration::from_secs(2),
            idle: Duration::from_secs(10),
            stalled: Duration::from_secs(60),
        }
    }
}

/// What the turnover needs to know of a connected peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    /// The connection.
    pub key: PeerKey,
    /// The later of when it connected and when a block last passed either
    /// way.
    pub active_at: Instant,
    /// What it is to us.
    pub kind: Kind,
}

/// What a peer is to us, from least to most worth keeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// It has said nothing since its handshake but keep-alives.
    Mute,
    /// We dialled it, and the handshake is not done (its `active_at` is
    /// when we began).
    Dialling,
    /// Neither side is interested in the other.
    Idle,
    /// One side is interested in the other.
    Trading,
}

/// Who wants a place in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Newcomer {
    /// A peer that dialled us and sent a good handshake.
    Incoming,
    /// An address we would dial, from a tracker or the user.
    Candidate,
}

/// The peer to drop so that `newcomer` can have its place, if any may go;
/// `seeding` says whether we have every piece we want.
pub fn give_way(
    now: Instant,
    peers: impl IntoIterator<Item = Standing>,
    grace: Grace,
    newcomer: Newcomer,
    seeding: bool,
) -> Option<PeerKey> {
    peers
        .into_iter()
        .filter_map(|p| {
            let idle = now.saturating_duration_since(p.active_at);
            let may_go = match p.kind {
                Kind::Mute => idle >= grace.mute,
                Kind::Dialling => newcomer == Newcomer::Incoming && idle >= grace.mute,
                Kind::Idle => idle >= grace.idle,
                Kind::Trading => {
                    newcomer == Newcomer::Incoming && !seeding && idle >= grace.stalled
                }
            };
            // The least worth keeping first, then the longest idle, then the
            // older connection.
            may_go.then_some((p.kind, std::cmp::Reverse(idle), p.key))
        })
        .min()
        .map(|(_, _, key)| key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Grace = Grace {
        mute: Duration::from_secs(2),
        idle: Duration::from_secs(20),
        stalled: Duration::from_secs(60),
    };

    fn peer(key: PeerKey, t0: Instant, active_at_s: u64, kind: Kind) -> Standing {
        Standing {
            key,
            active_at: t0 + Duration::from_secs(active_at_s),
            kind,
        }
    }

    #[test]
    fn nobody_goes_before_their_grace_is_over() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mute = [peer(1, t0, 0, Kind::Mute)];
        assert_eq!(
            give_way(at(1), mute, GRACE, Newcomer::Incoming, false),
            None
        );
        assert_eq!(
            give_way(at(2), mute, GRACE, Newcomer::Candidate, false),
            Some(1)
        );
        let peers = [peer(1, t0, 0, Kind::Idle), peer(2, t0, 0, Kind::Trading)];
        assert_eq!(
            give_way(at(19), peers, GRACE, Newcomer::Incoming, false),
            None
        );
        assert_eq!(
            give_way(at(20), peers, GRACE, Newcomer::Incoming, false),
            Some(1)
        );
        assert_eq!(
            give_way(at(20), peers, GRACE, Newcomer::Candidate, false),
            Some(1)
        );
        // The stalled trader only after its longer grace, and only for a
        // peer that dialled us.
        let traders = [peer(2, t0, 0, Kind::Trading)];
        assert_eq!(
            give_way(at(59), traders, GRACE, Newcomer::Incoming, false),
            None
        );
        assert_eq!(
            give_way(at(60), traders, GRACE, Newcomer::Incoming, false),
            Some(2)
        );
        assert_eq!(
            give_way(at(600), traders, GRACE, Newcomer::Candidate, false),
            None
        );
        // While seeding, a leecher waiting for its turn never goes; the
        // others still do.
        assert_eq!(
            give_way(at(600), traders, GRACE, Newcomer::Incoming, true),
            None
        );
        assert_eq!(
            give_way(at(600), peers, GRACE, Newcomer::Incoming, true),
            Some(1)
        );
    }

    #[test]
    fn an_unanswered_dial_gives_way_only_to_a_peer_that_dialled_us() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let dial = [peer(1, t0, 0, Kind::Dialling)];
        assert_eq!(
            give_way(at(1), dial, GRACE, Newcomer::Incoming, false),
            None
        );
        assert_eq!(
            give_way(at(2), dial, GRACE, Newcomer::Incoming, true),
            Some(1)
        );
        assert_eq!(
            give_way(at(9), dial, GRACE, Newcomer::Candidate, false),
            None
        );
        // After the mute, before those with nothing to trade.
        let peers = [
            peer(2, t0, 0, Kind::Idle),
            peer(1, t0, 0, Kind::Dialling),
            peer(3, t0, 5, Kind::Mute),
        ];
        assert_eq!(
            give_way(at(100), peers, GRACE, Newcomer::Incoming, false),
            Some(3)
        );
        assert_eq!(
            give_way(
                at(100),
                peers[..2].iter().copied(),
                GRACE,
                Newcomer::Incoming,
                false
            ),
            Some(1)
        );
    }

    #[test]
    fn the_least_worth_keeping_go_first_then_the_longest_idle() {
        let t0 = Instant::now();
        let now = t0 + Duration::from_secs(1000);
        // A trader idle for the longest still outranks an idle peer with
        // nothing to trade, and that one a mute peer.
        let peers = [
            peer(1, t0, 0, Kind::Trading),
            peer(2, t0, 900, Kind::Idle),
            peer(3, t0, 500, Kind::Idle),
            peer(4, t0, 990, Kind::Idle),
            peer(5, t0, 995, Kind::Mute),
        ];
        assert_eq!(
            give_way(now, peers, GRACE, Newcomer::Incoming, false),
            Some(5)
        );
        assert_eq!(
            give_way(
                now,
                peers[..4].iter().copied(),
                GRACE,
                Newcomer::Incoming,
                false
            ),
            Some(3)
        );
        let traders = [
            peer(5, t0, 700, Kind::Trading),
            peer(6, t0, 100, Kind::Trading),
            peer(7, t0, 990, Kind::Trading),
        ];
        assert_eq!(
            give_way(now, traders, GRACE, Newcomer::Incoming, false),
            Some(6)
        );
        // Equally idle: the older connection.
        let twins = [peer(9, t0, 0, Kind::Idle), peer(8, t0, 0, Kind::Idle)];
        assert_eq!(
            give_way(now, twins, GRACE, Newcomer::Candidate, false),
            Some(8)
        );
    }

    #[test]
    fn a_block_either_way_restarts_the_clock() {
        let t0 = Instant::now();
        let now = t0 + Duration::from_secs(100);
        // Connected long ago, but a block passed a second ago.
        let busy = [peer(1, t0, 99, Kind::Trading), peer(2, t0, 99, Kind::Idle)];
        assert_eq!(give_way(now, busy, GRACE, Newcomer::Incoming, false), None);
        assert_eq!(give_way(now, [], GRACE, Newcomer::Incoming, false), None);
    }

    #[test]
    fn a_clock_that_seems_to_run_backwards_makes_nobody_go() {
        let t0 = Instant::now();
        let future = [peer(1, t0, 50, Kind::Mute)];
        assert_eq!(give_way(t0, future, GRACE, Newcomer::Incoming, false), None);
    }
}
