//! Issue 9 item 22, the poller keeps out of the swarm's way: no poll during a new peer's grace
//! period, the connection closed as soon as the bitfield is read, no poll of a peer whose pieces
//! are known otherwise (a seed of a known torrent, a fresh self-report), and a peer that refused
//! left alone for a while. Each peer here is a plain listener on loopback that records when the
//! tracker dials it; bounded to a few seconds each.

mod tracker_support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use enjambre_core::wire::{Extensions, Handshake, HANDSHAKE_LEN};
use enjambre_core::{InfoHash, PeerId};
use tracker_support::*;

/// How a test peer answers the tracker's poll.
#[derive(Clone, Copy)]
enum Answer {
    /// Handshake back, send a bitfield with piece 0, then say nothing more.
    Bitfield,
    /// Close at once, as a client does that already has a connection from this address.
    Refuse,
}

/// What a test peer saw of each poll: when it was dialled, and how long the tracker kept the
/// connection open after the peer's last byte (`None` for refused ones).
type Dials = Arc<Mutex<Vec<(Instant, Option<Duration>)>>>;

/// A peer of `ih` on a loopback port, answering every poll with `answer`.
fn peer(ih: InfoHash, answer: Answer) -> (u16, Dials) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let dials: Dials = Arc::default();
    let d = dials.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let at = Instant::now();
            if let Answer::Refuse = answer {
                d.lock().unwrap().push((at, None));
                continue;
            }
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut hs = [0u8; HANDSHAKE_LEN];
            if s.read_exact(&mut hs).is_err() {
                continue;
            }
            let ours = Handshake::new(ih, PeerId(*b"-XX0001-polite-peer-"), Extensions::default());
            let _ = s.write_all(&ours.encode());
            // bitfield: length 2, id 5, piece 0 of 8.
            let _ = s.write_all(&[0, 0, 0, 2, 5, 0x80]);
            let sent = Instant::now();
            let mut sink = [0u8; 64];
            while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
            d.lock().unwrap().push((at, Some(sent.elapsed())));
        }
    });
    (port, dials)
}

fn count(d: &Dials) -> usize {
    d.lock().unwrap().len()
}

#[test]
fn a_new_peer_is_not_polled_during_its_grace_period() {
    let dir = scratch_dir("grace");
    let (torrent, ih) = write_torrent(&dir, "grace", 8);
    // The default grace period, polls every second.
    let t = Tracker::start(&[
        "--poll-interval",
        "1",
        "--torrent",
        torrent.to_str().unwrap(),
    ]);
    let (port, dials) = peer(ih, Answer::Bitfield);
    t.announce(&ih, &peer_id(1), port, 100, "&event=started");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(count(&dials), 0, "polled within 4 s of its first announce");
}

#[test]
fn the_poll_hangs_up_as_soon_as_the_bitfield_is_read() {
    let dir = scratch_dir("hangup");
    let (torrent, ih) = write_torrent(&dir, "hangup", 8);
    let t = Tracker::start(&[
        "--poll-interval",
        "1",
        "--poll-grace",
        "0",
        "--torrent",
        torrent.to_str().unwrap(),
    ]);
    let (port, dials) = peer(ih, Answer::Bitfield);
    t.announce(&ih, &peer_id(1), port, 100, "&event=started");
    t.wait_swarm(&ih, Duration::from_secs(10), |v| {
        v["peers"][0]["source"] == "poll"
    });
    let (_, kept) = dials.lock().unwrap()[0];
    let kept = kept.expect("answered");
    assert!(
        kept < Duration::from_millis(100),
        "the poll stayed {kept:?} after the bitfield"
    );
}

#[test]
fn peers_whose_pieces_are_known_are_not_polled() {
    let dir = scratch_dir("known");
    let (torrent, ih) = write_torrent(&dir, "known", 8);
    let t = Tracker::start(&[
        "--poll-interval",
        "1",
        "--poll-grace",
        "0",
        "--torrent",
        torrent.to_str().unwrap(),
    ]);
    // A seed of a torrent whose piece count is known has every piece; a leech that reports
    // its own bitfield at every announce is known for one poll interval after each.
    let (seed, seed_dials) = peer(ih, Answer::Bitfield);
    let (reporter, reporter_dials) = peer(ih, Answer::Bitfield);
    let (plain, plain_dials) = peer(ih, Answer::Bitfield);
    t.announce(&ih, &peer_id(1), seed, 0, "&event=started");
    t.announce(&ih, &peer_id(3), plain, 100, "&event=started");
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        t.announce(&ih, &peer_id(2), reporter, 100, "&bitfield=gA");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(count(&plain_dials) >= 1, "the poller is running");
    assert_eq!(
        count(&seed_dials),
        0,
        "a seed of a known torrent was polled"
    );
    assert_eq!(
        count(&reporter_dials),
        0,
        "a freshly self-reported peer was polled"
    );
}

#[test]
fn a_peer_that_refuses_is_left_alone_for_a_while() {
    let dir = scratch_dir("refuses");
    let (torrent, ih) = write_torrent(&dir, "refuses", 8);
    let t = Tracker::start(&[
        "--poll-interval",
        "1",
        "--poll-grace",
        "0",
        "--torrent",
        torrent.to_str().unwrap(),
    ]);
    let (port, dials) = peer(ih, Answer::Refuse);
    t.announce(&ih, &peer_id(1), port, 100, "&event=started");
    let first = Instant::now();
    while count(&dials) == 0 {
        assert!(first.elapsed() < Duration::from_secs(5), "never polled");
        std::thread::sleep(Duration::from_millis(50));
    }
    // One poll: the plaintext dial and, as the peer closed it at once, one dial with MSE (a
    // peer that requires encryption closes a plaintext handshake the same way).
    std::thread::sleep(Duration::from_secs(1));
    let one_poll = count(&dials);
    assert!((1..=2).contains(&one_poll), "{one_poll} dials in one poll");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        count(&dials),
        one_poll,
        "dialled again within 6 s of a refusal (poll interval 1 s)"
    );
}
