//! Any of the real clients as a seed of a fixture, behind one type, so that a scenario can say
//! "a Transmission seed" or "one seed of each kind" and ask each how much it uploaded.

use std::net::SocketAddr;

use super::aria2::{self, Aria2};
use super::enjambre::{Peer, PeerOpts};
use super::fixture::Fixture;
use super::libtorrent::{self, Libtorrent};
use super::transmission::{self, Transmission};

/// A BitTorrent client the tests can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Enjambre,
    Transmission,
    Aria2,
    Libtorrent,
}

impl Client {
    /// The name used in test output and for `have`.
    pub fn name(self) -> &'static str {
        match self {
            Client::Enjambre => "enjambre",
            Client::Transmission => "transmission",
            Client::Aria2 => "aria2",
            Client::Libtorrent => "libtorrent",
        }
    }

    /// Whether it is installed (see [`super::have`]); ours always is.
    pub fn installed(self) -> bool {
        self == Client::Enjambre || super::have(self.name())
    }
}

/// A running seed of some kind.
pub enum Seed {
    Enjambre(Peer),
    Transmission(Transmission, i64),
    Aria2(Aria2),
    Libtorrent(Libtorrent),
}

impl Seed {
    /// Start `client` seeding `fx` from its own copy of the data, uploading at most
    /// `upload_limit` bytes/s (0: no limit). It announces to the torrent's trackers.
    pub fn start(client: Client, fx: &Fixture, upload_limit: u64) -> Seed {
        let name = format!("{}-seed", client.name());
        let data = fx.seed_dir(&name);
        let t = &fx.torrent;
        match client {
            Client::Enjambre => {
                let mut opts = PeerOpts {
                    ip: super::loopback(),
                    ..PeerOpts::default()
                };
                if upload_limit > 0 {
                    opts.extra = vec!["--max-upload-rate".into(), upload_limit.to_string()];
                }
                Seed::Enjambre(Peer::seed(&name, &fx.dir, t, &fx.file_in(&data), opts))
            }
            Client::Transmission => {
                let o = transmission::Opts {
                    upload_limit_kbps: (upload_limit / 1000) as u32,
                    ..Default::default()
                };
                let mut tr = Transmission::start(&name, &fx.dir, o);
                let id = tr.add_seed(t, &data);
                Seed::Transmission(tr, id)
            }
            Client::Aria2 => {
                let o = aria2::Opts {
                    upload_limit,
                    ..Default::default()
                };
                Seed::Aria2(Aria2::seed(&name, &fx.dir, t, &data, o))
            }
            Client::Libtorrent => {
                let o = libtorrent::Opts {
                    upload_limit,
                    ..Default::default()
                };
                Seed::Libtorrent(Libtorrent::seed(&name, &fx.dir, t, &data, o))
            }
        }
    }

    /// Where it accepts peers.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Seed::Enjambre(p) => p.addr,
            Seed::Transmission(t, _) => t.addr,
            Seed::Aria2(a) => a.addr,
            Seed::Libtorrent(l) => l.addr,
        }
    }

    /// Piece bytes it has sent, as it reports them.
    pub fn uploaded(&mut self) -> u64 {
        match self {
            Seed::Enjambre(p) => p
                .last("progress")
                .and_then(|v| v["uploaded"].as_u64())
                .unwrap_or(0),
            Seed::Transmission(t, id) => t.status(*id).uploaded_ever,
            Seed::Aria2(a) => a.status().uploaded,
            Seed::Libtorrent(l) => l.status().uploaded,
        }
    }

    /// Its logs, for failure messages.
    pub fn report(&self) -> String {
        match self {
            Seed::Enjambre(p) => p.proc.report(),
            Seed::Transmission(t, _) => t.report(),
            Seed::Aria2(a) => a.proc.report(),
            Seed::Libtorrent(l) => l.proc.report(),
        }
    }
}
