//! Against real software: btc's client announces to opentracker, and aria2
//! announces to btc's server. Both programs come from Debian packages
//! (`apt-get install opentracker aria2`; `.ci/run` installs them). Without
//! them these tests fail rather than pass vacuously.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use metainfo::{InfoHash, PeerId, TorrentBuilder};
use tracker::{AnnounceRequest, HttpClient, HttpTracker, TrackerConfig, UdpClient, UdpOptions};

/// A child process in its own process group, killed with its group on drop
/// (also when the test fails).
struct Process(Child);

impl Process {
    fn start(command: &mut Command) -> Process {
        use std::os::unix::process::CommandExt as _;
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program} (is it installed? see LAB.md): {e}")
            });
        Process(child)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `ready` every 50 ms until it holds or `limit` passes.
async fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn our_client_announces_to_opentracker() {
    let hash = InfoHash([0x5a; 20]);
    let dir = tempfile::tempdir().unwrap();
    // Debian's opentracker only tracks whitelisted torrents; the list is read
    // inside the folder it chroots to.
    std::fs::write(dir.path().join("whitelist"), format!("{hash}\n")).unwrap();
    let port = free_port();
    let _opentracker = Process::start(
        Command::new("opentracker")
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-P",
                &port.to_string(),
                "-d",
            ])
            .arg(dir.path())
            .args(["-w", "whitelist"]),
    );
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_for(Duration::from_secs(10), "opentracker to listen", || {
        std::net::TcpStream::connect(addr).is_ok()
    })
    .await;
    let url = format!("http://{addr}/announce");
    let client = HttpClient::default();

    // It loads the whitelist in the background after it starts listening:
    // until then it refuses every torrent. Ready is when it accepts ours.
    let seeder = AnnounceRequest::new(hash, PeerId::generate(), 7101, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        match client.announce(&url, &seeder).await {
            Err(err) if Instant::now() < deadline && err.to_string().contains("not authorized") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            result => break result.unwrap(),
        }
    };
    assert!(first.interval > 0);
    let mut leecher = AnnounceRequest::new(hash, PeerId::generate(), 7102, 100);
    let answer = client.announce(&url, &leecher).await.unwrap();
    let ports: Vec<u16> = answer.peers.iter().map(|p| p.addr.port()).collect();
    assert!(ports.contains(&7101), "{ports:?}");
    // Debian's build answers only compact requests: a non-compact one gets
    // HTTP 400, which must come through as that, not as garbage.
    leecher.compact = false;
    let err = client.announce(&url, &leecher).await.unwrap_err();
    assert!(
        matches!(err, tracker::TrackerError::Status(s) if s.as_u16() == 400),
        "{err}"
    );
    let scrape = client.scrape(&url, &[hash]).await.unwrap();
    assert_eq!(scrape.files[&hash].complete, 1);

    // The same tracker over UDP (BEP 15).
    let udp_url = format!("udp://{addr}/announce");
    let udp = UdpClient::new(UdpOptions {
        base_timeout: Duration::from_millis(500),
        max_retries: 3,
        ..UdpOptions::default()
    });
    let udp_leecher = AnnounceRequest::new(hash, PeerId::generate(), 7104, 100);
    let answer = udp.announce(&udp_url, &udp_leecher).await.unwrap();
    let ports: Vec<u16> = answer.peers.iter().map(|p| p.addr.port()).collect();
    assert!(ports.contains(&7101), "{ports:?}");
    assert_eq!(answer.complete, Some(1));
    let scrape = udp.scrape(&udp_url, &[hash]).await.unwrap();
    assert_eq!(scrape.files[&hash].incomplete, 2);
    // A torrent it does not track: opentracker's refusal comes through.
    let stranger = AnnounceRequest::new(InfoHash([1; 20]), PeerId::generate(), 7103, 0);
    let err = client.announce(&url, &stranger).await.unwrap_err();
    assert!(err.to_string().contains("not authorized"), "{err}");
}

#[tokio::test]
async fn aria2_announces_to_our_server_and_joins_its_swarm() {
    let server = HttpTracker::bind("127.0.0.1:0".parse().unwrap(), TrackerConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("shared.bin");
    std::fs::write(&content, vec![7u8; 100_000]).unwrap();
    let torrent = TorrentBuilder::new(&content)
        .tracker_tier(vec![server.announce_url()])
        .build(|_, _| {})
        .unwrap();
    let torrent_file = dir.path().join("shared.torrent");
    std::fs::write(&torrent_file, torrent.to_bytes()).unwrap();
    let port = free_port();
    let _aria2 = Process::start(&mut aria2_seeder(&torrent_file, dir.path(), port));
    let expected: SocketAddr = ([127, 0, 0, 1], port).into();
    let hash = torrent.info_hash();
    wait_for(Duration::from_secs(30), "aria2 to announce", || {
        server
            .state()
            .lock()
            .unwrap()
            .peers(&hash)
            .contains(&expected)
    })
    .await;
    let stats = server.state().lock().unwrap().stats(&hash).unwrap();
    assert_eq!((stats.complete, stats.incomplete), (1, 0), "aria2 seeds");
    server.stop().await;
}

fn aria2_seeder(torrent: &Path, dir: &Path, port: u16) -> Command {
    let mut command = Command::new("aria2c");
    command
        .args([
            "-V",
            "--seed-ratio=0.0",
            "--bt-tracker-interval=5",
            "--enable-dht=false",
            "--enable-dht6=false",
        ])
        .args([
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--check-integrity=true",
        ])
        .arg(format!("--listen-port={port}"))
        .arg("-d")
        .arg(dir)
        .arg(torrent);
    command
}
