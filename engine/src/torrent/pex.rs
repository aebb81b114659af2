//! Peer exchange (BEP 11): telling peers whom we are connected to, and
//! taking the peers they name as candidates.
//!
//! Every [`crate::SessionConfig::pex_interval`] each peer that speaks
//! `ut_pex` gets the changes since its last message: the peers added (with
//! their flags) and dropped, at most 50 of each. A peer that dialled us is
//! named only by the address it listens on, once it said it (`p` in its
//! extension handshake). What peers tell us is bounded: one message per
//! half interval, 50 new addresses from each, and none that cannot be a
//! peer. Private torrents (BEP 27) do none of it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

use peerwire::Message;
use peerwire::extension::{PEX_PER_MESSAGE, UtPex};

use super::{Running, Torrent};
use crate::picker::PeerKey;
use crate::stats::PeerSource;

/// The id we ask peers to send `ut_pex` messages with.
pub(crate) const UT_PEX_ID: u8 = 2;

/// BEP 11's flags.
const FLAG_SEED: u8 = 0x02;
const FLAG_REACHABLE: u8 = 0x10;

impl Torrent {
    /// Whether this torrent exchanges peers.
    pub(super) fn pex_enabled(&self) -> bool {
        self.config.pex && !self.metainfo.info().is_private()
    }

    /// Sends each `ut_pex` peer what changed since its last message.
    pub(super) fn send_pex(&self, run: &mut Running) {
        if !self.pex_enabled() {
            return;
        }
        // Where each connected peer can be reached, and its flags.
        let reachable: Vec<(PeerKey, SocketAddr, u8)> = run
            .peers
            .iter()
            .filter(|(_, p)| p.ready() && p.web.is_none())
            .filter_map(|(key, p)| {
                let addr = if p.outgoing { Some(p.addr) } else { p.listen }?;
                let mut flags = 0;
                if p.has.is_full() {
                    flags |= FLAG_SEED;
                }
                if p.outgoing {
                    flags |= FLAG_REACHABLE;
                }
                Some((*key, addr, flags))
            })
            .collect();
        for (key, peer) in run.peers.iter_mut() {
            let Some(their_id) = peer.ut_pex else {
                continue;
            };
            let now: HashSet<SocketAddr> = reachable
                .iter()
                .filter(|(k, addr, _)| *k != *key && Some(*addr) != peer.listen)
                .map(|(_, addr, _)| *addr)
                .collect();
            let added: Vec<(SocketAddr, u8)> = reachable
                .iter()
                .filter(|(k, addr, _)| {
                    *k != *key && Some(*addr) != peer.listen && !peer.pex_sent.contains(addr)
                })
                .map(|(_, addr, flags)| (*addr, *flags))
                .take(PEX_PER_MESSAGE)
                .collect();
            let dropped: Vec<SocketAddr> = peer
                .pex_sent
                .iter()
                .filter(|addr| !now.contains(addr))
                .copied()
                .take(PEX_PER_MESSAGE)
                .collect();
            if added.is_empty() && dropped.is_empty() {
                continue;
            }
            for addr in &dropped {
                peer.pex_sent.remove(addr);
            }
            peer.pex_sent.extend(added.iter().map(|(addr, _)| *addr));
            let pex = UtPex { added, dropped };
            peer.send(Message::Extended {
                id: their_id,
                payload: pex.encode(),
            });
        }
    }

    /// A peer's `ut_pex` message: its new peers become candidates.
    pub(super) fn on_pex(&self, run: &mut Running, key: PeerKey, payload: &[u8]) {
        if !self.pex_enabled() {
            return;
        }
        let Some(peer) = run.peers.get_mut(&key) else {
            return;
        };
        let now = Instant::now();
        let gap = self.config.pex_interval / 2;
        if peer
            .pex_heard_at
            .is_some_and(|at| now.duration_since(at) < gap)
        {
            tracing::debug!(addr = %peer.addr, "ut_pex too soon after the last one: ignored");
            return;
        }
        peer.pex_heard_at = Some(now);
        let Ok(pex) = UtPex::decode(payload) else {
            tracing::debug!(addr = %peer.addr, "malformed ut_pex: ignored");
            return;
        };
        let from = peer.addr;
        let mut taken = 0;
        for (addr, _) in pex.added {
            if taken == PEX_PER_MESSAGE {
                break;
            }
            if !could_be_a_peer(addr) || addr == from {
                continue;
            }
            self.add_candidate(run, addr, PeerSource::Pex);
            taken += 1;
        }
        tracing::debug!(%from, taken, "ut_pex");
        self.connect_more(run);
    }
}

/// Whether an address from a stranger could be a peer: a port, and an
/// address one can dial.
fn could_be_a_peer(addr: SocketAddr) -> bool {
    let ip = addr.ip();
    addr.port() != 0
        && !ip.is_unspecified()
        && !ip.is_multicast()
        && match ip {
            std::net::IpAddr::V4(v4) => !v4.is_broadcast(),
            std::net::IpAddr::V6(_) => true,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dialable_addresses_are_taken() {
        for bad in [
            "0.0.0.0:1",
            "1.2.3.4:0",
            "224.0.0.1:1",
            "255.255.255.255:1",
            "[::]:1",
        ] {
            assert!(!could_be_a_peer(bad.parse().expect("addr")), "{bad}");
        }
        for good in ["127.0.0.2:6881", "[::1]:6881", "8.8.8.8:1"] {
            assert!(could_be_a_peer(good.parse().expect("addr")), "{good}");
        }
    }
}
