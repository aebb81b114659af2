//! What a run shows: per peer, and for the swarm; as JSON, as a chart, and
//! as a table a person can read at a glance.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::scenario::Scenario;

/// One member of the swarm, after the run.
#[derive(Clone, Debug, Serialize)]
pub struct MemberReport {
    /// Its name.
    pub name: String,
    /// "btc seeder", "btc leecher", "real seeder", "real leecher" or "web
    /// seed".
    pub kind: String,
    /// The faults it committed ("-" for none).
    pub faults: String,
    /// Seconds from the start until it had every piece (leechers).
    pub completed_after: Option<f64>,
    /// Whether its copy matches the content byte for byte (leechers).
    pub byte_exact: Option<bool>,
    /// Payload bytes it received.
    pub downloaded: u64,
    /// Payload bytes it sent.
    pub uploaded: u64,
    /// Pieces it received that failed their hash check.
    pub hash_failures: u32,
    /// The peers it banned, by name.
    pub banned: Vec<String>,
    /// Payload bytes received from each other member, by name.
    pub received_from: BTreeMap<String, u64>,
    /// (seconds, share of pieces verified) samples.
    pub progress: Vec<(f64, f64)>,
    /// Peers it connected to, by where it learnt of them (`tracker`,
    /// `dht`, `pex`, `given`, `incoming`), for btc peers.
    pub learnt: BTreeMap<String, usize>,
    /// Of those, the connections over uTP (the rest were over TCP), for
    /// btc peers.
    pub over_utp: usize,
    /// Connections that ended, by kind of reason (see
    /// [`engine::DropReason::kind`]), for btc peers.
    pub dropped: BTreeMap<String, usize>,
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// What it shows.
    pub about: String,
    /// Content size in bytes.
    pub size: u64,
    /// Piece length in bytes.
    pub piece_length: u64,
    /// Number of pieces.
    pub pieces: u32,
    /// Number of files.
    pub files: usize,
    /// Seconds until every leecher had everything.
    pub duration: f64,
    /// Of all the bytes btc leechers received, the share that came from
    /// other leechers rather than from seeders.
    pub leecher_share: f64,
    /// Every member.
    pub members: Vec<MemberReport>,
    /// Places silent strangers held at the seeders, and how many of them
    /// gave way to peers that trade (see [`Scenario::strangers`]).
    pub strangers: usize,
    /// See [`Report::strangers`].
    pub strangers_gave_way: usize,
}

impl Report {
    /// Builds the report, working out the swarm's figures.
    pub fn new(
        scenario: &Scenario,
        pieces: u32,
        duration: f64,
        members: Vec<MemberReport>,
    ) -> Report {
        let leechers: Vec<&str> = members
            .iter()
            .filter(|m| m.kind == "btc leecher")
            .map(|m| m.name.as_str())
            .collect();
        let (mut from_leechers, mut total) = (0u64, 0u64);
        for m in members.iter().filter(|m| m.kind == "btc leecher") {
            for (source, bytes) in &m.received_from {
                total += bytes;
                if leechers.contains(&source.as_str()) {
                    from_leechers += bytes;
                }
            }
        }
        Report {
            scenario: scenario.name.clone(),
            about: scenario.about.clone(),
            size: scenario.size,
            piece_length: scenario.piece_length,
            pieces,
            files: scenario.files,
            duration,
            leecher_share: if total == 0 {
                0.0
            } else {
                from_leechers as f64 / total as f64
            },
            members,
            strangers: 0,
            strangers_gave_way: 0,
        }
    }

    /// A member by name.
    pub fn member(&self, name: &str) -> Option<&MemberReport> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Whether every leecher finished with a byte-exact copy.
    pub fn all_exact(&self) -> bool {
        self.members
            .iter()
            .all(|m| m.byte_exact.is_none_or(|exact| exact))
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The summary table.
    pub fn table(&self) -> String {
        let mut out = row([
            "peer",
            "kind",
            "faults",
            "done",
            "received",
            "sent",
            "bad",
            "peers from",
            "banned",
        ]);
        for m in &self.members {
            let done = match (m.completed_after, m.byte_exact) {
                (Some(t), Some(true)) => format!("{t:.1} s"),
                (Some(_), Some(false)) => "CORRUPT".into(),
                (None, Some(_)) => "no".into(),
                _ => "-".into(),
            };
            let banned = if m.banned.is_empty() {
                "-".into()
            } else {
                m.banned.join(" ")
            };
            let from: Vec<String> = m
                .learnt
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(source, n)| format!("{source} {n}"))
                .collect();
            let from = if from.is_empty() {
                "-".into()
            } else {
                from.join(", ")
            };
            out.push_str(&row([
                &m.name,
                &m.kind,
                &m.faults,
                &done,
                &size(m.downloaded),
                &size(m.uploaded),
                &m.hash_failures.to_string(),
                &from,
                &banned,
            ]));
        }
        let _ = writeln!(
            out,
            "\n{} in {} pieces: every leecher done in {:.1} s; leechers got {:.0}% of their bytes from each other",
            size(self.size),
            self.pieces,
            self.duration,
            self.leecher_share * 100.0
        );
        let mut dropped: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &self.members {
            for (kind, n) in &m.dropped {
                *dropped.entry(kind).or_default() += n;
            }
        }
        let connections: usize = self.members.iter().flat_map(|m| m.learnt.values()).sum();
        if connections > 0 {
            let utp: usize = self.members.iter().map(|m| m.over_utp).sum();
            let _ = writeln!(
                out,
                "btc peers' connections: {utp} over uTP, {} over TCP",
                connections.saturating_sub(utp)
            );
        }
        if !dropped.is_empty() {
            let kinds: Vec<String> = dropped.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(out, "connections ended: {}", kinds.join(", "));
        }
        if self.strangers > 0 {
            let _ = writeln!(
                out,
                "silent strangers held {} places at the seeders; {} gave way to peers that trade",
                self.strangers, self.strangers_gave_way
            );
        }
        out
    }

    /// Writes the progress chart (SVG): every member's share of pieces over
    /// time.
    pub fn chart(&self, path: &Path) -> Result<(), String> {
        use plotters::prelude::*;
        let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
        let fail = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let end = self.duration.max(0.1) * 1.05;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("testnet: {} ({})", self.scenario, self.about),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..end, 0f64..100f64)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("% of pieces verified")
            .draw()
            .map_err(|e| fail(&e))?;
        for (i, m) in self.members.iter().enumerate() {
            let color = Palette99::pick(i).stroke_width(2);
            chart
                .draw_series(LineSeries::new(
                    m.progress.iter().map(|(t, f)| (*t, f * 100.0)),
                    color,
                ))
                .map_err(|e| fail(&e))?
                .label(m.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(
                        vec![(x, y), (x + 16, y)],
                        Palette99::pick(i).stroke_width(2),
                    )
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))
    }
}

/// Bytes as B, KiB, MiB or GiB.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// One line of the summary table.
fn row(cols: [&str; 9]) -> String {
    let [peer, kind, faults, done, received, sent, bad, from, banned] = cols;
    format!(
        "{peer:<20} {kind:<13} {faults:<26} {done:>8} {received:>10} {sent:>10} {bad:>5}  {from:<28} {banned}\n"
    )
}
