//! btc over uTP alone (`Transport::Utp`: it neither dials nor accepts TCP)
//! against real clients, both ways, byte-exact: libtorrent over uTP alone,
//! qBittorrent with `Session\BTProtocol=UTP`, and Transmission with uTP on
//! (it always takes TCP too, but btc offers it none). Any byte moved went
//! over uTP.

use engine::{SessionConfig, Transport};
use testnet::Content;
use testnet::real::{Crypto, LtNetwork};

use super::clients::{
    content_with, leech_from, libtorrent_leeches, libtorrent_seeds, qbittorrent_leeches,
    qbittorrent_seeds, seeder, transmission_leeches, transmission_seeds,
};
use super::{SIZES, SIZES_NOT_EMPTY, tracker};

fn utp_only() -> SessionConfig {
    SessionConfig {
        transport: Transport::Utp,
        ..testnet::local_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_libtorrent_over_utp_alone_both_ways() {
    let content = Content::generate("multi", &SIZES, true, 32 * 1024, &[], 111).unwrap();
    let network = LtNetwork {
        transport: Transport::Utp,
        ..LtNetwork::default()
    };
    let lt = libtorrent_seeds(&content, network);
    let stats = leech_from(&content, lt.addr(), utp_only()).await;
    assert_eq!(stats.downloaded, content.torrent().info().total_length());
    drop(lt);

    let (seeder, handle) = seeder(&content, utp_only()).await;
    libtorrent_leeches(&content, &seeder, &handle, network);
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_qbittorrent_over_utp_alone_both_ways() {
    let tracker = tracker().await;
    let content = content_with(&tracker, &SIZES, 112);
    let seeding = qbittorrent_seeds(&content, Crypto::Plaintext, Transport::Utp);
    leech_from(&content, seeding.addr(), utp_only()).await;
    drop(seeding);

    let (seeder, handle) = seeder(&content, utp_only()).await;
    qbittorrent_leeches(&content, &handle, Crypto::Plaintext, Transport::Utp).await;
    seeder.shutdown().await;
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_transmission_over_utp_both_ways() {
    let tracker = tracker().await;
    let content = content_with(&tracker, &SIZES_NOT_EMPTY, 113);
    let seeding = transmission_seeds(&content, 0, true);
    leech_from(&content, seeding.addr(), utp_only()).await;
    drop(seeding);

    let (seeder, handle) = seeder(&content, utp_only()).await;
    transmission_leeches(&content, &handle, 0, true).await;
    seeder.shutdown().await;
    tracker.stop().await;
}
