//! `btc dht`: a DHT node of its own, and the DHT's answer for one torrent.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use dht::{Dht, Found, NodeId, Saved};
use metainfo::InfoHash;

/// Run a DHT node until stopped, or ask the DHT for a torrent's peers.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = false)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Option<DhtCommand>,
    /// The node's UDP address and port [default: 0.0.0.0:6881 for a node,
    /// any free port for get-peers].
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    bind: Option<SocketAddr>,
    /// A node to start from instead of the public routers (repeatable).
    #[arg(long, value_name = "HOST:PORT", global = true)]
    dht_bootstrap: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
enum DhtCommand {
    /// Print the peers the DHT knows for a torrent, then exit.
    GetPeers {
        /// The torrent's info-hash (40 hex digits).
        info_hash: InfoHash,
        /// Also announce that a peer of it listens on this port.
        #[arg(long, value_name = "PORT")]
        announce: Option<u16>,
        /// Give up after this long (such as 30s).
        #[arg(long, value_name = "DURATION", default_value = "60s",
              value_parser = crate::format::parse_duration)]
        timeout: Duration,
    },
}

pub(crate) fn run(args: &Args) -> Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match &args.command {
            None => serve(args).await,
            Some(DhtCommand::GetPeers {
                info_hash,
                announce,
                timeout,
            }) => get_peers(args, *info_hash, *announce, *timeout).await,
        }
    })
}

/// The node's settings: the saved id and table, and the bootstrap nodes.
async fn config(args: &Args, ipv6: bool) -> dht::Config {
    let mut config = dht::Config::default();
    let state = crate::download::state_dir().map(|d| d.join("dht.dat"));
    if let Some(saved) = state
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|bytes| Saved::decode(&bytes).ok())
    {
        config.last_id = saved.id;
        config.known = saved.nodes;
    }
    let names: Vec<String> = if args.dht_bootstrap.is_empty() {
        dht::PUBLIC_ROUTERS.iter().map(|r| r.to_string()).collect()
    } else {
        args.dht_bootstrap.clone()
    };
    config.bootstrap = dht::resolve(&names, ipv6).await;
    config
}

/// The node at `--bind` (else `default`); a read-only one (BEP 43) asks
/// but answers nobody and stays out of other nodes' tables.
async fn bind(args: &Args, default: SocketAddr, read_only: bool) -> Result<Dht> {
    let addr = args.bind.unwrap_or(default);
    let mut config = config(args, addr.is_ipv6()).await;
    config.read_only = read_only;
    if config.bootstrap.is_empty() && config.known.is_empty() {
        bail!("no DHT node to start from: none of the bootstrap names resolves");
    }
    Dht::bind(addr, config)
        .await
        .with_context(|| format!("cannot bind the DHT node's UDP socket to {addr}"))
}

async fn serve(args: &Args) -> Result<String> {
    let stop = crate::tracker::stop_signals()?;
    tokio::pin!(stop);
    let node = bind(args, SocketAddr::from(([0, 0, 0, 0], 6881)), false).await?;
    let (id, _) = node.stats().await.context("the DHT node stopped")?;
    crate::print(&format!(
        "DHT node {id} on {}\nstop with Ctrl-C\n",
        node.local_addr()
    ))?;
    let mut every = tokio::time::interval(Duration::from_secs(5));
    let mut last = None;
    loop {
        tokio::select! {
            _ = every.tick() => {
                let Some((id, stats)) = node.stats().await else { break };
                let line = format!(
                    "id {id}: {} nodes in {} buckets, {} torrents with {} peers announced\n",
                    stats.nodes, stats.buckets, stats.torrents, stats.peers
                );
                if last.as_ref() != Some(&line) {
                    crate::print(&line)?;
                    last = Some(line);
                }
            }
            _ = &mut stop => break,
        }
    }
    if let Some(path) = crate::download::state_dir().map(|d| d.join("dht.dat"))
        && let Some(saved) = node.saved().await
    {
        let _ = std::fs::write(path, saved.encode());
    }
    Ok("DHT node stopped\n".into())
}

async fn get_peers(
    args: &Args,
    info_hash: InfoHash,
    announce: Option<u16>,
    timeout: Duration,
) -> Result<String> {
    // A node that lives for one lookup has no business in others' tables.
    let node = bind(args, SocketAddr::from(([0, 0, 0, 0], 0)), true).await?;
    let started = Instant::now();
    let mut found = node
        .get_peers(NodeId(info_hash.0), announce.map(dht::Announce::Port))
        .await;
    let mut peers: Vec<SocketAddr> = Vec::new();
    let done = tokio::time::timeout(timeout, async {
        while let Some(next) = found.recv().await {
            match next {
                Found::Peers(more) => peers.extend(more),
                Found::Done(done) => return Some(done),
            }
        }
        None
    })
    .await;
    let mut out = String::new();
    peers.sort_unstable();
    for peer in &peers {
        out.push_str(&format!("{peer}\n"));
    }
    match done {
        Ok(Some(done)) => out.push_str(&format!(
            "{} peers; {} of {} nodes answered in {} ms{}\n",
            peers.len(),
            done.answers,
            done.queries,
            started.elapsed().as_millis(),
            if announce.is_some() {
                format!("; announced to {}", done.announced)
            } else {
                String::new()
            }
        )),
        Ok(None) => bail!("the DHT node stopped"),
        Err(_) => out.push_str(&format!(
            "{} peers; the lookup did not end within {} s\n",
            peers.len(),
            timeout.as_secs()
        )),
    }
    Ok(out)
}
