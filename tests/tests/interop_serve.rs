//! Issue 5, the peer as a seed: `enjambre seed` serves real Transmission, aria2 and libtorrent
//! leeches, each ending with a byte-identical copy. aria2 and libtorrent find the seed through
//! `enjambre tracker`; Transmission, which never dials loopback peers, is dialled by our seed
//! (`--peer`), and, between two network namespaces, finds it through the tracker itself.
//!
//! aria2 replaces runs of `Have` with a `Bitfield` (or `HaveAll`) in mid-connection, which the
//! aria2 scenario exercises. Transmission's default (`encryption` 1, preferred) dials with an MSE
//! key exchange offering RC4 and plaintext: our seed (`--encryption prefer-plaintext`, the
//! default) answers it and selects plaintext.
//!
//! Issue 9: a libtorrent leech still gets the file from a seed whose slots idle connections took.
//!
//! Issue 13: a super-seeding seed (BEP 16: `HaveNone`, then a `Have` or two at a time) serves a
//! libtorrent, an aria2 and an enjambre leech in one swarm.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use enjambre_core::wire::{Extensions, Handshake};
use enjambre_core::PeerId;
use enjambre_tests::clients::aria2::{self, Aria2};
use enjambre_tests::clients::enjambre::{Peer, PeerOpts, Tracker};
use enjambre_tests::clients::fixture::Fixture;
use enjambre_tests::clients::libtorrent::{self, Libtorrent};
use enjambre_tests::clients::netns;
use enjambre_tests::clients::transmission::{self, Transmission};
use enjambre_tests::clients::{assert_same_file, have, loopback, poll_until, Scratch};

const MIB: usize = 1 << 20;

fn tracker(dir: &Scratch) -> Tracker {
    Tracker::start(
        dir.path(),
        &[
            "--interval",
            "2",
            "--min-interval",
            "1",
            "--poll-interval",
            "0",
        ],
    )
}

/// `enjambre seed` of the fixture on its own loopback address, dialling `peers`.
fn seed(fx: &Fixture, peers: Vec<std::net::SocketAddr>) -> Peer {
    let data = fx.seed_dir("enjambre-seed");
    let opts = PeerOpts {
        ip: loopback(),
        peers,
        ..PeerOpts::default()
    };
    Peer::seed(
        "enjambre-seed",
        &fx.dir,
        &fx.torrent,
        &fx.file_in(&data),
        opts,
    )
}

/// What our seed says it uploaded.
fn uploaded(seed: &Peer) -> u64 {
    seed.last("progress")
        .and_then(|v| v["uploaded"].as_u64())
        .unwrap_or(0)
}

/// Wait until our seed's progress line reports the whole file sent.
fn assert_seed_sent_all(seed: &Peer, fx: &Fixture) {
    let len = fx.bytes.len() as u64;
    let sent = poll_until(Duration::from_secs(5), || {
        (uploaded(seed) >= len).then_some(())
    });
    assert!(
        sent.is_some(),
        "enjambre seed reports {} bytes uploaded, less than the file's {len}",
        uploaded(seed)
    );
}

#[test]
fn enjambre_seed_serves_a_libtorrent_leech() {
    if !have("libtorrent") {
        return;
    }
    let dir = Scratch::new("serve-libtorrent");
    let t = tracker(&dir);
    let fx = Fixture::new(
        &dir,
        "serve-libtorrent",
        4 * MIB,
        64 * 1024,
        &[t.announce_url()],
    );
    let s = seed(&fx, vec![]);
    let out = fx.empty_dir("libtorrent-leech");
    let mut l = Libtorrent::leech(
        "libtorrent-leech",
        &fx.dir,
        &fx.torrent,
        &out,
        libtorrent::Opts::default(),
    );
    l.wait_done(Duration::from_secs(60));
    assert_same_file(&fx.file_in(&out), &fx.bytes, "libtorrent leech");
    assert_seed_sent_all(&s, &fx);
}

#[test]
fn enjambre_seed_serves_an_aria2_leech() {
    if !have("aria2") {
        return;
    }
    let dir = Scratch::new("serve-aria2");
    let t = tracker(&dir);
    let fx = Fixture::new(&dir, "serve-aria2", 4 * MIB, 64 * 1024, &[t.announce_url()]);
    let s = seed(&fx, vec![]);
    let out = fx.empty_dir("aria2-leech");
    let mut a = Aria2::leech(
        "aria2-leech",
        &fx.dir,
        &fx.torrent,
        &out,
        aria2::Opts::default(),
    );
    a.wait_complete(Duration::from_secs(60));
    assert_same_file(&fx.file_in(&out), &fx.bytes, "aria2 leech");
    assert_seed_sent_all(&s, &fx);
}

#[test]
fn a_super_seed_serves_libtorrent_aria2_and_enjambre_leeches_in_one_swarm() {
    if !have("libtorrent") || !have("aria2") {
        return;
    }
    let dir = Scratch::new("serve-super-seed");
    let t = tracker(&dir);
    let fx = Fixture::new(
        &dir,
        "serve-super-seed",
        4 * MIB,
        64 * 1024,
        &[t.announce_url()],
    );
    let data = fx.seed_dir("enjambre-seed");
    let opts = PeerOpts {
        ip: loopback(),
        extra: vec!["--super-seed".into()],
        ..PeerOpts::default()
    };
    let s = Peer::seed("super-seed", &fx.dir, &fx.torrent, &fx.file_in(&data), opts);
    let (lt_out, a_out, e_out) = (
        fx.empty_dir("libtorrent-leech"),
        fx.empty_dir("aria2-leech"),
        fx.empty_dir("enjambre-leech"),
    );
    let mut l = Libtorrent::leech(
        "libtorrent-leech",
        &fx.dir,
        &fx.torrent,
        &lt_out,
        libtorrent::Opts::default(),
    );
    let mut a = Aria2::leech(
        "aria2-leech",
        &fx.dir,
        &fx.torrent,
        &a_out,
        aria2::Opts::default(),
    );
    let e_opts = PeerOpts {
        ip: loopback(),
        ..PeerOpts::default()
    };
    let mut e = Peer::get("enjambre-leech", &fx.dir, &fx.torrent, &e_out, e_opts);
    l.wait_done(Duration::from_secs(90));
    a.wait_complete(Duration::from_secs(90));
    e.wait_complete(Duration::from_secs(90));
    assert_same_file(&fx.file_in(&lt_out), &fx.bytes, "libtorrent leech");
    assert_same_file(&fx.file_in(&a_out), &fx.bytes, "aria2 leech");
    assert_same_file(&fx.file_in(&e_out), &fx.bytes, "enjambre leech");
    eprintln!(
        "the super-seed uploaded {:.2} copies to three leeches",
        uploaded(&s) as f64 / fx.bytes.len() as f64
    );
}

#[test]
fn enjambre_seed_dials_and_serves_a_transmission_leech() {
    if !have("transmission") {
        return;
    }
    let dir = Scratch::new("serve-transmission");
    let t = tracker(&dir);
    let fx = Fixture::new(
        &dir,
        "serve-transmission",
        4 * MIB,
        64 * 1024,
        &[t.announce_url()],
    );
    let mut tr = Transmission::start("transmission-leech", &fx.dir, transmission::Opts::default());
    let out = fx.empty_dir("transmission-out");
    let id = tr.add(&fx.torrent, &out);
    let s = seed(&fx, vec![tr.addr]);
    tr.wait_complete(id, Duration::from_secs(60));
    assert_same_file(&fx.file_in(&out), &fx.bytes, "Transmission leech");
    assert_seed_sent_all(&s, &fx);
}

/// Transmission in namespace A, `enjambre tracker` and `enjambre seed` in namespace B, joined by
/// a veth pair: Transmission learns the seed's (non-loopback) address from the tracker and dials
/// it, with Transmission's `encryption` setting `encryption` and `seed_args` given to the seed.
fn transmission_leech_across_namespaces(scenario: &str, encryption: u8, seed_args: &[&str]) {
    if !have("transmission") {
        return;
    }
    let pair = match netns::Pair::new() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skipped: cannot create network namespaces here ({e})");
            return;
        }
    };
    let dir = Scratch::new(scenario);
    let args = [
        "--interval",
        "2",
        "--min-interval",
        "1",
        "--poll-interval",
        "0",
    ];
    let t = Tracker::start_in(dir.path(), Some(&pair.b), (pair.ip_b, 0).into(), &args);
    let fx = Fixture::new(&dir, scenario, 4 * MIB, 64 * 1024, &[t.announce_url()]);
    let data = fx.seed_dir("enjambre-seed");
    let opts = PeerOpts {
        ip: pair.ip_b,
        netns: Some(pair.b.clone()),
        extra: seed_args.iter().map(|a| a.to_string()).collect(),
        ..PeerOpts::default()
    };
    let s = Peer::seed(
        "enjambre-seed",
        &fx.dir,
        &fx.torrent,
        &fx.file_in(&data),
        opts,
    );
    let o = transmission::Opts {
        ip: pair.ip_a,
        netns: Some(pair.a.clone()),
        encryption,
        ..Default::default()
    };
    let mut tr = Transmission::start("transmission-leech", &fx.dir, o);
    let out = fx.empty_dir("transmission-out");
    let id = tr.add(&fx.torrent, &out);
    tr.wait_complete(id, Duration::from_secs(60));
    assert_same_file(&fx.file_in(&out), &fx.bytes, "Transmission leech");
    assert_seed_sent_all(&s, &fx);
    let ts = t.swarm(&fx.torrent).expect("swarm");
    assert!(
        ts["peers"].as_array().is_some_and(|p| p.len() == 2),
        "the tracker should list the seed and Transmission: {ts}"
    );
}

#[test]
fn a_transmission_leech_preferring_plaintext_finds_enjambre_seed_across_namespaces() {
    transmission_leech_across_namespaces("serve-transmission-netns-plain", 0, &[]);
}

#[test]
fn a_default_transmission_leech_finds_enjambre_seed_across_namespaces() {
    transmission_leech_across_namespaces("serve-transmission-netns", 1, &[]);
}

/// Transmission with `encryption: 2` (required) dials our seed, which requires it too: the key
/// exchange is Transmission's to start.
#[test]
fn a_transmission_leech_that_requires_encryption_dials_enjambre_across_namespaces() {
    transmission_leech_across_namespaces("mse-transmission-netns", 2, &["--encryption", "require"]);
}

/// A connection to `to` from the loopback address of `from`, sending a handshake for `fx`'s
/// torrent and then nothing.
fn idle_peer(from: std::net::Ipv4Addr, to: SocketAddr, fx: &Fixture, n: u8) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    sock.connect(&to.into()).unwrap();
    let mut sock: TcpStream = sock.into();
    let mut id = *b"-XX0001-idle-peer-00";
    id[19] = n;
    let hs = Handshake::new(fx.torrent.info_hash, PeerId(id), Extensions::default());
    // A connection refused for want of a slot may be closed before this is written.
    let _ = sock.write_all(&hs.encode());
    sock
}

/// Whether the seed answered with a handshake within half a second.
fn answered(sock: &mut TcpStream) -> bool {
    let mut buf = [0u8; 68];
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    sock.read_exact(&mut buf).is_ok()
}

#[test]
fn a_libtorrent_leech_gets_a_slot_that_idle_connections_held() {
    if !have("libtorrent") {
        return;
    }
    let dir = Scratch::new("serve-idle-slots");
    let t = tracker(&dir);
    let fx = Fixture::new(
        &dir,
        "serve-idle-slots",
        MIB,
        64 * 1024,
        &[t.announce_url()],
    );
    let data = fx.seed_dir("enjambre-seed");
    let opts = PeerOpts {
        ip: loopback(),
        extra: vec!["--max-peers".into(), "8".into()],
        ..PeerOpts::default()
    };
    let s = Peer::seed(
        "enjambre-seed",
        &fx.dir,
        &fx.torrent,
        &fx.file_in(&data),
        opts,
    );
    // Let the seed see the end of the connection that checked it listens.
    std::thread::sleep(Duration::from_millis(500));
    // 30 idle connections, 3 from each of ten loopback addresses: every slot is taken.
    let attack = Instant::now();
    let sources: Vec<_> = (0..10).map(|_| loopback()).collect();
    let mut idle: Vec<TcpStream> = (0..30)
        .map(|k| idle_peer(sources[k % 10], s.addr, &fx, k as u8))
        .collect();
    let taken = idle.iter_mut().map(answered).filter(|&a| a).count();
    assert_eq!(taken, 8, "the seed answers as many as it has slots");
    // libtorrent waits a minute before dialling a refusing peer again: it comes once the idle
    // connections are idle enough to give way (20 s), and must not need a second try.
    std::thread::sleep(Duration::from_secs(21).saturating_sub(attack.elapsed()));
    let out = fx.empty_dir("libtorrent-leech");
    let mut l = Libtorrent::leech(
        "libtorrent-leech",
        &fx.dir,
        &fx.torrent,
        &out,
        libtorrent::Opts {
            peers: vec![s.addr],
            ..libtorrent::Opts::default()
        },
    );
    l.wait_done(Duration::from_secs(30));
    assert_same_file(&fx.file_in(&out), &fx.bytes, "libtorrent leech");
    drop(idle);
}
