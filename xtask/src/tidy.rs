//! The layering rule, checked from `cargo metadata`.

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Each workspace crate's layer. A crate may depend only on crates of a
/// lower layer: `bencode → metainfo → tracker / peerwire / dht / mse / utp → storage → engine
/// → btc`, with `testnet` beside `btc` and `xtask` on top.
const LAYERS: &[(&str, u8)] = &[
    ("bencode", 0),
    ("metainfo", 1),
    ("tracker", 2),
    ("peerwire", 2),
    ("dht", 2),
    ("mse", 2),
    ("utp", 2),
    ("storage", 3),
    ("engine", 4),
    ("btc", 5),
    ("testnet", 5),
    ("xtask", 6),
];

/// Crates that must stay free of async runtimes and sockets. An optional
/// dependency (a shell behind a feature) is allowed: the core builds
/// without it.
const SANS_IO: &[&str] = &["bencode", "metainfo", "dht", "mse", "utp"];
const IO_CRATES: &[&str] = &[
    "tokio",
    "tokio-util",
    "hyper",
    "futures",
    "async-std",
    "mio",
];

/// `cargo metadata` for the workspace, without resolving dependencies.
pub(crate) fn metadata() -> Result<Value> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("cargo metadata printed invalid JSON")
}

fn layer(name: &str) -> Option<u8> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

/// Every violation of the layering rule, as sentences.
pub(crate) fn violations(metadata: &Value) -> Result<Vec<String>> {
    let packages = metadata["packages"]
        .as_array()
        .context("no packages in cargo metadata")?;
    let mut problems = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap_or_default();
        let Some(own) = layer(name) else {
            problems.push(format!("{name} is not one of the designed crates"));
            continue;
        };
        for dep in package["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            if layer(dep_name).is_some_and(|theirs| theirs >= own) {
                problems.push(format!(
                    "{name} depends on {dep_name}, which is not to its left"
                ));
            }
            let normal = dep["kind"].is_null() && dep["optional"].as_bool() != Some(true);
            if normal && SANS_IO.contains(&name) && IO_CRATES.contains(&dep_name) {
                problems.push(format!(
                    "{name} must stay sans-IO but depends on {dep_name}"
                ));
            }
        }
    }
    Ok(problems)
}

pub(crate) fn check(metadata: &Value) -> Result<()> {
    let problems = violations(metadata)?;
    if !problems.is_empty() {
        bail!("layering violations:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_respects_its_layers() {
        check(&metadata().expect("cargo metadata")).expect("tidy");
    }

    #[test]
    fn violations_are_caught() {
        let fake = serde_json::json!({"packages": [
            {"name": "metainfo", "dependencies": [
                {"name": "engine", "kind": null},
                {"name": "tokio", "kind": null},
                {"name": "tokio", "kind": "dev"},
            ]},
            {"name": "tracker", "dependencies": [{"name": "peerwire", "kind": null}]},
            {"name": "dht", "dependencies": [
                {"name": "tokio", "kind": null, "optional": true},
                {"name": "futures", "kind": null, "optional": false},
            ]},
            {"name": "surprise", "dependencies": []},
        ]});
        let problems = violations(&fake).unwrap();
        assert_eq!(
            problems,
            [
                "metainfo depends on engine, which is not to its left",
                "metainfo must stay sans-IO but depends on tokio",
                "tracker depends on peerwire, which is not to its left",
                "dht must stay sans-IO but depends on futures",
                "surprise is not one of the designed crates",
            ]
        );
    }
}
