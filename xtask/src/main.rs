//! `cargo xtask`: the project's developer tasks.
//!
//! - `tidy`: checks that every crate depends only on crates to its left in
//!   the design's order, and that the sans-IO crates use no async runtime.
//!   `cargo test` runs the same check.
//! - `fuzz [TARGET] [--seconds N]`: runs the cargo-fuzz targets in `fuzz/`,
//!   each then with its corpus minimized to the inputs that reach every
//!   edge (needs `cargo install cargo-fuzz` and a nightly toolchain).
//! - `testnet [--list] [--scenario NAME] [--seeders N --leechers N] [--size
//!   SIZE] [--piece-length SIZE] [--files N] [--real]`: runs a swarm on
//!   127.0.0.1 (see the `testnet` crate) and writes its report under
//!   `target/testnet/`.
//! - `bench [--size SIZE] [--rounds N] [--btc PATH]`: btc against the real
//!   clients installed, in turns, from one btc seeder; medians and the
//!   machine's bounds, written under `target/bench/`.
//! - `siege [idle|burst|load|udp] [--btc PATH]`: a btc binary attacked on
//!   127.0.0.1 (silent connections, bursts of handshakes, greedy leechers,
//!   forged UDP tracker packets), and what it withstands.
//! - `dhtnet [--nodes N] [--lookups N] [--btc PATH]`: a DHT of many nodes
//!   on loopback; what a lookup in it costs, and how soon `btc download`
//!   and libtorrent get a bare magnet link's first peer and finish.

mod bench;
mod dhtnet;
mod siege;
mod testnet;
mod tidy;

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <tidy | fuzz [TARGET] [--seconds N] | testnet [--help] | bench [--help] | siege [--help] | dhtnet [--help]>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("tidy") => tidy::metadata()
            .and_then(|m| tidy::check(&m))
            .map(|()| println!("tidy: ok")),
        Some("fuzz") => fuzz(&args[1..]),
        Some("testnet") => testnet::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("siege") => siege::run(&args[1..]),
        Some("dhtnet") => dhtnet::run(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The fuzz targets, each run for the same time (the list is shared with
/// the test that runs their corpora, `tests/fuzz_corpora.rs`).
const FUZZ_TARGETS: &[&str] = &include!("fuzz_targets.in");

fn fuzz(args: &[String]) -> Result<()> {
    let mut seconds = 60u64;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            let value = args.next().context("--seconds needs a number")?;
            seconds = value
                .parse()
                .with_context(|| format!("--seconds {value:?} is not a number"))?;
        } else if FUZZ_TARGETS.contains(&arg.as_str()) {
            targets.push(arg.as_str());
        } else {
            bail!(
                "unknown fuzz target {arg:?}; the targets are {}",
                FUZZ_TARGETS.join(", ")
            );
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.to_vec();
    }
    let fuzz_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    for target in targets {
        println!("fuzzing {target} for {seconds} s");
        let status = Command::new("cargo")
            .args([
                "+nightly",
                "fuzz",
                "run",
                target,
                "--",
                &format!("-max_total_time={seconds}"),
            ])
            .current_dir(&fuzz_dir)
            .status()
            .context("cannot run cargo fuzz (install it with `cargo install cargo-fuzz`)")?;
        if !status.success() {
            bail!(
                "fuzz target {target} failed; see fuzz/artifacts/{target}/, and keep the input \
                 that broke it in fuzz/regressions/{target}/ once it is fixed"
            );
        }
        // The corpus kept in the repository stays small: the fewest inputs
        // that reach every edge the grown corpus reaches (counters and
        // value profiles would keep thousands).
        println!("minimizing fuzz/corpus/{target}");
        let status = Command::new("cargo")
            .args(["+nightly", "fuzz", "cmin", target, "--"])
            .args([
                "-set_cover_merge=1",
                "-use_counters=0",
                "-use_value_profile=0",
            ])
            .current_dir(&fuzz_dir)
            .status()
            .context("cannot run cargo fuzz cmin")?;
        if !status.success() {
            bail!("cannot minimize the corpus of {target}");
        }
    }
    Ok(())
}
