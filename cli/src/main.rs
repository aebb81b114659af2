//! `btc`, the command-line BitTorrent client.

mod create;
mod dht;
mod download;
mod format;
mod info;
mod tracker;
mod watch;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// btc: a BitTorrent client.
#[derive(Debug, Parser)]
#[command(name = "btc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Say more about what happens: -v for events such as announces, -vv
    /// for details.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, display_order = 900)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    Info(info::Args),
    Create(create::Args),
    Download(download::DownloadArgs),
    Seed(download::SeedArgs),
    Tracker(tracker::Args),
    Dht(dht::Args),
    Completions(CompletionsArgs),
    Man(ManArgs),
}

/// Print a shell completion script (bash, zsh, fish, elvish, powershell).
#[derive(Debug, clap::Args)]
struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

/// Print btc's manual page (roff) to standard output: btc(1), or a
/// command's own page, such as btc-download(1).
#[derive(Debug, clap::Args)]
struct ManArgs {
    /// The command whose page to print (download, seed, create, info,
    /// tracker, completions).
    command: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = match &cli.command {
        Command::Download(args) => args.quiet(),
        Command::Seed(args) => args.quiet(),
        _ => false,
    };
    init_logging(cli.verbose, quiet);
    let result = match cli.command {
        Command::Info(args) => info::run(&args),
        Command::Create(args) => create::run(&args),
        Command::Download(args) => download::download(&args),
        Command::Seed(args) => download::seed(&args),
        Command::Tracker(args) => tracker::run(&args),
        Command::Dht(args) => dht::run(&args),
        Command::Completions(args) => completions(args.shell),
        Command::Man(ManArgs { command }) => man(command.as_deref()),
    };
    match result.and_then(|text| print(&text)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => match err.downcast::<download::Interrupted>() {
            // Stopped by the user: said plainly, with the signal's status
            // (130 after Ctrl-C, 143 after SIGTERM), as a shell would give.
            Ok(stopped) => {
                if !quiet {
                    eprintln!("{stopped}");
                }
                ExitCode::from(stopped.status)
            }
            Err(err) => {
                // `{:#}` joins the chain of causes into one sentence.
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn completions(shell: clap_complete::Shell) -> anyhow::Result<String> {
    use clap::CommandFactory as _;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "btc", &mut out);
    Ok(String::from_utf8(out)?)
}

fn man(command: Option<&str>) -> anyhow::Result<String> {
    use clap::CommandFactory as _;
    let cli = Cli::command();
    let mut out = Vec::new();
    match command {
        None => {
            clap_mangen::Man::new(cli).render(&mut out)?;
            out.extend_from_slice(MAN_EXTRA.as_bytes());
        }
        Some(name) => {
            let Some(sub) = cli.find_subcommand(name).cloned() else {
                let names: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
                anyhow::bail!("btc has no command {name:?}: {}", names.join(", "));
            };
            clap_mangen::Man::new(sub)
                .title(format!("btc-{name}"))
                .render(&mut out)?;
        }
    }
    Ok(String::from_utf8(out)?)
}

/// What the top manual page says beyond the options.
const MAN_EXTRA: &str = r#".SH "EXIT STATUS"
0 done (and for \fBseed\fR, \fBdownload \-\-seed\fR and \fBtracker\fR, stopped),
1 failure, 2 usage error, 130 interrupted by Ctrl\-C, 143 by SIGTERM.
.SH ENVIRONMENT
.TP
\fBRUST_LOG\fR
Log filter, instead of what \fB\-v\fR and \fB\-q\fR set.
.TP
\fBXDG_STATE_HOME\fR
Where resume data and locks live, under \fIbtc/resume\fR.
.SH FILES
.TP
\fI$XDG_STATE_HOME/btc/resume\fR, else \fI~/.local/state/btc/resume\fR
Resume data, one file per torrent and download folder, and the lock that
keeps a second btc off the same torrent and folder.
"#;

/// Logs to stderr: warnings by default, then info and debug with -v and -vv.
/// `RUST_LOG` overrides this.
fn init_logging(verbose: u8, quiet: bool) {
    // More words from btc's own crates only: the libraries under them
    // (globset, hyper, rustls) say little a user can act on.
    let level = match verbose {
        0 if quiet => "error",
        0 => "warn",
        1 => {
            "warn,btc=info,engine=info,storage=info,tracker=info,peerwire=info,metainfo=info,dht=info"
        }
        _ => {
            "warn,btc=debug,engine=debug,storage=debug,tracker=debug,peerwire=debug,metainfo=debug,dht=debug"
        }
    };
    // An empty or unreadable `RUST_LOG` is as good as none.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| watch::LogWriter)
        // Colours only for a terminal, not for a log file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

/// Writes a command's output. A reader that went away (`btc info … | head`)
/// is not an error: the output was wanted only that far.
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
