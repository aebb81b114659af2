use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use dht::{Announce, Config, Dht, Found, NodeId};

fn local(i: u32) -> SocketAddr {
    // 127.0.1.x: every node its own address, as across hosts.
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x7f00_0100 + i)), 0)
}

async fn swarm(count: u32) -> Vec<Dht> {
    let first = Dht::bind(local(1), Config::default()).await.expect("bind");
    let bootstrap = vec![first.local_addr()];
    let mut nodes = vec![first];
    for i in 2..=count {
        let config = Config {
            bootstrap: bootstrap.clone(),
            ..Config::default()
        };
        nodes.push(Dht::bind(local(i), config).await.expect("bind"));
    }
    nodes
}

/// Waits until every node knows at least `want` others: bootstrapped.
/// (A node need not know all of a small network: those that joined after
/// it and never queried it may be missing.)
async fn settle(nodes: &[Dht], want: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut smallest = usize::MAX;
        let mut sizes = Vec::new();
        for node in nodes {
            let (_, stats) = node.stats().await.expect("running");
            smallest = smallest.min(stats.nodes);
            sizes.push((stats.nodes, stats.buckets));
        }
        if smallest >= want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tables stay small: {smallest} {sizes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn finish(
    mut found: tokio::sync::mpsc::UnboundedReceiver<Found>,
) -> (Vec<SocketAddr>, dht::LookupDone) {
    let mut peers = Vec::new();
    let deadline = Duration::from_secs(30);
    loop {
        match tokio::time::timeout(deadline, found.recv()).await {
            Ok(Some(Found::Peers(more))) => peers.extend(more),
            Ok(Some(Found::Done(done))) => return (peers, done),
            Ok(None) => panic!("the node stopped"),
            Err(_) => panic!("the lookup did not end in {deadline:?}"),
        }
    }
}

#[tokio::test]
async fn fifty_nodes_on_loopback_find_an_announced_peer() {
    let nodes = swarm(50).await;
    settle(&nodes, 4).await;
    let hash = NodeId([0xab; 20]);
    let (_, done) = finish(nodes[10].get_peers(hash, Some(Announce::Port(51413))).await).await;
    assert!(done.announced >= 4, "announced to {} nodes", done.announced);
    let expected = SocketAddr::new(nodes[10].local_addr().ip(), 51413);
    for seeker in [20, 30, 49] {
        let (peers, _) = finish(nodes[seeker].get_peers(hash, None).await).await;
        assert_eq!(peers, vec![expected], "node {seeker}");
    }
    // The table survives a restart: a node built from the saved state
    // knows its nodes before it hears from anyone.
    let saved = nodes[5].saved().await.expect("running");
    let decoded = dht::Saved::decode(&saved.encode()).expect("round trip");
    assert!(
        decoded.nodes.len() >= 4,
        "{} nodes saved",
        decoded.nodes.len()
    );
    let reborn = Dht::bind(
        local(200),
        Config {
            id: decoded.id,
            known: decoded.nodes,
            ..Config::default()
        },
    )
    .await
    .expect("bind");
    settle(std::slice::from_ref(&reborn), 4).await;
    let (peers, _) = finish(reborn.get_peers(hash, None).await).await;
    assert_eq!(peers, vec![expected]);
}

#[tokio::test]
async fn implied_port_announces_the_dht_port() {
    let nodes = swarm(12).await;
    settle(&nodes, 4).await;
    let hash = NodeId([0x11; 20]);
    finish(nodes[3].get_peers(hash, Some(Announce::Implied)).await).await;
    let (peers, _) = finish(nodes[7].get_peers(hash, None).await).await;
    assert_eq!(peers, vec![nodes[3].local_addr()]);
}
