//! Issue 5, R6: a seed that joins after the leech started is found through the leech's periodic
//! re-announce and used. The late seeds never dial the leech themselves (libtorrent asks the
//! tracker for no peers, `num_want=0`; Transmission never dials loopback peers), so the leech
//! can only have found them by announcing again; its `peer_connected` event names the seed's
//! listening address, which proves it dialled.

use std::time::Duration;

use enjambre_tests::clients::enjambre::{port_of, Peer, PeerOpts, Tracker};
use enjambre_tests::clients::fixture::Fixture;
use enjambre_tests::clients::libtorrent::{self, Libtorrent};
use enjambre_tests::clients::swarm::{Client, Seed};
use enjambre_tests::clients::{assert_same_file, loopback, poll_until, Scratch};

const MIB: usize = 1 << 20;

fn late_seed_is_found(client: Client) {
    if !client.installed() {
        return;
    }
    let scenario = format!("late-{}-seed", client.name());
    let dir = Scratch::new(&scenario);
    let args = [
        "--interval",
        "2",
        "--min-interval",
        "1",
        "--poll-interval",
        "0",
    ];
    let t = Tracker::start(dir.path(), &args);
    let fx = Fixture::new(&dir, &scenario, 2 * MIB, 64 * 1024, &[t.announce_url()]);

    let out = fx.empty_dir("leech");
    let opts = PeerOpts {
        ip: loopback(),
        ..PeerOpts::default()
    };
    let mut leech = Peer::get("enjambre-leech", &fx.dir, &fx.torrent, &out, opts);
    let port = leech.addr.port();
    // The leech is in the swarm, alone, before any seed exists.
    let alone = poll_until(Duration::from_secs(10), || {
        let s = t.swarm(&fx.torrent)?;
        let peers = s["peers"].as_array()?;
        (peers.len() == 1 && port_of(&peers[0]) == Some(port)).then_some(())
    });
    assert!(
        alone.is_some(),
        "the leech did not announce\n{}",
        leech.proc.report()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        leech.proc.exited().is_none(),
        "the leech gave up without a seed"
    );

    let mut seed = match client {
        Client::Libtorrent => {
            let o = libtorrent::Opts {
                num_want: Some(0),
                ..Default::default()
            };
            let data = fx.seed_dir("libtorrent-seed");
            Seed::Libtorrent(Libtorrent::seed(
                "libtorrent-seed",
                &fx.dir,
                &fx.torrent,
                &data,
                o,
            ))
        }
        other => Seed::start(other, &fx, 0),
    };
    let seed_addr = seed.addr().to_string();
    let status = poll_until(Duration::from_secs(60), || leech.proc.exited());
    assert!(
        status.is_some_and(|s| s.success()),
        "the leech did not complete after the {} seed joined ({status:?})\n{}\n{}",
        client.name(),
        leech.proc.report(),
        seed.report()
    );
    assert_same_file(&fx.file_in(&out), &fx.bytes, "enjambre leech");
    let dialled = leech
        .proc
        .last_line(|l| l.contains("peer_connected") && l.contains(&seed_addr));
    assert!(
        dialled.is_some(),
        "the leech never connected to the seed's address {seed_addr}\n{}",
        leech.proc.report()
    );
    // Seeds update their counters about once a second.
    let len = fx.bytes.len() as u64;
    let used = poll_until(Duration::from_secs(5), || {
        (seed.uploaded() >= len).then_some(())
    });
    assert!(
        used.is_some(),
        "the late seed reports {} bytes sent, not the file",
        seed.uploaded()
    );
}

#[test]
fn a_late_libtorrent_seed_is_found_by_re_announce() {
    late_seed_is_found(Client::Libtorrent);
}

#[test]
fn a_late_transmission_seed_is_found_by_re_announce() {
    late_seed_is_found(Client::Transmission);
}
