//! Hostile and broken torrents: each is refused with a message naming the
//! problem, and none can place a file outside the download folder.

use bencode::{Bytes, Encoder};
use metainfo::{Error, Metainfo};
use proptest::prelude::*;

/// A multi-file torrent whose `files` entry is written by `files`, with
/// `pieces_for` bytes of content.
fn multi(files: impl FnOnce(&mut Encoder), pieces_for: u64) -> Vec<u8> {
    torrent(|d| {
        d.entry_with(b"files", |e| e.list(files));
        d.entry(b"name", "root");
        d.entry(b"piece length", &16384i64);
        d.entry(
            b"pieces",
            &Bytes(&vec![7u8; 20 * pieces_for.div_ceil(16384) as usize]),
        );
    })
}

fn torrent(info: impl FnOnce(&mut bencode::DictEncoder)) -> Vec<u8> {
    let mut e = Encoder::default();
    e.dict(|d| {
        d.entry(b"announce", "http://127.0.0.1:6969/announce");
        d.entry_with(b"info", |e| e.dict(info));
    });
    e.into_bytes()
}

fn single(name: &str, length: i64, piece_length: i64, hashes: usize) -> Vec<u8> {
    torrent(|d| {
        d.entry(b"length", &length);
        d.entry(b"name", name);
        d.entry(b"piece length", &piece_length);
        d.entry(b"pieces", &Bytes(&vec![1u8; hashes]));
    })
}

fn file(e: &mut Encoder, length: i64, path: &[&str]) {
    e.dict(|d| {
        d.entry(b"length", &length);
        d.entry(b"path", &path.to_vec());
    });
}

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("not bencode", b"<html>502 Bad Gateway</html>".to_vec()),
        ("truncated", single("a", 5, 16384, 20)[..40].to_vec()),
        (
            "trailing data",
            [single("a", 5, 16384, 20), b"junk".to_vec()].concat(),
        ),
        ("a list, not a dictionary", b"le".to_vec()),
        ("no info", b"d8:announce3:urle".to_vec()),
        ("info is a string", b"d4:info3:abce".to_vec()),
        (
            "no name",
            torrent(|d| {
                d.entry(b"length", &1i64);
                d.entry(b"piece length", &1i64);
                d.entry(b"pieces", &Bytes(&[0; 20]));
            }),
        ),
        ("name is ..", single("..", 5, 16384, 20)),
        ("name is empty", single("", 5, 16384, 20)),
        (
            "name with a slash",
            single("../../etc/passwd", 5, 16384, 20),
        ),
        ("name with NUL", single("a\0b", 5, 16384, 20)),
        ("zero piece length", single("a", 5, 0, 20)),
        ("negative piece length", single("a", 5, -16384, 20)),
        ("huge piece length", single("a", 5, 1 << 40, 20)),
        ("pieces not a multiple of 20", single("a", 5, 16384, 19)),
        ("too few pieces", single("a", 40000, 16384, 40)),
        ("too many pieces", single("a", 5, 16384, 40)),
        ("negative length", single("a", -5, 16384, 20)),
        ("no data", single("a", 0, 16384, 0)),
        (
            "length and files",
            torrent(|d| {
                d.entry(b"length", &1i64);
                d.entry_with(b"files", |e| e.list(|e| file(e, 1, &["x"])));
                d.entry(b"name", "n");
                d.entry(b"piece length", &1i64);
                d.entry(b"pieces", &Bytes(&[0; 20]));
            }),
        ),
        (
            "neither length nor files",
            torrent(|d| {
                d.entry(b"name", "n");
                d.entry(b"piece length", &1i64);
                d.entry(b"pieces", &Bytes(&[0; 20]));
            }),
        ),
        (
            "path with ..",
            multi(|e| file(e, 5, &["..", "..", "etc", "passwd"]), 5),
        ),
        (
            "absolute path",
            multi(|e| file(e, 5, &["", "etc", "passwd"]), 5),
        ),
        (
            "component with a slash",
            multi(|e| file(e, 5, &["/etc/passwd"]), 5),
        ),
        (
            "component with a backslash",
            multi(|e| file(e, 5, &["..\\..\\evil.exe"]), 5),
        ),
        ("dot component", multi(|e| file(e, 5, &["a", ".", "b"]), 5)),
        ("empty path list", multi(|e| file(e, 5, &[]), 5)),
        (
            "duplicate paths",
            multi(
                |e| {
                    file(e, 5, &["a", "b"]);
                    file(e, 5, &["a", "b"]);
                },
                10,
            ),
        ),
        (
            "file is also a folder",
            multi(
                |e| {
                    file(e, 5, &["a"]);
                    file(e, 5, &["a", "b"]);
                },
                10,
            ),
        ),
        ("empty files list", multi(|_| {}, 0)),
        (
            "lengths overflow",
            multi(
                |e| {
                    file(e, i64::MAX, &["a"]);
                    file(e, i64::MAX, &["b"]);
                },
                16384,
            ),
        ),
        (
            "path is a string",
            multi(
                |e| {
                    e.dict(|d| {
                        d.entry(b"length", &1i64);
                        d.entry(b"path", "a/b");
                    })
                },
                1,
            ),
        ),
        (
            "v2 only",
            torrent(|d| {
                d.entry_with(b"file tree", |e| {
                    e.dict(|d| {
                        d.entry_with(b"a", |e| {
                            e.dict(|d| {
                                d.entry_with(b"", |e| {
                                    e.dict(|d| {
                                        d.entry(b"length", &1i64);
                                        d.entry(b"pieces root", "x".repeat(32).as_str());
                                    })
                                })
                            })
                        })
                    })
                });
                d.entry(b"meta version", &2i64);
                d.entry(b"name", "a");
                d.entry(b"piece length", &16384i64);
            }),
        ),
        (
            "deep nesting",
            [
                b"d4:info".to_vec(),
                vec![b'l'; 100_000],
                vec![b'e'; 100_000],
                b"e".to_vec(),
            ]
            .concat(),
        ),
    ]
}

#[test]
fn hostile_torrents_are_refused_with_clear_messages() {
    let mut report = String::new();
    for (name, bytes) in cases() {
        match Metainfo::from_bytes(&bytes) {
            Ok(t) => panic!("{name}: accepted as {:?}", t.info().files()),
            Err(err) => report += &format!("{name}: {err}\n"),
        }
    }
    insta::assert_snapshot!(report);
}

#[test]
fn a_line_end_after_the_torrent_is_not_part_of_it() {
    let whole = single("a", 5, 16384, 20);
    let with_newline = [whole.clone(), b"\r\n \n".to_vec()].concat();
    let t = Metainfo::from_bytes(&with_newline).unwrap();
    assert_eq!(
        t.info_hash(),
        Metainfo::from_bytes(&whole).unwrap().info_hash()
    );
}

#[test]
fn malformed_fields_outside_info_are_skipped() {
    // Wrong types, non-UTF-8 URLs, empty tiers and a bare string as a tier:
    // none of them changes what the torrent is, so none refuses it.
    let mut bytes = b"d".to_vec();
    bytes.extend_from_slice(b"8:announcei5e");
    bytes.extend_from_slice(b"13:announce-listl1:ale18:http://t/announce\xffl10:udp://t:80ee");
    bytes.extend_from_slice(b"13:creation date3:now");
    bytes.extend_from_slice(b"8:url-listi1e");
    let whole = single("a", 5, 16384, 20);
    bytes.extend_from_slice(&whole[whole.windows(6).position(|w| w == b"4:info").unwrap()..]);
    let t = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(t.announce, None);
    assert_eq!(
        t.announce_list,
        [vec!["a".to_string()], vec!["udp://t:80".to_string()]]
    );
    assert_eq!((t.creation_date, t.url_list.len()), (None, 0));
    assert_eq!(t.info().name(), "a");
}

#[test]
fn padding_files_may_share_a_path() {
    // libtorrent names BEP 47 padding files `.pad/<size>`; equal sizes collide.
    let pad = |e: &mut Encoder| {
        e.dict(|d| {
            d.entry(b"attr", "p");
            d.entry(b"length", &3i64);
            d.entry(b"path", &vec![".pad", "3"]);
        })
    };
    let bytes = multi(
        |e| {
            file(e, 5, &["a"]);
            pad(e);
            file(e, 5, &["b"]);
            pad(e);
        },
        16,
    );
    let t = Metainfo::from_bytes(&bytes).unwrap();
    let padding: Vec<bool> = t.info().files().iter().map(|f| f.is_padding()).collect();
    assert_eq!(padding, [false, true, false, true]);
    // Real files still may not.
    let bytes = multi(
        |e| {
            file(e, 5, &[".pad", "3"]);
            pad(e);
            file(e, 5, &[".pad", "3"]);
        },
        13,
    );
    assert!(Metainfo::from_bytes(&bytes).is_err());
}

#[test]
fn very_deep_paths_are_checked_in_linear_time() {
    // 200,000 components in one path: a check that hashed every prefix would
    // take 2·10^10 steps here.
    let components: Vec<&str> = vec!["a"; 200_000];
    let bytes = multi(
        |e| {
            file(e, 5, &components);
            file(e, 5, &["b"]);
        },
        10,
    );
    let t = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(t.info().files()[0].path.len(), 200_000);
    let conflicting = &components[..100_000];
    let bytes = multi(
        |e| {
            file(e, 5, &components);
            file(e, 5, conflicting);
        },
        10,
    );
    assert!(Metainfo::from_bytes(&bytes).is_err());
}

#[test]
fn refused_paths_are_reported_as_unsafe() {
    let bytes = multi(|e| file(e, 5, &["..", "..", "etc", "passwd"]), 5);
    let err = Metainfo::from_bytes(&bytes).unwrap_err();
    assert!(
        matches!(&err, Error::UnsafePath { field, path, .. } if field == "info.files[0].path" && path == "../../etc/passwd"),
        "{err:?}"
    );
}

#[test]
fn utf8_variants_are_preferred() {
    let bytes = torrent(|d| {
        d.entry_with(b"files", |e| {
            e.list(|e| {
                e.dict(|d| {
                    d.entry(b"length", &3i64);
                    d.entry(b"path", &vec![Bytes(b"caf\xe9")]);
                    d.entry(b"path.utf-8", &vec!["café"]);
                })
            })
        });
        d.entry(b"name", &Bytes(b"\xff"));
        d.entry(b"name.utf-8", "nämé");
        d.entry(b"piece length", &16384i64);
        d.entry(b"pieces", &Bytes(&[0; 20]));
    });
    let t = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(t.info().name(), "nämé");
    assert_eq!(t.info().files()[0].path, ["café"]);
}

#[test]
fn non_utf8_names_are_shown_with_replacement_characters() {
    let bytes = torrent(|d| {
        d.entry(b"length", &3i64);
        d.entry(b"name", &Bytes(b"caf\xe9.txt"));
        d.entry(b"piece length", &16384i64);
        d.entry(b"pieces", &Bytes(&[0; 20]));
    });
    assert_eq!(
        Metainfo::from_bytes(&bytes).unwrap().info().name(),
        "caf\u{fffd}.txt"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Whatever the path components, an accepted torrent's files resolve to
    /// paths strictly inside the download folder.
    #[test]
    fn accepted_paths_stay_inside_the_download_folder(
        components in prop::collection::vec(prop_oneof![
            Just("..".to_string()), Just(".".to_string()), Just(String::new()), Just("/".to_string()),
            "[a-z./\\\\]{1,4}", "\\PC{1,6}",
        ], 1..5),
    ) {
        let refs: Vec<&str> = components.iter().map(String::as_str).collect();
        let bytes = multi(|e| file(e, 5, &refs), 5);
        if let Ok(t) = Metainfo::from_bytes(&bytes) {
            let root = std::path::Path::new("/downloads");
            for f in t.info().files() {
                let full = t.info().file_path(f).fold(root.to_path_buf(), |p, c| p.join(c));
                let mut depth = 0i32;
                for c in full.strip_prefix(root).expect("joined under root").components() {
                    match c {
                        std::path::Component::Normal(_) => depth += 1,
                        other => prop_assert!(false, "component {:?} in {:?}", other, full),
                    }
                }
                prop_assert_eq!(depth as usize, f.path.len() + 1);
            }
        }
    }

    /// Arbitrary damage to a real torrent never panics.
    #[test]
    fn damaged_fixtures_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut bytes = super::fixture("mktorrent-multi");
        let i = at.index(bytes.len());
        bytes[i] = byte;
        bytes.truncate(cut.index(bytes.len()) + 1);
        let _ = Metainfo::from_bytes(&bytes);
    }
}
