//! Sends bytes from one uTP socket to another on loopback and tells how
//! fast: `cargo run --release -p utp --example transfer -- 256` (MiB).

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utp::{Socket, SocketConfig};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(64);
    let loopback = "127.0.0.1:0".parse().expect("an address");
    let server = Socket::bind(loopback, SocketConfig::default()).await?;
    let client = Socket::bind(loopback, SocketConfig::default()).await?;
    let to = server.local_addr();
    let receiver = tokio::spawn(async move {
        let (mut stream, _) = server.accept().await?;
        let mut buf = vec![0; 256 << 10];
        let mut total = 0;
        loop {
            match stream.read(&mut buf).await? {
                0 => return Ok::<_, std::io::Error>(total),
                n => total += n,
            }
        }
    });
    let started = Instant::now();
    let mut stream = client.connect(to).await?;
    let chunk = vec![7u8; 1 << 20];
    for _ in 0..mib {
        stream.write_all(&chunk).await?;
    }
    let path = stream.info();
    stream.shutdown().await?;
    let received = receiver.await.map_err(std::io::Error::other)??;
    let took = started.elapsed();
    println!(
        "{} MiB in {:.2?}: {:.0} MB/s \n{:#?}",
        received >> 20,
        took,
        received as f64 / took.as_secs_f64() / 1e6,
        path
    );
    Ok(())
}
