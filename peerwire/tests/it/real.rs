//! Against a real client: aria2 (Debian's `aria2`; `.ci/run` installs it)
//! seeds a torrent on 127.0.0.1, and this test speaks the wire protocol to
//! it: handshake, extension handshake, bitfield, a request, and a block that
//! must match the torrent's piece hash. Without aria2 the test fails.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use metainfo::{BlockRef, PeerId, TorrentBuilder};
use peerwire::extension::ExtensionHandshake;
use peerwire::{Bitfield, HANDSHAKE_LEN, Handshake, Message, PeerCodec, Reserved};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// A child in its own process group, killed with the group on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

#[tokio::test]
async fn aria2_seeder_completes_handshakes_and_sends_a_verified_block() {
    use std::os::unix::process::CommandExt as _;

    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content.bin");
    let bytes: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&content, &bytes).unwrap();
    // 16 KiB pieces: one block is one whole piece, checkable by its hash.
    let torrent = TorrentBuilder::new(&content)
        .piece_length(16 * 1024)
        .build(|_, _| {})
        .unwrap();
    let torrent_file = dir.path().join("content.torrent");
    std::fs::write(&torrent_file, torrent.to_bytes()).unwrap();

    let port = free_port();
    let mut aria2 = Process(
        Command::new("aria2c")
            .args([
                "-V",
                "--seed-ratio=0.0",
                "--enable-dht=false",
                "--enable-dht6=false",
                "--bt-enable-lpd=false",
            ])
            .args(["--enable-peer-exchange=false", "--check-integrity=true"])
            .arg(format!("--listen-port={port}"))
            .arg("-d")
            .arg(dir.path())
            .arg(&torrent_file)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aria2c must be installed: apt-get install aria2"),
    );

    // Ready when it accepts a connection and answers the handshake (after
    // checking its copy); an early close is retried until the deadline.
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let hash = torrent.info_hash();
    let ours = Reserved::default()
        .with_extension_protocol(true)
        .with_fast(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (stream, theirs) = loop {
        if let Some(status) = aria2.0.try_wait().unwrap() {
            panic!("aria2 exited early: {status}");
        }
        match handshake(addr, Handshake::new(hash, PeerId::generate(), ours)).await {
            Ok(done) => break done,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("no handshake with aria2 at {addr}: {err}"),
        }
    };
    let theirs = Handshake::decode_for(&theirs, hash).unwrap();
    assert!(
        theirs.reserved.extension_protocol(),
        "aria2 offers BEP 10: {:?}",
        theirs.reserved
    );

    let num_pieces = torrent.layout().num_pieces();
    let mut peer = Framed::new(stream, PeerCodec::new(Some(num_pieces)));
    let mut hello = ExtensionHandshake::default();
    hello.m.insert("ut_metadata".into(), 1);
    hello.v = Some("btc test".into());
    peer.send(Message::Extended {
        id: 0,
        payload: hello.encode(),
    })
    .await
    .unwrap();
    peer.send(Message::Interested).await.unwrap();

    let (mut extension, mut have, mut unchoked, mut requested) = (None, None, false, false);
    let wanted = BlockRef {
        piece: 0,
        offset: 0,
        length: 16 * 1024,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let block = loop {
        let message = tokio::time::timeout_at(deadline, peer.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no block in time: extension {extension:?}, have {have:?}, unchoked {unchoked}"
                )
            })
            .expect("aria2 closed the connection")
            .unwrap();
        match message {
            Message::Extended { id: 0, payload } => {
                extension = Some(ExtensionHandshake::decode(&payload).unwrap())
            }
            Message::Bitfield(bits) => {
                have = Some(Bitfield::from_bytes(&bits, num_pieces).unwrap())
            }
            Message::HaveAll => have = Some(Bitfield::full(num_pieces)),
            Message::Unchoke => unchoked = true,
            Message::AllowedFast(0) => unchoked = true,
            // Choked or refused after asking: ask again when allowed.
            Message::Choke => (unchoked, requested) = (false, false),
            Message::Reject(block) if block == wanted => requested = false,
            Message::Piece {
                piece,
                offset,
                data,
            } => {
                assert_eq!((piece, offset), (0, 0));
                break data;
            }
            _ => {}
        }
        if unchoked && !requested && have.as_ref().is_some_and(|h| h.get(0)) {
            peer.send(Message::Request(wanted)).await.unwrap();
            requested = true;
        }
    };
    let extension = extension.expect("aria2 sent its extension handshake");
    assert!(extension.m.contains_key("ut_metadata"), "{extension:?}");
    assert_eq!(
        extension.metadata_size,
        Some(torrent.raw_info().len() as u32)
    );
    assert!(have.expect("aria2 said what it has").is_full());
    assert_eq!(block.len(), 16 * 1024);
    assert_eq!(
        sha1_smol::Sha1::from(&block).digest().bytes(),
        torrent.info().pieces()[0]
    );
    assert_eq!(&block[..], &bytes[..16 * 1024]);
}

/// Connects and exchanges handshakes; returns the stream and their 68 bytes.
async fn handshake(
    addr: SocketAddr,
    ours: Handshake,
) -> std::io::Result<(TcpStream, [u8; HANDSHAKE_LEN])> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(&ours.encode()).await?;
    let mut reply = [0u8; HANDSHAKE_LEN];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut reply))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no handshake in 10 s"))??;
    Ok((stream, reply))
}
