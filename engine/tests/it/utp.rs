//! btc sessions over uTP: only uTP both ways, uTP preferred where both
//! sides have it, and TCP when the other side has no uTP.

use engine::{Session, SessionConfig, Transport};

use super::*;

fn over(transport: Transport) -> SessionConfig {
    SessionConfig {
        transport,
        ..test_config()
    }
}

/// A leecher with `leecher`'s transport downloads `content` from a seeder
/// with `seeder`'s; returns whether the connection ran over uTP.
async fn fetch(content: &Content, leecher: Transport, seeder: Transport) -> bool {
    // Two seconds or so.
    let total: u64 = content.files.iter().map(|(_, f)| f.len() as u64).sum();
    let seeding = slow_seeder(content, over(seeder), total / 2).await;
    let leeching = Session::start(over(leecher)).await.unwrap();
    let (handle, dir) = leech_from(&leeching, content, vec![seeding.local_addr()]).await;
    let mut watch = handle.watch();
    let seen = tokio::time::timeout(Duration::from_secs(30), watch.wait_for(|s| s.peers > 0))
        .await
        .expect("connected in time")
        .unwrap()
        .clone();
    complete(&handle).await;
    content.assert_downloaded(dir.path());
    leeching.shutdown().await;
    seeding.shutdown().await;
    seen.utp_peers == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_file_torrent_downloads_over_utp_alone() {
    let content = content(&[3_000_000, 1, 700_001, 0, 2_500_000], 32 * 1024, &[], 91);
    assert!(fetch(&content, Transport::Utp, Transport::Utp).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_file_torrent_downloads_over_utp_alone() {
    let content = content(&[12_345_678], 256 * 1024, &[], 92);
    assert!(fetch(&content, Transport::Utp, Transport::Utp).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utp_is_taken_first_where_both_sides_have_it() {
    let content = content(&[1_000_000], 32 * 1024, &[], 93);
    assert!(fetch(&content, Transport::Both, Transport::Both).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_utp_is_reached_over_tcp() {
    let content = content(&[1_000_000], 32 * 1024, &[], 94);
    assert!(!fetch(&content, Transport::Both, Transport::Tcp).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_tcp_is_reached_over_utp() {
    let content = content(&[1_000_000], 32 * 1024, &[], 95);
    assert!(!fetch(&content, Transport::Tcp, Transport::Both).await);
    assert!(fetch(&content, Transport::Both, Transport::Utp).await);
}
