//! Parole: a piece built from a corrupt peer's and an honest peer's bytes fails without blaming
//! either; fetched again from one address alone, the next failure names the culprit.

use std::collections::VecDeque;

use super::*;
use crate::wire::Status;

/// Serve every request: peer `bad` with bytes flipped, any other with the torrent's.
/// Returns the addresses banned.
fn swarm(h: &mut H, peers: &[PeerHandle], bad: PeerHandle, first: Vec<Out>) -> Vec<IpAddr> {
    let mut outs: VecDeque<Out> = first.into();
    let mut asks: VecDeque<(PeerHandle, u32, u32, u32)> = VecDeque::new();
    let mut writes: VecDeque<u32> = VecDeque::new();
    let mut banned = Vec::new();
    let mut live: Vec<PeerHandle> = peers.to_vec();
    for _ in 0..100_000 {
        if let Some(o) = outs.pop_front() {
            match o {
                Out::Tx(peer, bytes) => {
                    let mut at = 0;
                    while let Ok(Status::Complete((m, n))) =
                        Message::decode(&bytes[at..], &[], 1 << 20)
                    {
                        at += n;
                        if let Message::Request {
                            index,
                            begin,
                            length,
                        } = m
                        {
                            asks.push_back((peer, index, begin, length));
                        }
                    }
                }
                Out::Write(op, ..) => writes.push_back(op),
                Out::Cmd(Command::Read { .. }) => outs.extend(h.read_back(&o)),
                Out::Cmd(Command::Close { peer, .. }) => live.retain(|p| *p != peer),
                Out::Ev(Event::PeerBanned { addr }) => banned.push(addr),
                _ => {}
            }
            continue;
        }
        if let Some(op) = writes.pop_front() {
            outs.extend(h.write_done(op));
            continue;
        }
        // Answer the peers in turn, so pieces mix their bytes.
        let Some(k) = (0..asks.len()).find(|&k| live.contains(&asks[k].0)) else {
            break;
        };
        let (peer, index, begin, len) = asks.remove(k).unwrap();
        let mut block = h.block(index, begin, len);
        if peer == bad {
            block[13] ^= 0xff;
        }
        outs.extend(h.input(peer, &block));
        // The other peers' next answer comes before this one's.
        if let Some(j) = (0..asks.len()).find(|&j| asks[j].0 != peer) {
            let other = asks.remove(j).unwrap();
            asks.push_front(other);
        }
    }
    banned
}

#[test]
fn a_piece_mixing_a_corrupt_and_an_honest_peer_bans_only_the_corrupt_one() {
    // Pieces of eight blocks, four requests per peer: each piece is shared by both peers.
    let t = torrent(8 * 131_072, 131_072);
    let mut config = config();
    config.ban_after_hash_failures = 2;
    let mut h = H::started(&t, config, None);
    let all = bitfield(&[0xff]);
    let (a, _, out_a) = h.peer_with(1, &all);
    let (b, _, out_b) = h.peer_with(2, &all);
    let mut first = [out_a, out_b].concat();
    first.extend(h.input(a, &UNCHOKE));
    first.extend(h.input(b, &UNCHOKE));
    let banned = swarm(&mut h, &[a, b], a, first);
    assert_eq!(banned, [addr(1).ip()], "only the corrupt peer is banned");
    assert!(h.s.is_done(), "the honest peer completes the download");
    assert!(h.disk == h.data);
    assert!(h.s.stats().waste.corrupt > 0);
}
