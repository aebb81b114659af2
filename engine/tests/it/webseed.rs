//! Web seeds (BEP 19): downloads from an HTTP server on 127.0.0.1 that
//! serves the torrent's files by byte range, alone or beside a peer, and
//! servers that misbehave.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::{Faults, SessionConfig, TorrentOptions};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::{Content, complete, content, seeder_of, session, test_config};

/// How the test server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    /// 206 with the bytes asked for.
    Ranges,
    /// 200 with the whole file, whatever the range.
    IgnoresRanges,
    /// 206 with every byte flipped.
    Corrupt,
    /// 503 for the first this many requests, then as `Ranges`.
    BusyFirst(usize),
    /// Paths under `/moved/` are redirected to the same path without it.
    Redirects,
    /// 206, but the connection is closed after [`CUT_AFTER`] bytes of any
    /// body.
    CutShort,
    /// As `Ranges`, but every this many requests is cut short.
    FailEvery(usize),
    /// The first answer comes a byte every 100 ms; the others at once.
    DripFirst,
    /// Says `Content-Encoding: gzip` (the bytes are the file's, as they
    /// are: a client that took the header at its word would fail).
    SaysGzip,
}

/// Where [`Behaviour::CutShort`] cuts: two and a half blocks.
const CUT_AFTER: usize = 40_000;

/// Each request's path and `Range` header, in order.
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A minimal HTTP/1.1 file server: GET with an optional `Range: bytes=A-B`,
/// keep-alive, files under `root`.
struct WebServer {
    addr: SocketAddr,
    requests: Log,
    task: tokio::task::JoinHandle<()>,
}

impl WebServer {
    async fn start(root: PathBuf, behaviour: Behaviour) -> WebServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let root = root.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &root, behaviour, &log).await;
                });
            }
        });
        WebServer {
            addr,
            requests,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    root: &std::path::Path,
    behaviour: Behaviour,
    log: &Log,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        // One request head.
        let end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            assert!(buffer.len() < 16 * 1024, "request head too long");
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
        buffer.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("/")
            .to_string();
        let range = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("range"))
            .map(|(_, value)| value.trim().to_string());
        let number = {
            let mut log = log.lock().unwrap();
            log.push((path.clone(), range.clone()));
            log.len()
        };
        if let Behaviour::BusyFirst(n) = behaviour
            && number <= n
        {
            stream
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                .await?;
            continue;
        }
        if behaviour == Behaviour::Redirects
            && let Some(rest) = path.strip_prefix("/moved/")
        {
            let answer =
                format!("HTTP/1.1 302 Found\r\nLocation: /{rest}\r\nContent-Length: 0\r\n\r\n");
            stream.write_all(answer.as_bytes()).await?;
            continue;
        }
        let decoded = percent_encoding::percent_decode_str(&path).decode_utf8_lossy();
        let file = root.join(decoded.trim_start_matches('/'));
        let Ok(data) = std::fs::read(&file) else {
            stream
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await?;
            continue;
        };
        let asked = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.split_once('-'))
            .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
        let (status, body, content_range) = match asked {
            Some((first, last)) if behaviour != Behaviour::IgnoresRanges => {
                let last = last.min(data.len() - 1);
                let mut body = data[first..=last].to_vec();
                if behaviour == Behaviour::Corrupt {
                    body.iter_mut().for_each(|b| *b = !*b);
                }
                let header = format!("Content-Range: bytes {first}-{last}/{}\r\n", data.len());
                ("206 Partial Content", body, header)
            }
            _ => ("200 OK", data, String::new()),
        };
        let coding = if behaviour == Behaviour::SaysGzip {
            "Content-Encoding: gzip\r\n"
        } else {
            ""
        };
        let head = format!(
            "HTTP/1.1 {status}\r\n{content_range}{coding}Content-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        if behaviour == Behaviour::DripFirst && number == 1 {
            for byte in body {
                stream.write_all(&[byte]).await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            continue;
        }
        if let Behaviour::FailEvery(n) = behaviour
            && number.is_multiple_of(n)
        {
            stream.write_all(&body[..body.len() / 2]).await?;
            return Ok(());
        }
        if behaviour == Behaviour::CutShort && body.len() > CUT_AFTER {
            stream.write_all(&body[..CUT_AFTER]).await?;
            return Ok(());
        }
        stream.write_all(&body).await?;
    }
}

/// `content` with the web seed `url` added to its torrent.
fn with_web_seed(mut content: Content, url: String) -> Content {
    content.torrent.url_list = vec![url];
    content
}

/// Starts a leecher with `config`, dialling `peers`, and waits until it
/// has all of `torrent`: its session, the torrent's handle, and the folder
/// it downloaded into.
async fn leech_to_the_end(
    torrent: metainfo::Metainfo,
    config: SessionConfig,
    peers: Vec<SocketAddr>,
) -> (engine::Session, engine::TorrentHandle, tempfile::TempDir) {
    let leecher = engine::Session::start(config).await.unwrap();
    let target = tempfile::tempdir().unwrap();
    let mut options = TorrentOptions::new(target.path());
    options.peers = peers;
    let handle = leecher.add(torrent, options).await.unwrap();
    complete(&handle).await;
    (leecher, handle, target)
}

/// Settings for a leecher whose web seeds are retried soon.
fn quick_retry() -> SessionConfig {
    SessionConfig {
        web_seed_retry: Duration::from_millis(50),
        ..test_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_file_torrent_downloads_from_its_web_seed_alone() {
    let content = content(&[0, 1, 100_000, 300_000, 700_001], 128 * 1024, &[], 41);
    let server = WebServer::start(content.dir.path().to_path_buf(), Behaviour::Ranges).await;
    // Without the trailing slash: a multi-file torrent's files are still
    // under URL/name/.
    let content = with_web_seed(content, format!("http://{}", server.addr));
    let (leecher, handle, target) =
        leech_to_the_end(content.torrent.clone(), quick_retry(), vec![]).await;
    content.assert_downloaded(target.path());
    assert_eq!(handle.stats().hash_failures, 0);
    let requests = server.requests();
    // Every request was for a range of a file of the torrent.
    for (path, range) in &requests {
        assert!(path.starts_with("/content/d"), "{path}");
        assert!(range.as_deref().is_some_and(|r| r.starts_with("bytes=")));
    }
    // A request per piece or run of pieces (and per file in it), not per
    // block: 1.1 MB is 9 pieces, and 68 blocks of 16 KiB.
    assert!(requests.len() < 30, "{} requests", requests.len());
    leecher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_file_url_is_followed_through_a_redirect_and_a_busy_server_is_asked_again() {
    for behaviour in [Behaviour::Redirects, Behaviour::BusyFirst(2)] {
        // 8 MB: at least 8 requests of at most 1 MiB.
        let content = content(&[8_000_000], 16 * 1024, &[], 42);
        let server = WebServer::start(content.dir.path().to_path_buf(), behaviour).await;
        let path = match behaviour {
            Behaviour::Redirects => "moved/content/d0/f00.bin",
            _ => "content/d0/f00.bin",
        };
        // A single-file torrent made from one file of the content.
        let file = content.dir.path().join("content/d0/f00.bin");
        let mut torrent = metainfo::TorrentBuilder::new(&file)
            .piece_length(16 * 1024)
            .build(|_, _| {})
            .unwrap();
        torrent.url_list = vec![server.url(path)];
        let (leecher, handle, target) = leech_to_the_end(torrent, quick_retry(), vec![]).await;
        let got = std::fs::read(target.path().join("f00.bin")).unwrap();
        assert!(got == content.files[0].1, "{behaviour:?}: the copy differs");
        let requests = server.requests();
        match behaviour {
            Behaviour::Redirects => {
                // Once moved, the file is asked for where it went (but by
                // the requests already under way, four at most).
                let moved = requests.iter().filter(|(p, _)| p.starts_with("/moved/"));
                let direct = requests.iter().filter(|(p, _)| p == "/content/d0/f00.bin");
                let (moved, direct) = (moved.count(), direct.count());
                assert!((1..=4).contains(&moved), "{requests:?}");
                assert_eq!(moved + direct, requests.len(), "{requests:?}");
                assert!(direct >= 8 - moved, "{requests:?}");
            }
            // Asked again within the same connection after each refusal.
            _ => {
                assert!(requests.len() > 2, "{requests:?}");
                assert_eq!(handle.stats().peers_ever, 1, "{requests:?}");
            }
        }
        leecher.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_seed_that_sends_bad_data_is_dropped_for_good_and_a_peer_finishes() {
    let content = content(&[2_000_000], 32 * 1024, &[], 43);
    let server = WebServer::start(content.dir.path().to_path_buf(), Behaviour::Corrupt).await;
    let content = with_web_seed(content, server.url(""));
    // An honest seeder, slow enough that the web seed would be tried many
    // times over if it were not dropped for good.
    let faults = Faults {
        upload_rate: Some(1 << 20),
        ..Faults::default()
    };
    let mut options = content.seed_options();
    options.faults = faults;
    let seeder = session().await;
    seeder.add(content.torrent.clone(), options).await.unwrap();
    let (leecher, handle, target) = leech_to_the_end(
        content.torrent.clone(),
        quick_retry(),
        vec![seeder.local_addr()],
    )
    .await;
    content.assert_downloaded(target.path());
    assert!(handle.stats().hash_failures >= 1);
    // The requests already under way when the first piece failed (at
    // most four at once), and no more: 2–3 here, 13 when it was not
    // banned.
    let requests = server.requests().len();
    assert!(requests <= 5, "{requests} requests to a web seed that lied");
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_ranges_spoils_nothing() {
    let content = content(&[300_000, 300_000], 32 * 1024, &[], 44);
    let server = WebServer::start(content.dir.path().to_path_buf(), Behaviour::IgnoresRanges).await;
    let content = with_web_seed(content, server.url(""));
    let seeder = seeder_of(&content, test_config()).await;
    let (leecher, handle, target) = leech_to_the_end(
        content.torrent.clone(),
        quick_retry(),
        vec![seeder.local_addr()],
    )
    .await;
    content.assert_downloaded(target.path());
    assert_eq!(handle.stats().hash_failures, 0);
    assert!(
        !server.requests().is_empty(),
        "the web seed was never asked"
    );
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_blocks_of_an_answer_cut_short_are_kept() {
    // Six blocks. Each try gets the first two and a half blocks of what it
    // asks for: the whole ones must count, or no try would ever get more.
    let content = content(&[6 * 16 * 1024], 16 * 1024, &[], 45);
    let server = WebServer::start(content.dir.path().to_path_buf(), Behaviour::CutShort).await;
    let content = with_web_seed(content, server.url(""));
    let (leecher, _handle, target) =
        leech_to_the_end(content.torrent.clone(), quick_retry(), vec![]).await;
    content.assert_downloaded(target.path());
    assert!(server.requests().len() >= 3, "{:?}", server.requests());
    leecher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_is_asked_again_at_once_not_after_the_retry_wait() {
    // Every third answer is cut short. The web seed is the only source, and
    // a whole connection lost would wait 30 s (the default) to be tried
    // again: each request that fails is asked again within a second or two.
    let content = content(&[4_000_000], 64 * 1024, &[], 46);
    let server = WebServer::start(content.dir.path().to_path_buf(), Behaviour::FailEvery(3)).await;
    let content = with_web_seed(content, server.url(""));
    let (leecher, handle, target) =
        leech_to_the_end(content.torrent.clone(), test_config(), vec![]).await;
    content.assert_downloaded(target.path());
    assert!(server.requests().len() >= 3);
    // Within one connection: a new one would have waited 30 s.
    assert_eq!(handle.stats().peers_ever, 1);
    leecher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_seed_that_trickles_is_dropped_and_tried_again() {
    // Its first answer would take hours; after the snub timeout (5 s here)
    // the web seed is dropped, and the next connection gets the rest.
    let content = content(&[300_000], 32 * 1024, &[], 47);
    let server = WebServer::start(content.dir.path().to_path_buf(), Behaviour::DripFirst).await;
    let content = with_web_seed(content, server.url(""));
    let (leecher, _handle, target) =
        leech_to_the_end(content.torrent.clone(), quick_retry(), vec![]).await;
    content.assert_downloaded(target.path());
    leecher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_missing_on_the_web_seed_is_left_to_peers_and_the_rest_still_comes_from_it() {
    let content = content(&[400_000, 400_000, 400_000], 32 * 1024, &[], 48);
    // The server has every file but the second.
    let served = tempfile::tempdir().unwrap();
    for (i, (relative, data)) in content.files.iter().enumerate() {
        if i != 1 {
            let path = served.path().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, data).unwrap();
        }
    }
    let server = WebServer::start(served.path().to_path_buf(), Behaviour::Ranges).await;
    let content = with_web_seed(content, server.url(""));
    // A slow seeder: the missing file takes it seconds, in which a web seed
    // that gave up on the whole server would be tried again and again (at
    // every tick, with this retry wait).
    let mut options = content.seed_options();
    options.faults = Faults {
        upload_rate: Some(64 * 1024),
        ..Faults::default()
    };
    let seeder = session().await;
    seeder.add(content.torrent.clone(), options).await.unwrap();
    let (leecher, handle, target) = leech_to_the_end(
        content.torrent.clone(),
        quick_retry(),
        vec![seeder.local_addr()],
    )
    .await;
    content.assert_downloaded(target.path());
    let requests = server.requests();
    let missing = requests
        .iter()
        .filter(|(p, _)| p.ends_with("f01.bin"))
        .count();
    // The missing file was asked for by the requests under way when the
    // first 404 came, and not again; the others were served all along.
    assert!((1..=4).contains(&missing), "{requests:?}");
    let from_web: u64 = handle
        .stats()
        .peer_totals
        .iter()
        .filter(|t| t.id.0.starts_with(b"-WS"))
        .map(|t| t.downloaded)
        .sum();
    assert!(from_web > 400_000, "{from_web} bytes from the web seed");
    leecher.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoded_answer_is_refused_not_taken_for_the_file() {
    let content = content(&[200_000], 16 * 1024, &[], 49);
    let server = WebServer::start(content.dir.path().to_path_buf(), Behaviour::SaysGzip).await;
    let content = with_web_seed(content, server.url(""));
    let seeder = seeder_of(&content, test_config()).await;
    let (leecher, handle, target) = leech_to_the_end(
        content.torrent.clone(),
        quick_retry(),
        vec![seeder.local_addr()],
    )
    .await;
    content.assert_downloaded(target.path());
    assert!(!server.requests().is_empty());
    // Nothing it sent was hashed: the web seed is not blamed for a failed
    // piece (and banned) for what a header said.
    let stats = handle.stats();
    assert_eq!(stats.hash_failures, 0);
    let from_web: u64 = stats
        .peer_totals
        .iter()
        .filter(|t| t.id.0.starts_with(b"-WS"))
        .map(|t| t.downloaded)
        .sum();
    assert_eq!(from_web, 0);
    leecher.shutdown().await;
    seeder.shutdown().await;
}
