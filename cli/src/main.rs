//! `btc`, the command-line BitTorrent client.

mod create;
mod format;
mod info;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// btc: a BitTorrent client.
#[derive(Debug, Parser)]
#[command(name = "btc", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Info(info::Args),
    Create(create::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => info::run(&args),
        Command::Create(args) => create::run(&args),
    };
    match result.and_then(|text| print(&text)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `{:#}` joins the chain of causes into one sentence.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes a command's output. A reader that went away (`btc info … | head`)
/// is not an error: the output was wanted only that far.
fn print(text: &str) -> anyhow::Result<()> {
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
