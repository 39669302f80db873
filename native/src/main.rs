//! `enjambre`: the command-line tracker and peer.

use clap::{Parser, Subcommand};

mod logging;
mod tracker;

#[derive(Parser)]
#[command(
    name = "enjambre",
    version,
    about = "A BitTorrent tracker that knows every peer's pieces, and a peer that never loses a byte"
)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the tracker: HTTP and UDP announces, peer polling, swarm API.
    Tracker(tracker::TrackerArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    match cli.command {
        Command::Tracker(args) => tracker::run(args),
    }
}
