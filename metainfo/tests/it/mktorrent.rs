//! Torrents made by btc must be the torrents mktorrent (and transmission-create) make from the same
//! content: same file order, same info dictionary, same info-hash.
//!
//! Needs `mktorrent` and `transmission-create` on the PATH (`apt-get install mktorrent transmission-cli`; `.ci/run`
//! installs it). Without it these tests fail rather than pass vacuously.

use std::path::Path;
use std::process::Command;

use metainfo::{Metainfo, TorrentBuilder};

const TRACKER: &str = "http://127.0.0.1:6969/announce";

fn mktorrent(content: &Path, out: &Path, args: &[&str]) -> Metainfo {
    // mktorrent refuses to overwrite.
    let _ = std::fs::remove_file(out);
    let status = Command::new("mktorrent")
        .args(args)
        .args(["-a", TRACKER, "-o"])
        .arg(out)
        .arg(content)
        .output()
        .expect("mktorrent must be installed: apt-get install mktorrent");
    assert!(
        status.status.success(),
        "mktorrent failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    Metainfo::from_bytes(&std::fs::read(out).expect("mktorrent output"))
        .expect("mktorrent output parses")
}

/// Content whose file names sort differently by component than by joined
/// path (`a-b/x`, `a.txt`, `a/x`), with an empty file, a one-byte file,
/// upper case, and pieces spanning several files.
fn tricky_content(root: &Path) {
    let files: &[(&str, usize)] = &[
        ("a/x", 40_000),
        ("a-b/x", 3),
        ("a.txt", 1),
        ("B/y", 70_001),
        ("empty", 0),
        ("deep/er/still/z.bin", 5_000),
        (".hidden", 17),
    ];
    for (i, (path, len)) in files.iter().enumerate() {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes: Vec<u8> = (0..*len).map(|j| (j * 31 + i * 7) as u8).collect();
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn multi_file_info_hash_matches_mktorrent() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    tricky_content(&content);
    for (exponent, private) in [(15, false), (18, true)] {
        let mut args = vec!["-l".to_string(), exponent.to_string()];
        if private {
            args.push("-p".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let theirs = mktorrent(&content, &dir.path().join("m.torrent"), &args);
        let ours = TorrentBuilder::new(&content)
            .tracker_tier(vec![TRACKER.into()])
            .piece_length(1 << exponent)
            .private(private)
            .threads(3)
            .build(|_, _| {})
            .unwrap();
        assert_eq!(
            ours.raw_info(),
            theirs.raw_info(),
            "piece length 2^{exponent}, private {private}"
        );
        assert_eq!(ours.info_hash(), theirs.info_hash());
        assert_eq!(ours.announce.as_deref(), Some(TRACKER));
    }
}

#[test]
fn single_file_info_hash_matches_mktorrent() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one file.bin");
    std::fs::write(
        &file,
        (0..100_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let theirs = mktorrent(&file, &dir.path().join("m.torrent"), &["-l", "16"]);
    let ours = TorrentBuilder::new(&file)
        .tracker_tier(vec![TRACKER.into()])
        .piece_length(1 << 16)
        .build(|_, _| {})
        .unwrap();
    assert_eq!(ours.raw_info(), theirs.raw_info());
    assert!(!ours.info().is_multi_file());
}

#[test]
fn progress_reaches_the_total_and_pieces_verify() {
    let dir = tempfile::tempdir().unwrap();
    tricky_content(dir.path());
    let mut calls = Vec::new();
    let torrent = TorrentBuilder::new(dir.path())
        .piece_length(1 << 14)
        .build(|done, total| calls.push((done, total)))
        .unwrap();
    assert_eq!(calls.len(), 8, "once per piece");
    assert!(calls.windows(2).all(|w| w[0].0 < w[1].0), "{calls:?}");
    assert_eq!(calls.last(), Some(&(115_022, 115_022)));
    // Every piece hash matches the bytes its file slices cover.
    let layout = torrent.layout();
    for piece in 0..layout.num_pieces() {
        let mut hasher = sha1_smol::Sha1::new();
        for slice in layout.piece_slices(piece) {
            let rel = &torrent.info().files()[slice.file].path;
            let bytes =
                std::fs::read(rel.iter().fold(dir.path().to_path_buf(), |p, c| p.join(c))).unwrap();
            hasher.update(&bytes[slice.offset as usize..(slice.offset + slice.length) as usize]);
        }
        assert_eq!(
            hasher.digest().bytes(),
            torrent.info().pieces()[piece as usize],
            "piece {piece}"
        );
    }
}

#[test]
fn trackers_comment_and_web_seeds_are_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"data").unwrap();
    let torrent = TorrentBuilder::new(dir.path().join("f"))
        .tracker_tier(vec!["http://a/announce".into(), "http://b/announce".into()])
        .tracker_tier(vec!["udp://c:80".into()])
        .comment("hi")
        .web_seed("http://w/f")
        .creation_date(1_700_000_000)
        .build(|_, _| {})
        .unwrap();
    let again = Metainfo::from_bytes(&torrent.to_bytes()).unwrap();
    assert_eq!(
        again.trackers(),
        [
            vec!["http://a/announce", "http://b/announce"],
            vec!["udp://c:80"]
        ]
    );
    assert_eq!(again.announce.as_deref(), Some("http://a/announce"));
    assert_eq!(
        (again.comment.as_deref(), again.creation_date),
        (Some("hi"), Some(1_700_000_000))
    );
    assert_eq!(again.url_list, ["http://w/f"]);
    assert_eq!(
        again.info().piece_length(),
        32 * 1024,
        "auto piece length for tiny content"
    );
}

#[test]
fn empty_content_and_bad_piece_lengths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty"), b"").unwrap();
    let err = TorrentBuilder::new(dir.path())
        .build(|_, _| {})
        .unwrap_err();
    assert!(err.to_string().contains("holds no data"), "{err}");
    std::fs::write(dir.path().join("f"), b"x").unwrap();
    for bad in [0, 1000, 1 << 13, 1 << 27] {
        assert!(
            TorrentBuilder::new(dir.path())
                .piece_length(bad)
                .build(|_, _| {})
                .is_err(),
            "{bad}"
        );
    }
    let err = TorrentBuilder::new(dir.path().join("missing"))
        .build(|_, _| {})
        .unwrap_err();
    assert!(err.to_string().starts_with("cannot read"), "{err}");
}

/// transmission-create agrees too, on content where its choices do not
/// differ from mktorrent's: 3.00 leaves out empty and hidden files and sorts
/// names without regard to case, where mktorrent and btc keep every file and
/// sort by bytes; and it always writes `private`, even as 0, so the torrents
/// compared here are private.
#[test]
fn info_hash_matches_transmission_create() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    tricky_content(&content);
    std::fs::remove_file(content.join("empty")).unwrap();
    std::fs::remove_file(content.join(".hidden")).unwrap();
    std::fs::rename(content.join("B"), content.join("b")).unwrap();
    let out = dir.path().join("t.torrent");
    let output = Command::new("transmission-create")
        .args(["-p", "-s", "32", "-t", TRACKER, "-o"])
        .arg(&out)
        .arg(&content)
        .output()
        .expect("transmission-create must be installed: apt-get install transmission-cli");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let theirs = Metainfo::from_bytes(&std::fs::read(&out).unwrap()).unwrap();
    let ours = TorrentBuilder::new(&content)
        .tracker_tier(vec![TRACKER.into()])
        .piece_length(32 * 1024)
        .private(true)
        .build(|_, _| {})
        .unwrap();
    assert_eq!(ours.raw_info(), theirs.raw_info());
}

#[test]
fn a_symlinked_folder_keeps_its_own_name_as_mktorrent_does() {
    let dir = tempfile::tempdir().unwrap();
    tricky_content(&dir.path().join("real"));
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
    let theirs = mktorrent(
        &dir.path().join("link"),
        &dir.path().join("m.torrent"),
        &["-l", "15"],
    );
    let ours = TorrentBuilder::new(dir.path().join("link"))
        .tracker_tier(vec![TRACKER.into()])
        .piece_length(1 << 15)
        .build(|_, _| {})
        .unwrap();
    assert_eq!(ours.info().name(), "link");
    assert_eq!(ours.info_hash(), theirs.info_hash());
    // A trailing slash or `.` does not change the name.
    let slash = TorrentBuilder::new(format!("{}/", dir.path().join("real").display()));
    assert_eq!(slash.build(|_, _| {}).unwrap().info().name(), "real");
}

#[test]
fn names_that_cannot_be_in_a_torrent_are_refused_before_hashing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("back\\slash"), b"x").unwrap();
    let err = TorrentBuilder::new(dir.path())
        .build(|_, _| panic!("hashed"))
        .unwrap_err();
    assert!(err.to_string().contains("inside a path component"), "{err}");
}
