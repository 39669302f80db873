//! A narrowed download: only wanted pieces are requested, and done is not complete.

use super::*;
use crate::bitfield::Bitfield;

/// The `(piece, begin, length)` of every `Request` in `bytes` (a run of whole messages).
fn requests_in(mut bytes: &[u8]) -> Vec<(u32, u32, u32)> {
    let mut found = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        let body = &bytes[4..4 + len];
        if body.first() == Some(&6) {
            let n = |i: usize| u32::from_be_bytes(body[i..i + 4].try_into().unwrap());
            found.push((n(1), n(5), n(9)));
        }
        bytes = &bytes[4 + len..];
    }
    found
}

fn wanted(t: &Torrent, pieces: &[u32]) -> Bitfield<BYTES> {
    let mut w = Bitfield::new(t.geometry.piece_count()).unwrap();
    for &p in pieces {
        w.set(p, true);
    }
    w
}

#[test]
fn only_wanted_pieces_are_requested_and_finishing_them_is_done_not_complete() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    h.s.set_wanted(&wanted(&t, &[1, 3])).unwrap();
    assert_eq!(h.drain(), []);
    assert!(!h.s.is_done());
    assert_eq!(h.s.stats().wanted_left, 32768 + 20000);
    let (a, _, out) = h.peer_with(1, &HAVE_ALL);
    assert_eq!(out, [tx(a, INTERESTED.to_vec())]);
    let out = h.input(a, &UNCHOKE);
    let asked: Vec<_> = out
        .iter()
        .flat_map(|o| match o {
            Out::Tx(_, b) => requests_in(b),
            _ => Vec::new(),
        })
        .collect();
    let mut pieces: Vec<u32> = asked.iter().map(|r| r.0).collect();
    pieces.sort_unstable();
    pieces.dedup();
    assert_eq!(pieces, [1, 3], "asked {asked:?}");
    let mut op = 0;
    for &(index, begin, len) in &asked {
        h.input(a, &h.block(index, begin, len));
    }
    let mut events = Vec::new();
    for _ in &asked {
        events.extend(h.write_done(op));
        op += 1;
    }
    let verified: Vec<_> = (events.iter())
        .filter_map(|o| match o {
            Out::Cmd(Command::PieceVerified { piece }) => Some(piece.get()),
            _ => None,
        })
        .collect();
    assert_eq!(verified.len(), 2);
    assert!(events.contains(&Out::Ev(Event::Completed)), "{events:?}");
    assert!(
        events.contains(&tx(a, NOT_INTERESTED.to_vec())),
        "{events:?}"
    );
    // Done, but not complete: no `completed` announce, and the bitfield tells the truth.
    assert!(!events
        .iter()
        .any(|o| matches!(o, Out::Cmd(Command::Announce { .. }))));
    assert!(h.s.is_done() && !h.s.is_complete());
    assert_eq!(h.s.have().iter_ones().collect::<Vec<_>>(), [1, 3]);
    assert_eq!(h.s.stats().wanted_left, 0);
    // Wanting one more piece makes the peer interesting again.
    h.s.set_wanted(&wanted(&t, &[0, 1, 3])).unwrap();
    assert!(!h.s.is_done());
    let out = h.drain();
    let Some(Out::Tx(_, bytes)) = out.first() else {
        panic!("{out:?}")
    };
    assert!(bytes.starts_with(&INTERESTED), "{out:?}");
    assert_eq!(requests_in(&bytes[5..])[0].0, 0);
}

#[test]
fn a_peer_with_only_unwanted_pieces_is_not_interesting() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    h.s.set_wanted(&wanted(&t, &[2])).unwrap();
    let (_, _, out) = h.peer_with(1, &have(0));
    assert_eq!(out, [], "{out:?}");
    assert_eq!(
        h.s.set_wanted(&Bitfield::new(3).unwrap()),
        Err(SessionError::BadWanted)
    );
}

#[test]
fn a_selection_already_verified_is_done_at_once() {
    let t = four_pieces();
    let resume = state_with(&t, &[2]);
    let mut h = H::started(&t, config(), Some(&resume));
    h.s.set_wanted(&wanted(&t, &[2])).unwrap();
    assert_eq!(h.drain(), [Out::Ev(Event::Completed)]);
    assert!(h.s.is_done());
}
