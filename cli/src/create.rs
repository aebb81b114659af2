//! `btc create`: make a torrent from a file or folder.

use std::io::Write as _;
use std::path::PathBuf;

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

pub(crate) fn run(args: &Args) -> Result<()> {
    let mut builder = TorrentBuilder::new(&args.path).private(args.private);
    for tier in &args.trackers {
        let tier: Vec<String> = tier
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
        builder = builder.tracker_tier(tier);
    }
    if let Some(n) = args.piece_length {
        builder = builder.piece_length(n);
    }
    if let Some(comment) = &args.comment {
        builder = builder.comment(comment);
    }
    for url in &args.web_seeds {
        builder = builder.web_seed(url);
    }
    let torrent = builder.build(|_, _| {})?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.torrent", torrent.info.name)));
    if output.exists() && !args.force {
        bail!(
            "{} already exists; choose another name with -o or pass --force",
            output.display()
        );
    }
    write_atomically(&output, &torrent.to_bytes())?;

    let mut magnet = MagnetLink::new(torrent.info_hash());
    magnet.display_name = Some(torrent.info.name.clone());
    magnet.trackers = torrent.trackers().into_iter().flatten().collect();
    let layout = torrent.layout();
    println!("created {}", output.display());
    println!(
        "  {} in {} files, {} pieces of {}",
        format::size(layout.total_length()),
        torrent.info.files.len(),
        format::grouped(u64::from(layout.num_pieces())),
        format::size(u64::from(torrent.info.piece_length)),
    );
    println!("  info-hash {}", torrent.info_hash());
    println!("  {magnet}");
    Ok(())
}

/// Writes through a temporary file in the same folder, so a crash never
/// leaves half a torrent under the final name.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let context = || format!("cannot write {}", path.display());
    let mut file = tempfile::NamedTempFile::new_in(dir).with_context(context)?;
    file.write_all(bytes).with_context(context)?;
    file.as_file().sync_all().with_context(context)?;
    file.persist(path)
        .map_err(|e| e.error)
        .with_context(context)?;
    Ok(())
}
