//! `enjambre`: the command-line tracker and peer.

use clap::{Parser, Subcommand};

mod create;
mod create_flash;
mod demo;
mod info;
mod logging;
mod peer;
mod torrent_source;
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
    Tracker(Box<tracker::TrackerArgs>),
    /// Write a .torrent for a file or a directory.
    Create(create::CreateArgs),
    /// Download a torrent (and resume an interrupted download).
    Get(peer::args::GetArgs),
    /// Serve a torrent's complete data.
    Seed(peer::args::SeedArgs),
    /// Show what a .torrent holds: name, size, files, pieces, info-hash, trackers, magnet link.
    Info(info::InfoArgs),
    /// Run a whole swarm on loopback: tracker, two seeds and a leech.
    Demo(demo::DemoArgs),
}

fn main() {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    let result = match cli.command {
        Command::Tracker(args) => tracker::run(*args),
        Command::Create(args) => create::run(args),
        Command::Get(args) => peer::get(args),
        Command::Seed(args) => peer::seed(args),
        Command::Info(args) => info::run(args),
        Command::Demo(args) => demo::run(args),
    };
    if let Err(e) = result {
        // One style for every command: `error: ` and the chain of causes, no backtrace; the
        // exit code is the failure's own when it carries one (see `peer::Failure`), else 1.
        eprintln!("error: {e:#}");
        let code = e.downcast_ref::<peer::Failure>().map_or(1, |f| f.code);
        std::process::exit(code);
    }
}
