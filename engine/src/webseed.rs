//! Web seeds (BEP 19): HTTP servers that hold the torrent's files, asked
//! for byte ranges.
//!
//! A web seed runs as a connection of its own kind. The torrent task sees a
//! peer that has every piece and never chokes, and sends it requests and
//! cancels as it would any peer, so picking, pipelining, endgame, snubs
//! and bans need nothing new. This task turns runs of requested blocks into
//! HTTP range requests (a few at once, on pooled connections), cuts what
//! comes back into blocks, and hands those to the disk as a peer's reader
//! does: only blocks still asked for, a batch at a time.
//!
//! [`WebSeed`] is the sans-IO part: the URL of each file, and the ranges a
//! run of blocks needs.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use metainfo::{BlockRef, Info, Layout, PeerId};
use peerwire::{Handshake, Message, Reserved};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use storage::DiskError;

use crate::peer::{Command, Event, Link, lock};

/// Bytes escaped in a file's path when it is put in a URL: all but the
/// unreserved characters of RFC 3986.
const PATH_PART: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Most bytes asked for in one HTTP request: 64 blocks.
const MAX_RUN: u64 = 1 << 20;
/// A further request starts while one is under way only when at least this
/// many blocks (256 KiB) wait, so that a server is not asked for each block
/// as the torrent's requests trickle in.
const MIN_EXTRA_RUN: usize = 16;
/// HTTP requests under way at once to one web seed.
const MAX_FETCHES: usize = 4;
/// Blocks handed to the disk at once.
const DISK_BATCH: usize = 16;
/// How long a server may take to answer a request, or between two parts
/// of a body.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 5;

const NOT_USABLE: &str = "only http:// and https:// URLs with a host are web seeds";

/// Whether btc can use `url` as a web seed (BEP 19): an `http://` or
/// `https://` URL with a host. Others (`ftp://`, say) are left out.
pub fn is_usable_web_seed(url: &str) -> bool {
    url.parse::<hyper::Uri>()
        .is_ok_and(|uri| matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some())
}

/// A web seed's URLs for the files of one torrent.
#[derive(Clone, Debug)]
pub(crate) struct WebSeed {
    url: String,
    /// Each file's URL, in torrent order; `None` for padding files (BEP
    /// 47), whose zeros no server holds.
    files: Vec<Option<String>>,
}

/// What one part of a run of blocks takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// These bytes of this file, from the server.
    Fetch { file: usize, range: Range<u64> },
    /// Zeros: a padding file's bytes.
    Zeros(u64),
}

impl WebSeed {
    /// The web seed at `url` for a torrent. As BEP 19 says, a URL ending in
    /// `/` names a folder, to which the torrent's name is added; a
    /// multi-file torrent's files are always found under
    /// `url/name/path…`. Only `http://` and `https://` URLs are usable.
    pub(crate) fn new(url: &str, info: &Info) -> Result<WebSeed, String> {
        if let Err(e) = url.parse::<hyper::Uri>() {
            return Err(format!("not a URL: {e}"));
        }
        if !is_usable_web_seed(url) {
            return Err(NOT_USABLE.into());
        }
        let encode = |part: &str| utf8_percent_encode(part, PATH_PART).to_string();
        // A file's path goes at the end of the URL's path, before any
        // query (a signed URL's token, say); a fragment is never sent.
        let url_only = url.split('#').next().unwrap_or(url);
        let (path, query) = match url_only.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (url_only, None),
        };
        let files = info
            .files()
            .iter()
            .map(|file| {
                if file.is_padding() {
                    return None;
                }
                let mut full = path.to_string();
                if info.is_multi_file() {
                    if !full.ends_with('/') {
                        full.push('/');
                    }
                    let parts: Vec<String> = info.file_path(file).map(encode).collect();
                    full.push_str(&parts.join("/"));
                } else if full.ends_with('/') {
                    full.push_str(&encode(info.name()));
                }
                if let Some(query) = query {
                    full.push('?');
                    full.push_str(query);
                }
                Some(full)
            })
            .collect();
        Ok(WebSeed {
            url: url.to_string(),
            files,
        })
    }

    /// The URL as the torrent gives it.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The URL of file `file`.
    pub(crate) fn file_url(&self, file: usize) -> Option<&str> {
        self.files.get(file)?.as_deref()
    }

    /// The id the torrent task knows this web seed by: `-WS0000-` and
    /// the first 12 bytes of the SHA-1 of its URL, so that two web seeds
    /// never pass for the same peer.
    pub(crate) fn peer_id(&self) -> PeerId {
        let digest = metainfo::sha1(self.url.as_bytes());
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(b"-WS0000-");
        id[8..].copy_from_slice(&digest[..12]);
        PeerId(id)
    }

    /// The requests that fetch `run`, blocks contiguous in the torrent, in
    /// order: one range per file it touches, adjacent ones merged.
    pub(crate) fn parts(&self, layout: &Layout, run: &[BlockRef]) -> Vec<Part> {
        let mut parts: Vec<Part> = Vec::new();
        for block in run {
            for slice in layout.block_slices(*block) {
                let part = if self.files.get(slice.file).is_some_and(Option::is_some) {
                    Part::Fetch {
                        file: slice.file,
                        range: slice.offset..slice.offset + slice.length,
                    }
                } else {
                    Part::Zeros(slice.length)
                };
                match (parts.last_mut(), part) {
                    (
                        Some(Part::Fetch { file, range }),
                        Part::Fetch {
                            file: next_file,
                            range: next,
                        },
                    ) if *file == next_file && range.end == next.start => range.end = next.end,
                    (Some(Part::Zeros(length)), Part::Zeros(more)) => *length += more,
                    (_, part) => parts.push(part),
                }
            }
        }
        parts
    }
}

/// Takes the next run of blocks to fetch from the front of `queue`: blocks
/// that follow one another in the torrent, up to [`MAX_RUN`] bytes.
fn take_run(queue: &mut VecDeque<BlockRef>, layout: &Layout) -> Vec<BlockRef> {
    let start = |b: &BlockRef| {
        layout
            .piece_offset(b.piece)
            .map(|p| p + u64::from(b.offset))
    };
    let mut run: Vec<BlockRef> = Vec::new();
    let mut bytes = 0;
    while let Some(next) = queue.front() {
        if let Some(last) = run.last() {
            let end = start(last).map(|s| s + u64::from(last.length));
            if end.is_none() || end != start(next) || bytes + u64::from(next.length) > MAX_RUN {
                break;
            }
        }
        bytes += u64::from(next.length);
        run.extend(queue.pop_front());
    }
    run
}

/// An HTTP(S) client for web seeds, shared by a torrent's web seeds; cheap
/// to clone. Connections are kept for reuse.
#[derive(Clone, Debug)]
pub(crate) struct WebClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

/// Why a request to a web seed failed.
#[derive(Debug)]
pub(crate) struct Failed {
    /// What went wrong, for the log.
    pub(crate) reason: String,
    /// The server said the file is not there (404, 410).
    missing: bool,
    /// How long the server asked us to wait (`Retry-After`, in seconds).
    wait: Option<Duration>,
}

impl Failed {
    fn new(reason: impl Into<String>) -> Failed {
        Failed {
            reason: reason.into(),
            missing: false,
            wait: None,
        }
    }
}

impl WebClient {
    /// A client trusting the Mozilla roots.
    pub(crate) fn new() -> WebClient {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(tracker::https_connector(&[]));
        WebClient { client }
    }

    /// GETs `range` of `uri`, following redirects: the response, whose
    /// body starts at `range.start`, and the URL that gave it.
    async fn get_range(
        &self,
        mut uri: hyper::Uri,
        range: &Range<u64>,
    ) -> Result<(hyper::Response<hyper::body::Incoming>, hyper::Uri), Failed> {
        const USER_AGENT: &str = concat!("btc/", env!("CARGO_PKG_VERSION"));
        for _ in 0..=MAX_REDIRECTS {
            let request = hyper::Request::get(uri.clone())
                .header(hyper::header::USER_AGENT, USER_AGENT)
                .header(
                    hyper::header::RANGE,
                    format!("bytes={}-{}", range.start, range.end - 1),
                )
                .body(Empty::new())
                .map_err(|e| Failed::new(e.to_string()))?;
            let response = tokio::time::timeout(HTTP_TIMEOUT, self.client.request(request))
                .await
                .map_err(|_| {
                    Failed::new(format!(
                        "no answer within {} s from {uri}",
                        HTTP_TIMEOUT.as_secs()
                    ))
                })?
                .map_err(|e| {
                    Failed::new(if e.is_connect() {
                        format!("cannot reach {uri}: {}", tracker::error_chain(&e))
                    } else {
                        format!("a bad answer from {uri}: {}", tracker::error_chain(&e))
                    })
                })?;
            match judge(response.status(), response.headers(), &uri, range) {
                Verdict::Redirect(to) => uri = to,
                Verdict::Body => return Ok((response, uri)),
                Verdict::Failed(failed) => return Err(failed),
            }
        }
        Err(Failed::new(format!(
            "redirected more than {MAX_REDIRECTS} times"
        )))
    }
}

/// What an answer to a range request is, by its status and headers.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Ask there instead.
    Redirect(hyper::Uri),
    /// The body holds the range asked for, from its start.
    Body,
    /// The answer is of no use.
    Failed(Failed),
}

/// Judges the answer `uri` gave to a request for `range`. Sans-IO: the
/// status and headers are a stranger's, and nothing in them is trusted.
pub(crate) fn judge(
    status: hyper::StatusCode,
    headers: &hyper::HeaderMap,
    uri: &hyper::Uri,
    range: &Range<u64>,
) -> Verdict {
    if status.is_redirection() {
        let Some(location) = headers
            .get(hyper::header::LOCATION)
            .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned())
        else {
            return Verdict::Failed(Failed::new(format!(
                "HTTP {status} without a Location from {uri}"
            )));
        };
        return match tracker::redirect_target(uri, &location) {
            Some(to) => Verdict::Redirect(to),
            None => Verdict::Failed(Failed::new(format!(
                "{uri} redirects to {}, which is not an http:// or https:// URL",
                tracker::shown(&location)
            ))),
        };
    }
    // Compressed bytes are not the file's: said plainly, rather than found
    // out as a failed piece (and the server banned).
    if let Some(coding) = headers
        .get(hyper::header::CONTENT_ENCODING)
        .map(|c| {
            String::from_utf8_lossy(c.as_bytes())
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|c| !c.is_empty() && c != "identity")
        && status.is_success()
    {
        return Verdict::Failed(Failed::new(format!(
            "{uri} sent the file encoded ({}), which no request asked for",
            tracker::shown(&coding)
        )));
    }
    match status.as_u16() {
        206 => match content_range_start(headers) {
            Some(start) if start != range.start => Verdict::Failed(Failed::new(format!(
                "asked {uri} for bytes from {}, it sent from {start}",
                range.start
            ))),
            _ => Verdict::Body,
        },
        // The whole file: usable when it starts where we want.
        200 if range.start == 0 => Verdict::Body,
        200 => Verdict::Failed(Failed::new(format!("{uri} does not serve byte ranges"))),
        404 | 410 => Verdict::Failed(Failed {
            missing: true,
            ..Failed::new(format!("HTTP {status} for {uri}"))
        }),
        _ => Verdict::Failed(Failed {
            wait: retry_after(headers),
            ..Failed::new(format!("HTTP {status} for {uri}"))
        }),
    }
}

/// A `Retry-After` in seconds (the HTTP-date form is not worth parsing
/// here).
fn retry_after(headers: &hyper::HeaderMap) -> Option<Duration> {
    let value = headers.get(hyper::header::RETRY_AFTER)?;
    let seconds: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// Where a `Content-Range: bytes START-END/LEN` answer starts.
fn content_range_start(headers: &hyper::HeaderMap) -> Option<u64> {
    let value = headers.get(hyper::header::CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

/// Fetches that may fail in a row, each retried within the connection
/// after a pause (1 s, then 2 s), before the connection gives up and the
/// torrent tries the web seed again later.
const MAX_FAILURES: u32 = 3;
/// The longest `Retry-After` waited for within the connection; a longer
/// one ends it.
const MAX_PAUSE: Duration = Duration::from_secs(20);
/// How long a web seed that lacks files stays idle before it ends.
const LACKING_IDLE: Duration = Duration::from_secs(60);
/// Why it ends then: not a failure worth a warning (the lacking file was
/// warned of already).
pub(crate) const LACKING_IDLE_REASON: &str =
    "it lacks files and has nothing else to give; it is asked again later";
/// A batch of blocks older than this goes to the disk with the next block
/// cut, full or not: a slow server's blocks must reach the torrent before
/// its snub timeout.
const FLUSH_AFTER: Duration = Duration::from_millis(500);

/// What every fetch of one web seed shares.
struct Fetcher {
    key: crate::picker::PeerKey,
    seed: Arc<WebSeed>,
    layout: Layout,
    client: WebClient,
    disk: storage::Disk,
    events: tokio::sync::mpsc::Sender<Event>,
    requests: crate::peer::Requests,
    download_limit: Option<Arc<crate::limit::Limiter>>,
    /// Where files were redirected to, asked there directly from then on
    /// (for as long as this connection lasts).
    moved: std::sync::Mutex<std::collections::HashMap<usize, hyper::Uri>>,
    /// Cancelled when the connection ends: fetches stop waiting on the
    /// server, but still report the blocks they handed to the disk.
    stop: tokio_util::sync::CancellationToken,
}

/// Runs a web seed until the torrent lets go of it or it keeps failing,
/// then reports [`Event::Closed`].
pub(crate) async fn run(link: Link, seed: Arc<WebSeed>, layout: Layout, client: WebClient) {
    let key = link.key;
    let events = link.events.clone();
    let handshake = Handshake::new(
        link.info_hash,
        seed.peer_id(),
        Reserved::default().with_fast(true),
    );
    let greeting = [
        Event::Ready {
            key,
            handshake,
            encrypted: false,
            utp: false,
        },
        Event::Message {
            key,
            message: Message::HaveAll,
        },
        Event::Message {
            key,
            message: Message::Unchoke,
        },
    ];
    for event in greeting {
        if events.send(event).await.is_err() {
            return;
        }
    }
    let reason = serve(link, seed, layout, client).await;
    let _ = events
        .send(Event::Closed {
            key,
            reason: crate::DropReason::WebSeed(reason),
        })
        .await;
}

async fn serve(link: Link, seed: Arc<WebSeed>, layout: Layout, client: WebClient) -> String {
    let Link {
        key,
        disk,
        events,
        mut commands,
        queued,
        requests,
        limits,
        ..
    } = link;
    let num_pieces = layout.num_pieces();
    let fetcher = Arc::new(Fetcher {
        key,
        seed,
        layout,
        client,
        disk,
        events,
        requests,
        download_limit: limits.download,
        moved: std::sync::Mutex::default(),
        stop: tokio_util::sync::CancellationToken::new(),
    });
    let mut queue: VecDeque<BlockRef> = VecDeque::new();
    let mut fetching = FuturesUnordered::new();
    // Files the server does not have, and their pieces.
    let mut lacking_files = std::collections::HashSet::new();
    let mut lacking = peerwire::Bitfield::new(num_pieces);
    let mut failures = 0;
    // When the last failure counted: requests started before it that fail
    // too (all four at once, on a reset) count as that same failure.
    let mut failed_at: Option<tokio::time::Instant> = None;
    let mut paused_until: Option<tokio::time::Instant> = None;
    let reason = loop {
        if paused_until.is_some_and(|t| t <= tokio::time::Instant::now()) {
            paused_until = None;
        }
        while paused_until.is_none()
            && fetching.len() < MAX_FETCHES
            && !queue.is_empty()
            && (fetching.is_empty() || queue.len() >= MIN_EXTRA_RUN)
        {
            let run = take_run(&mut queue, &fetcher.layout);
            let started = tokio::time::Instant::now();
            let fetch = fetch(fetcher.clone(), run);
            fetching.push(async move { (started, fetch.await) });
        }
        // A web seed that lacks files and has nothing asked of it ends
        // after a while, so that files that appear on the server meanwhile
        // (a mirror still syncing) are tried again.
        let idle_lacking = !lacking_files.is_empty() && queue.is_empty() && fetching.is_empty();
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else {
                    break "closed by us".to_string();
                };
                // Every command already sent, so that a run takes every
                // request already made.
                let mut next = Some(command);
                while let Some(command) = next {
                    queued.fetch_sub(1, Ordering::Relaxed);
                    match command {
                        // A request sent before the torrent learnt that the
                        // piece is lacking was withdrawn since.
                        Command::Send(Message::Request(block)) if !lacking.get(block.piece) => {
                            queue.push_back(block);
                        }
                        Command::Send(Message::Cancel(block)) => queue.retain(|b| *b != block),
                        // A server has no use for the rest: it neither
                        // chokes nor wants anything.
                        _ => {}
                    }
                    next = commands.try_recv().ok();
                }
            }
            Some((started, done)) = fetching.next(), if !fetching.is_empty() => {
                let (failed, rest) = match done {
                    Ok(()) => {
                        failures = 0;
                        continue;
                    }
                    Err(failure) => failure,
                };
                if let Some(file) = failed.file.filter(|_| failed.missing) {
                    if lacking_files.insert(file) {
                        tracing::warn!(
                            url = %fetcher.seed.url(),
                            "the web seed lacks a file ({}): its pieces are left to others",
                            failed.reason
                        );
                        let pieces: Vec<u32> = fetcher
                            .layout
                            .file_pieces(file)
                            .filter(|p| !lacking.get(*p))
                            .collect();
                        for piece in &pieces {
                            lacking.set(*piece);
                        }
                        queue.retain(|b| !lacking.get(b.piece));
                        let lacks = Event::Lacks { key, pieces };
                        if fetcher.events.send(lacks).await.is_err() {
                            break "the torrent stopped".into();
                        }
                        if lacking.is_full() {
                            break "the server has none of the torrent's files".into();
                        }
                    }
                } else if failed_at.is_none_or(|at| started > at) {
                    // A wait longer than we keep a connection idle is the
                    // torrent's to honour, between connections.
                    if failed.wait.is_some_and(|w| w > MAX_PAUSE) {
                        break failed.reason;
                    }
                    failures += 1;
                    failed_at = Some(tokio::time::Instant::now());
                    if failures >= MAX_FAILURES {
                        break failed.reason;
                    }
                    let pause = failed
                        .wait
                        .unwrap_or(Duration::from_secs(1 << (failures - 1)));
                    tracing::debug!(url = %fetcher.seed.url(), reason = %failed.reason, "web seed request failed; asking again in {} s", pause.as_secs());
                    paused_until = Some(tokio::time::Instant::now() + pause);
                }
                // What the failed request did not bring is asked again,
                // first, if the torrent still wants it from here.
                let still = lock(&fetcher.requests);
                for block in rest.into_iter().rev() {
                    if still.contains(&block) && !lacking.get(block.piece) {
                        queue.push_front(block);
                    }
                }
            }
            () = tokio::time::sleep_until(paused_until.unwrap_or_else(tokio::time::Instant::now)), if paused_until.is_some() => {}
            () = tokio::time::sleep(LACKING_IDLE), if idle_lacking => {
                break LACKING_IDLE_REASON.into();
            }
        }
    };
    // Blocks already handed to the disk are reported even now, as a
    // peer's reader reports them: one may have completed its piece.
    fetcher.stop.cancel();
    while fetching.next().await.is_some() {}
    reason
}

/// `wait`, unless the connection ends first.
async fn or_stop<T>(
    stop: &tokio_util::sync::CancellationToken,
    wait: impl std::future::Future<Output = Result<T, Failed>>,
) -> Result<T, Failed> {
    tokio::select! {
        result = wait => result,
        () = stop.cancelled() => Err(Failed::new("stopped")),
    }
}

impl Fetcher {
    fn moved_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<usize, hyper::Uri>> {
        self.moved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where file `file` was last redirected to, if anywhere.
    fn moved_to(&self, file: usize) -> Option<hyper::Uri> {
        self.moved_lock().get(&file).cloned()
    }
}

/// How a part of a fetch failed: why, and which file it was asking for.
struct PartFailure {
    failed: Failed,
    file: Option<usize>,
}

/// Fetches one run of blocks, handing each to the disk as it completes;
/// those whole before a failure still go. A failure gives back the blocks
/// not yet had.
async fn fetch(
    fetcher: Arc<Fetcher>,
    run: Vec<BlockRef>,
) -> Result<(), (FailedFetch, Vec<BlockRef>)> {
    let parts = fetcher.seed.parts(&fetcher.layout, &run);
    let mut cutter = Cutter {
        fetcher: &fetcher,
        blocks: run.into_iter(),
        next: None,
        buffer: BytesMut::new(),
        batch: Vec::new(),
        batch_since: tokio::time::Instant::now(),
    };
    cutter.next = cutter.blocks.next();
    let fetched = fetch_parts(&fetcher, parts, &mut cutter).await;
    let flushed = cutter.flush().await.map_err(|reason| PartFailure {
        failed: Failed::new(reason),
        file: None,
    });
    match fetched.and(flushed) {
        Ok(()) => Ok(()),
        Err(PartFailure { failed, file }) => {
            let rest = cutter.next.into_iter().chain(cutter.blocks).collect();
            Err((
                FailedFetch {
                    reason: failed.reason,
                    missing: failed.missing,
                    wait: failed.wait,
                    file,
                },
                rest,
            ))
        }
    }
}

/// A failed fetch, as the connection sees it.
struct FailedFetch {
    reason: String,
    missing: bool,
    wait: Option<Duration>,
    /// The file it was asking for.
    file: Option<usize>,
}

async fn fetch_parts(
    fetcher: &Fetcher,
    parts: Vec<Part>,
    cutter: &mut Cutter<'_>,
) -> Result<(), PartFailure> {
    let plain = |reason: String| PartFailure {
        failed: Failed::new(reason),
        file: None,
    };
    for part in parts {
        match part {
            Part::Zeros(length) => {
                let length = usize::try_from(length).map_err(|e| plain(e.to_string()))?;
                cutter.push(&vec![0; length]).await.map_err(plain)?;
            }
            Part::Fetch { file, range } => {
                let in_file = |failed: Failed| PartFailure {
                    failed,
                    file: Some(file),
                };
                let uri = match fetcher.moved_to(file) {
                    Some(uri) => uri,
                    None => {
                        let url = fetcher.seed.file_url(file).unwrap_or_default();
                        url.parse()
                            .map_err(|e| in_file(Failed::new(format!("bad URL {url:?}: {e}"))))?
                    }
                };
                let asked = uri.clone();
                let got = or_stop(&fetcher.stop, fetcher.client.get_range(uri, &range)).await;
                let (response, answered) = match got {
                    Ok(got) => got,
                    Err(failed) => {
                        // Where a file moved may not last (a signed URL
                        // expires): the next request starts from the
                        // torrent's URL again.
                        fetcher.moved_lock().remove(&file);
                        return Err(in_file(failed));
                    }
                };
                if answered != asked {
                    fetcher.moved_lock().insert(file, answered.clone());
                }
                let mut body = response.into_body();
                let mut left = range.end - range.start;
                while left > 0 {
                    let frame = or_stop(&fetcher.stop, async {
                        tokio::time::timeout(HTTP_TIMEOUT, body.frame())
                            .await
                            .map_err(|_| {
                                Failed::new(format!(
                                    "{answered} went silent for {} s",
                                    HTTP_TIMEOUT.as_secs()
                                ))
                            })
                    })
                    .await
                    .map_err(in_file)?;
                    let Some(frame) = frame else {
                        return Err(in_file(Failed::new(format!(
                            "{answered} sent {} of {} bytes",
                            range.end - range.start - left,
                            range.end - range.start
                        ))));
                    };
                    let frame = frame.map_err(|e| {
                        in_file(Failed::new(format!(
                            "reading from {answered} failed: {}",
                            tracker::error_chain(&e)
                        )))
                    })?;
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    // Anything past the range (a server that sent the whole
                    // file) is not ours to keep.
                    let take = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    cutter.push(&data[..take]).await.map_err(plain)?;
                    left -= take as u64;
                }
            }
        }
    }
    Ok(())
}

/// Cuts a run's bytes into its blocks, and hands them to the disk.
struct Cutter<'a> {
    fetcher: &'a Fetcher,
    blocks: std::vec::IntoIter<BlockRef>,
    next: Option<BlockRef>,
    buffer: BytesMut,
    batch: Vec<(BlockRef, Bytes)>,
    /// When the oldest block of `batch` was cut.
    batch_since: tokio::time::Instant,
}

impl Cutter<'_> {
    async fn push(&mut self, data: &[u8]) -> Result<(), String> {
        self.buffer.extend_from_slice(data);
        while let Some(block) = self.next
            && self.buffer.len() >= block.length as usize
        {
            let data = self.buffer.split_to(block.length as usize).freeze();
            self.next = self.blocks.next();
            if let Some(limit) = &self.fetcher.download_limit {
                limit.take(u64::from(block.length)).await;
            }
            // A block no longer asked for (cancelled, or taken back) is
            // dropped, as a peer's reader drops it.
            if lock(&self.fetcher.requests).remove(&block) {
                if self.batch.is_empty() {
                    self.batch_since = tokio::time::Instant::now();
                }
                self.batch.push((block, data));
            }
            if self.batch.len() >= DISK_BATCH || self.batch_since.elapsed() >= FLUSH_AFTER {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Hands the blocks gathered to the disk, and reports what it made of
    /// them.
    async fn flush(&mut self) -> Result<(), String> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let blocks: Vec<BlockRef> = batch.iter().map(|(block, _)| *block).collect();
        let key = self.fetcher.key;
        let outcomes: Vec<(BlockRef, Result<storage::BlockOutcome, DiskError>)> =
            match self.fetcher.disk.send_blocks(batch, key).await {
                Ok(pending) => blocks.into_iter().zip(pending.await).collect(),
                Err(e) => {
                    let mut blocks = blocks.into_iter();
                    let first = blocks.next().map(|block| (block, Err(e)));
                    let rest = blocks.map(|block| (block, Err(DiskError::Stopped)));
                    first.into_iter().chain(rest).collect()
                }
            };
        self.fetcher
            .events
            .send(Event::Blocks {
                key,
                blocks: outcomes,
            })
            .await
            .map_err(|_| "the torrent stopped".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(torrent: &str) -> Info {
        metainfo::Metainfo::from_bytes(torrent.as_bytes())
            .unwrap()
            .info()
            .clone()
    }

    fn single() -> Info {
        // One file "a b.iso" of 40 bytes, pieces of 16.
        let pieces = "x".repeat(60);
        info(&format!(
            "d4:infod6:lengthi40e4:name7:a b.iso12:piece lengthi16e6:pieces60:{pieces}ee"
        ))
    }

    fn multi() -> Info {
        // "dir" with "x/é.txt" (10 bytes), a padding file (6) and "y" (20),
        // pieces of 16.
        let pieces = "x".repeat(60);
        info(&format!(
            "d4:infod5:filesl\
             d6:lengthi10e4:pathl1:x6:\u{e9}.txtee\
             d4:attr1:p6:lengthi6e4:pathl4:.pad1:6ee\
             d6:lengthi20e4:pathl1:yee\
             e4:name3:dir12:piece lengthi16e6:pieces60:{pieces}ee"
        ))
    }

    #[test]
    fn a_single_file_url_is_used_as_it_is_and_a_folder_gets_the_name() {
        let info = single();
        let seed = WebSeed::new("http://h/pub/file.iso", &info).unwrap();
        assert_eq!(seed.file_url(0), Some("http://h/pub/file.iso"));
        let seed = WebSeed::new("https://h/pub/", &info).unwrap();
        assert_eq!(seed.file_url(0), Some("https://h/pub/a%20b.iso"));
    }

    #[test]
    fn a_multi_file_torrent_is_found_under_url_name_path_and_padding_is_not_fetched() {
        let info = multi();
        for url in ["http://h/pub", "http://h/pub/"] {
            let seed = WebSeed::new(url, &info).unwrap();
            assert_eq!(seed.file_url(0), Some("http://h/pub/dir/x/%C3%A9.txt"));
            assert_eq!(seed.file_url(1), None);
            assert_eq!(seed.file_url(2), Some("http://h/pub/dir/y"));
        }
    }

    #[test]
    fn a_query_stays_at_the_end_of_the_url() {
        let seed = WebSeed::new("http://h/pub/?token=a/b#x", &multi()).unwrap();
        assert_eq!(seed.file_url(2), Some("http://h/pub/dir/y?token=a/b"));
        let seed = WebSeed::new("http://h/f.iso?sig=1", &single()).unwrap();
        assert_eq!(seed.file_url(0), Some("http://h/f.iso?sig=1"));
    }

    #[test]
    fn only_http_urls_with_a_host_are_web_seeds() {
        let info = single();
        for url in [
            "ftp://h/f",
            "file:///etc/passwd",
            "/relative",
            "http://",
            "not a url",
        ] {
            assert!(WebSeed::new(url, &info).is_err(), "{url}");
        }
    }

    #[test]
    fn a_run_over_files_becomes_one_range_per_file_and_zeros_for_padding() {
        let info = multi();
        let layout = info.layout().clone();
        let seed = WebSeed::new("http://h/", &info).unwrap();
        // Piece 0 is x (10 bytes) then padding (6); piece 1 is y's first 16
        // bytes; blocks are whole pieces here.
        let run: Vec<BlockRef> = (0..3).flat_map(|p| layout.blocks(p)).collect();
        assert_eq!(
            seed.parts(&layout, &run),
            [
                Part::Fetch {
                    file: 0,
                    range: 0..10
                },
                Part::Zeros(6),
                Part::Fetch {
                    file: 2,
                    range: 0..20
                },
            ]
        );
    }

    #[test]
    fn runs_are_contiguous_blocks_within_the_bound() {
        let layout = Layout::new(1 << 20, [8 << 20]).unwrap();
        let blocks = |piece: u32| layout.blocks(piece).collect::<Vec<_>>();
        // All of piece 0 then all of piece 1: contiguous, but over the
        // bound, so cut at 1 MiB.
        let mut queue: VecDeque<BlockRef> = blocks(0).into_iter().chain(blocks(1)).collect();
        let run = take_run(&mut queue, &layout);
        assert_eq!(run, blocks(0));
        // A gap ends a run.
        let mut queue: VecDeque<BlockRef> = [blocks(3)[0], blocks(3)[1], blocks(5)[0]].into();
        assert_eq!(take_run(&mut queue, &layout).len(), 2);
        assert_eq!(take_run(&mut queue, &layout), [blocks(5)[0]]);
        assert!(take_run(&mut queue, &layout).is_empty());
    }

    #[test]
    fn web_seeds_have_ids_of_their_own() {
        let info = single();
        let a = WebSeed::new("http://a/f", &info).unwrap().peer_id();
        let b = WebSeed::new("http://b/f", &info).unwrap().peer_id();
        assert_ne!(a, b);
        assert!(a.0.starts_with(b"-WS0000-"));
    }
}
