//! The fuzz targets' checks (`fuzz/checks/`), on stable, over every input
//! kept for them: the corpus each target grew (`fuzz/corpus/TARGET/`,
//! minimized) and the inputs that once broke something
//! (`fuzz/regressions/TARGET/`). CI so runs what the fuzzer found without
//! a nightly toolchain or cargo-fuzz.

#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)] // test code

use std::path::{Path, PathBuf};

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/checks/", stringify!($name), ".rs"));
            }

            #[test]
            fn $name() {
                run(stringify!($name), $name::check);
            }
        )*

        /// Every target, so that none is left out of this test.
        const TARGETS: &[&str] = &[$(stringify!($name)),*];
    };
}

targets!(
    bencode_decode,
    metainfo_parse,
    peerwire_decode,
    tracker_messages,
    peerwire_extension,
    udp_tracker_answer,
    http_tracker_requests,
    resume_file,
    webseed_answer,
    krpc_message,
    mse_responder,
    utp_packet,
    utp_connection,
);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files in `dir`, if it exists.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn run(target: &str, check: fn(&[u8])) {
    let mut inputs = files(&fuzz_dir().join("corpus").join(target));
    assert!(
        !inputs.is_empty(),
        "fuzz/corpus/{target} is empty: run `cargo xtask fuzz {target}` and keep its corpus"
    );
    inputs.extend(files(&fuzz_dir().join("regressions").join(target)));
    for path in inputs {
        let data = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{} fails its checks", path.display());
        }
    }
}

#[test]
fn every_fuzz_target_is_run_here_and_by_cargo_xtask_fuzz() {
    let mut built: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    built.sort();
    let mut here: Vec<String> = TARGETS.iter().map(ToString::to_string).collect();
    here.sort();
    assert_eq!(built, here, "fuzz/fuzz_targets and this test's list differ");
    let mut xtask: Vec<&str> = FUZZ_TARGETS_OF_XTASK.to_vec();
    xtask.sort();
    assert_eq!(xtask, here, "cargo xtask fuzz runs other targets");
}

/// `cargo xtask fuzz`'s list, read from its source.
const FUZZ_TARGETS_OF_XTASK: &[&str] = &include!("../src/fuzz_targets.in");
