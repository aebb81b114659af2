//! The `btc` binary as a user runs it: output, errors and exit codes.

#![allow(clippy::unwrap_used)] // test code: a panic is a failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn btc(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_btc"))
        .args(args)
        .current_dir(dir)
        .env("COLUMNS", "100")
        .output()
        .expect("btc runs")
}

/// Runs btc in `dir` with its resume files under `state`.
fn btc_with_state(args: &[&str], dir: &Path, state: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_btc"))
        .args(args)
        .current_dir(dir)
        .env("XDG_STATE_HOME", state)
        .output()
        .expect("btc runs")
}

/// Runs `command` to its end, killed and failed if it takes longer than
/// `limit` (a command that should stop at once must not hang the tests).
fn output_within(mut command: Command, limit: std::time::Duration) -> Output {
    use std::process::Stdio;
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("btc runs");
    wait_within(child, limit)
}

/// Waits for `child` to end, killing it and failing if it takes longer
/// than `limit`.
fn wait_within(mut child: std::process::Child, limit: std::time::Duration) -> Output {
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}: {}", transcript(&output));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn fixture(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "metainfo",
        "tests",
        "it",
        "fixtures",
        name,
    ]
    .iter()
    .collect();
    path.to_string_lossy().into_owned()
}

/// Exit status, then stdout and stderr, for a snapshot.
fn transcript(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}--- stderr\n{}",
        output
            .status
            .code()
            .map_or("signal".into(), |c| c.to_string()),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    )
}

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn help_texts() {
    for (name, args) in [
        ("help_btc", &["--help"][..]),
        ("help_info", &["info", "--help"]),
        ("help_create", &["create", "--help"]),
        ("help_tracker", &["tracker", "--help"]),
        ("help_download", &["download", "--help"]),
        ("help_seed", &["seed", "--help"]),
    ] {
        let output = btc(args, &here());
        assert!(output.status.success());
        insta::assert_snapshot!(name, String::from_utf8_lossy(&output.stdout));
    }
}

#[test]
fn info_on_real_torrents() {
    for name in ["mktorrent-multi", "transmission-single"] {
        let output = btc(&["info", &fixture(&format!("{name}.torrent"))], &here());
        assert!(output.status.success());
        insta::assert_snapshot!(
            format!("info_{name}"),
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

/// Padding files (BEP 47), as hybrid v1/v2 torrents have, are neither
/// listed nor counted as content.
#[test]
fn info_leaves_padding_files_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut torrent = b"d4:infod5:filesl".to_vec();
    torrent.extend_from_slice(b"d6:lengthi5e4:pathl1:aee");
    torrent.extend_from_slice(b"d4:attr1:p6:lengthi16379e4:pathl4:.pad5:16379ee");
    torrent.extend_from_slice(b"d6:lengthi3e4:pathl3:sub1:bee");
    torrent.extend_from_slice(b"e4:name1:x12:piece lengthi16384e6:pieces40:");
    torrent.extend_from_slice(&[0xab; 40]);
    torrent.extend_from_slice(b"ee");
    std::fs::write(dir.path().join("padded.torrent"), torrent).unwrap();
    let output = btc(&["info", "padded.torrent"], dir.path());
    assert!(output.status.success(), "{}", transcript(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains(".pad"), "{text}");
    assert!(text.contains("files (2):"), "{text}");
    assert!(
        text.contains("8 B (8 bytes, and 16,379 bytes of padding)"),
        "{text}"
    );
    let output = btc(&["info", "--json", "padded.torrent"], dir.path());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json["files"],
        serde_json::json!([{"path": "x/a", "length": 5}, {"path": "x/sub/b", "length": 3}])
    );
}

#[test]
fn info_json_has_the_stable_keys() {
    let output = btc(
        &["info", "--json", &fixture("mktorrent-multi.torrent")],
        &here(),
    );
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    for key in [
        "info_hash",
        "name",
        "total_length",
        "piece_length",
        "num_pieces",
        "private",
        "trackers",
        "files",
    ] {
        assert!(json.get(key).is_some(), "missing key {key}");
    }
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));
}

#[test]
fn info_on_a_magnet_link() {
    let link = "magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&dn=Some+Name&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce&x.pe=127.0.0.1:6881";
    let output = btc(&["info", link], &here());
    insta::assert_snapshot!(transcript(&output));
}

#[test]
fn unusable_input_gets_one_sentence_and_status_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("page.html"), "<html>not found</html>").unwrap();
    std::fs::write(
        dir.path().join("evil.torrent"),
        b"d4:infod5:filesld6:lengthi5e4:pathl2:..6:passwdeee4:name4:root12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
    )
    .unwrap();
    let mut report = String::new();
    for args in [
        &["info", "missing.torrent"][..],
        &["info", "page.html"],
        &["info", "evil.torrent"],
        &["info", "magnet:?xt=urn:btih:nothex"],
        &["create", "nothing-here"],
        &["info"],
        &["frobnicate"],
    ] {
        let output = btc(args, dir.path());
        let code = output.status.code();
        assert!(code == Some(1) || code == Some(2), "{args:?}: {code:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("{ "),
            "{args:?}: {stderr}"
        );
        report += &format!("$ btc {}\n{}", args.join(" "), transcript(&output));
    }
    insta::assert_snapshot!(report);
}

/// A torrent written into the folder it describes is not content of the
/// next one made there: `-o` inside the folder, and the default name when
/// the folder is the current one.
#[test]
fn create_leaves_its_own_output_out_of_the_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("share");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("a.bin"), vec![1u8; 50_000]).unwrap();
    let files = |torrent: &str, cwd: &Path| {
        let info = btc(&["info", "--json", torrent], cwd);
        let json: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        json["files"].clone()
    };
    let only_a = serde_json::json!([{"path": "share/a.bin", "length": 50_000}]);
    for _ in 0..2 {
        let created = btc(
            &["create", "share", "-o", "share/share.torrent", "--force"],
            dir.path(),
        );
        assert!(created.status.success(), "{}", transcript(&created));
        assert_eq!(files("share/share.torrent", dir.path()), only_a);
    }
    std::fs::remove_file(content.join("share.torrent")).unwrap();
    for _ in 0..2 {
        let created = btc(&["create", ".", "--force"], &content);
        assert!(created.status.success(), "{}", transcript(&created));
        assert_eq!(files("share.torrent", &content), only_a);
    }
    let missing = btc(&["create", "share", "-o", "nowhere/x.torrent"], dir.path());
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).trim(),
        "error: cannot write nowhere/x.torrent: the folder nowhere does not exist"
    );
}

#[test]
fn create_refuses_what_is_not_a_url_and_counts_in_words() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one.txt"), b"hi").unwrap();
    for (flag, url) in [
        ("-t", "not a url"),
        ("-t", "ftp://host/announce"),
        ("--web-seed", "nope"),
    ] {
        let refused = btc(&["create", "one.txt", flag, url], dir.path());
        assert_eq!(refused.status.code(), Some(1), "{}", transcript(&refused));
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("is not a usable URL"),
            "{}",
            transcript(&refused)
        );
    }
    assert!(!dir.path().join("one.txt.torrent").exists());
    let created = btc(&["create", "one.txt", "-t", "udp://h:80"], dir.path());
    assert!(created.status.success(), "{}", transcript(&created));
    let said = String::from_utf8_lossy(&created.stdout);
    assert!(said.contains("2 B in 1 file, 1 piece of"), "{said}");
}

#[test]
fn create_then_info_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("share");
    std::fs::create_dir_all(content.join("sub")).unwrap();
    std::fs::write(content.join("a.bin"), vec![1u8; 50_000]).unwrap();
    std::fs::write(content.join("sub/b.bin"), vec![2u8; 20_000]).unwrap();
    let created = btc(
        &[
            "create",
            "share",
            "-t",
            "http://127.0.0.1:6969/announce,http://127.0.0.2:6969/announce",
            "-t",
            "udp://127.0.0.1:6969",
            "--piece-length",
            "16KiB",
            "--private",
            "--comment",
            "test content",
            "--web-seed",
            "http://127.0.0.1:8080/",
        ],
        dir.path(),
    );
    assert!(created.status.success(), "{}", transcript(&created));
    let info = btc(&["info", "--json", "share.torrent"], dir.path());
    let json: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(json["name"], "share");
    assert_eq!(json["total_length"], 70_000);
    assert_eq!(json["piece_length"], 16_384);
    assert_eq!(json["num_pieces"], 5);
    assert_eq!(json["private"], true);
    assert_eq!(json["comment"], "test content");
    assert_eq!(
        json["web_seeds"],
        serde_json::json!(["http://127.0.0.1:8080/"])
    );
    assert_eq!(
        json["trackers"],
        serde_json::json!([
            [
                "http://127.0.0.1:6969/announce",
                "http://127.0.0.2:6969/announce"
            ],
            ["udp://127.0.0.1:6969"]
        ])
    );
    assert_eq!(
        json["files"],
        serde_json::json!([{"path": "share/a.bin", "length": 50_000}, {"path": "share/sub/b.bin", "length": 20_000}])
    );
    // The info-hash printed by create is the one info reads back.
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(
        stdout.contains(json["info_hash"].as_str().unwrap()),
        "{stdout}"
    );

    // A second create refuses to overwrite, and leaves the file alone.
    let before = std::fs::read(dir.path().join("share.torrent")).unwrap();
    let again = btc(&["create", "share"], dir.path());
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read(dir.path().join("share.torrent")).unwrap(),
        before
    );
}

#[test]
fn a_reader_that_goes_away_is_not_an_error() {
    use std::io::Read as _;
    // Enough files that `btc info` prints far more than a pipe holds.
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("many");
    std::fs::create_dir(&content).unwrap();
    for i in 0..3000 {
        std::fs::write(
            content.join(format!("file-with-a-long-name-{i:05}.txt")),
            b"x",
        )
        .unwrap();
    }
    assert!(btc(&["create", "many"], dir.path()).status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_btc"))
        .args(["info", "many.torrent"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 5];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The read end is now closed, as `| head -c 5` would.
    let output = child.wait_with_output().unwrap();
    assert_eq!(&first, b"name:");
    assert!(output.status.success(), "{}", transcript(&output));
    assert!(output.stderr.is_empty(), "{}", transcript(&output));
}

#[test]
fn control_characters_from_a_torrent_are_not_sent_to_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let name = "evil\u{1b}]0;owned\u{7}\r";
    std::fs::write(
        dir.path().join("t.torrent"),
        format!("d7:comment4:\u{1b}[2J4:infod6:lengthi1e4:name{}:{name}12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee", name.len()),
    )
    .unwrap();
    let output = btc(&["info", "t.torrent"], dir.path());
    assert!(output.status.success(), "{}", transcript(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains(['\u{1b}', '\u{7}', '\r']), "{stdout:?}");
    assert!(stdout.contains(r"evil\u{1b}]0;owned\u{7}\u{d}"), "{stdout}");
    assert!(stdout.contains(r"\u{1b}[2J"), "{stdout}");
}

/// `btc tracker` serves HTTP and UDP announces, logs them at -v, and stops
/// cleanly on SIGTERM.
#[test]
fn the_tracker_command_serves_and_stops() {
    use std::io::BufRead as _;
    use std::process::Stdio;

    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Guard(
        Command::new(env!("CARGO_BIN_EXE_btc"))
            .args(["tracker", "--bind", "127.0.0.1:0", "--interval", "60", "-v"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let urls: Vec<&str> = first
        .split_whitespace()
        .filter(|w| w.contains("://"))
        .collect();
    assert_eq!(urls.len(), 2, "{first}");
    let hash = metainfo::InfoHash([3; 20]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = tracker::TrackerClient::default();
        let seeder = tracker::AnnounceRequest::new(hash, metainfo::PeerId::generate(), 7301, 0);
        let leecher = tracker::AnnounceRequest::new(hash, metainfo::PeerId::generate(), 7302, 10);
        client.announce(urls[1], &seeder).await.unwrap();
        let answer = client.announce(urls[0], &leecher).await.unwrap();
        assert_eq!(answer.interval, 60);
        assert_eq!(answer.peers.len(), 1);
        assert_eq!(answer.peers[0].addr.port(), 7301);
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let exit = child.0.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(exit.success(), "{exit:?} {stderr}");
    assert!(rest.contains("tracker stopped"), "{rest}");
    assert!(
        stderr.contains("announce") && stderr.contains("7302"),
        "{stderr}"
    );
}

/// `btc seed` serves a folder, `btc download` fetches it from there (a
/// direct peer, no tracker) and exits 0 with every byte right; the seeder
/// stops cleanly on SIGTERM.
#[test]
fn seed_then_download_end_to_end() {
    use std::io::BufRead as _;
    use std::process::Stdio;

    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::create_dir_all(source.join("album/disc")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 / 3) as u8).collect();
    std::fs::write(source.join("album/disc/track.bin"), &big).unwrap();
    std::fs::write(source.join("album/cover.txt"), b"cover").unwrap();
    let created = btc(
        &["create", "source/album", "-o", "album.torrent"],
        dir.path(),
    );
    assert!(created.status.success(), "{}", transcript(&created));
    let state = dir.path().join("state");

    let mut seeder = Guard(
        Command::new(env!("CARGO_BIN_EXE_btc"))
            .args([
                "seed",
                "--no-dht",
                "album.torrent",
                "-d",
                "source",
                "--port",
                "0",
            ])
            .args(["--bind", "127.0.0.1"])
            .current_dir(dir.path())
            .env("XDG_STATE_HOME", &state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = std::io::BufReader::new(seeder.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    // "seeding album from source on port P (N of N pieces verified)"
    let port = first
        .split_whitespace()
        .skip_while(|w| *w != "port")
        .nth(1)
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    assert!(first.contains("pieces verified"), "{first}");
    // The same torrent and folder are not run twice at once.
    let mut twice = Command::new(env!("CARGO_BIN_EXE_btc"));
    twice
        .args([
            "seed",
            "--no-dht",
            "album.torrent",
            "-d",
            "source",
            "--port",
            "0",
        ])
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", &state);
    let twice = output_within(twice, std::time::Duration::from_secs(60));
    assert_eq!(twice.status.code(), Some(1), "{}", transcript(&twice));
    assert!(
        String::from_utf8_lossy(&twice.stderr)
            .contains("another btc is already running this torrent in source"),
        "{}",
        transcript(&twice)
    );

    let download = btc_with_state(
        &[
            "download",
            "--no-dht",
            "album.torrent",
            "-o",
            "out",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--peer",
            &format!("127.0.0.1:{port}"),
        ],
        dir.path(),
        &state,
    );
    assert!(download.status.success(), "{}", transcript(&download));
    let said = String::from_utf8_lossy(&download.stdout);
    assert!(said.starts_with("downloaded album (2.9 MiB) in "), "{said}");
    assert_eq!(
        std::fs::read(dir.path().join("out/album/disc/track.bin")).unwrap(),
        big
    );
    assert_eq!(
        std::fs::read(dir.path().join("out/album/cover.txt")).unwrap(),
        b"cover"
    );

    // Again, quietly, rate-limited, seeding for a second afterwards: it
    // says nothing, and exits 0 on its own with every byte right.
    let quiet = btc_with_state(
        &[
            "download",
            "--no-dht",
            "album.torrent",
            "-o",
            "out2",
            "--port",
            "0",
            "--quiet",
            "--bind",
            "127.0.0.1",
            "--peer",
            &format!("127.0.0.1:{port}"),
            "--download-limit",
            "4MiB/s",
            "--max-peers",
            "5",
            "--seed-time",
            "1s",
        ],
        dir.path(),
        &state,
    );
    assert!(quiet.status.success(), "{}", transcript(&quiet));
    assert_eq!(String::from_utf8_lossy(&quiet.stdout), "");
    assert_eq!(
        std::fs::read(dir.path().join("out2/album/disc/track.bin")).unwrap(),
        big
    );

    // A magnet link with the seeder as its direct peer: the metadata comes
    // from it, is saved as a torrent, and the download follows.
    let info = btc(&["info", "album.torrent", "--json"], dir.path());
    let json: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    let hash = json["info_hash"].as_str().unwrap().to_string();
    let magnet = format!("magnet:?xt=urn:btih:{hash}&dn=album&x.pe=127.0.0.1:{port}");
    let fetched = btc_with_state(
        &[
            "download",
            "--no-dht",
            &magnet,
            "-o",
            "out3",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--save-torrent",
            "fetched.torrent",
        ],
        dir.path(),
        &state,
    );
    assert!(fetched.status.success(), "{}", transcript(&fetched));
    assert_eq!(
        std::fs::read(dir.path().join("out3/album/disc/track.bin")).unwrap(),
        big
    );
    let saved = btc(&["info", "fetched.torrent", "--json"], dir.path());
    let saved: serde_json::Value = serde_json::from_slice(&saved.stdout).unwrap();
    assert_eq!(saved["info_hash"], json["info_hash"]);

    // Only the files matching a glob: the other is never written.
    let only = btc_with_state(
        &[
            "download",
            "--no-dht",
            "album.torrent",
            "-o",
            "out4",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--peer",
            &format!("127.0.0.1:{port}"),
            "--only",
            "disc/*",
        ],
        dir.path(),
        &state,
    );
    assert!(only.status.success(), "{}", transcript(&only));
    assert_eq!(
        std::fs::read(dir.path().join("out4/album/disc/track.bin")).unwrap(),
        big
    );
    assert!(!dir.path().join("out4/album/cover.txt").exists());
    let none = btc(
        &[
            "download",
            "--no-dht",
            "album.torrent",
            "--only",
            "*.flac",
            "--peer",
            "127.0.0.1:1",
        ],
        dir.path(),
    );
    assert_eq!(none.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("leave no file to download"),
        "{}",
        transcript(&none)
    );

    let status = Command::new("kill")
        .args(["-TERM", &seeder.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(seeder.0.wait().unwrap().success());
    assert!(
        rest.contains("stopped seeding after uploading 11.4 MiB"),
        "{rest}"
    );
}

#[test]
fn completions_and_the_manual_come_from_the_same_definitions() {
    let bash = btc(&["completions", "bash"], &here());
    assert!(bash.status.success());
    let script = String::from_utf8_lossy(&bash.stdout);
    assert!(
        script.contains("_btc()") && script.contains("download"),
        "{script}"
    );
    let man = btc(&["man"], &here());
    assert!(man.status.success());
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(
        page.contains(".TH btc 1") && page.contains("seed"),
        "{page}"
    );
    assert!(page.contains("EXIT STATUS") && page.contains("XDG_STATE_HOME"));
    let download = btc(&["man", "download"], &here());
    assert!(download.status.success());
    let page = String::from_utf8_lossy(&download.stdout);
    assert!(
        page.contains(".TH btc-download 1") && page.contains("\\-\\-seed\\-time"),
        "{page}"
    );
    let none = btc(&["man", "fly"], &here());
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no command \"fly\""));
    let bad = btc(&["completions", "tcsh"], &here());
    assert_eq!(bad.status.code(), Some(2), "a usage error");
}

#[test]
fn seed_and_download_refuse_what_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.bin"), vec![1u8; 100_000]).unwrap();
    let created = btc(&["create", "a.bin", "-o", "a.torrent"], dir.path());
    assert!(created.status.success(), "{}", transcript(&created));
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let state = dir.path().join("state");
    let run = |args: &[&str]| btc_with_state(args, dir.path(), &state);
    let seed = run(&[
        "seed",
        "--no-dht",
        "a.torrent",
        "-d",
        "empty",
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
    ]);
    assert_eq!(seed.status.code(), Some(1));
    let err = String::from_utf8_lossy(&seed.stderr);
    assert!(
        err.contains("empty holds none of a.bin's data: give the folder that contains it with -d"),
        "{err}"
    );
    let download = run(&[
        "download",
        "--no-dht",
        "a.torrent",
        "-o",
        "out",
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
    ]);
    assert_eq!(download.status.code(), Some(1));
    let err = String::from_utf8_lossy(&download.stderr);
    assert!(
        err.contains(
            "names no tracker and no web seed, and the DHT is off: give peers with --peer"
        ),
        "{err}"
    );
    // A web seed btc cannot use (ftp://) is no source either.
    let created = run(&[
        "create",
        "a.bin",
        "--web-seed",
        "http://h/",
        "-o",
        "w.torrent",
    ]);
    assert!(created.status.success(), "{}", transcript(&created));
    let bytes = std::fs::read(dir.path().join("w.torrent")).unwrap();
    let at = bytes.windows(9).position(|w| w == b"http://h/").unwrap();
    let mut ftp = bytes.clone();
    ftp[at..at + 9].copy_from_slice(b"ftp://h/x");
    std::fs::write(dir.path().join("ftp.torrent"), ftp).unwrap();
    let download = run(&[
        "download",
        "--no-dht",
        "ftp.torrent",
        "-o",
        "out",
        "--port",
        "0",
    ]);
    assert_eq!(download.status.code(), Some(1), "{}", transcript(&download));
    assert!(
        String::from_utf8_lossy(&download.stderr).contains("names no tracker and no web seed"),
        "{}",
        transcript(&download)
    );
    let magnet = run(&[
        "download",
        "--no-dht",
        "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567",
    ]);
    assert_eq!(magnet.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&magnet.stderr).contains(
        "this magnet link names no tracker and no peer, and the DHT is off: give peers with --peer"
    ));
    // A place the torrent cannot be saved is said before any fetching.
    let nowhere = run(&[
        "download",
        "--no-dht",
        "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&x.pe=127.0.0.1:1",
        "--save-torrent",
        "nowhere/x.torrent",
    ]);
    assert_eq!(nowhere.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&nowhere.stderr).trim(),
        "error: cannot write nowhere/x.torrent: the folder nowhere does not exist"
    );
}

/// Ctrl-C (SIGINT) during a download stops it cleanly with status 130 (143
/// for SIGTERM) and says how to resume; the same command again finishes
/// the download, and with --recheck repairs what changed behind its back.
#[test]
fn an_interrupted_download_resumes_when_run_again() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    /// A child killed on drop, unless taken out to be waited for.
    struct Guard(Option<std::process::Child>);
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(child) = &mut self.0 {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i * 13 / 7) as u8).collect();
    std::fs::write(dir.path().join("src/big.bin"), &data).unwrap();
    let created = btc(&["create", "src/big.bin", "-o", "big.torrent"], dir.path());
    assert!(created.status.success(), "{}", transcript(&created));
    let state = dir.path().join("state");
    let spawn = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_btc"))
            .args(args)
            .current_dir(dir.path())
            .env("XDG_STATE_HOME", &state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut seeder = Guard(Some(spawn(&[
        "seed",
        "--no-dht",
        "big.torrent",
        "-d",
        "src",
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
    ])));
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(seeder.0.as_mut().unwrap().stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let port = line
        .split_whitespace()
        .skip_while(|w| *w != "port")
        .nth(1)
        .unwrap()
        .to_string();
    let peer = format!("127.0.0.1:{port}");
    // Slow enough (1 MiB/s) to be interrupted halfway.
    let args = [
        "download",
        "--no-dht",
        "big.torrent",
        "-o",
        "out",
        "--port",
        "0",
        "--bind",
        "127.0.0.1",
        "--peer",
        &peer,
        "--download-limit",
        "1MiB/s",
    ];
    // Starts a download into `out` and stops it with `signal` once data
    // has reached the disk.
    let interrupt = |out: &str, signal: &str| {
        let mut args = args.to_vec();
        args[4] = out;
        let mut download = Guard(Some(spawn(&args)));
        let target = dir.path().join(out).join("big.bin");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !target.exists() {
            assert!(
                Instant::now() < deadline,
                "the download into {out} never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let child = download.0.take().unwrap();
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        child.wait_with_output().unwrap()
    };
    let target = dir.path().join("out/big.bin");
    let output = interrupt("out", "-INT");
    assert_eq!(output.status.code(), Some(130), "{}", transcript(&output));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("run the same command again to resume"),
        "{said}"
    );

    // SIGTERM, as a service manager sends, stops it the same way, with
    // the status a shell gives for that signal.
    let output = interrupt("out2", "-TERM");
    assert_eq!(output.status.code(), Some(143), "{}", transcript(&output));

    let again = btc_with_state(&args, dir.path(), &state);
    assert!(again.status.success(), "{}", transcript(&again));
    assert_eq!(std::fs::read(&target).unwrap(), data);
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(said.contains("of it in this run) in "), "{said}");

    // A byte changed behind btc's back, the modification time put back:
    // the resume data vouches for the file, until --recheck.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&target)
        .unwrap();
    let modified = file.metadata().unwrap().modified().unwrap();
    std::os::unix::fs::FileExt::write_at(&file, &[!data[1_000_000]], 1_000_000).unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    let trusted = btc_with_state(&args, dir.path(), &state);
    assert!(trusted.status.success(), "{}", transcript(&trusted));
    let said = String::from_utf8_lossy(&trusted.stdout);
    assert!(
        said.starts_with("big.bin (3.8 MiB) is already complete in out"),
        "{said}"
    );
    assert_ne!(std::fs::read(&target).unwrap(), data);
    let mut recheck = args.to_vec();
    recheck.push("--recheck");
    let repaired = btc_with_state(&recheck, dir.path(), &state);
    assert!(repaired.status.success(), "{}", transcript(&repaired));
    assert_eq!(std::fs::read(&target).unwrap(), data);
}

/// A port already taken by something else is said plainly.
#[test]
fn a_port_in_use_is_said_plainly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.bin"), vec![1u8; 1000]).unwrap();
    let created = btc(&["create", "a.bin", "-o", "a.torrent"], dir.path());
    assert!(created.status.success());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = btc(
        &[
            "download",
            "--no-dht",
            "a.torrent",
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--peer",
            "127.0.0.1:1",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains(&format!("cannot listen for peers on port {port}")) && err.contains("in use"),
        "{err}"
    );
}

/// A download whose only peer cannot be reached gives up after a few
/// tries with a sentence that says what to check.
#[test]
fn an_unreachable_peer_is_given_up_on_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.bin"), vec![1u8; 1000]).unwrap();
    let created = btc(&["create", "a.bin", "-o", "a.torrent"], dir.path());
    assert!(created.status.success());
    // A port nothing listens on: taken, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let peer = format!("127.0.0.1:{port}");
    let output = btc_with_state(
        &[
            "download",
            "--no-dht",
            "a.torrent",
            "-o",
            "out",
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--peer",
            &peer,
        ],
        dir.path(),
        &dir.path().join("state"),
    );
    assert_eq!(output.status.code(), Some(1), "{}", transcript(&output));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("no peer could be reached after 3 tries each: check the --peer addresses"),
        "{err}"
    );
}

/// Interrupted, a download tells its trackers it leaves; one that never
/// answers holds the exit a few seconds, and btc says why.
#[test]
fn an_interrupted_download_says_it_waits_for_a_silent_tracker() {
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.bin"), vec![5u8; 100_000]).unwrap();
    // A UDP tracker that reads and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let url = format!("udp://{}/announce", silent.local_addr().unwrap());
    let created = btc(
        &["create", "data.bin", "-t", &url, "-o", "t.torrent"],
        dir.path(),
    );
    assert!(created.status.success(), "{}", transcript(&created));
    let child = Command::new(env!("CARGO_BIN_EXE_btc"))
        .args([
            "download",
            "--no-dht",
            "t.torrent",
            "-o",
            "out",
            "--port",
            "0",
        ])
        .args(["--bind", "127.0.0.1"])
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its first connect request is the sign it runs.
    let mut buf = [0u8; 64];
    let received = silent.recv_from(&mut buf);
    if received.is_err() {
        let _ = Command::new("kill").arg(child.id().to_string()).status();
    }
    received.expect("a connect request");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = wait_within(child, std::time::Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(130), "{}", transcript(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("telling the trackers we leave"),
        "{}",
        transcript(&output)
    );
    assert!(
        stderr.contains("stopped with 0 of"),
        "{}",
        transcript(&output)
    );
}

/// A web seed (BEP 19) as users meet one: `btc create --web-seed` names a
/// plain HTTP server, and `btc download` fetches from it with no tracker
/// and no peer.
#[test]
fn a_torrent_made_with_a_web_seed_downloads_from_it_alone() {
    use std::io::{BufRead as _, Read as _, Write as _};

    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::create_dir_all(source.join("set/sub dir")).unwrap();
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i * 13 / 5) as u8).collect();
    std::fs::write(source.join("set/sub dir/big.bin"), &big).unwrap();
    std::fs::write(source.join("set/small.txt"), b"small").unwrap();
    // A server of `source` by byte range, one request per connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let root = source.clone();
    let ranges = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = ranges.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split(' ').nth(1).unwrap_or("/").replace("%20", " ");
            let mut range = None;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some(r) = header.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    let (a, b) = r.trim().split_once('-').unwrap();
                    range = Some((a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()));
                }
            }
            let Ok(data) = std::fs::read(root.join(path.trim_start_matches('/'))) else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            };
            let (first, last) = range.unwrap_or((0, data.len() - 1));
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let body = &data[first..=last.min(data.len() - 1)];
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                first + body.len() - 1,
                data.len(),
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
            let _ = reader.read(&mut [0u8; 1]);
        }
    });
    let url = format!("http://127.0.0.1:{port}/");
    // Given twice, written once.
    let created = btc(
        &[
            "create",
            "source/set",
            "--web-seed",
            &url,
            "--web-seed",
            &url,
            "-o",
            "set.torrent",
        ],
        dir.path(),
    );
    assert!(created.status.success(), "{}", transcript(&created));
    let info = btc(&["info", "set.torrent"], dir.path());
    assert_eq!(
        String::from_utf8_lossy(&info.stdout).matches(&url).count(),
        1,
        "{}",
        transcript(&info)
    );
    let mut download = Command::new(env!("CARGO_BIN_EXE_btc"));
    download
        .args([
            "download",
            "--no-dht",
            "set.torrent",
            "-o",
            "out",
            "--port",
            "0",
        ])
        .args(["--bind", "127.0.0.1"])
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"));
    let download = output_within(download, std::time::Duration::from_secs(120));
    assert!(download.status.success(), "{}", transcript(&download));
    assert_eq!(
        std::fs::read(dir.path().join("out/set/sub dir/big.bin")).unwrap(),
        big
    );
    assert_eq!(
        std::fs::read(dir.path().join("out/set/small.txt")).unwrap(),
        b"small"
    );
    assert!(ranges.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// `btc dht` as a node of its own, and `btc dht get-peers` against it: a
/// peer one run announces, the next finds. Only 127.0.0.1 is contacted
/// (the serving node's bootstrap is a dead loopback address).
#[test]
fn btc_dht_get_peers_finds_what_another_run_announced() {
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut node = Guard(
        Command::new(env!("CARGO_BIN_EXE_btc"))
            .args([
                "dht",
                "--bind",
                "127.0.0.1:0",
                "--dht-bootstrap",
                "127.0.0.1:1",
            ])
            .env("XDG_STATE_HOME", &state)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(node.0.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    // "DHT node <id> on 127.0.0.1:PORT"
    assert!(line.starts_with("DHT node "), "{line}");
    let addr = line.split_whitespace().last().unwrap().to_string();
    let hash = "0123456789abcdef0123456789abcdef01234567";
    let get = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_btc"))
            .args(["dht", "get-peers", hash, "--bind", "127.0.0.1:0"])
            .args(["--dht-bootstrap", &addr, "--timeout", "20s"])
            .args(extra)
            .env("XDG_STATE_HOME", &state)
            .output()
            .unwrap()
    };
    let announced = get(&["--announce", "7000"]);
    assert!(announced.status.success(), "{}", transcript(&announced));
    let out = String::from_utf8_lossy(&announced.stdout);
    assert!(out.contains("announced to 1"), "{out}");
    let found = get(&[]);
    assert!(found.status.success(), "{}", transcript(&found));
    let out = String::from_utf8_lossy(&found.stdout);
    assert!(out.lines().any(|l| l == "127.0.0.1:7000"), "{out}");
}
