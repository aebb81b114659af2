//! The benchmark's report: medians cell by cell, Markdown tables, and how
//! btc compares with the others.

use super::{Bench, Client, Run, Scenario, median};

/// Medians of one (scenario, seeders, leecher) cell.
#[derive(Clone, Debug, PartialEq)]
struct Cell {
    seeders: String,
    leecher: Client,
    bytes: u64,
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_mib: f64,
    seeder_cpu_seconds: f64,
    machine_cpu_seconds: f64,
}

impl Cell {
    fn mb_s(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e6
    }

    fn cpu_per_gib(&self) -> f64 {
        self.cpu_seconds / (self.bytes as f64 / (1u64 << 30) as f64)
    }
}

/// The cells of `scenario`, in the order they ran.
fn cells(bench: &Bench, scenario: Scenario) -> Vec<Cell> {
    let mut keys: Vec<(&str, Client)> = Vec::new();
    for run in bench.runs.iter().filter(|r| r.scenario == scenario) {
        if !keys.contains(&(run.seeders.as_str(), run.leecher)) {
            keys.push((run.seeders.as_str(), run.leecher));
        }
    }
    keys.into_iter()
        .map(|(seeders, leecher)| {
            let runs: Vec<&Run> = bench
                .runs
                .iter()
                .filter(|r| r.scenario == scenario && r.seeders == seeders && r.leecher == leecher)
                .collect();
            Cell {
                seeders: seeders.to_string(),
                leecher,
                bytes: runs.first().map_or(0, |r| r.bytes),
                seconds: median(runs.iter().map(|r| r.seconds).collect()),
                cpu_seconds: median(runs.iter().map(|r| r.cpu_seconds).collect()),
                peak_rss_mib: median(runs.iter().map(|r| r.peak_rss_mib).collect()),
                seeder_cpu_seconds: median(runs.iter().map(|r| r.seeder_cpu_seconds).collect()),
                machine_cpu_seconds: median(runs.iter().map(|r| r.machine_cpu_seconds).collect()),
            }
        })
        .collect()
}

/// How btc compares, cell by cell: as a leecher against the fastest other
/// leecher from the same seeders, and (in `one`) as a seeder against the
/// fastest other seeder for the same leecher.
fn comparisons(bench: &Bench) -> Vec<String> {
    let mut lines = Vec::new();
    for scenario in Scenario::ALL {
        let cells = cells(bench, scenario);
        let mut seeders: Vec<&str> = cells.iter().map(|c| c.seeders.as_str()).collect();
        seeders.dedup();
        for seeders in seeders {
            let row: Vec<&Cell> = cells.iter().filter(|c| c.seeders == seeders).collect();
            let Some(btc) = row.iter().find(|c| c.leecher == Client::Btc) else {
                continue;
            };
            let Some(best) = row
                .iter()
                .filter(|c| c.leecher != Client::Btc)
                .max_by(|a, b| a.mb_s().total_cmp(&b.mb_s()))
            else {
                continue;
            };
            let leanest = row
                .iter()
                .filter(|c| c.leecher != Client::Btc)
                .map(|c| c.cpu_per_gib())
                .fold(f64::INFINITY, f64::min);
            let leanest_machine = row
                .iter()
                .filter(|c| c.leecher != Client::Btc)
                .map(|c| c.machine_cpu_seconds)
                .fold(f64::INFINITY, f64::min);
            lines.push(format!(
                "- {scenario:?}, from {seeders}: btc leecher {:.0} MB/s = {:.2}× the fastest other ({} {:.0} MB/s); CPU {:.2} s/GiB against the leanest other's {:.2}; machine CPU {:.2} s against the others' lowest {:.2}",
                btc.mb_s(),
                btc.mb_s() / best.mb_s(),
                best.leecher.name(),
                best.mb_s(),
                btc.cpu_per_gib(),
                leanest,
                btc.machine_cpu_seconds,
                leanest_machine,
            ));
        }
        if scenario == Scenario::Encrypted {
            // What RC4 costs btc: its encrypted download from a btc seeder
            // against its plaintext one in `one`, same run.
            let one = self::cells(bench, Scenario::One);
            let plain = one
                .iter()
                .find(|c| c.seeders == "btc" && c.leecher == Client::Btc);
            let encrypted = cells
                .iter()
                .find(|c| c.seeders == "btc" && c.leecher == Client::Btc);
            if let (Some(plain), Some(encrypted)) = (plain, encrypted) {
                lines.push(format!(
                    "- Encrypted, btc to btc: {:.0} MB/s = {:.2}× its plaintext download in `one` ({:.0} MB/s)",
                    encrypted.mb_s(),
                    encrypted.mb_s() / plain.mb_s(),
                    plain.mb_s(),
                ));
            }
        }
        if scenario == Scenario::Utp {
            // What uTP costs btc against TCP, from the same seeder, same run.
            for seeder in ["btc", "libtorrent"] {
                let btc_from = |label: String| {
                    cells
                        .iter()
                        .find(|c| c.seeders == label && c.leecher == Client::Btc)
                };
                let tcp = btc_from(format!("{seeder} (TCP)"));
                let utp = btc_from(format!("{seeder} (uTP)"));
                if let (Some(tcp), Some(utp)) = (tcp, utp) {
                    lines.push(format!(
                        "- Utp, from {seeder}: btc leecher over uTP {:.0} MB/s = {:.2}× over TCP ({:.0} MB/s)",
                        utp.mb_s(),
                        utp.mb_s() / tcp.mb_s(),
                        tcp.mb_s(),
                    ));
                }
            }
        }
        if scenario != Scenario::One {
            continue;
        }
        let mut leechers: Vec<Client> = cells.iter().map(|c| c.leecher).collect();
        leechers.sort_by_key(|c| Client::ALL.iter().position(|a| a == c));
        leechers.dedup();
        for leecher in leechers.into_iter().filter(|c| *c != Client::Btc) {
            let column: Vec<&Cell> = cells.iter().filter(|c| c.leecher == leecher).collect();
            let Some(btc) = column.iter().find(|c| c.seeders == "btc") else {
                continue;
            };
            let Some(best) = column
                .iter()
                .filter(|c| c.seeders != "btc")
                .max_by(|a, b| a.mb_s().total_cmp(&b.mb_s()))
            else {
                continue;
            };
            lines.push(format!(
                "- One, {} leecher: from the btc seeder {:.0} MB/s = {:.2}× its fastest other seeder ({} {:.0} MB/s); the btc seeder used {:.2} CPU s against {:.2}",
                leecher.name(),
                btc.mb_s(),
                btc.mb_s() / best.mb_s(),
                best.seeders,
                best.mb_s(),
                btc.seeder_cpu_seconds,
                best.seeder_cpu_seconds,
            ));
        }
    }
    lines
}

/// The Markdown tables of medians, and how btc compares.
pub(crate) fn table(bench: &Bench) -> String {
    let mut out = format!(
        "## btc bench, {}: {} MiB, {} KiB pieces, medians of {} round(s)\n\n\
         {}; machine bounds in the same run: SHA-1 {:.0} MB/s, loopback TCP {:.0} MB/s, \
         file writes {:.0} MB/s.\n",
        bench.date,
        bench.size >> 20,
        bench.piece_length >> 10,
        bench.rounds,
        bench.machine,
        bench.bounds.sha1_mb_s,
        bench.bounds.loopback_mb_s,
        bench.bounds.file_write_mb_s
    );
    for scenario in Scenario::ALL {
        let cells = cells(bench, scenario);
        let Some(first) = cells.first() else {
            continue;
        };
        let shape = match scenario {
            Scenario::Files => format!("{} files, {} MiB", bench.files, first.bytes >> 20),
            _ => format!("{} MiB", first.bytes >> 20),
        };
        out.push_str(&format!(
            "\n### {} ({shape})\n\n\
             | seeders | leecher | seconds | MB/s | CPU s | CPU s/GiB | peak RSS MiB | seeders' CPU s | machine CPU s |\n\
             |---|---|---|---|---|---|---|---|---|\n",
            scenario.title(bench.swarm)
        ));
        for cell in &cells {
            out.push_str(&format!(
                "| {} | {} | {:.2} | {:.0} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} |\n",
                cell.seeders,
                cell.leecher.name(),
                cell.seconds,
                cell.mb_s(),
                cell.cpu_seconds,
                cell.cpu_per_gib(),
                cell.peak_rss_mib,
                cell.seeder_cpu_seconds,
                cell.machine_cpu_seconds,
            ));
        }
    }
    let comparisons = comparisons(bench);
    if !comparisons.is_empty() {
        out.push_str("\n### btc against the others\n\n");
        for line in comparisons {
            out.push_str(&line);
            out.push('\n');
        }
    }
    if !bench.missing.is_empty() {
        out.push_str(&format!("\nnot installed: {}\n", bench.missing.join(", ")));
    }
    out
}
