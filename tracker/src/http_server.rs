//! The HTTP tracker server: a thin layer of hyper over [`Tracker`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::running::Running;
use crate::swarm::{Tracker, TrackerConfig, answer_http};

/// The most connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 1024;

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one connection may stay open, keep-alive included.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// An HTTP tracker running in this process, answering `/announce` and
/// `/scrape` until [`HttpTracker::stop`] is called or it is dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// use tracker::{HttpTracker, TrackerConfig};
///
/// let server = HttpTracker::bind("127.0.0.1:0".parse().unwrap(), TrackerConfig::default()).await?;
/// println!("announce to {}", server.announce_url());
/// server.stop().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct HttpTracker {
    running: Running,
    connections: TaskTracker,
}

impl HttpTracker {
    /// Listens on `addr` (port 0 picks a free one) and starts serving.
    pub async fn bind(addr: SocketAddr, config: TrackerConfig) -> std::io::Result<HttpTracker> {
        HttpTracker::bind_shared(addr, Arc::new(Mutex::new(Tracker::new(config)))).await
    }

    /// Listens on `addr`, serving the given tracker state (shared with a
    /// [`UdpTracker`](crate::UdpTracker), say).
    pub async fn bind_shared(
        addr: SocketAddr,
        state: Arc<Mutex<Tracker>>,
    ) -> std::io::Result<HttpTracker> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let connections = TaskTracker::new();
        let (serving, tracked) = (Arc::clone(&state), connections.clone());
        let running = Running::spawn(local_addr, state, |shutdown| {
            serve(listener, serving, shutdown, tracked)
        });
        Ok(HttpTracker {
            running,
            connections,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.running.local_addr
    }

    /// The URL clients announce to.
    pub fn announce_url(&self) -> String {
        format!("http://{}/announce", self.running.local_addr)
    }

    /// The tracker's state, to inspect (for tests and statistics). Hold the
    /// lock briefly: requests wait for it.
    pub fn state(&self) -> &Arc<Mutex<Tracker>> {
        &self.running.state
    }

    /// Stops accepting, lets requests in progress finish (for up to five
    /// seconds), and returns when every connection has closed.
    pub async fn stop(mut self) {
        self.running.stop().await;
        self.connections.close();
        self.connections.wait().await;
    }
}

async fn serve(
    listener: TcpListener,
    state: Arc<Mutex<Tracker>>,
    shutdown: CancellationToken,
    connections: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            permit = Arc::clone(&permits).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
        let (stream, remote) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors, say: wait a little rather than spin.
                    tracing::warn!("tracker: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let state = Arc::clone(&state);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(&state, &request, remote)) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(16 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            // A connection lives at most CONNECTION_LIFETIME, so a client that
            // never reads its answer cannot keep a slot forever.
            let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
            tokio::select! {
                _ = connection.as_mut() => return,
                () = lifetime => {}
                () = shutdown.cancelled() => {}
            }
            // Let a request in progress finish, briefly.
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
        });
    }
}

/// Answers one request. Every answer is bencode with status 200, as clients
/// expect: a refusal is a `failure reason` they show to their user.
fn handle(
    state: &Mutex<Tracker>,
    request: &Request<Incoming>,
    remote: SocketAddr,
) -> Response<Full<Bytes>> {
    let query = request.uri().query().unwrap_or("");
    // A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
    let ip = remote.ip().to_canonical();
    let body = answer_http(state, request.uri().path(), query, ip, Instant::now());
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    response
}
