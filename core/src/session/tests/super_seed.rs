//! Super-seeding: a complete session shows each peer two pieces at a time, pieces nobody was
//! shown first, and the next one when the peer reports one back.

use std::collections::BTreeSet;

use super::*;

/// Eight pieces of 32 KiB.
fn eight_pieces() -> Torrent {
    torrent(8 * 32768, 32768)
}

fn super_seed(t: &Torrent) -> H {
    let mut c = config();
    c.super_seed = true;
    let all: Vec<u32> = (0..8).collect();
    H::started(t, c, Some(&state_with(t, &all)))
}

/// The pieces of a run of `Have` messages (and nothing else).
fn haves(bytes: &[u8]) -> Vec<u32> {
    assert_eq!(bytes.len() % 9, 0, "not only haves: {bytes:02x?}");
    bytes
        .chunks(9)
        .map(|m| {
            assert_eq!(&m[..5], &[0, 0, 0, 5, 4], "not a have: {m:02x?}");
            u32::from_be_bytes(m[5..].try_into().unwrap())
        })
        .collect()
}

/// Peer `n` connects to the seed; returns its handle and the pieces shown to it, after
/// checking what precedes them (`HaveNone` to a fast peer, nothing to another).
fn join(h: &mut H, n: u8, fast: bool) -> (PeerHandle, Vec<u32>) {
    let p = h.accept(n);
    let out = h.input(p, &h.their_handshake(n, fast, false));
    let [Out::Tx(_, ref bytes), Out::Ev(Event::PeerHandshake { .. })] = out[..] else {
        panic!("unexpected reply to peer {n}: {out:?}");
    };
    let ours = our_handshake(h.info_hash);
    assert_eq!(&bytes[..ours.len()], &ours[..]);
    let mut rest = &bytes[ours.len()..];
    if fast {
        assert_eq!(&rest[..5], &HAVE_NONE, "a fast peer is told HaveNone first");
        rest = &rest[5..];
    }
    (p, haves(rest))
}

#[test]
fn each_peer_is_shown_two_pieces_nobody_else_was_shown() {
    let t = eight_pieces();
    let mut h = super_seed(&t);
    let mut seen = BTreeSet::new();
    for (n, fast) in [(1, true), (2, false), (3, true), (4, true)] {
        let (_, shown) = join(&mut h, n, fast);
        assert_eq!(shown.len(), 2, "peer {n}: {shown:?}");
        for piece in shown {
            assert!(seen.insert(piece), "piece {piece} shown twice");
        }
    }
    assert_eq!(seen.len(), 8, "four peers, two each: the whole file");
}

#[test]
fn a_peer_reporting_a_shown_piece_is_shown_the_next_one() {
    let t = eight_pieces();
    let mut h = super_seed(&t);
    let (a, shown_a) = join(&mut h, 1, true);
    let (_, shown_b) = join(&mut h, 2, true);
    // Peer A finished its first piece: one more, never one shown to B while another is fresh.
    let out = h.input(a, &have(shown_a[0]));
    let [Out::Tx(to, ref bytes)] = out[..] else {
        panic!("expected one transmit: {out:?}");
    };
    assert_eq!(to, a);
    let next = haves(bytes);
    assert_eq!(next.len(), 1);
    assert!(!shown_a.contains(&next[0]) && !shown_b.contains(&next[0]));
    // A `Have` for a piece that was not shown to A frees nothing.
    let other = (0..8).find(|x| !shown_a.contains(x) && !next.contains(x));
    assert_eq!(h.input(a, &have(other.unwrap())), []);
}

#[test]
fn pieces_shown_to_a_peer_that_left_with_them_are_shown_again() {
    let t = eight_pieces();
    let mut h = super_seed(&t);
    let mut shown = Vec::new();
    let mut peers = Vec::new();
    for n in 1..=4 {
        let (p, s) = join(&mut h, n, true);
        peers.push(p);
        shown.push(s);
    }
    // Peer 2 leaves before finishing anything; a newcomer is shown exactly its pieces, the
    // only ones nobody connected has or was shown.
    h.s.handle_closed(h.now, peers[1]);
    h.drain();
    let (_, again) = join(&mut h, 5, true);
    let (mut want, mut got) = (shown[1].clone(), again);
    want.sort();
    got.sort();
    assert_eq!(got, want);
}

#[test]
fn without_super_seeding_or_while_incomplete_a_peer_sees_every_piece_we_hold() {
    let t = eight_pieces();
    // Complete, not super-seeding: HaveAll.
    let all: Vec<u32> = (0..8).collect();
    let mut h = H::started(&t, config(), Some(&state_with(&t, &all)));
    let a = h.accept(1);
    let out = h.input(a, &h.their_handshake(1, true, false));
    assert_eq!(
        out[0],
        tx(a, cat(&[&our_handshake(t.info_hash), &HAVE_ALL]))
    );
    // Super-seeding configured, but a leech: its true bitfield.
    let mut c = config();
    c.super_seed = true;
    let mut h = H::started(&t, c, Some(&state_with(&t, &[0, 3])));
    let a = h.accept(1);
    let out = h.input(a, &h.their_handshake(1, true, false));
    assert_eq!(
        out[0],
        tx(
            a,
            cat(&[&our_handshake(t.info_hash), &bitfield(&[0b1001_0000])])
        )
    );
}
