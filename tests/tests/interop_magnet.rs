//! Issue 14, magnet links: `enjambre get 'magnet:?xt=urn:btih:…&tr=…'` fetches the info
//! dictionary from real seeds (BEP 9), keeps it as a `.torrent` next to the download, and
//! downloads byte-identical; a second run finds that torrent and needs no peer for it.

use std::time::Duration;

use enjambre_tests::clients::enjambre::{Peer, PeerOpts, Tracker};
use enjambre_tests::clients::fixture::Fixture;
use enjambre_tests::clients::http::percent_encode;
use enjambre_tests::clients::swarm::{Client, Seed};
use enjambre_tests::clients::{assert_same_file, loopback, poll_until, Scratch};

const MIB: usize = 1 << 20;

fn tracker(dir: &Scratch) -> Tracker {
    let args = [
        "--interval",
        "2",
        "--min-interval",
        "1",
        "--poll-interval",
        "0",
    ];
    Tracker::start(dir.path(), &args)
}

fn magnet(fx: &Fixture, params: &str) -> String {
    format!("magnet:?xt=urn:btih:{}{params}", fx.torrent.info_hash)
}

/// `enjambre get LINK` into a new directory `name`; panics with the logs unless it completes.
fn get(fx: &Fixture, name: &str, link: &str, opts: PeerOpts, seeds: &[&Seed]) -> Peer {
    let out = fx.empty_dir(name);
    let mut l = Peer::get_link(name, &fx.dir, link, &out, opts);
    let limit = Duration::from_secs(90);
    let Some(status) = poll_until(limit, || l.proc.exited()) else {
        let logs: Vec<String> = seeds.iter().map(|s| s.report()).collect();
        panic!(
            "{name} did not finish\n{}\n{}",
            l.proc.report(),
            logs.join("\n")
        );
    };
    assert!(
        status.success(),
        "{name} failed: {status}\n{}",
        l.proc.report()
    );
    assert_same_file(&fx.file_in(&out), &fx.bytes, name);
    l
}

/// A magnet link with only `tr=` (and `dn=`), the one seed a real client.
fn from_a_lone_seed(client: Client) {
    if !client.installed() {
        return;
    }
    let dir = Scratch::new(&format!("magnet-from-{}", client.name()));
    let t = tracker(&dir);
    // 16 KiB pieces: an info dictionary of about 7 KiB.
    let fx = Fixture::new(&dir, client.name(), 6 * MIB, 16 * 1024, &[t.announce_url()]);
    let seed = Seed::start(client, &fx, 0);
    let link = magnet(
        &fx,
        &format!(
            "&dn={}&tr={}",
            fx.torrent.name,
            percent_encode(t.announce_url().as_bytes())
        ),
    );
    let opts = || PeerOpts {
        ip: loopback(),
        ..PeerOpts::default()
    };
    let name = format!("leech-of-{}", client.name());
    get(&fx, &name, &link, opts(), &[&seed]);
    // The torrent was kept next to the download: the same metadata, the link's tracker.
    let kept = fx
        .dir
        .join(&name)
        .join(format!("{}.torrent", fx.torrent.name));
    let meta_bytes = std::fs::read(&kept).unwrap_or_else(|e| panic!("{kept:?}: {e}"));
    let meta = enjambre_core::metainfo::Metainfo::parse(&meta_bytes).unwrap();
    assert_eq!(meta.info_hash, fx.torrent.info_hash);
    let urls: Vec<_> = meta.trackers().map(|(_, u)| u.to_string()).collect();
    assert_eq!(urls, [t.announce_url()]);
    // Again, with the seed gone: the kept torrent is found, the data is complete, no peer.
    drop(seed);
    let second = format!("{name}-again");
    let mut again = Peer::get_link(&second, &fx.dir, &link, &fx.dir.join(&name), opts());
    let status = poll_until(Duration::from_secs(30), || again.proc.exited());
    assert!(
        status.is_some_and(|s| s.success()),
        "the second run did not finish from the kept torrent\n{}",
        again.proc.report()
    );
}

#[test]
fn a_magnet_link_downloads_from_a_transmission_seed() {
    from_a_lone_seed(Client::Transmission);
}

#[test]
fn a_magnet_link_downloads_from_an_aria2_seed() {
    from_a_lone_seed(Client::Aria2);
}

#[test]
fn a_magnet_link_downloads_from_a_libtorrent_seed() {
    from_a_lone_seed(Client::Libtorrent);
}

#[test]
fn a_magnet_link_with_only_a_peer_downloads_from_an_enjambre_seed() {
    let dir = Scratch::new("magnet-x-pe");
    // No tracker anywhere: the seed is named in the link itself (`x.pe`).
    let fx = Fixture::new(&dir, "x-pe", 3 * MIB, 32 * 1024, &[]);
    let seed = Seed::start(Client::Enjambre, &fx, 0);
    let link = magnet(&fx, &format!("&x.pe={}", seed.addr()));
    let opts = PeerOpts {
        ip: loopback(),
        ..PeerOpts::default()
    };
    get(&fx, "leech", &link, opts, &[&seed]);
}

#[test]
fn a_magnet_link_nobody_can_resolve_fails_with_a_clear_reason() {
    let dir = Scratch::new("magnet-unresolvable");
    let fx = Fixture::new(&dir, "nobody", 64 * 1024, 16 * 1024, &[]);
    let out = fx.empty_dir("out");
    // No tracker and no peer: refused at once.
    let mut l = Peer::get_link("none", &fx.dir, &magnet(&fx, ""), &out, PeerOpts::default());
    let status = poll_until(Duration::from_secs(10), || l.proc.exited()).expect("exits");
    assert_eq!(status.code(), Some(2), "{}", l.proc.report());
    assert!(
        l.proc.report().contains("names no tracker and no peer"),
        "{}",
        l.proc.report()
    );
    // A peer that refuses connections: the failure names it.
    let port = enjambre_tests::clients::free_port(std::net::Ipv4Addr::LOCALHOST);
    let link = magnet(&fx, &format!("&x.pe=127.0.0.1:{port}"));
    let mut l = Peer::get_link("refused", &fx.dir, &link, &out, PeerOpts::default());
    let status = poll_until(Duration::from_secs(30), || l.proc.exited()).expect("exits");
    assert_eq!(status.code(), Some(3), "{}", l.proc.report());
    let report = l.proc.report();
    assert!(
        report.contains("no peer gave the torrent's metadata"),
        "{report}"
    );
    assert!(
        report.contains(&format!("127.0.0.1:{port}: cannot connect")),
        "{report}"
    );
    // A link that is not one.
    let mut l = Peer::get_link(
        "bad",
        &fx.dir,
        "magnet:?xt=urn:btih:xyz",
        &out,
        PeerOpts::default(),
    );
    let status = poll_until(Duration::from_secs(10), || l.proc.exited()).expect("exits");
    assert_eq!(status.code(), Some(2), "{}", l.proc.report());
}
