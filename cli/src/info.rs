//! `btc info`: what a torrent file or magnet link holds.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use metainfo::{MagnetLink, Metainfo};
use serde::Serialize;

use crate::format;

/// Show what a torrent file or magnet link describes.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A .torrent file, or a magnet link (magnet:?xt=urn:btih:…).
    torrent: String,
    /// Print JSON with stable keys instead of text.
    #[arg(long)]
    json: bool,
}

/// The JSON form. These keys are stable: scripts may rely on them.
#[derive(Serialize)]
struct InfoJson<'a> {
    info_hash: String,
    name: &'a str,
    total_length: u64,
    piece_length: u32,
    num_pieces: u32,
    private: bool,
    trackers: Vec<Vec<String>>,
    files: Vec<FileJson>,
    web_seeds: &'a [String],
    comment: Option<&'a str>,
    created_by: Option<&'a str>,
    creation_date: Option<i64>,
}

#[derive(Serialize)]
struct FileJson {
    path: String,
    length: u64,
}

/// The JSON form of a magnet link: what is known before the metadata is.
#[derive(Serialize)]
struct MagnetJson<'a> {
    info_hash: String,
    name: Option<&'a str>,
    trackers: Vec<Vec<String>>,
    peers: &'a [String],
    web_seeds: &'a [String],
}

pub(crate) fn run(args: &Args) -> Result<String> {
    let is_magnet = args
        .torrent
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("magnet:"));
    let text = if is_magnet {
        let link: MagnetLink = args.torrent.parse()?;
        if args.json {
            json(&magnet_json(&link))?
        } else {
            magnet_text(&link)
        }
    } else {
        let torrent = read_torrent(&PathBuf::from(&args.torrent))?;
        if args.json {
            json(&info_json(&torrent))?
        } else {
            torrent_text(&torrent)
        }
    };
    Ok(text)
}

/// No real torrent file is this large; a bigger "torrent" is refused before it
/// is read into memory.
const MAX_TORRENT_FILE: u64 = 64 << 20;

/// Reads and parses a torrent file, with errors that name the file.
pub(crate) fn read_torrent(path: &std::path::Path) -> Result<Metainfo> {
    let context = || format!("cannot read {}", path.display());
    let file = std::fs::File::open(path).with_context(context)?;
    let mut bytes = Vec::new();
    file.take(MAX_TORRENT_FILE + 1)
        .read_to_end(&mut bytes)
        .with_context(context)?;
    if bytes.len() as u64 > MAX_TORRENT_FILE {
        anyhow::bail!(
            "{} is larger than {}, too large to be a torrent file",
            path.display(),
            format::size(MAX_TORRENT_FILE)
        );
    }
    Metainfo::from_bytes(&bytes)
        .with_context(|| format!("{} is not a valid torrent", path.display()))
}

fn json<T: Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

fn info_json(t: &Metainfo) -> InfoJson<'_> {
    let info = t.info();
    InfoJson {
        info_hash: t.info_hash().to_hex(),
        name: info.name(),
        total_length: info.total_length(),
        piece_length: info.piece_length(),
        num_pieces: t.layout().num_pieces(),
        private: info.is_private(),
        trackers: t.trackers(),
        // Padding files (BEP 47) are layout, not content.
        files: info
            .files()
            .iter()
            .filter(|f| !f.is_padding())
            .map(|f| FileJson {
                path: info.display_path(f),
                length: f.length,
            })
            .collect(),
        web_seeds: &t.url_list,
        comment: t.comment.as_deref(),
        created_by: t.created_by.as_deref(),
        creation_date: t.creation_date,
    }
}

fn magnet_json(link: &MagnetLink) -> MagnetJson<'_> {
    MagnetJson {
        info_hash: link.info_hash.to_hex(),
        name: link.display_name.as_deref(),
        // Trackers in a magnet link have no tiers; each is its own.
        trackers: link.trackers.iter().map(|t| vec![t.clone()]).collect(),
        peers: &link.peers,
        web_seeds: &link.web_seeds,
    }
}

/// Appends `label: value` lines, values aligned.
struct Lines(String);

impl Lines {
    /// Adds a line; control characters in the value are escaped, since
    /// torrents and magnet links are written by strangers.
    fn field(&mut self, label: &str, value: impl std::fmt::Display) {
        let value = value.to_string();
        let value = format::printable(&value);
        let label = if label.is_empty() {
            String::new()
        } else {
            format!("{label}:")
        };
        let _ = writeln!(self.0, "{label:<12}{value}");
    }

    fn list<'a>(&mut self, label: &str, items: impl IntoIterator<Item = &'a String>) {
        for (i, item) in items.into_iter().enumerate() {
            self.field(if i == 0 { label } else { "" }, item);
        }
    }
}

fn trackers_text(out: &mut Lines, tiers: &[Vec<String>], web_seeds: bool) {
    if tiers.is_empty() {
        out.field(
            "trackers",
            if web_seeds {
                "none (the web seeds serve the data; peers must come from elsewhere)"
            } else {
                "none (peers must come from elsewhere)"
            },
        );
    }
    for (i, tier) in tiers.iter().enumerate() {
        let label = if tiers.len() == 1 {
            "trackers".to_string()
        } else {
            format!("tier {}", i + 1)
        };
        out.list(&label, tier);
    }
}

fn torrent_text(t: &Metainfo) -> String {
    let info = t.info();
    let layout = t.layout();
    let mut out = Lines(String::new());
    out.field("name", info.name());
    out.field("info-hash", t.info_hash());
    // Padding files (BEP 47, in hybrid torrents) align files to pieces:
    // neither shown nor counted as content.
    let files: Vec<_> = info.files().iter().filter(|f| !f.is_padding()).collect();
    let content: u64 = files.iter().map(|f| f.length).sum();
    let padding = info.total_length() - content;
    out.field(
        "size",
        if padding == 0 {
            format!(
                "{} ({} bytes)",
                format::size(content),
                format::grouped(content)
            )
        } else {
            format!(
                "{} ({} bytes, and {} bytes of padding)",
                format::size(content),
                format::grouped(content),
                format::grouped(padding)
            )
        },
    );
    out.field(
        "pieces",
        format!(
            "{} of {}",
            format::grouped(u64::from(layout.num_pieces())),
            format::size(u64::from(info.piece_length()))
        ),
    );
    out.field("private", if info.is_private() { "yes" } else { "no" });
    let web = t.url_list.iter().any(|url| engine::is_usable_web_seed(url));
    trackers_text(&mut out, &t.trackers(), web);
    out.list("web seeds", &t.url_list);
    if let Some(comment) = &t.comment {
        out.field("comment", comment);
    }
    if let Some(created_by) = &t.created_by {
        out.field("created by", created_by);
    }
    if let Some(date) = t.creation_date {
        out.field("created on", format::utc(date));
    }
    let mut text = out.0;
    let _ = writeln!(text, "files ({}):", files.len());
    let width = files
        .iter()
        .map(|f| format::size(f.length).len())
        .max()
        .unwrap_or(0);
    if !info.is_multi_file() {
        for file in &files {
            let _ = writeln!(
                text,
                "  {:>width$}  {}",
                format::size(file.length),
                format::printable(&info.display_path(file))
            );
        }
        return text;
    }
    // A tree: each folder once, its files and folders indented under it.
    let mut open: Vec<String> = Vec::new();
    for file in files {
        let parts: Vec<String> = info
            .file_path(file)
            .map(|c| format::printable(c).into_owned())
            .collect();
        let Some((name, folders)) = parts.split_last() else {
            continue;
        };
        let shared = open.iter().zip(folders).take_while(|(a, b)| a == b).count();
        open.truncate(shared);
        for folder in &folders[shared..] {
            let _ = writeln!(
                text,
                "  {:>width$}  {}{folder}/",
                "",
                "  ".repeat(open.len())
            );
            open.push(folder.clone());
        }
        let _ = writeln!(
            text,
            "  {:>width$}  {}{name}",
            format::size(file.length),
            "  ".repeat(open.len())
        );
    }
    text
}

fn magnet_text(link: &MagnetLink) -> String {
    let mut out = Lines(String::new());
    out.field(
        "name",
        link.display_name.as_deref().unwrap_or("(not given)"),
    );
    out.field("info-hash", link.info_hash);
    let tiers: Vec<Vec<String>> = link.trackers.iter().map(|t| vec![t.clone()]).collect();
    trackers_text(&mut out, &tiers, false);
    out.list("peers", &link.peers);
    out.list("web seeds", &link.web_seeds);
    out.0 + "files:      unknown until the metadata is fetched from peers\n"
}
