//! A magnet link's missing half: the info dictionary, fetched from peers
//! with `ut_metadata` (BEP 9) and checked against the info-hash.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use metainfo::{InfoHash, MagnetLink, Metainfo, PeerId};
use peerwire::extension::{ExtensionHandshake, UtMetadata};
use peerwire::{Handshake, Message, PeerCodec};
use tokio_util::codec::Framed;
use tracker::{AnnounceRequest, TrackerClient};

/// The id we ask peers to send `ut_metadata` messages with.
pub(crate) const UT_METADATA_ID: u8 = 1;

/// Bytes of the info dictionary per `ut_metadata` piece.
pub(crate) const METADATA_PIECE: usize = 16 * 1024;

/// The longest a single peer is given to hand over the whole dictionary.
const PER_PEER: Duration = Duration::from_secs(20);

/// Peers asked at once.
const AT_ONCE: usize = 4;

/// Fetches the info dictionary of `link` from its direct peers (`x.pe`),
/// `extra` peers, and the peers its trackers (`tr`) list, asking up to four
/// at a time and taking the first good answer; gives up after `deadline`.
/// Direct peers are asked first and again every round; trackers are asked
/// each round too, no more often than they allow. Returns the torrent, its
/// trackers taken from the link.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fetch(
    link: &MagnetLink,
    extra: &[SocketAddr],
    dht: Option<&crate::discovery::Nodes>,
    our_id: PeerId,
    dialling: (crate::Encryption, &crate::wire::Dialer),
    port: u16,
    client: &TrackerClient,
    deadline: Duration,
) -> Result<Metainfo, String> {
    let mut direct: Vec<SocketAddr> = extra.to_vec();
    for peer in &link.peers {
        if let Ok(mut addrs) = tokio::net::lookup_host(peer.as_str()).await
            && let Some(addr) = addrs.next()
        {
            direct.push(addr);
        }
    }
    if direct.is_empty() && link.trackers.is_empty() && dht.is_none() {
        return Err(
            "no peer gave the torrent's metadata: the link names no tracker and no peer, and the DHT is off".into(),
        );
    }
    let mut last_error = "no peer to ask".to_string();
    let work = async {
        let mut next_announce = tokio::time::Instant::now();
        let mut next_lookup = tokio::time::Instant::now();
        loop {
            let mut peers = direct.clone();
            if let Some(dht) = dht
                && tokio::time::Instant::now() >= next_lookup
            {
                let found = crate::discovery::lookup(dht, link.info_hash, DHT_LOOKUP_TIMEOUT).await;
                tracing::info!(peers = found.len(), "DHT lookup (metadata)");
                peers.extend(found);
                next_lookup = tokio::time::Instant::now() + DHT_LOOKUP_EVERY;
            }
            if !link.trackers.is_empty() && tokio::time::Instant::now() >= next_announce {
                // Not knowing the size, we say one byte is left: a leecher.
                let request = AnnounceRequest::new(link.info_hash, our_id, port, 1);
                // Every tracker at once: links often list dead ones first,
                // and a silent UDP tracker takes two minutes to give up on.
                let mut pending: futures::stream::FuturesUnordered<_> = link
                    .trackers
                    .iter()
                    .map(|url| {
                        let request = &request;
                        async move {
                            let announce = client.announce(url, request);
                            (url, tokio::time::timeout(ANNOUNCE_TIMEOUT, announce).await)
                        }
                    })
                    .collect();
                let mut wait = MAX_REANNOUNCE;
                // Once one answers, the others get a moment more.
                let mut grace = None;
                loop {
                    let next = match grace {
                        Some(deadline) => {
                            match tokio::time::timeout_at(deadline, pending.next()).await {
                                Ok(next) => next,
                                Err(_) => break,
                            }
                        }
                        None => pending.next().await,
                    };
                    let Some((url, answer)) = next else {
                        break;
                    };
                    match answer {
                        Ok(Ok(answer)) => {
                            tracing::info!(%url, peers = answer.peers.len(), "announced (metadata)");
                            peers.extend(answer.peers.iter().map(|p| p.addr));
                            let again = answer.min_interval.unwrap_or(answer.interval);
                            let again = Duration::from_secs(u64::from(again)).max(MIN_REANNOUNCE);
                            wait = wait.min(again);
                            grace.get_or_insert(tokio::time::Instant::now() + ANSWER_GRACE);
                        }
                        Ok(Err(error)) => {
                            tracing::info!(%url, %error, "announce failed (metadata)");
                            last_error = format!("{url}: {error}");
                        }
                        Err(_) => {
                            tracing::info!(%url, "no answer in time (metadata)");
                            last_error = format!("{url}: no answer in time");
                        }
                    }
                }
                next_announce = tokio::time::Instant::now() + wait;
            }
            peers.sort_unstable();
            peers.dedup();
            for batch in peers.chunks(AT_ONCE) {
                let mut attempts: futures::stream::FuturesUnordered<_> = batch
                    .iter()
                    .map(|addr| async move {
                        let asked = from_peer(*addr, link.info_hash, our_id, dialling);
                        (*addr, tokio::time::timeout(PER_PEER, asked).await)
                    })
                    .collect();
                // The first good answer wins; the rest are dropped.
                while let Some((addr, result)) = attempts.next().await {
                    match result {
                        Ok(Ok(info)) => {
                            tracing::info!(%addr, bytes = info.len(), "metadata received");
                            return torrent(&info, link);
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%addr, error = %e, "no metadata from this peer");
                            last_error = e;
                        }
                        Err(_) => {
                            tracing::debug!(%addr, "no metadata from this peer in time");
                            last_error = "a peer took too long".into();
                        }
                    }
                }
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    };
    let result = tokio::time::timeout(deadline, work).await;
    result.unwrap_or_else(|_| {
        Err(format!(
            "no peer gave the torrent's metadata within {} s ({last_error})",
            deadline.as_secs()
        ))
    })
}

/// How long one DHT lookup may take here.
const DHT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(20);
/// The DHT is asked again this often while the metadata is missing.
const DHT_LOOKUP_EVERY: Duration = Duration::from_secs(30);
/// How long one announce may take here.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(20);
/// Trackers are not asked again sooner than this, whatever they say.
const MIN_REANNOUNCE: Duration = Duration::from_secs(5);
/// How much longer the other trackers are waited for once one answered.
const ANSWER_GRACE: Duration = Duration::from_secs(2);
/// Trackers are asked again at least this often while the metadata is
/// missing (sooner if their minimum interval allows).
const MAX_REANNOUNCE: Duration = Duration::from_secs(60);
/// Pause between rounds of asking peers.
const RETRY_EVERY: Duration = Duration::from_secs(5);
/// Metadata pieces asked of a peer at once.
const METADATA_WINDOW: usize = 8;

/// Builds the torrent from a verified info dictionary and the link's
/// trackers and web seeds.
fn torrent(info: &[u8], link: &MagnetLink) -> Result<Metainfo, String> {
    let mut e = bencode::Encoder::default();
    e.dict(|d| {
        if let Some(first) = link.trackers.first() {
            d.entry(b"announce", &bencode::Bytes(first.as_bytes()));
        }
        if link.trackers.len() > 1 {
            let tiers: Vec<Vec<bencode::Bytes<'_>>> = link
                .trackers
                .iter()
                .map(|t| vec![bencode::Bytes(t.as_bytes())])
                .collect();
            d.entry(b"announce-list", &tiers);
        }
        d.entry(b"info", &bencode::Raw(info));
        if !link.web_seeds.is_empty() {
            let urls: Vec<bencode::Bytes<'_>> = link
                .web_seeds
                .iter()
                .map(|url| bencode::Bytes(url.as_bytes()))
                .collect();
            d.entry(b"url-list", &urls);
        }
    });
    Metainfo::from_bytes(&e.into_bytes())
        .map_err(|e| format!("the metadata is not a valid torrent: {e}"))
}

/// Asks one peer for the whole info dictionary.
async fn from_peer(
    addr: SocketAddr,
    info_hash: InfoHash,
    our_id: PeerId,
    (policy, memory): (crate::Encryption, &crate::wire::Dialer),
) -> Result<Vec<u8>, String> {
    let ours = Handshake::new(info_hash, our_id, crate::peer::our_reserved(false));
    let (wire, theirs) = crate::wire::dial(crate::wire::Dial {
        addr,
        local: None,
        ours: &ours,
        policy,
        memory,
        connect_timeout: PER_PEER,
        handshake_timeout: PER_PEER,
    })
    .await
    .map_err(|e| format!("{addr}: {e}"))?;
    let stream = tokio::io::join(wire.read, wire.write);
    if theirs.peer_id == our_id {
        return Err("that is us".into());
    }
    if !theirs.reserved.extension_protocol() {
        return Err(format!("{addr} does not speak the extension protocol"));
    }
    let mut wire = Framed::new(stream, PeerCodec::new(None));
    let hello = crate::wire::extension_handshake(None, None, false);
    let send = |e: peerwire::WireError| format!("{addr}: {e}");
    wire.send(Message::Extended {
        id: 0,
        payload: hello.encode(),
    })
    .await
    .map_err(send)?;
    let mut pieces: Vec<Option<Bytes>> = Vec::new();
    let mut size = 0usize;
    let mut asked = 0usize;
    let mut ut_metadata = 0u8;
    while let Some(message) = wire.next().await {
        let message = message.map_err(|e| format!("{addr}: {e}"))?;
        let Message::Extended { id, payload } = message else {
            continue;
        };
        if id == 0 {
            let theirs =
                ExtensionHandshake::decode(&payload).map_err(|e| format!("{addr}: {e}"))?;
            let (Some(their_id), Some(total)) = (theirs.id("ut_metadata"), theirs.metadata_size)
            else {
                return Err(format!(
                    "{addr} does not offer the metadata (no ut_metadata, or no metadata_size from 1 byte to 16 MiB)"
                ));
            };
            if !pieces.is_empty() {
                continue;
            }
            size = total as usize;
            let count = size.div_ceil(METADATA_PIECE);
            pieces = vec![None; count];
            ut_metadata = their_id;
            // A few pieces at a time: some clients refuse a long queue.
            for piece in 0..count.min(METADATA_WINDOW) {
                let request = UtMetadata::Request {
                    piece: piece as u32,
                };
                wire.feed(Message::Extended {
                    id: their_id,
                    payload: request.encode(),
                })
                .await
                .map_err(send)?;
                asked = piece + 1;
            }
            futures::SinkExt::<Message>::flush(&mut wire)
                .await
                .map_err(send)?;
        } else if id == UT_METADATA_ID {
            match UtMetadata::decode(&payload).map_err(|e| format!("{addr}: {e}"))? {
                UtMetadata::Data {
                    piece,
                    total_size,
                    data,
                } => {
                    let index = piece as usize;
                    let expected = METADATA_PIECE.min(size.saturating_sub(index * METADATA_PIECE));
                    if total_size as usize != size
                        || index >= pieces.len()
                        || data.len() != expected
                    {
                        return Err(format!("{addr} sent a malformed metadata piece"));
                    }
                    pieces[index] = Some(data);
                    if asked < pieces.len() {
                        let request = UtMetadata::Request {
                            piece: asked as u32,
                        };
                        wire.send(Message::Extended {
                            id: ut_metadata,
                            payload: request.encode(),
                        })
                        .await
                        .map_err(send)?;
                        asked += 1;
                    }
                    if pieces.iter().all(Option::is_some) {
                        let info: Vec<u8> = pieces
                            .iter()
                            .flatten()
                            .flat_map(|p| p.iter().copied())
                            .collect();
                        if InfoHash(metainfo::sha1(&info)) != info_hash {
                            return Err(format!(
                                "{addr} sent metadata that does not match the info-hash"
                            ));
                        }
                        return Ok(info);
                    }
                }
                UtMetadata::Reject { .. } => {
                    return Err(format!("{addr} refused to send the metadata"));
                }
                UtMetadata::Request { .. } | UtMetadata::Unknown { .. } => {}
            }
        }
    }
    Err(format!("{addr} closed the connection"))
}

/// The answer to a peer's `ut_metadata` request for `piece` of `info`.
pub(crate) fn answer(info: &[u8], piece: u32) -> UtMetadata {
    let start = piece as usize * METADATA_PIECE;
    match info.get(start..(start + METADATA_PIECE).min(info.len())) {
        Some(data) if !data.is_empty() => UtMetadata::Data {
            piece,
            total_size: info.len() as u32,
            data: Bytes::copy_from_slice(data),
        },
        _ => UtMetadata::Reject { piece },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_magnets_trackers_and_web_seeds_go_into_its_torrent() {
        let pieces = "x".repeat(20);
        let info = format!("d6:lengthi5e4:name1:f12:piece lengthi16e6:pieces20:{pieces}e");
        let mut link = MagnetLink::new(InfoHash::of_info_bytes(info.as_bytes()));
        link.trackers = vec!["http://t/announce".into(), "udp://u:1".into()];
        link.web_seeds = vec!["http://w/f".into(), "https://v/".into()];
        let torrent = torrent(info.as_bytes(), &link).unwrap();
        assert_eq!(torrent.info_hash(), link.info_hash);
        assert_eq!(torrent.url_list, link.web_seeds);
        assert_eq!(
            torrent.trackers(),
            [
                vec!["http://t/announce".to_string()],
                vec!["udp://u:1".into()]
            ]
        );
    }
}
