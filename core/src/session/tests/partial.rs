//! Our `enjambre_partial` extension: offered in the extended handshake, and bytes of a piece we
//! have not verified served to a peer that offered it too, within the ranges we have written.

// Ranges are what the message carries; one range is a list of one here.
#![allow(clippy::single_range_in_vec_init)]

use super::*;
use crate::wire::{piece_header, PartialMessage, PartialUpdate};
use core::ops::Range;

/// Extended message 0 naming `enjambre_partial` with id `id` (when given).
fn ext_hs(id: Option<u8>) -> Vec<u8> {
    let dict = match id {
        Some(id) => std::format!("d1:md16:enjambre_partiali{id}eee"),
        None => std::string::String::from("d1:mdee"),
    };
    let mut out = ((dict.len() + 2) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&[20, 0]);
    out.extend_from_slice(dict.as_bytes());
    out
}

/// A session holding piece 0 verified and bytes 0..20000 of piece 2 written, unverified; peer
/// `n` connected with `id` as its `enjambre_partial`, interested and unchoked.
fn holding_half(t: &Torrent, config: Config, n: u8, id: Option<u8>) -> (H, PeerHandle) {
    let mut state = state_with(t, &[0]);
    state.record_write(&t.geometry, 2, 0, 20000).unwrap();
    let mut h = H::started(t, config, Some(&state));
    let a = h.accept(n);
    h.input(a, &h.their_handshake(n, true, true));
    h.input(a, &ext_hs(id));
    h.input(a, &HAVE_NONE);
    assert_eq!(h.input(a, &INTERESTED), [tx(a, UNCHOKE.to_vec())]);
    (h, a)
}

fn send(a: PeerHandle, index: u32, begin: u32, len: u32) -> Out {
    Out::Cmd(Command::SendBlock {
        peer: a,
        header: piece_header(index, begin, len),
        piece: piece(index),
        offset: begin,
        len,
    })
}

#[test]
fn we_offer_it_unless_configured_off() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let a = h.connect(1);
    let out = h.input(a, &h.their_handshake(1, true, true));
    assert_eq!(out[0], tx(a, cat(&[&HAVE_NONE, &our_extended_handshake()])));
    let mut off = config();
    off.partial_ext = false;
    let mut h = H::started(&t, off, None);
    let a = h.connect(1);
    let Out::Tx(_, ref ours) = h.input(a, &h.their_handshake(1, true, true))[0] else {
        panic!()
    };
    let dict = b"d1:md6:ut_pexi1ee1:pi6881e4:reqqi975e1:v12:Enjambre 0.1e";
    assert!(ours.ends_with(dict), "{}", ours.escape_ascii());
}

#[test]
fn a_peer_that_offered_it_gets_written_bytes_of_an_unverified_piece_and_nothing_else() {
    let t = four_pieces();
    let (mut h, a) = holding_half(&t, config(), 1, Some(9));
    // Inside the written range, starting mid-block: served from storage like a verified piece.
    assert_eq!(
        h.input(a, &request(2, 1000, 5000)),
        [send(a, 2, 1000, 5000)]
    );
    assert_eq!(
        h.input(a, &request(2, 16384, 3616)),
        [send(a, 2, 16384, 3616)]
    );
    // Reaching past the written bytes, or a piece with nothing written: rejected.
    assert_eq!(
        h.input(a, &request(2, 16384, 3617)),
        [tx(a, reject(2, 16384, 3617))]
    );
    assert_eq!(
        h.input(a, &request(2, 20000, 100)),
        [tx(a, reject(2, 20000, 100))]
    );
    assert_eq!(h.input(a, &request(1, 0, 100)), [tx(a, reject(1, 0, 100))]);
    // A verified piece as always.
    assert_eq!(h.input(a, &request(0, 0, 100)), [send(a, 0, 0, 100)]);
    assert_eq!(h.s.stats().uploaded, 5000 + 3616 + 100);
}

#[test]
fn other_clients_and_a_session_with_it_off_serve_verified_pieces_only() {
    let t = four_pieces();
    // A peer that did not offer the extension.
    let (mut h, a) = holding_half(&t, config(), 1, None);
    assert_eq!(h.input(a, &request(2, 0, 100)), [tx(a, reject(2, 0, 100))]);
    assert_eq!(h.input(a, &request(0, 0, 100)), [send(a, 0, 0, 100)]);
    // A peer that did, to a session with the extension off.
    let mut off = config();
    off.partial_ext = false;
    let (mut h, a) = holding_half(&t, off, 1, Some(9));
    assert_eq!(h.input(a, &request(2, 0, 100)), [tx(a, reject(2, 0, 100))]);
}

/// What one message said: each piece with its ranges.
type Told = Vec<(u32, Vec<Range<u32>>)>;

/// The `enjambre_partial` messages (sent with id 9) in what went to `peer`: for each, bytes
/// downloaded and every piece with its ranges.
fn told(outs: &[Out], peer: PeerHandle) -> Vec<(u64, Told)> {
    let mut found = Vec::new();
    for o in outs {
        let Out::Tx(to, bytes) = o else { continue };
        if *to != peer {
            continue;
        }
        let mut rest = &bytes[..];
        while rest.len() >= 4 {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let m = &rest[4..4 + len];
            if m.len() >= 2 && m[..2] == [20, 9] {
                let p = PartialMessage::decode(&m[2..]).unwrap();
                let pieces = p
                    .pieces()
                    .map(|x| (x.index, x.ranges().collect()))
                    .collect();
                found.push((p.downloaded, pieces));
            }
            rest = &rest[4 + len..];
        }
    }
    found
}

#[test]
fn a_peer_that_offered_it_is_told_on_connection_then_on_change_at_most_once_a_second() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    // Peer 2 offers the extension: told at once that we hold nothing.
    let b = h.accept(2);
    h.input(b, &h.their_handshake(2, true, true));
    let out = h.input(b, &ext_hs(Some(9)));
    assert_eq!(told(&out, b), [(0, std::vec![])]);
    // Peer 1 has piece 2 and sends its first block.
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0010_0000]));
    h.input(a, &UNCHOKE);
    assert_eq!(
        h.input(a, &h.block(2, 0, K16)),
        [write(0, 2, 0, h.bytes(2, 0, K16))]
    );
    // Written: peer 2 is owed a message, but not within a second of the last one.
    let out = h.write_done(0);
    assert_eq!(told(&out, b), []);
    // (The session started at t = 1 s; peer 2 was told then.)
    assert_eq!(h.deadline, Instant::from_millis(2000));
    assert_eq!(told(&h.at(1999).timeout(), b), []);
    assert_eq!(
        told(&h.at(2000).timeout(), b),
        [(16384, std::vec![(2, std::vec![0..K16])])]
    );
    // Nothing changed: nothing more, ever.
    assert_eq!(told(&h.at(6000).timeout(), b), []);
    // The second half completes the piece: it is no longer partial, and peer 2 hears so
    // (its `have` goes at once, this message as soon as a message may).
    h.input(a, &h.block(2, K16, K16));
    let out = h.write_done(1);
    assert_eq!(told(&out, b), [(32768, std::vec![])]);
    let has_have = |m: &Vec<u8>| m.windows(9).any(|w| w == have(2).as_slice());
    assert!(out
        .iter()
        .any(|o| matches!(o, Out::Tx(p, m) if *p == b && has_have(m))));
}

/// Peer `n`'s `enjambre_partial` message to us (our id 3): it holds `ranges` of `piece`.
fn advert(piece: u32, ranges: &[Range<u32>]) -> Vec<u8> {
    let update = PartialUpdate {
        downloaded: 0,
        uploaded: 0,
        pieces: core::iter::once((piece, ranges.iter().cloned())),
    };
    let mut out = std::vec![0u8; 512];
    let n = update.encode(3, &mut out).unwrap();
    out.truncate(n);
    out
}

/// A session holding the first half of piece 2 (written, on disk, unverified), and peer 1,
/// which offered the extension, has no whole piece and holds the second half of piece 2.
fn two_halves(config: Config, second: &[u8]) -> (H, PeerHandle, Vec<Out>) {
    let t = four_pieces();
    let mut state = state_with(&t, &[]);
    state.record_write(&t.geometry, 2, 0, K16).unwrap();
    let mut h = H::started(&t, config, Some(&state));
    h.disk[65536..65536 + K16 as usize].copy_from_slice(&t.data[65536..65536 + K16 as usize]);
    let a = h.accept(1);
    h.input(a, &h.their_handshake(1, true, true));
    h.input(a, &ext_hs(Some(9)));
    assert_eq!(h.input(a, &HAVE_NONE), []);
    // Its advertisement makes it interesting; unchoked, we ask for exactly the half we miss.
    assert_eq!(
        h.input(a, &advert(2, &[K16..2 * K16])),
        [tx(a, INTERESTED.to_vec())]
    );
    assert_eq!(h.input(a, &UNCHOKE), [tx(a, request(2, K16, K16))]);
    let out = h.input(a, &piece_msg(2, K16, second));
    (h, a, out)
}

/// Answer every `Read` (verification reads back what it did not hash as it streamed); return
/// every other output.
fn read_all_back(h: &mut H, mut out: Vec<Out>) -> Vec<Out> {
    let mut rest = Vec::new();
    while let Some(k) = out
        .iter()
        .position(|o| matches!(o, Out::Cmd(Command::Read { .. })))
    {
        let read = out.remove(k);
        rest.append(&mut out);
        out = h.read_back(&read);
    }
    rest.append(&mut out);
    rest
}

#[test]
fn a_piece_we_hold_half_of_is_completed_from_the_half_a_peer_advertised() {
    let t = four_pieces();
    let second = t.data[65536 + K16 as usize..98304].to_vec();
    let (mut h, a, out) = two_halves(config(), &second);
    assert_eq!(out, [write(0, 2, K16, second.clone())]);
    let done = h.write_done(0);
    let out = read_all_back(&mut h, done);
    assert!(out.contains(&Out::Cmd(Command::PieceVerified { piece: piece(2) })));
    assert!(h.s.have().get(2));
    // What the peer sent is exactly the half we missed.
    assert_eq!(h.s.stats().downloaded, u64::from(K16));
    assert!(!out
        .iter()
        .any(|o| matches!(o, Out::Ev(Event::PeerClosed { peer, .. }) if *peer == a)));
}

#[test]
fn a_bad_advertised_half_fails_the_piece_and_bans_its_sender() {
    let mut config = config();
    config.ban_after_hash_failures = 1;
    let (mut h, a, out) = two_halves(config, &[0xAA; K16 as usize]);
    assert_eq!(out.len(), 1);
    let done = h.write_done(0);
    let out = read_all_back(&mut h, done);
    assert!(out.contains(&Out::Ev(Event::PeerBanned { addr: addr(1).ip() })));
    assert!(!h.s.have().get(2));
    assert!(out.contains(&Out::Cmd(Command::PieceDiscarded {
        piece: piece(2),
        cause: DiscardCause::HashMismatch,
    })));
    assert!(out.contains(&Out::Ev(Event::PeerClosed {
        peer: a,
        reason: CloseReason::Banned
    })));
}

#[test]
fn we_ask_only_for_bytes_we_miss_inside_the_advertised_ranges_from_the_exact_byte() {
    let t = four_pieces();
    // We hold 0..20000 of piece 2; the peer advertises 10000..30000 and 31000..32768.
    let mut state = state_with(&t, &[]);
    state.record_write(&t.geometry, 2, 0, 20000).unwrap();
    let mut h = H::started(&t, config(), Some(&state));
    let a = h.accept(1);
    h.input(a, &h.their_handshake(1, true, true));
    h.input(a, &ext_hs(Some(9)));
    h.input(a, &HAVE_NONE);
    let out = h.input(a, &advert(2, &[10000..30000, 31000..2 * K16]));
    assert_eq!(out, [tx(a, INTERESTED.to_vec())]);
    // From 20000 (mid-block) to the block's end, the rest of the first range, the second.
    assert_eq!(
        h.input(a, &UNCHOKE),
        [tx(
            a,
            cat(&[
                &request(2, 20000, 2 * K16 - 20000 - 2768),
                &request(2, 31000, 1768),
            ])
        )]
    );
    // A later message that advertises nothing we miss: no longer interesting.
    assert_eq!(
        h.input(a, &advert(1, &[])),
        [tx(a, NOT_INTERESTED.to_vec())]
    );
}

#[test]
fn a_message_from_a_peer_that_did_not_offer_it_is_ignored() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let a = h.accept(1);
    h.input(a, &h.their_handshake(1, true, true));
    h.input(a, &ext_hs(None));
    h.input(a, &HAVE_NONE);
    assert_eq!(h.input(a, &advert(2, &[0..K16])), []);
}

#[test]
fn a_peer_advertising_only_bytes_we_hold_is_not_interesting() {
    let t = four_pieces();
    let mut state = state_with(&t, &[]);
    state.record_write(&t.geometry, 2, 0, 20000).unwrap();
    let mut h = H::started(&t, config(), Some(&state));
    let a = h.accept(1);
    h.input(a, &h.their_handshake(1, true, true));
    h.input(a, &ext_hs(Some(9)));
    h.input(a, &HAVE_NONE);
    assert_eq!(h.input(a, &advert(2, &[100..20000])), []);
    assert_eq!(
        h.input(a, &advert(2, &[100..20001])),
        [tx(a, INTERESTED.to_vec())]
    );
}

#[test]
fn pieces_we_have_do_not_take_the_room_of_those_we_miss() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), Some(&state_with(&t, &[0, 1])));
    let a = h.accept(1);
    h.input(a, &h.their_handshake(1, true, true));
    h.input(a, &ext_hs(Some(9)));
    h.input(a, &HAVE_NONE);
    // Pieces 0 and 1 (ours already) come first; piece 3 is still kept.
    let update = PartialUpdate {
        downloaded: 0,
        uploaded: 0,
        pieces: [(0u32, 0..10u32), (1, 0..10), (3, 0..100)]
            .into_iter()
            .map(|(i, r)| (i, core::iter::once(r))),
    };
    let mut m = std::vec![0u8; 256];
    let n = update.encode(3, &mut m).unwrap();
    assert_eq!(h.input(a, &m[..n]), [tx(a, INTERESTED.to_vec())]);
    assert_eq!(h.input(a, &UNCHOKE), [tx(a, request(3, 0, 100))]);
}
