//! Announcing and scraping over HTTP and HTTPS.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::StatusCode;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use metainfo::InfoHash;

use crate::request::{AnnounceRequest, scrape_request_url, scrape_url};
use crate::response::{AnnounceResponse, ResponseError, ScrapeResponse};

/// Limits for talking to HTTP trackers.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// The whole request, redirects included, must finish within this.
    pub timeout: Duration,
    /// How many redirects are followed.
    pub max_redirects: usize,
    /// The largest response body read; a larger one is an error.
    pub max_body: usize,
    /// Certificates (DER) to trust for HTTPS besides the Mozilla roots: a
    /// private tracker's own certificate authority, say. Ones that do not
    /// parse are ignored.
    pub extra_roots: Vec<Vec<u8>>,
    /// The address requests come from (a client bound to one address of
    /// several); `None` lets the system choose.
    pub local_address: Option<std::net::IpAddr>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(30),
            max_redirects: 5,
            // 10,000 peers as dictionaries fit in well under a megabyte.
            max_body: 2 << 20,
            extra_roots: Vec::new(),
            local_address: None,
        }
    }
}

/// Why an announce or scrape failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackerError {
    /// The URL cannot be used.
    #[error("invalid tracker URL {url:?}: {problem}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        problem: String,
    },
    /// No answer in time.
    #[error("the tracker did not answer within {0:?}")]
    Timeout(Duration),
    /// Connecting or talking failed.
    #[error("cannot reach the tracker: {0}")]
    Unreachable(String),
    /// An HTTP status other than success.
    #[error("the tracker answered HTTP {0}")]
    Status(StatusCode),
    /// Too many redirects.
    #[error("the tracker redirected more than {0} times")]
    TooManyRedirects(usize),
    /// A body larger than allowed.
    #[error("the tracker's answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The tracker has no scrape URL by the usual convention.
    #[error("this tracker has no scrape (its announce URL does not end in /announce)")]
    NoScrape,
    /// The answer arrived but cannot be used, or is a refusal.
    #[error(transparent)]
    Response(#[from] ResponseError),
}

/// A connector for HTTP and HTTPS (HTTP/1.1) as the tracker client uses it:
/// rustls with ring, trusting the Mozilla roots and `extra_roots` (DER;
/// those that do not parse are ignored). For other HTTP clients of a
/// BitTorrent program, such as web seeds (BEP 19), to trust what the
/// tracker client trusts.
pub fn https_connector(extra_roots: &[Vec<u8>]) -> HttpsConnector<HttpConnector> {
    https_connector_from(extra_roots, None)
}

/// As [`https_connector`], with connections made from `local` (when
/// given).
pub fn https_connector_from(
    extra_roots: &[Vec<u8>],
    local: Option<std::net::IpAddr>,
) -> HttpsConnector<HttpConnector> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    roots.add_parsable_certificates(extra_roots.iter().map(|der| der.clone().into()));
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|builder| builder.with_root_certificates(roots).with_no_client_auth());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match tls {
        Ok(config) => builder.with_tls_config(config),
        // ring supports the default versions; this cannot happen, but
        // falling back keeps HTTPS working if it did.
        Err(_) => builder.with_webpki_roots(),
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_local_address(local);
    builder.https_or_http().enable_http1().wrap_connector(http)
}

/// Where a redirect's `Location` points, absolute or relative to `base`;
/// `None` unless it is an `http://` or `https://` URL with a host.
pub fn redirect_target(base: &hyper::Uri, location: &str) -> Option<hyper::Uri> {
    resolve(base, location).ok()
}

/// An HTTP(S) tracker client; cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    options: HttpOptions,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new(HttpOptions::default())
    }
}

impl HttpClient {
    /// A client with these limits. HTTPS uses rustls (with ring) and the
    /// Mozilla roots, plus [`HttpOptions::extra_roots`].
    pub fn new(options: HttpOptions) -> Self {
        let connector = https_connector_from(&options.extra_roots, options.local_address);
        // No pooled connections: announces are minutes apart, and trackers
        // such as opentracker close a connection after each answer without
        // saying so, so a reused one is often already reset.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        HttpClient { client, options }
    }

    /// Announces to the tracker at `announce_url`.
    pub async fn announce(
        &self,
        announce_url: &str,
        request: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        let body = self.get(&request.url(announce_url)).await?;
        Ok(AnnounceResponse::from_bytes(&body)?)
    }

    /// Scrapes the tracker whose announce URL is `announce_url`.
    pub async fn scrape(
        &self,
        announce_url: &str,
        info_hashes: &[InfoHash],
    ) -> Result<ScrapeResponse, TrackerError> {
        let scrape = scrape_url(announce_url).ok_or(TrackerError::NoScrape)?;
        let body = self.get(&scrape_request_url(&scrape, info_hashes)).await?;
        Ok(ScrapeResponse::from_bytes(&body)?)
    }

    /// GETs `url`, following redirects, within the time and size limits.
    async fn get(&self, url: &str) -> Result<Vec<u8>, TrackerError> {
        let timeout = self.options.timeout;
        tokio::time::timeout(timeout, self.get_following(url))
            .await
            .map_err(|_| TrackerError::Timeout(timeout))?
    }

    async fn get_following(&self, url: &str) -> Result<Vec<u8>, TrackerError> {
        const USER_AGENT: &str = concat!("btc/", env!("CARGO_PKG_VERSION"));
        let mut uri = parse_uri(url)?;
        for _ in 0..=self.options.max_redirects {
            // Some trackers refuse requests that name no client.
            let request = hyper::Request::get(uri.clone())
                .header(hyper::header::USER_AGENT, USER_AGENT)
                .body(Empty::new())
                .map_err(|e| TrackerError::Unreachable(e.to_string()))?;
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| TrackerError::Unreachable(error_chain(&e)))?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(hyper::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or(TrackerError::Status(status))?;
                uri = resolve(&uri, location)?;
                continue;
            }
            if !status.is_success() {
                return Err(TrackerError::Status(status));
            }
            let limit = self.options.max_body;
            let body = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(
                    |e| match e.downcast_ref::<http_body_util::LengthLimitError>() {
                        Some(_) => TrackerError::TooLarge(limit),
                        None => TrackerError::Unreachable(e.to_string()),
                    },
                )?;
            return Ok(body.to_bytes().to_vec());
        }
        Err(TrackerError::TooManyRedirects(self.options.max_redirects))
    }
}

fn parse_uri(url: &str) -> Result<hyper::Uri, TrackerError> {
    let bad = |problem: String| TrackerError::BadUrl {
        url: url.to_string(),
        problem,
    };
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| bad(e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(bad(
            "only http:// and https:// URLs with a host are HTTP trackers".into(),
        )),
    }
}

/// A redirect target, absolute or relative to the current URL.
fn resolve(base: &hyper::Uri, location: &str) -> Result<hyper::Uri, TrackerError> {
    if location.contains("://") {
        return parse_uri(location);
    }
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    let scheme = base.scheme_str().unwrap_or("http");
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{location}")
    };
    parse_uri(&format!("{scheme}://{authority}{path}"))
}

/// An error and its causes in one line (hyper's top-level message is
/// vague: "client error (Connect)").
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
