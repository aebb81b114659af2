//! One client for every kind of tracker URL, and BEP 12's tiers.

use metainfo::InfoHash;
use rand::seq::SliceRandom;

use crate::http_client::{HttpClient, HttpOptions, TrackerError};
use crate::request::AnnounceRequest;
use crate::response::{AnnounceResponse, ScrapeResponse};
use crate::udp_client::{UdpClient, UdpOptions};

/// Announces and scrapes over HTTP, HTTPS or UDP, as the URL says.
#[derive(Clone, Debug, Default)]
pub struct TrackerClient {
    http: HttpClient,
    udp: UdpClient,
}

impl TrackerClient {
    /// A client with these limits and timings.
    pub fn new(http: HttpOptions, udp: UdpOptions) -> Self {
        TrackerClient {
            http: HttpClient::new(http),
            udp: UdpClient::new(udp),
        }
    }

    /// Announces to `url`.
    pub async fn announce(
        &self,
        url: &str,
        request: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        if is_udp(url) {
            self.udp.announce(url, request).await
        } else {
            self.http.announce(url, request).await
        }
    }

    /// Scrapes the tracker announced to at `url`.
    pub async fn scrape(
        &self,
        url: &str,
        info_hashes: &[InfoHash],
    ) -> Result<ScrapeResponse, TrackerError> {
        if is_udp(url) {
            self.udp.scrape(url, info_hashes).await
        } else {
            self.http.scrape(url, info_hashes).await
        }
    }
}

fn is_udp(url: &str) -> bool {
    url.get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("udp://"))
}

/// A torrent's trackers in tiers, used as BEP 12 says: each tier shuffled
/// once, tiers tried in order and the trackers of a tier in order, and a
/// tracker that answers moved to the front of its tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerTiers {
    tiers: Vec<Vec<String>>,
}

impl TrackerTiers {
    /// The tiers, each shuffled once.
    pub fn new(mut tiers: Vec<Vec<String>>) -> Self {
        let mut rng = rand::rng();
        tiers.retain(|t| !t.is_empty());
        for tier in &mut tiers {
            tier.shuffle(&mut rng);
        }
        TrackerTiers { tiers }
    }

    /// The tiers in their current order.
    pub fn tiers(&self) -> &[Vec<String>] {
        &self.tiers
    }

    /// Every tracker, in the order to try them, with its tier and position.
    pub fn in_order(&self) -> Vec<(usize, usize, String)> {
        self.tiers
            .iter()
            .enumerate()
            .flat_map(|(t, tier)| {
                tier.iter()
                    .enumerate()
                    .map(move |(i, url)| (t, i, url.clone()))
            })
            .collect()
    }

    /// Records that the tracker at `tier`, `index` answered: it moves to
    /// the front of its tier.
    pub fn answered(&mut self, tier: usize, index: usize) {
        if let Some(tier) = self.tiers.get_mut(tier)
            && index < tier.len()
        {
            tier[..=index].rotate_right(1);
        }
    }

    /// Announces to the first tracker that answers, in BEP 12 order. Returns
    /// its URL and answer, or every tracker's error if none answered.
    pub async fn announce(
        &mut self,
        client: &TrackerClient,
        request: &AnnounceRequest,
    ) -> Result<(String, AnnounceResponse), Vec<(String, TrackerError)>> {
        let mut errors = Vec::new();
        for (tier, index, url) in self.in_order() {
            match client.announce(&url, request).await {
                Ok(answer) => {
                    self.answered(tier, index);
                    return Ok((url, answer));
                }
                Err(err) => errors.push((url, err)),
            }
        }
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(tier: &[&str]) -> Vec<String> {
        tier.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_answering_tracker_moves_to_the_front_of_its_tier_only() {
        // Built directly, so the order is known rather than shuffled.
        let mut tiers = TrackerTiers {
            tiers: vec![urls(&["a", "b"]), urls(&["c", "d", "e"])],
        };
        tiers.answered(1, 2);
        assert_eq!(tiers.tiers(), [urls(&["a", "b"]), urls(&["e", "c", "d"])]);
        tiers.answered(1, 0);
        assert_eq!(tiers.tiers()[1], urls(&["e", "c", "d"]));
        tiers.answered(0, 1);
        assert_eq!(tiers.tiers()[0], urls(&["b", "a"]));
        // Out of range does nothing.
        tiers.answered(5, 0);
        tiers.answered(0, 9);
        assert_eq!(tiers.in_order().len(), 5);
        assert_eq!(tiers.in_order()[0], (0, 0, "b".to_string()));
    }

    #[test]
    fn new_keeps_every_tracker_and_drops_empty_tiers() {
        let tiers = TrackerTiers::new(vec![urls(&["a", "b", "c"]), vec![], urls(&["d"])]);
        assert_eq!(tiers.tiers().len(), 2);
        let mut first = tiers.tiers()[0].clone();
        first.sort();
        assert_eq!(first, urls(&["a", "b", "c"]));
    }
}
