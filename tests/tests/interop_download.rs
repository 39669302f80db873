//! Issue 5, the peer as a leech: `enjambre get` downloads a byte-identical copy from a real
//! Transmission, aria2 or libtorrent seed alone, and from one of each in a single swarm, found
//! through `enjambre tracker` and through opentracker.

use std::time::Duration;

use enjambre_tests::clients::enjambre::{Peer, PeerOpts, Tracker};
use enjambre_tests::clients::fixture::Fixture;
use enjambre_tests::clients::opentracker::OpenTracker;
use enjambre_tests::clients::swarm::{Client, Seed};
use enjambre_tests::clients::{assert_same_file, have, loopback, poll_until, Scratch};

const MIB: usize = 1 << 20;

/// A tracker that tells clients to come back every 2 s and does not poll.
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

/// Wait until the tracker lists `n` seeders for the fixture's torrent.
fn wait_seeders(t: &Tracker, fx: &Fixture, n: u64) {
    let seen = poll_until(Duration::from_secs(20), || {
        let s = t.swarm(&fx.torrent)?;
        (s["seeders"].as_u64()? >= n).then_some(())
    });
    assert!(
        seen.is_some(),
        "the tracker did not see {n} seeders: {:?}\n{}",
        t.swarm(&fx.torrent),
        t.report()
    );
}

/// Download the fixture with `enjambre get` and check the copy; returns the leech.
fn leech(fx: &Fixture, limit: Duration, seeds: &[&Seed]) -> Peer {
    let out = fx.empty_dir("enjambre-leech");
    let opts = PeerOpts {
        ip: loopback(),
        ..PeerOpts::default()
    };
    let mut l = Peer::get("enjambre-leech", &fx.dir, &fx.torrent, &out, opts);
    let status = poll_until(limit, || l.proc.exited());
    let Some(status) = status else {
        let logs: Vec<String> = seeds.iter().map(|s| s.report()).collect();
        panic!(
            "enjambre get did not finish within {limit:?}\n{}\n{}",
            l.proc.report(),
            logs.join("\n")
        );
    };
    assert!(
        status.success(),
        "enjambre get failed: {status}\n{}",
        l.proc.report()
    );
    assert_same_file(&fx.file_in(&out), &fx.bytes, "enjambre leech");
    l
}

/// One seed of `client` alone, through `enjambre tracker`.
fn from_a_lone_seed(client: Client) {
    if !client.installed() {
        return;
    }
    let dir = Scratch::new(&format!("download-from-{}", client.name()));
    let t = tracker(&dir);
    let fx = Fixture::new(&dir, client.name(), 4 * MIB, 64 * 1024, &[t.announce_url()]);
    let mut seed = Seed::start(client, &fx, 0);
    wait_seeders(&t, &fx, 1);
    leech(&fx, Duration::from_secs(60), &[&seed]);
    // Seeds update their counters about once a second.
    let len = fx.bytes.len() as u64;
    let _ = poll_until(Duration::from_secs(5), || {
        (seed.uploaded() >= len).then_some(())
    });
    assert!(
        seed.uploaded() >= len,
        "the {} seed reports {} bytes uploaded, less than the file",
        client.name(),
        seed.uploaded()
    );
}

#[test]
fn enjambre_downloads_from_a_transmission_seed() {
    from_a_lone_seed(Client::Transmission);
}

#[test]
fn enjambre_downloads_from_an_aria2_seed() {
    from_a_lone_seed(Client::Aria2);
}

#[test]
fn enjambre_downloads_from_a_libtorrent_seed() {
    from_a_lone_seed(Client::Libtorrent);
}

const THREE: [Client; 3] = [Client::Transmission, Client::Aria2, Client::Libtorrent];

/// One seed of each kind, each limited to 100 KB/s so that all three serve (Transmission
/// unchokes only after about 10 s); every one of them must have uploaded some of the file.
fn from_three_seeds(announce: String, dir: &Scratch, wait: impl Fn(&Fixture)) {
    let fx = Fixture::new(dir, "three-seeds", 3 * MIB, 64 * 1024, &[announce]);
    let mut seeds: Vec<Seed> = THREE
        .iter()
        .map(|&c| Seed::start(c, &fx, 100_000))
        .collect();
    wait(&fx);
    let refs: Vec<&Seed> = seeds.iter().collect();
    leech(&fx, Duration::from_secs(90), &refs);
    std::thread::sleep(Duration::from_millis(1500)); // seeds update their counters each second
    let mut total = 0;
    for (client, seed) in THREE.iter().zip(seeds.iter_mut()) {
        let up = seed.uploaded();
        eprintln!("{} seed uploaded {up} bytes", client.name());
        assert!(
            up > 0,
            "the {} seed uploaded nothing\n{}",
            client.name(),
            seed.report()
        );
        total += up;
    }
    assert!(
        total >= fx.bytes.len() as u64,
        "the seeds uploaded {total} bytes in all, less than the file"
    );
}

#[test]
fn enjambre_downloads_from_transmission_aria2_and_libtorrent_via_enjambre_tracker() {
    if !THREE.iter().all(|c| c.installed()) {
        return;
    }
    let dir = Scratch::new("three-seeds-enjambre-tracker");
    let t = tracker(&dir);
    from_three_seeds(t.announce_url(), &dir, |fx| wait_seeders(&t, fx, 3));
}

#[test]
fn enjambre_downloads_from_transmission_aria2_and_libtorrent_via_opentracker() {
    if !THREE.iter().all(|c| c.installed()) || !have("opentracker") {
        return;
    }
    let dir = Scratch::new("three-seeds-opentracker");
    // opentracker must whitelist the info-hash before the seeds announce, and the torrent must
    // name its URL: start it on a known port with the hash of the same file.
    let probe = Fixture::new(&dir, "three-seeds", 3 * MIB, 64 * 1024, &[]);
    let ot = OpenTracker::start(dir.path(), &[&probe.torrent]);
    from_three_seeds(ot.announce_url(), &dir, |fx| {
        assert_eq!(
            fx.torrent.info_hash, probe.torrent.info_hash,
            "announce is outside info"
        );
        let seen = poll_until(Duration::from_secs(20), || {
            (ot.scrape(&fx.torrent)?.complete >= 3).then_some(())
        });
        assert!(
            seen.is_some(),
            "opentracker did not see 3 seeds: {:?}",
            ot.scrape(&fx.torrent)
        );
    });
}
