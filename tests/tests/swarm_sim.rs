//! Swarm scenarios in the deterministic simulator: several sessions, a virtual clock, seeded
//! latency, kills and restarts.

use enjambre_core::session::{Command, Event};
use enjambre_core::Duration;
use enjambre_tests::sim::{Behaviour, Swarm, Torrent};

const PIECE: u32 = 64 * 1024;

fn torrent(pieces: usize, seed: u64) -> Torrent {
    // The last piece is short, to exercise the odd sizes.
    Torrent::new(pieces * PIECE as usize - 1000, PIECE, seed)
}

/// Byte ranges `[start, end)` of a piece, merged.
fn merged(mut v: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    v.sort();
    let mut out: Vec<(u32, u32)> = Vec::new();
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

#[test]
fn three_seeds_two_leeches_finish_byte_identical() {
    for seed in 1..=3 {
        let mut swarm = Swarm::new(torrent(40, seed), seed);
        for _ in 0..3 {
            swarm.add_node(true, Behaviour::Honest);
        }
        let a = swarm.add_node(false, Behaviour::Honest);
        let b = swarm.add_node(false, Behaviour::Honest);
        let done = swarm.run_until(Duration::from_secs(600), |s| {
            s.is_complete(a) && s.is_complete(b)
        });
        assert!(done, "seed {seed}: leeches did not finish");
        // Every piece verified once, none failed.
        let pieces = swarm.torrent.geometry.piece_count() as usize;
        for n in [a, b] {
            let verified = swarm.count_facts(n, |c| matches!(c, Command::PieceVerified { .. }));
            assert_eq!(verified, pieces);
            assert_eq!(swarm.count_events(n, |e| matches!(e, Event::Completed)), 1);
            assert_eq!(
                swarm.count_facts(n, |c| matches!(c, Command::PieceDiscarded { .. })),
                0
            );
        }
        // Both leeches took from several peers at once.
        let sources: std::collections::BTreeSet<usize> =
            swarm.nodes[a].requests_sent.iter().map(|r| r.0).collect();
        assert!(sources.len() >= 3, "leech asked only {sources:?}");
    }
}

#[test]
fn seed_vanishing_mid_block_costs_no_byte() {
    let mut swarm = Swarm::new(torrent(40, 7), 7);
    let s1 = swarm.add_node(true, Behaviour::Honest);
    let leech = swarm.add_node(false, Behaviour::Honest);
    // Let the leech get going with s1 only, then cut s1 while a block is half delivered.
    let started = swarm.run_until(Duration::from_secs(60), |s| {
        s.nodes[leech]
            .writes
            .values()
            .flatten()
            .any(|&(off, len)| off % 16384 != 0 || len % 4096 != 0 && len != 16384)
            || s.nodes[leech]
                .writes
                .values()
                .flatten()
                .map(|w| w.1 as u64)
                .sum::<u64>()
                > 300_000
    });
    assert!(started);
    // Find a piece whose bytes arrived only in part.
    let _ = swarm.run_until(Duration::from_secs(10), |s| {
        s.nodes[leech]
            .writes
            .values()
            .flatten()
            .any(|&(_, len)| len < 16384)
    });
    swarm.kill(s1);
    let before = swarm.nodes[leech].requests_sent.len();
    let received = |swarm: &Swarm, piece: u32| -> Vec<(u32, u32)> {
        merged(
            swarm.nodes[leech]
                .writes
                .get(&piece)
                .into_iter()
                .flatten()
                .map(|&(o, l)| (o, o + l))
                .collect(),
        )
    };
    // Pieces with a block cut mid-way (bytes received not a whole number of blocks).
    let cut: Vec<(u32, Vec<(u32, u32)>)> = swarm.nodes[leech]
        .writes
        .keys()
        .map(|&p| (p, received(&swarm, p)))
        .filter(|(_, r)| r.iter().map(|x| x.1 - x.0).sum::<u32>() % 16384 != 0)
        .collect();
    assert!(!cut.is_empty(), "no block was cut mid-way");
    let s2 = swarm.add_node(true, Behaviour::Honest);
    assert!(swarm.run_until(Duration::from_secs(600), |s| s.is_complete(leech)));
    for (piece, had) in cut {
        let len = swarm
            .torrent
            .geometry
            .piece_len(swarm.torrent.geometry.piece(piece).unwrap());
        // The new requests are exactly the holes: from the byte where the cut block stopped.
        let asked: Vec<(u32, u32)> = swarm.nodes[leech].requests_sent[before..]
            .iter()
            .filter(|r| r.1 == piece)
            .inspect(|r| assert_eq!(r.0, s2))
            .map(|r| (r.2, r.2 + r.3))
            .collect();
        let asked_bytes: u32 = asked.iter().map(|r| r.1 - r.0).sum();
        let had_bytes: u32 = had.iter().map(|r| r.1 - r.0).sum();
        assert_eq!(
            had_bytes + asked_bytes,
            len,
            "piece {piece}: {had:?} then asked {asked:?}"
        );
        let mut all = had.clone();
        all.extend(asked.iter().copied());
        assert_eq!(
            merged(all),
            vec![(0, len)],
            "piece {piece}: holes or overlaps"
        );
        assert!(asked
            .iter()
            .any(|r| had.iter().any(|h| h.1 == r.0 && r.0 % 16384 != 0)));
        // Every byte of the piece was transferred exactly once.
        let written: u32 = swarm.nodes[leech].writes[&piece].iter().map(|w| w.1).sum();
        assert_eq!(written, len, "piece {piece}: bytes written twice");
    }
}

#[test]
fn killed_leech_resumes_without_asking_for_written_bytes() {
    for seed in 11..=16u64 {
        let mut swarm = Swarm::new(torrent(30, seed), seed);
        swarm.add_node(true, Behaviour::Honest);
        swarm.add_node(true, Behaviour::Honest);
        let leech = swarm.add_node(false, Behaviour::Honest);
        let total = swarm.torrent.data.len() as u64;
        let stop_at = total * (seed % 5 + 1) / 7;
        let _ = swarm.run_until(Duration::from_secs(600), |s| {
            s.nodes[leech]
                .writes
                .values()
                .flatten()
                .map(|w| w.1 as u64)
                .sum::<u64>()
                >= stop_at
        });
        swarm.kill(leech);
        let before = swarm.nodes[leech].requests_sent.len();
        // What the persisted state claims, per piece.
        let state = enjambre_tests::sim::SimResume::decode(
            swarm.nodes[leech].persisted.as_ref().unwrap(),
            swarm.torrent.info_hash,
            swarm.torrent.geometry,
        )
        .unwrap();
        swarm.run_until(Duration::from_secs(3), |_| false);
        swarm.restart(leech);
        assert!(
            swarm.run_until(Duration::from_secs(600), |s| s.is_complete(leech)),
            "seed {seed}"
        );
        for &(_, piece, begin, len) in &swarm.nodes[leech].requests_sent[before..] {
            assert!(
                !state.have.get(piece),
                "seed {seed}: asked again for verified piece {piece}"
            );
            if let Some(p) = state.partial.iter().find(|p| p.piece() == piece) {
                for (s, e) in p.ranges() {
                    assert!(begin + len <= s || begin >= e, "seed {seed}: re-asked written bytes {begin}+{len} of piece {piece} (had {s}..{e})");
                }
            }
        }
    }
}

#[test]
fn corrupt_peer_is_refetched_around_and_banned() {
    let mut swarm = Swarm::new(torrent(30, 21), 21);
    let bad = swarm.add_node(true, Behaviour::Corrupt);
    swarm.add_node(true, Behaviour::Honest);
    let leech = swarm.add_node(false, Behaviour::Honest);
    assert!(swarm.run_until(Duration::from_secs(900), |s| s.is_complete(leech)));
    assert!(swarm.count_facts(leech, |c| matches!(c, Command::PieceDiscarded { .. })) >= 1);
    let bad_ip = swarm.nodes[bad].addr.ip();
    assert_eq!(
        swarm.count_events(
            leech,
            |e| matches!(e, Event::PeerBanned { addr } if *addr == bad_ip)
        ),
        1
    );
}

#[test]
fn late_seed_is_found_by_reannounce_and_used() {
    let mut swarm = Swarm::new(torrent(20, 31), 31);
    swarm.announce_interval = Duration::from_secs(15);
    let leech = swarm.add_node(false, Behaviour::Honest);
    assert!(!swarm.run_until(Duration::from_secs(20), |s| s.is_complete(leech)));
    let seed = swarm.add_node(true, Behaviour::Honest);
    assert!(swarm.run_until(Duration::from_secs(300), |s| s.is_complete(leech)));
    assert!(swarm.nodes[leech].requests_sent.iter().all(|r| r.0 == seed));
}

#[test]
fn flaky_links_still_finish_byte_identical() {
    let mut total_cuts = 0;
    for (pieces, every_ms) in [(30, 300), (60, 100)] {
        for seed in 41..=46u64 {
            let mut swarm = Swarm::new(torrent(pieces, seed), seed);
            swarm.add_node(true, Behaviour::Honest);
            swarm.add_node(true, Behaviour::Honest);
            let leech = swarm.add_node(false, Behaviour::Honest);
            // Every `every_ms` of virtual time, a random connection breaks.
            while !swarm.is_complete(leech) {
                assert!(swarm.now.as_millis() < 900_000, "seed {seed}: stuck");
                let step = Duration::from_millis(every_ms);
                if !swarm.run_until(step, |s| s.is_complete(leech)) && swarm.cut_random_link() {
                    total_cuts += 1;
                }
            }
            // Bytes written beyond the file's length are endgame duplicates of blocks in
            // flight to two peers at the end; a lost and refetched byte would show up here too.
            let written: u64 = swarm.nodes[leech]
                .writes
                .values()
                .flatten()
                .map(|w| w.1 as u64)
                .sum();
            let len = swarm.torrent.data.len() as u64;
            assert!(
                written < len + 4 * 16384,
                "seed {seed}: wrote {written} bytes for {len}"
            );
        }
    }
    assert!(total_cuts >= 20, "only {total_cuts} cuts happened");
}

/// One seed and seven leeches on uplinks of three speeds (100 kB/s to 2.5 MB/s), 19-21 ms
/// each way: over five runs (latency draws), the median run has every leech done within 1.6×
/// the fluid bound and the seed's uplink at least 65 % used.
///
/// One run depends on its first milliseconds' timing more than these limits allow for, so the
/// median of five is checked (2026-12-07: 1.37-1.78×, median 1.45×; uplink 69-78 %, median
/// 73 %). Before, the stall clock of a peer that was sent requests after a quiet spell ran
/// from its last block, however old, so a peer just unchoked often counted as stalled at once
/// and its blocks were asked elsewhere: that gave 1.36-1.52× here (uplink 69-83 %), but in
/// real swarms it cancelled blocks already on their way and fetched them twice; with that
/// fixed and before late replies were kept, 1.39-1.82× (median 1.55×).
#[test]
fn uneven_uplinks_finish_near_the_fluid_bound() {
    let ups = [
        100_000u64, 100_000, 500_000, 500_000, 1_500_000, 1_500_000, 1_500_000,
    ];
    let seed_up = 2_500_000u64;
    let mut ratios = Vec::new();
    let mut busy = Vec::new();
    for draw in [1, 2, 4, 6, 8] {
        let mut swarm = Swarm::new(torrent(128, 7), draw);
        swarm.latency_ms = (19, 21);
        // PEX's first messages take a few ms on the 100 kB/s uplinks; measured without.
        swarm.pex = false;
        let seed = swarm.add_node(true, Behaviour::Honest);
        swarm.nodes[seed].up_rate = Some(seed_up);
        let leeches: Vec<usize> = ups
            .iter()
            .map(|&up| {
                let n = swarm.add_node(false, Behaviour::Honest);
                swarm.nodes[n].up_rate = Some(up);
                n
            })
            .collect();
        // Kumar & Ross: max(F/u_s, N·F/(u_s + Σu_i)); downlinks are not limited here.
        let file = swarm.torrent.data.len() as f64;
        let all_up = (seed_up + ups.iter().sum::<u64>()) as f64;
        let bound = (file / seed_up as f64).max(leeches.len() as f64 * file / all_up);
        let start = swarm.now;
        // Sessions in the loop, the disks once at the end (8 MiB compares are slow).
        swarm.run_until(Duration::from_secs(120), |s| {
            (leeches.iter()).all(|&n| s.nodes[n].session.as_ref().unwrap().is_complete())
        });
        let done = leeches.iter().all(|&n| swarm.is_complete(n));
        assert!(done, "draw {draw}: the leeches did not finish in 120 s");
        let took = swarm.now.saturating_since(start).as_millis() as f64 / 1000.0;
        let uploaded = swarm.nodes[seed].session.as_ref().unwrap().stats().uploaded;
        ratios.push(took / bound);
        busy.push(uploaded as f64 / (seed_up as f64 * took));
    }
    eprintln!("× the bound {ratios:.2?}; seed uplink used {busy:.2?}");
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ratio, used) = (median(&mut ratios), median(&mut busy));
    assert!(ratio <= 1.6, "median {ratio:.2}× the bound");
    assert!(
        used >= 0.65,
        "median seed uplink {:.0} % used",
        used * 100.0
    );
}

#[test]
fn two_leeches_holding_the_two_halves_of_a_piece_whose_seed_left_complete_it_between_them() {
    // Three pieces of 256 KiB; the seed left after leech A had piece 0 and the first half of
    // piece 1, and leech B piece 2 and the second half of piece 1 (both halves written, not
    // verified). Only `enjambre_partial` lets either finish.
    const BIG: u32 = 256 * 1024;
    const HALF: u32 = BIG / 2;
    for seed in 1..=3 {
        let mut swarm = Swarm::new(Torrent::new(3 * BIG as usize - 1000, BIG, seed), seed);
        let a = swarm.add_node_holding(&[0], &[(1, 0, HALF)]);
        let b = swarm.add_node_holding(&[2], &[(1, HALF, BIG)]);
        let done = swarm.run_until(Duration::from_secs(120), |s| {
            s.is_complete(a) && s.is_complete(b)
        });
        assert!(done, "seed {seed}: the leeches did not finish");
        for (n, missing) in [(a, (HALF, BIG)), (b, (0, HALF))] {
            // Piece 1 verified at the first try, from exactly the half the node lacked.
            let written = swarm.nodes[n].writes.get(&1).cloned().unwrap_or_default();
            let spans = written.iter().map(|&(off, len)| (off, off + len)).collect();
            assert_eq!(merged(spans), [missing], "seed {seed}, node {n}");
            let bytes: u32 = written.iter().map(|w| w.1).sum();
            assert_eq!(
                bytes, HALF,
                "seed {seed}, node {n}: bytes of piece 1 written twice"
            );
            assert_eq!(
                swarm.count_facts(n, |c| matches!(c, Command::PieceDiscarded { .. })),
                0
            );
            let asked: u32 = (swarm.nodes[n].requests_sent.iter())
                .filter(|r| r.1 == 1)
                .map(|r| r.3)
                .sum();
            assert_eq!(
                asked, HALF,
                "seed {seed}, node {n}: asked for more than the half"
            );
        }
    }
}

/// Scenario 4 of the laboratory: the only seed leaves once it has uploaded 1.1 copies. Ten
/// leeches that all start together pick overlapping pieces from it, so some pieces never leave
/// it (0 of 10 leeches finished, in each of three runs, when written); a super-seeding seed
/// shows each leech pieces nobody else was shown, and its first copy is the whole file spread
/// over the swarm: every leech finishes without it.
#[test]
fn a_super_seed_that_leaves_after_one_copy_and_a_tenth_leaves_a_complete_swarm() {
    for (seed, super_seed) in [(1, true), (2, true), (3, true), (1, false)] {
        let mut swarm = Swarm::new(torrent(128, seed), seed);
        swarm.latency_ms = (10, 20);
        swarm.super_seed = super_seed;
        let s = swarm.add_node(true, Behaviour::Honest);
        swarm.nodes[s].up_rate = Some(2_500_000);
        let leeches: Vec<usize> = (0..10)
            .map(|_| {
                let n = swarm.add_node(false, Behaviour::Honest);
                swarm.nodes[n].up_rate = Some(1_250_000);
                n
            })
            .collect();
        let copy = swarm.torrent.data.len() as u64;
        let left = swarm.run_until(Duration::from_secs(60), |sw| {
            let up = sw.nodes[s].session.as_ref().unwrap().stats().uploaded;
            up * 10 >= copy * 11
        });
        assert!(left, "seed {seed}: the seed never uploaded 1.1 copies");
        swarm.kill(s);
        // Sessions first: comparing 8 MiB disks after every step would be most of the run.
        let verified = |sw: &Swarm, n: usize| {
            sw.nodes[n]
                .session
                .as_ref()
                .is_some_and(|s| s.is_complete())
        };
        swarm.run_until(Duration::from_secs(30), |sw| {
            leeches.iter().all(|&n| verified(sw, n))
        });
        let finished = leeches.iter().filter(|&&n| swarm.is_complete(n)).count();
        let done = finished == leeches.len();
        eprintln!("seed {seed}, super-seeding {super_seed}: {finished} of 10 leeches finished");
        assert!(
            done || !super_seed,
            "seed {seed}: only {finished} of 10 leeches finished"
        );
    }
}
