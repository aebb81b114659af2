//! A web seed for swarms on 127.0.0.1: a small HTTP/1.1 server of a folder
//! that answers `GET` with a `Range` (BEP 19 asks no more of a server), at
//! a capped rate, counting what it sends.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The largest request head read; a longer one ends the connection.
const MAX_HEAD: usize = 16 * 1024;
/// Bytes sent per write, and per turn of the rate cap.
const CHUNK: usize = 16 * 1024;

/// An HTTP server of a folder's files by byte range, on 127.0.0.1; stops
/// when dropped.
#[derive(Debug)]
pub struct WebSeedServer {
    addr: SocketAddr,
    sent: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// What every connection shares.
#[derive(Debug)]
struct Shared {
    root: PathBuf,
    sent: Arc<AtomicU64>,
    /// Bytes per second over all connections, if capped.
    rate: Option<u64>,
    /// When the next chunk may go, under the cap.
    next_slot: Mutex<Instant>,
}

impl WebSeedServer {
    /// Serves the files under `root` on an ephemeral port of 127.0.0.1, at
    /// most `rate` bytes per second in all if given.
    pub async fn start(root: PathBuf, rate: Option<u64>) -> io::Result<WebSeedServer> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let sent = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            root,
            sent: sent.clone(),
            rate,
            next_slot: Mutex::new(Instant::now()),
        });
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &shared).await;
                });
            }
        });
        Ok(WebSeedServer { addr, sent, task })
    }

    /// The URL of the folder it serves, ending in `/`: the web seed of a
    /// torrent whose content is in that folder.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Body bytes sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for WebSeedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers one connection's requests until it closes.
async fn serve(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        let end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            if buffer.len() > MAX_HEAD {
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        buffer.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or("/");
        let range = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("range"))
            .and_then(|(_, value)| parse_range(value));
        // Only what is under the root: no `..`, no absolute paths.
        let relative = decode(path.trim_start_matches('/'));
        let file = match relative {
            Some(relative) if !relative.split('/').any(|c| c == ".." || c.is_empty()) => {
                tokio::fs::File::open(shared.root.join(relative)).await.ok()
            }
            _ => None,
        };
        let Some(mut file) = file else {
            stream
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await?;
            continue;
        };
        let length = file.metadata().await?.len();
        let (first, last) = match range {
            Some((first, last)) if first < length => (first, last.min(length - 1)),
            Some(_) => {
                let answer = format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{length}\r\nContent-Length: 0\r\n\r\n"
                );
                stream.write_all(answer.as_bytes()).await?;
                continue;
            }
            None => (0, length.saturating_sub(1)),
        };
        let count = if length == 0 { 0 } else { last - first + 1 };
        let head = match range {
            Some(_) => format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{length}\r\nContent-Length: {count}\r\n\r\n"
            ),
            None => format!("HTTP/1.1 200 OK\r\nContent-Length: {count}\r\n\r\n"),
        };
        stream.write_all(head.as_bytes()).await?;
        file.seek(io::SeekFrom::Start(first)).await?;
        let mut left = count;
        let mut chunk = vec![0u8; CHUNK];
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            file.read_exact(&mut chunk[..n]).await?;
            shared.pace(n).await;
            stream.write_all(&chunk[..n]).await?;
            shared.sent.fetch_add(n as u64, Ordering::Relaxed);
            left -= n as u64;
        }
    }
}

impl Shared {
    /// Waits for `bytes`' turn under the rate cap.
    async fn pace(&self, bytes: usize) {
        let Some(rate) = self.rate.filter(|r| *r > 0) else {
            return;
        };
        let start = {
            let mut next = self.next_slot.lock().await;
            let start = (*next).max(Instant::now());
            *next = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

/// `bytes=A-B` (both given).
fn parse_range(value: &str) -> Option<(u64, u64)> {
    let (first, last) = value.trim().strip_prefix("bytes=")?.split_once('-')?;
    let (first, last) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    (first <= last).then_some((first, last))
}

/// Undoes percent-encoding; `None` if the result is not UTF-8.
fn decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h)? * 16 + hex(l)?) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_paths_are_read_as_a_client_writes_them() {
        assert_eq!(parse_range("bytes=0-99"), Some((0, 99)));
        assert_eq!(parse_range(" bytes=5-5"), Some((5, 5)));
        assert_eq!(parse_range("bytes=9-1"), None);
        assert_eq!(parse_range("bytes=-5"), None);
        assert_eq!(decode("a%20b/%C3%A9"), Some("a b/é".into()));
        assert_eq!(decode("100%"), Some("100%".into()));
        assert_eq!(decode("%FF"), None);
    }
}
