//! The registry's scenarios, and a property test that its incremental counters always match a
//! recount.

use std::net::SocketAddr;

use proptest::prelude::*;

use super::*;
use crate::tracker::bits::{Have, NewBits};

fn limits() -> Limits {
    Limits {
        interval: 600,
        min_interval: 60,
        peer_timeout: 100,
        numwant_default: 50,
        numwant_max: 200,
        max_torrents: 4,
        max_peers_per_torrent: 8,
        max_peers: 20,
        max_pieces: 64,
        allow_only_registered: false,
        poll_interval: Some(std::time::Duration::from_secs(30)),
        poll_grace: 0,
    }
}

fn ann(t: u8, p: u8, left: u64, event: Event, bits: Option<&[u8]>) -> AnnounceIn<'_> {
    AnnounceIn {
        info_hash: InfoHash([t; 20]),
        peer_id: [p; 20],
        addr: SocketAddr::from(([10, 0, 0, p % 4], 6000 + u16::from(p))),
        uploaded: 0,
        downloaded: 0,
        left,
        event,
        numwant: None,
        bitfield: bits,
    }
}

/// Announce `a` at `now` as over HTTP (both families), which must be accepted.
fn accepted(r: &mut Registry, now: u32, a: &AnnounceIn<'_>) -> AnnounceOut {
    r.announce(now, a, Families::Both, &mut Vec::new()).unwrap()
}

/// Everything the registry keeps incrementally, recomputed from scratch.
fn check_invariants(r: &Registry) {
    let mut total = 0;
    for s in r.swarms.values() {
        let seeds = s.v4.peers.iter().filter(|p| p.is_seed()).count()
            + s.v6.peers.iter().filter(|p| p.is_seed()).count();
        assert_eq!(s.seeders as usize, seeds);
        assert_eq!((s.seeders + s.leechers) as usize, s.len());
        assert!(s.len() <= r.limits.max_peers_per_torrent);
        for (i, p) in s.v4.peers.iter().enumerate() {
            assert_eq!(s.v4.find(&r.hasher, p.ip, p.port), Some(i));
        }
        let full = s.v4.peers.iter().filter(|p| p.have == Have::All).count() as u32;
        for piece in 0..s.piece_count_range().map_or(0, |r| r.1) {
            let some =
                s.v4.peers
                    .iter()
                    .filter(|p| {
                        p.have == Have::Some
                            && crate::tracker::bits::get_bit(s.arena.slot(p.slot), piece)
                    })
                    .count() as u32;
            assert_eq!(s.arena.availability(piece), some + full, "piece {piece}");
        }
        total += s.len();
    }
    assert_eq!(total, r.peer_total);
    assert!(r.peer_total <= r.limits.max_peers);
    assert!(r.swarms.len() <= r.limits.max_torrents);
}

#[test]
fn an_empty_swarm_stays_small() {
    // Many torrents with one or two peers each: the per-swarm cost matters.
    assert!(
        std::mem::size_of::<Swarm>() <= 136,
        "{}",
        std::mem::size_of::<Swarm>()
    );
}

#[test]
fn completions_count_once_per_finished_peer() {
    let mut r = Registry::new(limits());
    accepted(&mut r, 1, &ann(1, 1, 10, Event::Started, None));
    accepted(&mut r, 2, &ann(1, 1, 0, Event::Completed, None));
    accepted(&mut r, 3, &ann(1, 1, 0, Event::Completed, None));
    accepted(&mut r, 4, &ann(1, 1, 0, Event::None, None));
    // A seed that starts as a seed never completed anything here.
    accepted(&mut r, 5, &ann(1, 2, 0, Event::Started, None));
    // A leech that reaches left=0 without saying `completed` did complete.
    accepted(&mut r, 6, &ann(1, 3, 5, Event::Started, None));
    accepted(&mut r, 7, &ann(1, 3, 0, Event::None, None));
    assert_eq!(r.scrape(&InfoHash([1; 20])), (3, 2, 0));
}

#[test]
fn expiry_removes_silent_peers_and_empty_swarms() {
    let mut r = Registry::new(limits());
    accepted(&mut r, 1000, &ann(1, 1, 10, Event::Started, Some(&[0x80])));
    accepted(&mut r, 1050, &ann(1, 2, 10, Event::Started, None));
    accepted(&mut r, 1000, &ann(2, 3, 10, Event::Started, None));
    assert_eq!(r.sweep(1101), 2);
    assert_eq!(r.peer_total, 1);
    assert_eq!(
        r.swarms.len(),
        1,
        "empty swarm with nothing to keep is dropped"
    );
    assert_eq!(r.swarms[&InfoHash([1; 20])].arena.availability(0), 0);
    check_invariants(&r);
}

#[test]
fn caps_hold() {
    let mut r = Registry::new(limits());
    let mut out = Vec::new();
    for t in 0..10 {
        let res = r.announce(
            1,
            &ann(t, 1, 1, Event::Started, None),
            Families::Both,
            &mut out,
        );
        assert_eq!(res.is_err(), t >= 4);
    }
    for p in 0..50 {
        accepted(&mut r, 1, &ann(0, p, 1, Event::Started, None));
    }
    check_invariants(&r);
    assert_eq!(r.swarms[&InfoHash([0; 20])].len(), 8);
    assert!(r.refused.peers_cap > 0 && r.refused.torrents_cap == 6);
}

#[test]
fn a_listening_feed_hears_typed_joins_polls_and_leaves() {
    let mut r = Registry::new(limits());
    let mut feed = r.swarm_mut(InfoHash([1; 20])).unwrap().subscribe();
    let joined = ann(1, 1, 10, Event::Started, Some(&[0x80]));
    accepted(&mut r, 10, &joined);
    match feed.try_recv().unwrap() {
        SwarmEvent::Peer { at, peer } => {
            assert_eq!(
                (at, peer.addr, peer.event),
                (10, joined.addr, Event::Started)
            );
            assert_eq!(
                (peer.have, peer.bits.as_deref()),
                (Have::Some, Some(&[0x80][..]))
            );
        }
        e => panic!("expected the peer, got {e:?}"),
    }
    let target = PollTarget {
        info_hash: joined.info_hash,
        addr: joined.addr,
        stride: 1,
    };
    r.record_poll(20, &target, Err("unreachable"));
    match feed.try_recv().unwrap() {
        SwarmEvent::Peer { at, peer } => assert_eq!((at, peer.poll_fails), (20, 1)),
        e => panic!("expected the polled peer, got {e:?}"),
    }
    let stopped = ann(1, 1, 10, Event::Stopped, None);
    accepted(&mut r, 30, &stopped);
    assert!(matches!(feed.try_recv(), Ok(SwarmEvent::Left(a)) if a == joined.addr));
    assert!(feed.try_recv().is_err(), "one event per change");

    // Nobody listening: the next change closes the feed instead of building an event.
    drop(feed);
    accepted(&mut r, 40, &joined);
    assert!(r.swarms[&joined.info_hash].feed.is_none());
}

#[derive(Debug, Clone)]
enum Op {
    Announce {
        t: u8,
        p: u8,
        left: u64,
        event: u8,
        bits: Option<u8>,
    },
    Poll {
        t: u8,
        p: u8,
        bits: Option<u8>,
        fail: bool,
    },
    Sweep {
        advance: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..6, 0u8..12, 0u64..3, 0u8..4, proptest::option::of(any::<u8>()))
            .prop_map(|(t, p, left, event, bits)| Op::Announce { t, p, left, event, bits }),
        2 => (0u8..6, 0u8..12, proptest::option::of(any::<u8>()), any::<bool>())
            .prop_map(|(t, p, bits, fail)| Op::Poll { t, p, bits, fail }),
        1 => (0u32..150).prop_map(|advance| Op::Sweep { advance }),
    ]
}

proptest! {
    #[test]
    fn incremental_counters_match_a_recount(ops in proptest::collection::vec(op(), 1..200)) {
        let mut r = Registry::new(limits());
        let mut out = Vec::new();
        let mut now = 1000u32;
        for o in ops {
            now += 1;
            match o {
                Op::Announce { t, p, left, event, bits } => {
                    let b = bits.map(|b| [b]);
                    let a = ann(t, p, left, Event::from_u8(event), b.as_ref().map(|x| x.as_slice()));
                    if r.announce(now, &a, Families::Both, &mut out).is_ok() {
                        prop_assert!(out.iter().all(|x| x.addr != a.addr && x.peer_id != a.peer_id));
                        prop_assert!(out.len() <= 50);
                    }
                }
                Op::Poll { t, p, bits, fail } => {
                    let target = PollTarget { info_hash: InfoHash([t; 20]), addr: ann(t, p, 0, Event::None, None).addr, stride: 1 };
                    let result = if fail { Err("unreachable") } else {
                        Ok(match bits { None => NewBits::All, Some(0) => NewBits::None, Some(b) => NewBits::Bytes(vec![b]) })
                    };
                    r.record_poll(now, &target, result);
                }
                Op::Sweep { advance } => {
                    now += advance;
                    r.sweep(now);
                }
            }
            check_invariants(&r);
        }
    }
}
