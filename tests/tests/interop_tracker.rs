//! Issue 4, the tracker with real clients: a real seed and a real leech announce to
//! `enjambre tracker` over HTTP, find each other and complete. While the (rate-limited) leech
//! downloads, the swarm API shows its bitfield growing, learned by polling (`source: "poll"`),
//! never older than one poll cycle; once it has finished, it shows as a seed with a full
//! bitfield, and scrape counts two seeds, no leech and one completed download.
//!
//! Pairs: libtorrent → libtorrent, aria2 → aria2, Transmission → aria2 (Transmission accepts the
//! leech's connection; it never dials loopback peers itself). And one swarm over UDP announces.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use enjambre_tests::clients::aria2::{self, Aria2};
use enjambre_tests::clients::enjambre::{Peer, PeerOpts, Scrape, Tracker};
use enjambre_tests::clients::fixture::Fixture;
use enjambre_tests::clients::libtorrent::{self, Libtorrent};
use enjambre_tests::clients::swarm::{Client, Seed};
use enjambre_tests::clients::{assert_same_file, free_tcp_udp_port, loopback, poll_until, Scratch};
use serde_json::Value;

const MIB: usize = 1 << 20;
/// The poll cycle the tracker is started with: every second, reading each peer for 2 s.
const POLL_INTERVAL: u64 = 1;
const POLL_READ: u64 = 2;
/// How stale the tracker's view may be: one poll cycle plus a second of slack for this
/// 2-core machine running other tests.
const STALE: Duration = Duration::from_secs(POLL_INTERVAL + POLL_READ + 1);
/// The leech's download rate: 4 MiB take about 10 s, several poll cycles.
const LEECH_RATE: u64 = 400 * 1024;

/// A leech of either kind that reports how many pieces it has.
enum Leech {
    Aria2(Aria2),
    Libtorrent(Libtorrent),
}

impl Leech {
    fn start(client: Client, fx: &Fixture) -> Leech {
        let out = fx.empty_dir("leech");
        let t = &fx.torrent;
        match client {
            Client::Aria2 => {
                let o = aria2::Opts {
                    download_limit: LEECH_RATE,
                    ..Default::default()
                };
                Leech::Aria2(Aria2::leech("aria2-leech", &fx.dir, t, &out, o))
            }
            Client::Libtorrent => {
                let o = libtorrent::Opts {
                    download_limit: LEECH_RATE,
                    ..Default::default()
                };
                Leech::Libtorrent(Libtorrent::leech("libtorrent-leech", &fx.dir, t, &out, o))
            }
            other => panic!("no leech of {other:?} here"),
        }
    }

    fn port(&self) -> u16 {
        match self {
            Leech::Aria2(a) => a.addr.port(),
            Leech::Libtorrent(l) => l.addr.port(),
        }
    }

    fn pieces(&mut self) -> u32 {
        match self {
            Leech::Aria2(a) => a.status().pieces,
            Leech::Libtorrent(l) => l.status().pieces,
        }
    }

    fn report(&self) -> String {
        match self {
            Leech::Aria2(a) => a.proc.report(),
            Leech::Libtorrent(l) => l.proc.report(),
        }
    }
}

/// What the swarm API said about the leech at one instant, beside what the leech had.
#[derive(Debug)]
struct Sample {
    at: Instant,
    leech_had: u32,
    polled: Option<u32>,
    entry: Value,
}

fn tracker_follows_a_download(seed_client: Client, leech_client: Client) {
    if !seed_client.installed() || !leech_client.installed() {
        return;
    }
    let scenario = format!("tracker-{}-to-{}", seed_client.name(), leech_client.name());
    let dir = Scratch::new(&scenario);
    // A long announce interval: what the tracker learns during the download comes from polls.
    // The torrent is registered, so the API knows its piece count: make it for a known port.
    let port = free_tcp_udp_port(Ipv4Addr::LOCALHOST);
    let fx = Fixture::new(
        &dir,
        &scenario,
        4 * MIB,
        64 * 1024,
        &[Tracker::url_for(port)],
    );
    let (pi, pr) = (POLL_INTERVAL.to_string(), POLL_READ.to_string());
    let torrent = fx.torrent.path.to_str().expect("utf-8 path");
    // No grace period: the download is short and must be followed from its start.
    let args = [
        "--poll-grace",
        "0",
        "--poll-interval",
        &pi,
        "--poll-read-time",
        &pr,
        "--interval",
        "60",
        "--torrent",
        torrent,
    ];
    let t = Tracker::start_in(dir.path(), None, (Ipv4Addr::LOCALHOST, port).into(), &args);
    let n = u64::from(fx.torrent.piece_count);
    let seed = Seed::start(seed_client, &fx, 0);
    let seed_port = seed.addr().port();
    // A seed (left=0) of a registered torrent has every piece: known without a poll.
    let seed_full = poll_until(Duration::from_secs(30), || {
        let p = t.peer(&fx.torrent, seed_port)?;
        (p["pieces_have"].as_u64()? == n).then_some(())
    });
    assert!(
        seed_full.is_some(),
        "the tracker never knew the {} seed's full bitfield: {:?}\n{}\n{}",
        seed_client.name(),
        t.peer(&fx.torrent, seed_port),
        t.report(),
        seed.report()
    );

    let mut leech = Leech::start(leech_client, &fx);
    let leech_port = leech.port();
    let mut samples: Vec<Sample> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut done_at: Option<Instant> = None;
    let mut mid_download = None;
    // Sample the swarm API until the leech has finished and a poll after that has been seen.
    loop {
        let leech_had = leech.pieces();
        if done_at.is_none() && u64::from(leech_had) == n {
            done_at = Some(Instant::now());
        }
        if done_at.is_none() && leech_had > 0 && mid_download.is_none() {
            mid_download = Some(t.scrape(&fx.torrent));
        }
        let entry = t.peer(&fx.torrent, leech_port).unwrap_or(Value::Null);
        let polled = (entry["source"] == "poll")
            .then(|| entry["pieces_have"].as_u64().map(|v| v as u32))
            .flatten();
        samples.push(Sample {
            at: Instant::now(),
            leech_had,
            polled,
            entry: entry.clone(),
        });
        // Once it says left=0 it has every piece, by its own report: no poll needed.
        let full = entry["pieces_have"].as_u64() == Some(n) && entry["seed"] == true;
        if done_at.is_some() && full {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tracker never showed the {} leech as a full seed; last entry {entry}\n{}\n{}",
            leech_client.name(),
            leech.report(),
            t.report()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let done_at = done_at.expect("finished");

    // Growing: at least two distinct partial counts learned by polling, never going down.
    let partial: Vec<u32> = samples
        .iter()
        .filter_map(|s| s.polled)
        .filter(|&p| p > 0 && u64::from(p) < n)
        .collect();
    let mut distinct = partial.clone();
    distinct.dedup();
    assert!(
        distinct.len() >= 2,
        "expected the polled bitfield to grow through several partial states, saw {distinct:?}\n{}",
        t.report()
    );
    let counts: Vec<u32> = samples.iter().filter_map(|s| s.polled).collect();
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "the polled piece count went down: {counts:?}"
    );

    // Fresh: at every sample, the tracker knew at least what the leech had one poll cycle ago.
    let first_poll = samples
        .iter()
        .find(|s| s.polled.is_some())
        .expect("a polled sample")
        .at;
    for s in samples.iter().filter(|s| s.at >= first_poll + STALE) {
        let then = samples
            .iter()
            .rev()
            .find(|e| e.at + STALE <= s.at)
            .map_or(0, |e| e.leech_had);
        // Polled, or every piece by the leech's own left=0 once it finished.
        let known = s.entry["pieces_have"].as_u64().map_or(0, |v| v as u32);
        assert!(
            known >= then,
            "{:?} after the first poll the tracker showed {:?} pieces, but the leech had {then} \
             {STALE:?} earlier: {}",
            s.at - first_poll,
            known,
            s.entry
        );
    }

    // Finished: shown as a seed with a full bitfield, within one poll cycle of completing.
    let last = samples.last().expect("samples");
    assert!(
        last.at <= done_at + STALE + Duration::from_secs(1),
        "the full bitfield showed {:?} after the leech finished",
        last.at - done_at
    );
    assert_eq!(last.entry["progress"], 1.0, "{}", last.entry);
    assert_eq!(
        last.entry["have"]
            .as_str()
            .map(|h| h == "all" || h == "some"),
        Some(true)
    );
    let out = fx.dir.join("leech");
    assert_same_file(&fx.file_in(&out), &fx.bytes, "leech");

    // Counted: during the download one seed and one leech; after it, two seeds, one completed.
    assert_eq!(
        mid_download,
        Some(Scrape {
            complete: 1,
            downloaded: 0,
            incomplete: 1
        }),
        "scrape during the download"
    );
    let after = poll_until(Duration::from_secs(5), || {
        let s = t.scrape(&fx.torrent);
        (s.complete == 2).then_some(s)
    });
    assert_eq!(
        after,
        Some(Scrape {
            complete: 2,
            downloaded: 1,
            incomplete: 0
        }),
        "scrape after the download: {:?}",
        t.scrape(&fx.torrent)
    );
    let swarm = t.swarm(&fx.torrent).expect("swarm");
    assert_eq!(
        (&swarm["seeders"], &swarm["leechers"], &swarm["completed"]),
        (&Value::from(2), &Value::from(0), &Value::from(1)),
        "{swarm}"
    );
    eprintln!(
        "{scenario}: polled partial counts {distinct:?}, full bitfield {:?} after completion",
        last.at - done_at
    );
}

#[test]
fn tracker_follows_a_libtorrent_leech_of_a_libtorrent_seed() {
    tracker_follows_a_download(Client::Libtorrent, Client::Libtorrent);
}

#[test]
fn tracker_follows_an_aria2_leech_of_an_aria2_seed() {
    tracker_follows_a_download(Client::Aria2, Client::Aria2);
}

#[test]
fn tracker_follows_an_aria2_leech_of_a_transmission_seed() {
    tracker_follows_a_download(Client::Transmission, Client::Aria2);
}

/// Over UDP (BEP 15): a libtorrent seed, a libtorrent leech and an `enjambre get` all announce
/// to `udp://` and complete; the tracker counted only UDP announces, and libtorrent's
/// `completed`.
#[test]
fn libtorrent_and_enjambre_find_each_other_over_udp() {
    if !Client::Libtorrent.installed() {
        return;
    }
    let dir = Scratch::new("tracker-udp");
    let t = Tracker::start(dir.path(), &["--poll-interval", "0", "--interval", "2"]);
    let fx = Fixture::new(&dir, "tracker-udp", 2 * MIB, 64 * 1024, &[t.udp_url()]);
    let seed = Seed::start(Client::Libtorrent, &fx, 0);
    let out = fx.empty_dir("libtorrent-leech");
    let o = libtorrent::Opts::default();
    let mut lt = Libtorrent::leech("libtorrent-leech", &fx.dir, &fx.torrent, &out, o);
    let ours = fx.empty_dir("enjambre-leech");
    let opts = PeerOpts {
        ip: loopback(),
        ..PeerOpts::default()
    };
    let mut leech = Peer::get("enjambre-leech", &fx.dir, &fx.torrent, &ours, opts);
    lt.wait_done(Duration::from_secs(60));
    leech.wait_complete(Duration::from_secs(60));
    assert_same_file(&fx.file_in(&out), &fx.bytes, "libtorrent leech");
    assert_same_file(&fx.file_in(&ours), &fx.bytes, "enjambre leech");
    let counted = poll_until(Duration::from_secs(10), || {
        let s = t.swarm(&fx.torrent)?;
        (s["completed"].as_u64()? >= 1 && s["seeders"].as_u64()? >= 2).then_some(s)
    });
    assert!(
        counted.is_some(),
        "the tracker did not count libtorrent's download: {:?}\n{}\n{}",
        t.swarm(&fx.torrent),
        t.report(),
        seed.report()
    );
    let stats = t.get("/stats").expect("stats").json().expect("stats json");
    assert_eq!(stats["http_announces"], 0, "{stats}");
    assert!(stats["udp_announces"].as_u64() >= Some(4), "{stats}");
}

/// An `enjambre get` that finishes and exits is counted as a completed download. It announces
/// `started`, finishes before that answer is back, and shuts down: its `completed` must not be
/// replaced by `stopped` (core/src/session/announce.rs, `Announce::stop` overwrites `pending`).
#[test]
fn an_enjambre_leech_that_exits_at_completion_is_counted_by_scrape() {
    if !Client::Libtorrent.installed() {
        return;
    }
    let dir = Scratch::new("tracker-completed");
    let t = Tracker::start(dir.path(), &["--poll-interval", "0", "--interval", "2"]);
    let fx = Fixture::new(
        &dir,
        "tracker-completed",
        2 * MIB,
        64 * 1024,
        &[t.announce_url()],
    );
    let _seed = Seed::start(Client::Libtorrent, &fx, 0);
    let out = fx.empty_dir("enjambre-leech");
    let opts = PeerOpts {
        ip: loopback(),
        ..PeerOpts::default()
    };
    let mut leech = Peer::get("enjambre-leech", &fx.dir, &fx.torrent, &out, opts);
    leech.wait_complete(Duration::from_secs(60));
    assert_same_file(&fx.file_in(&out), &fx.bytes, "enjambre leech");
    let s = t.scrape(&fx.torrent);
    assert_eq!(
        s.downloaded, 1,
        "scrape after the leech finished and left: {s:?}"
    );
}
