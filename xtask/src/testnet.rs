//! `cargo xtask testnet`: runs a swarm scenario on 127.0.0.1 with live
//! progress, then prints a summary table and writes the report (JSON) and
//! a progress chart (SVG) under `target/testnet/`.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use testnet::{Progress, SCENARIOS, Scenario};

/// Run a BitTorrent swarm on this machine: an in-process tracker, btc
/// seeders and leechers (some of them faulty), and optionally real clients.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask testnet", bin_name = "cargo xtask testnet")]
struct Args {
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// The scenario to run.
    #[arg(long, default_value = "default")]
    scenario: String,
    /// Run a plain swarm with this many seeders instead of a scenario.
    #[arg(long)]
    seeders: Option<usize>,
    /// Run a plain swarm with this many leechers instead of a scenario.
    #[arg(long)]
    leechers: Option<usize>,
    /// Content size, such as 64MiB.
    #[arg(long, value_parser = parse_size)]
    size: Option<u64>,
    /// Piece length, such as 256KiB.
    #[arg(long, value_parser = parse_size)]
    piece_length: Option<u64>,
    /// Number of files.
    #[arg(long)]
    files: Option<usize>,
    /// Add the real clients that are installed (aria2, Transmission).
    #[arg(long)]
    real: bool,
}

pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 64MiB"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(format!("{text:?}: unknown unit (use KiB, MiB or GiB)")),
    };
    number
        .checked_mul(factor)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    // The engine's logs, when asked for (`RUST_LOG=engine=debug`).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args =
        Args::try_parse_from(std::iter::once("testnet".to_string()).chain(args.iter().cloned()))
            // --help prints and exits 0; a usage error prints and exits 2.
            .unwrap_or_else(|e| e.exit());
    if args.list {
        for name in SCENARIOS {
            if let Some(s) = Scenario::named(name, None) {
                println!("{name:<12} {} ({})", s.about, testnet::size(s.size));
            }
        }
        return Ok(());
    }
    let mut scenario = match (args.seeders, args.leechers) {
        (None, None) => Scenario::named(&args.scenario, args.size).with_context(|| {
            format!(
                "no scenario {:?}; the scenarios are {}",
                args.scenario,
                SCENARIOS.join(", ")
            )
        })?,
        (Some(0), _) => bail!("--seeders must be at least 1: someone must have the content"),
        (_, Some(0)) => bail!("--leechers must be at least 1: someone must download"),
        (seeders, leechers) => Scenario::shaped(
            seeders.unwrap_or(1),
            leechers.unwrap_or(4),
            args.size.unwrap_or(32 << 20),
            args.piece_length.unwrap_or(256 << 10),
            args.files.unwrap_or(1),
        ),
    };
    if let Some(piece_length) = args.piece_length {
        if !piece_length.is_power_of_two() || piece_length < 16 * 1024 {
            bail!("--piece-length must be a power of two of at least 16KiB");
        }
        scenario.piece_length = piece_length;
    }
    if let Some(files) = args.files {
        scenario.files = files.max(1);
    }
    if args.real {
        scenario.add_real();
    }
    let missing: Vec<_> = scenario
        .real
        .iter()
        .filter(|r| !testnet::real::installed(r.program()))
        .collect();
    if !missing.is_empty() {
        for real in &missing {
            eprintln!(
                "{} is not installed (for {}): apt-get install {}",
                real.program(),
                real.name(),
                real.package()
            );
        }
        if args.real {
            bail!("install the clients above, or run without --real");
        }
        bail!("scenario {:?} needs the clients above", scenario.name);
    }
    println!(
        "testnet: {} ({}): {} in {} file(s), {} KiB pieces, {} btc peers{}",
        scenario.name,
        scenario.about,
        testnet::size(scenario.size),
        scenario.files,
        scenario.piece_length / 1024,
        scenario.peers.len(),
        if scenario.real.is_empty() {
            String::new()
        } else {
            format!(
                " + {}",
                scenario
                    .real
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let tty = std::io::stderr().is_terminal();
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|w| *w > 20)
        .unwrap_or(80);
    let mut last_line = -1.0f64;
    let report = runtime
        .block_on(testnet::run(&scenario, |t, progress| {
            if tty {
                // One terminal row, so that it can be rewritten in place.
                let line: String = line(t, progress).chars().take(width - 1).collect();
                eprint!("\r\x1b[2K{line}");
            } else if t - last_line >= 2.0 {
                eprintln!("{}", line(t, progress));
                last_line = t;
            }
        }))
        .map_err(|e| anyhow::anyhow!(e));
    if tty {
        eprint!("\r\x1b[2K");
        let _ = std::io::stderr().flush();
    }
    let report = report?;
    println!("\n{}", report.table());
    let dir = target_dir().join("testnet");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize().unwrap_or(dir);
    let json = dir.join(format!("{}.json", report.scenario));
    let chart = dir.join(format!("{}.svg", report.scenario));
    std::fs::write(&json, report.to_json())
        .with_context(|| format!("cannot write {}", json.display()))?;
    report.chart(&chart).map_err(|e| anyhow::anyhow!(e))?;
    println!("report: {}\nchart:  {}", json.display(), chart.display());
    if !report.all_exact() {
        bail!("a download is not byte-exact");
    }
    Ok(())
}

/// One line of live progress: time, then each member's percentage.
fn line(t: f64, progress: &[Progress]) -> String {
    let mut out = format!("{t:5.1} s ");
    for p in progress {
        let value = match (p.present, p.fraction) {
            (false, _) => "away".to_string(),
            (true, Some(f)) => format!("{:.0}%", f * 100.0),
            (true, None) => "…".to_string(),
        };
        out.push_str(&format!(" {}:{value}", p.name));
    }
    out
}

/// The workspace's target folder (`CARGO_TARGET_DIR` if set).
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}
