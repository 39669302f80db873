//! Issue 9 item 22, the tracker's polls must never cost a swarm anything: Transmission accepts
//! one connection per IP address, and on loopback the tracker's poll and a real leech dial from
//! the same address. A libtorrent leech of a Transmission seed, through our tracker, must get
//! its first payload byte as soon with polling (every 2 s) as with polling off.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use enjambre_tests::clients::enjambre::Tracker;
use enjambre_tests::clients::fixture::Fixture;
use enjambre_tests::clients::libtorrent::{self, Libtorrent};
use enjambre_tests::clients::swarm::{Client, Seed};
use enjambre_tests::clients::{free_tcp_udp_port, poll_until, Scratch};

const MIB: usize = 1 << 20;
/// How long a leech may wait for its first byte before the scenario gives up.
const PATIENCE: Duration = Duration::from_secs(120);

/// Seconds from the leech's start to its first payload byte, with `poll_args` given to the
/// tracker; `None` when no byte came within [`PATIENCE`].
fn first_byte(scenario: &str, poll_args: &[&str]) -> Option<Duration> {
    let dir = Scratch::new(scenario);
    let port = free_tcp_udp_port(Ipv4Addr::LOCALHOST);
    let fx = Fixture::new(
        &dir,
        scenario,
        4 * MIB,
        64 * 1024,
        &[Tracker::url_for(port)],
    );
    let mut args = vec!["--interval", "60"];
    args.extend_from_slice(poll_args);
    let t = Tracker::start_in(dir.path(), None, (Ipv4Addr::LOCALHOST, port).into(), &args);
    let seed = Seed::start(Client::Transmission, &fx, 0);
    let announced = poll_until(Duration::from_secs(30), || {
        (t.swarm(&fx.torrent)?["seeders"].as_u64()? >= 1).then_some(())
    });
    assert!(
        announced.is_some(),
        "the Transmission seed never announced\n{}\n{}",
        t.report(),
        seed.report()
    );
    let started = Instant::now();
    let out = fx.empty_dir("leech");
    let leech = Libtorrent::leech(
        "libtorrent-leech",
        &fx.dir,
        &fx.torrent,
        &out,
        libtorrent::Opts::default(),
    );
    let first = poll_until(PATIENCE, || {
        leech
            .history()
            .into_iter()
            .find(|(_, s)| s.downloaded > 0)
            .map(|(at, _)| at.saturating_duration_since(started))
    });
    eprintln!("{scenario}: first payload byte after {first:?}");
    if first.is_none() {
        eprintln!("{}\n{}\n{}", t.report(), seed.report(), leech.proc.report());
    }
    first
}

#[test]
fn polling_does_not_delay_a_leech_of_a_transmission_seed() {
    if !Client::Transmission.installed() || !Client::Libtorrent.installed() {
        eprintln!("Transmission or libtorrent not installed: skipped");
        return;
    }
    let off = first_byte("polls-off", &["--poll-interval", "0"])
        .expect("no first byte even with polling off");
    let on = first_byte("polls-on", &["--poll-interval", "2"]);
    let on = on.unwrap_or_else(|| {
        panic!("with polling, no first byte within {PATIENCE:?} (off: {off:?})")
    });
    assert!(
        on <= off + Duration::from_secs(3),
        "polling delayed the first byte: {on:?} with polling, {off:?} without"
    );
}
