//! Issue 14, message stream encryption with Transmission set to `encryption: 2` (required):
//! `enjambre get --encryption require` downloads from a Transmission seed, and `enjambre seed
//! --encryption require` serves a Transmission leech. Transmission never dials loopback peers,
//! so on loopback our side dials it (`--peer`) and Transmission answers the key exchange; across
//! two network namespaces (in `interop_serve.rs`) Transmission finds our seed through the
//! tracker and starts the key exchange itself. Each copy is byte-identical.

use std::time::Duration;

use enjambre_tests::clients::enjambre::{Peer, PeerOpts};
use enjambre_tests::clients::fixture::Fixture;
use enjambre_tests::clients::transmission::{self, Transmission};
use enjambre_tests::clients::{assert_same_file, have, loopback, Scratch};

const MIB: usize = 1 << 20;

fn required() -> transmission::Opts {
    transmission::Opts {
        encryption: 2,
        ..transmission::Opts::default()
    }
}

fn require(peer: std::net::SocketAddr) -> PeerOpts {
    PeerOpts {
        ip: loopback(),
        peers: vec![peer],
        extra: vec!["--encryption".into(), "require".into()],
        ..PeerOpts::default()
    }
}

#[test]
fn enjambre_downloads_from_a_transmission_seed_that_requires_encryption() {
    if !have("transmission") {
        return;
    }
    let dir = Scratch::new("mse-transmission-seed");
    let fx = Fixture::new(&dir, "mse-transmission-seed", 4 * MIB, 64 * 1024, &[]);
    let mut tr = Transmission::start("transmission-seed", &fx.dir, required());
    tr.add_seed(&fx.torrent, &fx.seed_dir("transmission-data"));
    let out = fx.empty_dir("enjambre-out");
    let mut leech = Peer::get(
        "enjambre-leech",
        &fx.dir,
        &fx.torrent,
        &out,
        require(tr.addr),
    );
    leech.wait_complete(Duration::from_secs(60));
    assert_same_file(&fx.file_in(&out), &fx.bytes, "enjambre leech");
}

#[test]
fn a_transmission_leech_that_requires_encryption_downloads_from_enjambre() {
    if !have("transmission") {
        return;
    }
    let dir = Scratch::new("mse-transmission-leech");
    let fx = Fixture::new(&dir, "mse-transmission-leech", 4 * MIB, 64 * 1024, &[]);
    let mut tr = Transmission::start("transmission-leech", &fx.dir, required());
    let out = fx.empty_dir("transmission-out");
    let id = tr.add(&fx.torrent, &out);
    let data = fx.seed_dir("enjambre-seed");
    let _seed = Peer::seed(
        "enjambre-seed",
        &fx.dir,
        &fx.torrent,
        &fx.file_in(&data),
        require(tr.addr),
    );
    tr.wait_complete(id, Duration::from_secs(60));
    assert_same_file(&fx.file_in(&out), &fx.bytes, "Transmission leech");
}
