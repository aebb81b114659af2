//! Swarm simulations on one machine.
//!
//! A [`Scenario`] describes a swarm: content of a given size and shape,
//! btc seeders and leechers ([`PeerSpec`]), each with the moment it joins,
//! whether it leaves for a while, and the faults it commits (through the
//! engine's own seam, [`engine::Faults`]: a slow uploader, added latency, a
//! liar, a peer that drops connections mid-piece, one that never unchokes),
//! plus real clients ([`RealPeer`]: aria2, Transmission), a web seed
//! ([`WebSeedSpec`], served by [`WebSeedServer`]) and silent strangers
//! that fill the seeders' tables ([`Scenario::strangers`]). [`run`] builds it
//! on 127.0.0.1 with the tracker crate's server in process, samples
//! everyone's progress, checks every download byte for byte, and returns a
//! [`Report`]: per peer the time to complete, the bytes received from each
//! other peer, hash failures and bans; for the swarm, the share of bytes
//! leechers gave each other; as a table, JSON, and an SVG chart.
//!
//! `cargo xtask testnet` is the front door; [`Content`] and [`real`] are
//! also used by the interoperability tests, [`relay`] (delay, jitter and
//! loss on a UDP path) by the tests of uTP, and [`crowd`] (silent peers
//! and bursts of handshakes, each from a loopback address of its own) by
//! the tests of full peer tables.
//!
//! ```no_run
//! # async fn example() -> Result<(), String> {
//! let scenario = testnet::Scenario::named("liar", None).ok_or("no such scenario")?;
//! let report = testnet::run(&scenario, |_, _| {}).await?;
//! assert!(report.all_exact());
//! println!("{}", report.table());
//! # Ok(())
//! # }
//! ```

mod content;
pub mod crowd;
pub mod real;
pub mod relay;
mod report;
mod run;
mod scenario;
mod webseed;

pub use content::Content;
pub use report::{MemberReport, Report, size};
pub use run::{Progress, local_config, local_config_at, local_tracker, run, swarm_ip};
pub use scenario::{Discovery, Leave, PeerSpec, RealPeer, SCENARIOS, Scenario, WebSeedSpec};
pub use webseed::WebSeedServer;
