//! Swarm descriptions: who takes part, when each joins and leaves, and the
//! faults each commits.

use std::time::Duration;

use engine::Faults;

/// A real client taking part in a swarm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RealPeer {
    /// aria2, seeding.
    Aria2Seeder,
    /// aria2, downloading (exits when done).
    Aria2Leecher,
    /// Transmission, seeding.
    TransmissionSeeder,
    /// Transmission, downloading (it only accepts connections, so btc
    /// seeders must dial it).
    TransmissionLeecher,
}

impl RealPeer {
    /// The program it needs.
    pub fn program(self) -> &'static str {
        match self {
            RealPeer::Aria2Seeder | RealPeer::Aria2Leecher => "aria2c",
            RealPeer::TransmissionSeeder | RealPeer::TransmissionLeecher => "transmission-daemon",
        }
    }

    /// The Debian package that has it.
    pub fn package(self) -> &'static str {
        match self {
            RealPeer::Aria2Seeder | RealPeer::Aria2Leecher => "aria2",
            RealPeer::TransmissionSeeder | RealPeer::TransmissionLeecher => {
                "transmission-daemon transmission-cli"
            }
        }
    }

    /// Whether it starts with the whole content.
    pub fn is_seeder(self) -> bool {
        matches!(self, RealPeer::Aria2Seeder | RealPeer::TransmissionSeeder)
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            RealPeer::Aria2Seeder => "aria2-seed",
            RealPeer::Aria2Leecher => "aria2-leech",
            RealPeer::TransmissionSeeder => "transmission-seed",
            RealPeer::TransmissionLeecher => "transmission-leech",
        }
    }
}

/// When a btc peer leaves the swarm and comes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leave {
    /// When it leaves, from the start of the run.
    pub at: Duration,
    /// How long it stays away (it resumes from its resume file).
    pub away: Duration,
}

/// One btc peer of a swarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    /// Its name in reports.
    pub name: String,
    /// Whether it starts with the whole content.
    pub seeder: bool,
    /// When it joins, from the start of the run.
    pub join_at: Duration,
    /// Whether, and when, it leaves for a while.
    pub leave: Option<Leave>,
    /// The faults it commits.
    pub faults: Faults,
}

impl PeerSpec {
    /// An honest seeder there from the start.
    pub fn seeder(name: impl Into<String>) -> PeerSpec {
        PeerSpec {
            name: name.into(),
            seeder: true,
            join_at: Duration::ZERO,
            leave: None,
            faults: Faults::default(),
        }
    }

    /// An honest leecher there from the start.
    pub fn leecher(name: impl Into<String>) -> PeerSpec {
        PeerSpec {
            seeder: false,
            ..PeerSpec::seeder(name)
        }
    }

    /// This peer with these faults.
    pub fn with_faults(mut self, faults: Faults) -> PeerSpec {
        self.faults = faults;
        self
    }

    /// What its faults are, in a few words ("-" for none).
    pub fn describe_faults(&self) -> String {
        let f = &self.faults;
        let mut parts = Vec::new();
        if f.corrupt_uploads {
            parts.push("liar".to_string());
        }
        if let Some(rate) = f.upload_rate {
            parts.push(if rate >= 1 << 20 {
                format!("capped ({} MiB/s)", rate >> 20)
            } else {
                format!("slow ({} KiB/s)", rate >> 10)
            });
        }
        if let Some(n) = f.close_after_uploads {
            parts.push(format!("drops after {n} blocks"));
        }
        if let Some(latency) = f.latency {
            parts.push(format!("+{} ms", latency.as_millis()));
        }
        if f.never_unchoke {
            parts.push("never unchokes".into());
        }
        if self.join_at > Duration::ZERO {
            parts.push(format!("joins at {:.1} s", self.join_at.as_secs_f64()));
        }
        if let Some(leave) = self.leave {
            parts.push(format!(
                "away {:.1}-{:.1} s",
                leave.at.as_secs_f64(),
                (leave.at + leave.away).as_secs_f64()
            ));
        }
        if parts.is_empty() {
            "-".into()
        } else {
            parts.join(", ")
        }
    }
}

/// A web seed (BEP 19) in the swarm: an HTTP server of the content on
/// 127.0.0.1, named in the torrent's `url-list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebSeedSpec {
    /// Bytes per second it sends, over all requests, if capped.
    pub rate: Option<u64>,
}

/// A swarm to run: the content and its peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Its name (`--scenario NAME`).
    pub name: String,
    /// What it shows, in one line.
    pub about: String,
    /// Total content size in bytes.
    pub size: u64,
    /// Piece length in bytes.
    pub piece_length: u64,
    /// Number of files (1: a single-file torrent).
    pub files: usize,
    /// The btc peers.
    pub peers: Vec<PeerSpec>,
    /// The real clients.
    pub real: Vec<RealPeer>,
    /// A web seed, if any.
    pub web_seed: Option<WebSeedSpec>,
    /// Silent strangers (`crate::crowd`) that try to take this many places
    /// at each btc seeder as it joins, and hold them with keep-alives.
    pub strangers: usize,
    /// How peers find each other.
    pub discovery: Discovery,
    /// The run fails if it has not finished by then.
    pub deadline: Duration,
}

/// How the peers of a scenario find each other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Discovery {
    /// Through the testnet's tracker.
    #[default]
    Tracker,
    /// Through the DHT alone: the torrent names no tracker, and every btc
    /// peer runs a DHT node that starts from a router node of the run.
    Dht,
    /// Through peer exchange: the torrent names no tracker, leechers are
    /// told of the seeders only, and learn of each other through `ut_pex`.
    Pex,
}

/// The names of the built-in scenarios, in `--list` order.
pub const SCENARIOS: &[&str] = &[
    "default",
    "liar",
    "slow",
    "churn",
    "late-seeder",
    "flaky",
    "freerider",
    "latency",
    "mixed",
    "webseed",
    "crowd",
    "dht",
    "pex",
];

const MIB: u64 = 1 << 20;

impl Scenario {
    /// A plain swarm: `seeders` seeders and `leechers` leechers.
    pub fn shaped(
        seeders: usize,
        leechers: usize,
        size: u64,
        piece_length: u64,
        files: usize,
    ) -> Scenario {
        let mut peers: Vec<PeerSpec> = (1..=seeders)
            .map(|i| PeerSpec::seeder(format!("seed-{i}")))
            .collect();
        peers.extend((1..=leechers).map(|i| PeerSpec::leecher(format!("leech-{i}"))));
        Scenario {
            name: "custom".into(),
            about: format!("{seeders} seeders and {leechers} leechers"),
            size,
            piece_length,
            files,
            peers,
            real: Vec::new(),
            web_seed: None,
            strangers: 0,
            discovery: Discovery::Tracker,
            deadline: deadline_for(size),
        }
    }

    /// A built-in scenario by name, with content of `size` bytes (or its
    /// own default size).
    pub fn named(name: &str, size: Option<u64>) -> Option<Scenario> {
        let slow = |rate: u64| Faults {
            upload_rate: Some(rate),
            ..Faults::default()
        };
        let liar = Faults {
            corrupt_uploads: true,
            ..Faults::default()
        };
        let mut s = match name {
            "default" => {
                let mut s = Scenario::shaped(2, 6, 64 * MIB, 256 * 1024, 4);
                // The honest seeder uploads at 8 MiB/s a connection, so that
                // leechers have reason to trade, and time to be watched.
                s.peers[0].faults = slow(8 * MIB);
                s.peers[1] = PeerSpec::seeder("liar").with_faults(liar);
                s.peers[7] = PeerSpec::leecher("slow").with_faults(slow(256 * 1024));
                s.about = "a seeder, a lying seeder, 6 leechers (one slow to upload)".into();
                s
            }
            "liar" => {
                let mut s = Scenario::shaped(1, 3, 8 * MIB, 64 * 1024, 1);
                // The honest seeder is not so fast that the liar is never
                // asked.
                s.peers[0].faults = slow(2 * MIB);
                s.peers.push(PeerSpec::seeder("liar").with_faults(liar));
                s.about =
                    "a seeder that corrupts every block: banned, and everyone completes".into();
                s
            }
            "slow" => {
                let mut s = Scenario::shaped(1, 4, 8 * MIB, 64 * 1024, 2);
                s.peers
                    .push(PeerSpec::seeder("slow-seed").with_faults(slow(32 * 1024)));
                s.peers[1].faults = slow(64 * 1024);
                s.peers[1].name = "slow-leech".into();
                s.about = "a slow seeder and a slow leecher do not hold the others back".into();
                s
            }
            "churn" => {
                let mut s = Scenario::shaped(1, 4, 16 * MIB, 64 * 1024, 3);
                s.peers[0].faults = slow(2 * MIB);
                for (i, peer) in s.peers.iter_mut().skip(1).take(2).enumerate() {
                    peer.leave = Some(Leave {
                        at: Duration::from_millis(800 + 400 * i as u64),
                        away: Duration::from_secs(2),
                    });
                }
                s.about = "two leechers leave mid-download and come back; nobody stalls".into();
                s
            }
            "late-seeder" => {
                let mut s = Scenario::shaped(1, 3, 8 * MIB, 64 * 1024, 1);
                s.peers[0].join_at = Duration::from_secs(2);
                s.about = "leechers wait for a seeder that joins late".into();
                s
            }
            "flaky" => {
                let mut s = Scenario::shaped(1, 3, 8 * MIB, 64 * 1024, 2);
                s.peers[0].faults = slow(2 * MIB);
                s.peers.push(PeerSpec::seeder("flaky").with_faults(Faults {
                    close_after_uploads: Some(6),
                    ..Faults::default()
                }));
                s.about = "a seeder that drops every connection mid-piece".into();
                s
            }
            "freerider" => {
                let mut s = Scenario::shaped(1, 3, 8 * MIB, 64 * 1024, 1);
                s.peers
                    .push(PeerSpec::leecher("freerider").with_faults(Faults {
                        never_unchoke: true,
                        ..Faults::default()
                    }));
                s.about = "a leecher that never unchokes anyone still gets the content".into();
                s
            }
            "latency" => {
                let mut s = Scenario::shaped(2, 3, 8 * MIB, 64 * 1024, 1);
                s.peers[0].faults.latency = Some(Duration::from_millis(100));
                s.peers[1].faults.latency = Some(Duration::from_millis(50));
                s.about = "seeders 50 and 100 ms away: pipelining hides the latency".into();
                s
            }
            "mixed" => {
                let mut s = Scenario::shaped(1, 2, 8 * MIB, 64 * 1024, 3);
                s.real = vec![
                    RealPeer::Aria2Seeder,
                    RealPeer::Aria2Leecher,
                    RealPeer::TransmissionLeecher,
                ];
                s.about = "btc, aria2 and Transmission trading in one swarm".into();
                s
            }
            "webseed" => {
                let mut s = Scenario::shaped(0, 4, 32 * MIB, 256 * 1024, 3);
                s.web_seed = Some(WebSeedSpec {
                    rate: Some(8 * MIB),
                });
                s.about =
                    "a web server (BEP 19) is the only seed, at 8 MiB/s; leechers trade what it sends"
                        .into();
                s
            }
            "crowd" => {
                let mut s = Scenario::shaped(1, 4, 16 * MIB, 64 * 1024, 1);
                s.strangers = 80;
                // Past the 2 s a mute stranger is kept.
                for leecher in s.peers.iter_mut().skip(1) {
                    leecher.join_at = Duration::from_secs(3);
                }
                s.about =
                    "80 silent strangers fill the seeder's 50 places; they give way to the leechers"
                        .into();
                s
            }
            "dht" => {
                let mut s = Scenario::shaped(1, 8, 16 * MIB, 64 * 1024, 2);
                s.discovery = Discovery::Dht;
                // A seeder slow enough that the leechers must find each
                // other to finish quickly.
                s.peers[0].faults = slow(MIB);
                s.about = "no tracker: everyone finds the others through the DHT alone".into();
                s
            }
            "pex" => {
                let mut s = Scenario::shaped(1, 8, 16 * MIB, 64 * 1024, 2);
                s.discovery = Discovery::Pex;
                s.peers[0].faults = slow(MIB);
                s.about =
                    "no tracker: leechers know only the seeder, and find each other through ut_pex"
                        .into();
                s
            }
            _ => return None,
        };
        s.name = name.into();
        if let Some(size) = size {
            s.size = size;
        }
        s.deadline = deadline_for(s.size);
        Some(s)
    }

    /// Whether any real client is wanted.
    pub fn has_real(&self) -> bool {
        !self.real.is_empty()
    }

    /// Adds the real clients that `--real` brings: an aria2 seeder and
    /// leecher, and a Transmission leecher.
    pub fn add_real(&mut self) {
        for peer in [
            RealPeer::Aria2Seeder,
            RealPeer::Aria2Leecher,
            RealPeer::TransmissionLeecher,
        ] {
            if !self.real.contains(&peer) {
                self.real.push(peer);
            }
        }
    }
}

/// Time allowed for content of `size` bytes: two minutes, plus a second for
/// every 2 MiB (a debug build on a slow machine moves well over that).
fn deadline_for(size: u64) -> Duration {
    Duration::from_secs(120 + size / (2 * MIB))
}
