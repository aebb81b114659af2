//! The tracker tasks of a torrent, one per tier of its announce list, all at
//! once as Transmission does: a tier of dead trackers (a UDP tracker is
//! found silent only after two minutes) must not hold up the others, and
//! every tier hears `completed` and `stopped`. Each announces `started`
//! first, then again at its tracker's interval (never sooner than its `min
//! interval`), `completed` once, `stopped` at the end; within a tier,
//! trackers are tried in BEP 12 order. Peers found are passed to the
//! torrent task.

use std::time::Duration;

use metainfo::{InfoHash, PeerId};
use tokio::sync::{mpsc, oneshot, watch};
use tracker::{
    AnnounceRequest, AnnounceResponse, Event as AnnounceEvent, TrackerClient, TrackerTiers,
};

use crate::peer::Event;
use crate::stats::TorrentEvent;

/// What the announcer reads from the torrent task each time it announces.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Progress {
    pub(crate) uploaded: u64,
    pub(crate) downloaded: u64,
    pub(crate) left: u64,
    /// Connected peers (the DHT looks more often while they are few).
    pub(crate) peers: usize,
}

/// Orders for the announcer.
#[derive(Debug)]
pub(crate) enum Order {
    /// The download just finished: announce `completed` now.
    Completed,
    /// Announce `stopped` (bounded by a timeout) and end.
    Stop(oneshot::Sender<()>),
}

/// The fixed parts of every announce.
pub(crate) struct Announcer {
    /// Which tier of the torrent's this task announces to.
    pub(crate) tier: usize,
    /// That tier alone.
    pub(crate) tiers: TrackerTiers,
    pub(crate) client: TrackerClient,
    pub(crate) info_hash: InfoHash,
    pub(crate) peer_id: PeerId,
    pub(crate) port: u16,
    pub(crate) compact: bool,
    pub(crate) key: u32,
    pub(crate) numwant: u32,
    /// The shortest wait between announces, whatever the tracker says.
    pub(crate) min_interval: Duration,
    pub(crate) progress: watch::Receiver<Progress>,
    pub(crate) peers: mpsc::Sender<Event>,
    pub(crate) events: tokio::sync::broadcast::Sender<TorrentEvent>,
}

/// Waited after an announce that no tracker answered, doubling each time.
const RETRY_FIRST: Duration = Duration::from_secs(15);
const RETRY_MAX: Duration = Duration::from_secs(30 * 60);
/// A `stopped` announce gets this long before the torrent stops anyway.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

impl Announcer {
    fn request(&self, event: Option<AnnounceEvent>) -> AnnounceRequest {
        let progress = *self.progress.borrow();
        let mut request =
            AnnounceRequest::new(self.info_hash, self.peer_id, self.port, progress.left);
        request.uploaded = progress.uploaded;
        request.downloaded = progress.downloaded;
        request.event = event;
        request.compact = self.compact;
        request.key = Some(self.key);
        request.numwant = Some(self.numwant);
        request
    }

    /// Announces once; returns the interval and minimum interval to keep.
    async fn announce(
        &mut self,
        event: Option<AnnounceEvent>,
        tracker_id: &mut Option<String>,
    ) -> Option<(Duration, Duration)> {
        let mut request = self.request(event);
        request.tracker_id = tracker_id.clone();
        match self.tiers.announce(&self.client, &request).await {
            Ok((url, answer)) => {
                tracing::info!(%url, peers = answer.peers.len(), interval = answer.interval, "announced");
                if let Some(warning) = &answer.warning {
                    let _ = self.events.send(TorrentEvent::TrackerError(format!(
                        "{url}: {}",
                        tracker::shown(warning)
                    )));
                }
                if answer.tracker_id.is_some() {
                    tracker_id.clone_from(&answer.tracker_id);
                }
                let peers = answer.peers.iter().map(|p| p.addr).collect();
                let _ = self
                    .peers
                    .send(Event::Discovered {
                        source: crate::stats::PeerSource::Tracker,
                        tier: Some(self.tier),
                        peers,
                    })
                    .await;
                Some(waits(&answer, self.min_interval))
            }
            Err(errors) => {
                let mut last = String::new();
                for (url, error) in errors {
                    tracing::info!(%url, %error, "announce failed");
                    last = format!("{url}: {error}");
                    let _ = self.events.send(TorrentEvent::TrackerError(last.clone()));
                }
                let _ = self
                    .peers
                    .send(Event::AnnounceFailed {
                        tier: self.tier,
                        error: last,
                    })
                    .await;
                None
            }
        }
    }

    /// Runs until told to stop. A stop is obeyed at once, even while an
    /// announce is under way (that one is abandoned for `stopped`).
    pub(crate) async fn run(mut self, mut orders: mpsc::Receiver<Order>) {
        let mut tracker_id = None;
        let mut event = Some(AnnounceEvent::Started);
        let mut retry = RETRY_FIRST;
        loop {
            let outcome = tokio::select! {
                answer = self.announce(event, &mut tracker_id) => Ok(answer),
                order = orders.recv() => Err(order),
            };
            let wait = match outcome {
                Ok(Some((interval, _min))) => {
                    retry = RETRY_FIRST;
                    // `started` and `completed` are sent until one arrives.
                    event = None;
                    interval
                }
                Ok(None) => {
                    let wait = retry;
                    retry = (retry * 2).min(RETRY_MAX);
                    wait
                }
                Err(order) => {
                    if self.obey(order, &mut event, &mut tracker_id).await {
                        return;
                    }
                    continue;
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                order = orders.recv() => {
                    if self.obey(order, &mut event, &mut tracker_id).await {
                        return;
                    }
                }
            }
        }
    }

    /// Carries out an order; returns whether to end.
    async fn obey(
        &mut self,
        order: Option<Order>,
        event: &mut Option<AnnounceEvent>,
        tracker_id: &mut Option<String>,
    ) -> bool {
        match order {
            Some(Order::Completed) => {
                // BEP 3: `completed` goes out when the download finishes,
                // whatever the interval. A `started` never sent is replaced
                // by it.
                *event = Some(AnnounceEvent::Completed);
                false
            }
            Some(Order::Stop(done)) => {
                let _ = tokio::time::timeout(
                    STOP_TIMEOUT,
                    self.announce(Some(AnnounceEvent::Stopped), tracker_id),
                )
                .await;
                let _ = done.send(());
                true
            }
            None => true,
        }
    }
}

/// What each tier's announces came to.
#[derive(Debug, Default)]
pub(crate) struct TierStatus {
    /// Per tier: announces made, and the error of the last one if it
    /// failed.
    tiers: Vec<(u32, Option<String>)>,
    /// The last error heard, of any tier.
    last_error: Option<String>,
}

impl TierStatus {
    fn tier(&mut self, tier: usize) -> &mut (u32, Option<String>) {
        if self.tiers.len() <= tier {
            self.tiers.resize(tier + 1, (0, None));
        }
        &mut self.tiers[tier]
    }

    pub(crate) fn answered(&mut self, tier: usize) {
        let status = self.tier(tier);
        status.0 += 1;
        status.1 = None;
    }

    pub(crate) fn failed(&mut self, tier: usize, error: String) {
        let status = self.tier(tier);
        status.0 += 1;
        status.1 = Some(error.clone());
        self.last_error = Some(error);
    }

    /// Announce rounds: the most any tier made (tiers announce at once).
    pub(crate) fn rounds(&self) -> u32 {
        self.tiers.iter().map(|t| t.0).max().unwrap_or(0)
    }

    /// The last error, while no tier's last announce was answered.
    pub(crate) fn error(&self) -> Option<String> {
        let answered = self.tiers.iter().any(|t| t.0 > 0 && t.1.is_none());
        if answered {
            None
        } else {
            self.last_error.clone()
        }
    }
}

/// The wait until the next announce, and the tracker's minimum interval,
/// from its answer: its interval, never shorter than its own minimum nor
/// than `floor` (a tracker saying 0 would be asked again at once).
fn waits(answer: &AnnounceResponse, floor: Duration) -> (Duration, Duration) {
    let min = Duration::from_secs(u64::from(answer.min_interval.unwrap_or(0)));
    let interval = Duration::from_secs(u64::from(answer.interval))
        .max(min)
        .max(floor);
    (interval, min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_count_rounds_and_report_an_error_only_while_none_answers() {
        let mut tiers = TierStatus::default();
        assert_eq!((tiers.rounds(), tiers.error()), (0, None));
        tiers.failed(1, "dead".into());
        assert_eq!((tiers.rounds(), tiers.error()), (1, Some("dead".into())));
        tiers.answered(0);
        tiers.failed(1, "still dead".into());
        // Tiers announce at once: two rounds, and one tier answers.
        assert_eq!((tiers.rounds(), tiers.error()), (2, None));
    }

    #[test]
    fn a_tracker_cannot_make_us_announce_more_often_than_the_floor() {
        let answer = |interval, min_interval| AnnounceResponse {
            interval,
            min_interval,
            tracker_id: None,
            complete: None,
            incomplete: None,
            warning: None,
            peers: Vec::new(),
        };
        let floor = Duration::from_secs(30);
        let secs = |s| Duration::from_secs(s);
        assert_eq!(waits(&answer(0, None), floor), (secs(30), secs(0)));
        assert_eq!(waits(&answer(1800, None), floor), (secs(1800), secs(0)));
        assert_eq!(waits(&answer(60, Some(120)), floor), (secs(120), secs(120)));
    }
}
