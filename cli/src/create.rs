//! `btc create`: make a torrent from a file or folder.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use std::io::IsTerminal as _;

use anyhow::{Context, Result, bail};
use metainfo::{MagnetLink, TorrentBuilder};

use crate::format;

/// Make a .torrent file from a file or a folder.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The file or folder to share.
    path: PathBuf,
    /// Tracker announce URL. Repeat for more tiers; separate URLs with commas
    /// to put them in the same tier.
    #[arg(short = 't', long = "tracker", value_name = "URL")]
    trackers: Vec<String>,
    /// Where to write the torrent [default: NAME.torrent in the current folder].
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Piece length, a power of two from 16KiB to 64MiB (such as 256KiB or
    /// 1MiB) [default: chosen from the total size].
    #[arg(long, value_name = "SIZE", value_parser = format::parse_size)]
    piece_length: Option<u64>,
    /// Mark the torrent private (BEP 27): peers come only from its trackers.
    #[arg(long)]
    private: bool,
    /// A comment stored in the torrent.
    #[arg(long, value_name = "TEXT")]
    comment: Option<String>,
    /// A web seed URL (BEP 19). Repeatable.
    #[arg(long = "web-seed", value_name = "URL")]
    web_seeds: Vec<String>,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,
}

/// Refuses a URL that no client could use: one without `scheme://host`
/// for one of `schemes`.
fn check_url(url: &str, schemes: &[&str], what: &str) -> Result<()> {
    let usable = url.split_once("://").is_some_and(|(scheme, rest)| {
        schemes.contains(&scheme.to_ascii_lowercase().as_str())
            && !rest.is_empty()
            && !rest.starts_with('/')
            && !url.chars().any(char::is_whitespace)
    });
    if usable {
        Ok(())
    } else {
        anyhow::bail!(
            "{what} {url:?} is not a usable URL: give {}://HOST…",
            schemes.join("://HOST… or ")
        )
    }
}

pub(crate) fn run(args: &Args) -> Result<String> {
    let mut builder = TorrentBuilder::new(&args.path).private(args.private);
    for tier in &args.trackers {
        let tier: Vec<String> = tier
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
        for url in &tier {
            check_url(url, &["http", "https", "udp"], "tracker")?;
        }
        builder = builder.tracker_tier(tier);
    }
    if let Some(n) = args.piece_length {
        builder = builder.piece_length(n);
    }
    if let Some(comment) = &args.comment {
        builder = builder.comment(comment);
    }
    let mut web_seeds: Vec<&String> = Vec::new();
    for url in &args.web_seeds {
        check_url(url, &["http", "https"], "web seed")?;
        // Each once, however often given.
        if !web_seeds.contains(&url) {
            web_seeds.push(url);
            builder = builder.web_seed(url);
        }
    }
    // Refuse early when the output is named, rather than after hashing.
    if let Some(output) = &args.output {
        refuse_overwrite(output, args.force)?;
        check_folder(output)?;
    }
    // An older copy of the output inside the folder is not content. The
    // default output is named after the content, in the current folder.
    let output = args.output.clone().or_else(|| {
        let name = args.path.file_name().map(std::ffi::OsStr::to_os_string);
        let name = name.or_else(|| args.path.canonicalize().ok()?.file_name().map(Into::into));
        name.map(|mut name| {
            name.push(".torrent");
            PathBuf::from(name)
        })
    });
    if let Some(output) = output {
        builder = builder.exclude(output);
    }
    // A bar on a terminal while the files are hashed.
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "hashing [{bar:30}] {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    let torrent = builder.build(|done, total| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let torrent = torrent?;
    let info = torrent.info();
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.torrent", info.name())));
    refuse_overwrite(&output, args.force)?;
    check_folder(&output)?;
    write_atomically(&output, &torrent.to_bytes(), args.force)?;

    let mut magnet = MagnetLink::new(torrent.info_hash());
    magnet.display_name = Some(info.name().to_string());
    magnet.trackers = torrent.trackers().into_iter().flatten().collect();
    let layout = torrent.layout();
    let mut out = format!("created {}\n", output.display());
    let _ = writeln!(
        out,
        "  {} in {}, {} of {}",
        format::size(layout.total_length()),
        match info.files().len() {
            1 => "1 file".to_string(),
            n => format!("{} files", format::grouped(n as u64)),
        },
        match layout.num_pieces() {
            1 => "1 piece".to_string(),
            n => format!("{} pieces", format::grouped(u64::from(n))),
        },
        format::size(u64::from(info.piece_length())),
    );
    let _ = writeln!(out, "  info-hash {}", torrent.info_hash());
    let _ = writeln!(out, "  {magnet}");
    Ok(out)
}

/// The folder a file goes in: its parent, or the current folder for a
/// bare name.
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The folder `output` goes in must exist: said before any hashing, and
/// without the name of the temporary file the write goes through.
pub(crate) fn check_folder(output: &Path) -> Result<()> {
    let dir = folder_of(output);
    if !dir.is_dir() {
        bail!(
            "cannot write {}: the folder {} does not exist",
            output.display(),
            dir.display()
        );
    }
    Ok(())
}

fn refuse_overwrite(output: &Path, force: bool) -> Result<()> {
    if output.exists() && !force {
        bail!(
            "{} already exists; choose another name with -o or pass --force",
            output.display()
        );
    }
    Ok(())
}

/// Writes through a temporary file in the same folder, so a crash never
/// leaves half a torrent under the final name. Without `overwrite`, a file
/// that appeared meanwhile is left alone.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], overwrite: bool) -> Result<()> {
    let dir = folder_of(path);
    let context = || format!("cannot write {}", path.display());
    let mut file = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .with_context(context)?;
    file.write_all(bytes).with_context(context)?;
    file.as_file().sync_all().with_context(context)?;
    let persisted = if overwrite {
        file.persist(path)
    } else {
        file.persist_noclobber(path)
    };
    persisted.map_err(|e| e.error).with_context(context)?;
    Ok(())
}
