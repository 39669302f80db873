//! The shell contract, one scenario per rule: back-pressure, closing, facts that survive an
//! overflowing event queue, where `Write` bytes sit, and uploads counted when sent.

use super::*;
use crate::session::MIN_SEND_WINDOW;

/// A seed of pieces 0 and 1 serving peer 1 (handshaken, interested, unchoked), with the
/// given send window and nothing confirmed sent unless the test says so.
fn serving(window: u32) -> (H, PeerHandle) {
    let t = four_pieces();
    let state = state_with(&t, &[0, 1]);
    let mut c = config();
    c.send_window = window;
    let mut h = H::started(&t, c, Some(&state));
    h.auto_sent = false;
    let a = h.accept(1);
    let hello = h.input(a, &h.their_handshake(1, true, true));
    let sent: usize = hello.iter().map(tx_len).sum();
    h.s.handle_sent(h.now, a, sent);
    h.input(a, &HAVE_NONE);
    assert_eq!(h.input(a, &INTERESTED), [tx(a, UNCHOKE.to_vec())]);
    h.s.handle_sent(h.now, a, UNCHOKE.len());
    (h, a)
}

fn tx_len(o: &Out) -> usize {
    match o {
        Out::Tx(_, b) => b.len(),
        Out::Cmd(Command::SendBlock { len, .. }) => 13 + *len as usize,
        _ => 0,
    }
}

fn uploads(outs: &[Out]) -> Vec<(u32, u32)> {
    (outs.iter())
        .filter_map(|o| match o {
            Out::Cmd(Command::SendBlock { piece, offset, .. }) => Some((piece.get(), *offset)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_peer_whose_socket_is_full_gets_nothing_more_until_the_shell_says_bytes_left() {
    // The smallest window (an embassy socket, a WebSocket): one block at a time.
    let (mut h, a) = serving(MIN_SEND_WINDOW);
    let asks = cat(&[
        &request(0, 0, K16),
        &request(0, K16, K16),
        &request(1, 0, K16),
    ]);
    // Three requests, room for one block: one upload, then silence.
    assert_eq!(uploads(&h.input(a, &asks)), [(0, 0)]);
    assert_eq!(h.drain(), []);
    // The socket took half the block: still not room for another.
    h.s.handle_sent(h.now, a, 8000);
    assert_eq!(h.drain(), []);
    // It took the rest: the next block, and only it.
    h.s.handle_sent(h.now, a, 13 + 16384 - 8000);
    assert_eq!(uploads(&h.drain()), [(0, K16)]);
    h.s.handle_sent(h.now, a, 13 + 16384);
    assert_eq!(uploads(&h.drain()), [(1, 0)]);
}

#[test]
fn the_bytes_handed_to_a_shell_never_exceed_the_send_window() {
    let window = MIN_SEND_WINDOW + 20_000;
    let (mut h, a) = serving(window);
    let asks: Vec<u8> = (0..4u32)
        .flat_map(|k| request(k / 2, (k % 2) * K16, K16))
        .collect();
    let first = h.input(a, &asks);
    // Two blocks fit the window at first.
    assert_eq!(uploads(&first), [(0, 0), (0, K16)]);
    let mut outstanding: usize = first.iter().map(tx_len).sum();
    let mut served = 2;
    for _ in 0..20 {
        assert!(outstanding <= window as usize, "{outstanding} > {window}");
        // The socket drains 5000 bytes at a time.
        let n = outstanding.min(5000);
        h.s.handle_sent(h.now, a, n);
        outstanding -= n;
        let out = h.drain();
        served += uploads(&out).len();
        outstanding += out.iter().map(tx_len).sum::<usize>();
    }
    assert_eq!(served, 4, "every block, as the window opened");
}

#[test]
fn uploads_count_when_the_shell_confirms_them_sent_not_when_asked() {
    let (mut h, a) = serving(MIN_SEND_WINDOW);
    assert_eq!(uploads(&h.input(a, &request(0, 0, K16))), [(0, 0)]);
    assert_eq!(h.s.stats().uploaded, 0);
    // The header and all but one byte of the block: not yet an upload.
    h.s.handle_sent(h.now, a, 13 + 16383);
    assert_eq!(h.s.stats().uploaded, 0);
    h.s.handle_sent(h.now, a, 1);
    assert_eq!(h.s.stats().uploaded, 16384);
    // A block whose socket closes before it went out is never counted.
    assert_eq!(uploads(&h.input(a, &request(0, K16, K16))), [(0, K16)]);
    h.s.handle_closed(h.now, a);
    h.s.handle_sent(h.now, a, 13 + 16384);
    assert_eq!(h.s.stats().uploaded, 16384);
}

#[test]
fn bytes_read_before_a_socket_ended_are_all_offered_and_kept() {
    // The rule every shell follows: on end of stream, offer every byte read before it, then
    // call `handle_closed`. Half a block that arrived with the close is written, not lost.
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &HAVE_ALL);
    h.input(a, &UNCHOKE);
    let block = h.block(0, 0, K16);
    let half = &block[..13 + 8000];
    assert_eq!(h.input(a, half), [write(0, 0, 0, h.bytes(0, 0, 8000))]);
    h.s.handle_closed(h.now, a);
    let out = h.drain();
    assert!(out.contains(&Out::Ev(Event::PeerClosed {
        peer: a,
        reason: CloseReason::Disconnected
    })));
    assert_eq!(h.write_done(0), [Out::Cmd(Command::PersistResume)]);
    assert_eq!(h.s.piece_ranges(piece(0)).collect::<Vec<_>>(), [(0, 8000)]);
}

#[test]
fn bytes_offered_after_the_session_closed_a_peer_are_taken_and_dropped() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &HAVE_ALL);
    // A request beyond the torrent: the session closes the peer.
    let out = h.input(a, &request(4, 0, K16));
    assert!(
        out.contains(&Out::Cmd(Command::Close {
            peer: a,
            reason: CloseReason::Misbehaved(PeerMisbehaved::BadRequest)
        })),
        "{out:?}"
    );
    let late = h.block(0, 0, K16);
    assert_eq!(h.s.handle_input(h.now, a, &late), late.len());
    assert_eq!(h.drain(), []);
    assert_eq!(h.s.stats().downloaded, 0);
}

#[test]
fn verified_pieces_reach_the_shell_even_when_the_event_queue_overflows() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &HAVE_ALL);
    h.input(a, &UNCHOKE);
    let mut ops = vec![];
    for begin in [0, K16] {
        for o in h.input(a, &h.block(0, begin, K16)) {
            if let Out::Write(op, ..) = o {
                ops.push(op);
            }
        }
    }
    // The shell falls behind: the piece completes and 100 connections come and go before
    // it polls again. The event queue keeps 64 events; the fact is not an event.
    for op in ops {
        h.s.handle_write_done(h.now, OpId(op), Ok(()));
    }
    for k in 0..50u8 {
        let p = h.s.handle_incoming(h.now, addr(100 + k)).unwrap();
        h.s.handle_closed(h.now, p);
    }
    let out = h.drain();
    assert_eq!(out[0], Out::Cmd(Command::PieceVerified { piece: piece(0) }));
    let events = out.iter().filter(|o| matches!(o, Out::Ev(_))).count();
    assert_eq!(events, 64, "the newest events were dropped");
}

#[test]
fn write_bytes_always_start_the_output_buffer() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &HAVE_ALL);
    h.input(a, &UNCHOKE);
    let block = h.block(0, 0, K16);
    // Split so the ring wraps and payload arrives in pieces of every size.
    for chunk in block.chunks(5000) {
        h.s.handle_input(h.now, a, chunk);
        loop {
            let base = h.buf.as_ptr();
            match h.s.poll_output(h.now, &mut h.buf) {
                Output::Timeout(_) => break,
                Output::Write { bytes, .. } => assert_eq!(bytes.as_ptr(), base),
                _ => {}
            }
        }
    }
}
