//! `btc tracker`: an HTTP and UDP tracker for your own network.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use metainfo::InfoHash;
use tracker::{HttpTracker, Tracker, TrackerConfig, UdpTracker};

/// An address and port, or an address alone (port 6969).
fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 6969))
        .map_err(|_| format!("{text:?} is not an address and port such as 127.0.0.1:6969"))
}

/// Run a BitTorrent tracker (HTTP and UDP on the same port) until stopped.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address and port to listen on, for both TCP (HTTP) and UDP; an
    /// address alone listens on port 6969.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:6969", value_parser = parse_bind)]
    bind: SocketAddr,
    /// Seconds clients are told to wait between announces (1 to 604800).
    #[arg(long, value_name = "SECONDS", default_value_t = 1800,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(tracker::MAX_INTERVAL)))]
    interval: u32,
    /// Track only this torrent (an info-hash, 40 hex digits). Repeatable;
    /// without it every torrent is tracked.
    #[arg(long = "allow", value_name = "INFO_HASH")]
    allow: Vec<InfoHash>,
}

pub(crate) fn run(args: &Args) -> Result<String> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

/// Clients keep their own floor under the interval a tracker gives:
/// libtorrent (and so qBittorrent) announce at most every 5 minutes.
const CLIENT_MIN_INTERVAL: u32 = 300;

fn config(args: &Args) -> TrackerConfig {
    // A peer is forgotten after two missed announces, counted at the pace
    // clients really keep: with `--interval 5`, a libtorrent seeder still
    // announces only every 5 minutes, and must stay listed meanwhile.
    let pace = args.interval.max(CLIENT_MIN_INTERVAL);
    TrackerConfig {
        interval: args.interval,
        min_interval: args.interval.min(60),
        peer_timeout: Duration::from_secs(u64::from(pace) * 2 + 60),
        allow_list: (!args.allow.is_empty())
            .then(|| args.allow.iter().copied().collect::<HashSet<_>>()),
        ..TrackerConfig::default()
    }
}

async fn serve(args: &Args) -> Result<String> {
    let config = config(args);
    // Listen for the stop signals before saying we run, so that a signal
    // sent as soon as we say so is handled cleanly.
    let stop = stop_signals()?;
    let state = Arc::new(Mutex::new(Tracker::new(config)));
    let in_use = |proto: &str| {
        format!(
            "cannot listen on {} ({proto}); is another tracker running there?",
            args.bind
        )
    };
    let http = HttpTracker::bind_shared(args.bind, Arc::clone(&state))
        .await
        .with_context(|| in_use("TCP"))?;
    // Port 0 asks for any free port: take the one TCP got for UDP too.
    let udp = UdpTracker::bind_shared(http.local_addr(), state)
        .await
        .with_context(|| in_use("UDP"))?;
    crate::print(&format!(
        "tracker running: {} and {}\nstop with Ctrl-C\n",
        http.announce_url(),
        udp.announce_url()
    ))?;
    stop.await;
    http.stop().await;
    udp.stop().await;
    Ok("tracker stopped\n".into())
}

/// A future that ends on Ctrl-C, or SIGTERM as a service manager sends,
/// with the exit status a shell gives a process that signal stops (128 +
/// the signal's number: 130, 143).
pub(crate) fn stop_signals() -> Result<impl std::future::Future<Output = u8>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => 143,
            _ = interrupt.recv() => 130,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_outlive_two_announces_at_the_pace_clients_keep() {
        let args = |interval| Args {
            bind: "127.0.0.1:0".parse().unwrap(),
            interval,
            allow: Vec::new(),
        };
        // libtorrent announces every 5 minutes at the fastest.
        let short = config(&args(5));
        assert_eq!(short.interval, 5);
        assert_eq!(short.peer_timeout, Duration::from_secs(2 * 300 + 60));
        let long = config(&args(1800));
        assert_eq!(long.peer_timeout, Duration::from_secs(2 * 1800 + 60));
        assert_eq!(long.min_interval, 60);
    }
}
