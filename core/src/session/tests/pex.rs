//! Peer exchange (BEP 11 `ut_pex`): what we learn from peers' messages, within bounds, below
//! what trackers give; and what we tell each peer, about once a minute.

use super::*;
use crate::wire::{PexFlags, PexMessage, PexUpdate, Status};

/// Extended message 0 with `ut_pex` as `ut_pex` (when given), `p` and `yourip`.
fn ext_hs(ut_pex: Option<u8>, port: Option<u16>, yourip: Option<[u8; 4]>) -> Vec<u8> {
    let mut dict = b"d1:md".to_vec();
    if let Some(id) = ut_pex {
        dict.extend_from_slice(std::format!("6:ut_pexi{id}e").as_bytes());
    }
    dict.push(b'e');
    if let Some(p) = port {
        dict.extend_from_slice(std::format!("1:pi{p}e").as_bytes());
    }
    if let Some(ip) = yourip {
        dict.extend_from_slice(b"6:yourip4:");
        dict.extend_from_slice(&ip);
    }
    dict.push(b'e');
    let mut out = ((dict.len() + 2) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&[20, 0]);
    out.extend_from_slice(&dict);
    out
}

/// A `ut_pex` message to us (our id is 1) adding `added` and dropping `dropped`.
fn pex(added: &[SocketAddr], dropped: &[SocketAddr]) -> Vec<u8> {
    let u = PexUpdate {
        added: added.iter().map(|&a| (a, PexFlags::default())),
        dropped: dropped.iter().copied(),
    };
    let mut out = vec![0; u.encoded_len()];
    assert_eq!(u.encode(1, &mut out), Ok(out.len()));
    out
}

fn v4(a: u8, b: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, a, b)), port)
}

/// `n` distinct addresses, the `k`-th batch.
fn batch(k: u8, n: usize) -> Vec<SocketAddr> {
    (0..n).map(|i| v4(k, i as u8, 1000 + i as u16)).collect()
}

/// The `ut_pex` messages (sent with id `id`) transmitted to `to`: each as its added peers
/// with their flags, and its dropped peers.
type Sent = (Vec<(SocketAddr, PexFlags)>, Vec<SocketAddr>);
fn sent_pex(out: &[Out], to: PeerHandle, id: u8) -> Vec<Sent> {
    let mut found = Vec::new();
    for o in out {
        let Out::Tx(p, bytes) = o else { continue };
        if *p != to {
            continue;
        }
        let mut rest = &bytes[..];
        while let Ok(Status::Complete((m, used))) = Message::decode(rest, &[], 1 << 20) {
            if let Message::Extended { id: x, payload } = m {
                if x == id {
                    let m = PexMessage::decode(payload.as_contiguous().unwrap()).unwrap();
                    found.push((m.added().collect(), m.dropped().collect()));
                }
            }
            rest = &rest[used..];
        }
    }
    found
}

/// Addresses in the known list, and whether each was learnt only from PEX.
fn known(h: &H) -> Vec<(SocketAddr, bool)> {
    h.s.known.iter().map(|k| (k.addr, k.pex)).collect()
}

fn dialled(out: &[Out]) -> Vec<SocketAddr> {
    (out.iter())
        .filter_map(|o| match o {
            Out::Cmd(Command::Connect { addr, .. }) => Some(*addr),
            _ => None,
        })
        .collect()
}

/// Peer `n` dialled, past both handshakes and its extended handshake (`ut_pex` 7, port 6881,
/// telling us we are 10.0.0.99).
fn pex_peer(h: &mut H, n: u8) -> PeerHandle {
    let a = h.connect(n);
    assert_eq!(h.input(a, &h.their_handshake(n, true, true)).len(), 2);
    let hs = ext_hs(Some(7), Some(6881), Some([10, 0, 0, 99]));
    assert_eq!(h.input(a, &hs), [], "nobody else to tell it about yet");
    a
}

// ---- learning --------------------------------------------------------------------------------

#[test]
fn peers_from_pex_are_dialled_but_never_ourselves_nor_peers_already_connected() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    let a = pex_peer(&mut h, 1);
    let v6: SocketAddr = "[2001:db8::5]:6881".parse().unwrap();
    let us = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 99)), 6881);
    let added = [addr(1), us, v4(0, 5, 6881), v6, v4(0, 6, 7000)];
    let out = h.input(a, &pex(&added, &[v4(0, 7, 1)]));
    // Three slots left: the three new ones, in the message's order (IPv4 first).
    assert_eq!(dialled(&out), [v4(0, 5, 6881), v4(0, 6, 7000), v6]);
    assert_eq!(
        known(&h),
        [
            (addr(1), false),
            (v4(0, 5, 6881), true),
            (v4(0, 6, 7000), true),
            (v6, true)
        ]
    );
}

#[test]
fn a_flood_gives_50_peers_and_a_peer_is_heard_once_per_45_s() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    let a = pex_peer(&mut h, 1);
    // 1000 peers in one message (7 KiB): the first 50 are taken.
    let flood = batch(1, 1000);
    let out = h.input(a, &pex(&flood, &[]));
    assert_eq!(dialled(&out), flood[..3], "three slots are free");
    let learnt: Vec<SocketAddr> = known(&h).iter().filter(|k| k.1).map(|k| k.0).collect();
    assert_eq!(learnt, flood[..50]);
    // Another message 44 s later is ignored; one 45 s after the first is taken.
    let more = batch(2, 10);
    h.at(45_000).input(a, &pex(&more, &[]));
    assert_eq!(h.s.known.len(), 51);
    h.at(46_000).input(a, &pex(&more, &[]));
    assert_eq!(h.s.known.len(), 61);
    // A payload over 8 KiB is skipped whole, and does not count as heard: a small one at
    // once after it is taken, once 45 s passed since the last taken.
    let big = pex(&batch(3, 1300), &[]);
    assert!(big.len() > 6 + 8 * 1024);
    let late = batch(4, 2);
    h.at(91_000).input(a, &big);
    assert_eq!(h.s.known.len(), 61);
    // A malformed one neither: the peer stays, and nothing is learnt.
    let mut broken = pex(&late, &[]);
    broken[6 + 9] = b'7'; // `5:added12:` becomes `5:added17:`: a list of 6-byte entries no more
    h.input(a, &broken);
    assert_eq!(h.s.known.len(), 61);
    assert_eq!(h.input(a, &pex(&late, &[])), []);
    assert_eq!(h.s.known.len(), 63);
    assert_eq!(h.s.stats().peers, 1, "a was not closed");
}

#[test]
fn a_pex_message_wrapped_around_the_receive_ring_is_read_whole() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    let a = pex_peer(&mut h, 1);
    assert_eq!(
        h.input(a, &bitfield(&[0b1000_0000])),
        [tx(a, INTERESTED.to_vec())]
    );
    let out = h.input(a, &UNCHOKE);
    assert_eq!(
        requests_in(&out_bytes(&out, a)),
        [(0, 0, K16), (0, K16, K16)]
    );
    // A block and a PEX message in one go: more than the ring holds, so the message's tail
    // lands at the start of the storage, behind the block's head.
    let bytes = cat(&[&h.block(0, 0, K16), &pex(&[v4(0, 9, 9)], &[])]);
    assert!(bytes.len() > RX);
    let out = h.input(a, &bytes);
    assert_eq!(dialled(&out), [v4(0, 9, 9)]);
}

fn out_bytes(out: &[Out], to: PeerHandle) -> Vec<u8> {
    (out.iter())
        .flat_map(|o| match o {
            Out::Tx(p, b) if *p == to => b.clone(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn tracker_peers_are_never_displaced_by_pex_and_displace_pex_ones() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    let a = pex_peer(&mut h, 1);
    // The tracker fills 100 of the 128 places (three are dialled); PEX fills the rest.
    let tracker = batch(1, 100);
    h.s.handle_peers(h.now, tracker.iter().copied());
    assert_eq!(dialled(&h.drain()), tracker[..3]);
    h.input(a, &pex(&batch(2, 50), &[]));
    assert_eq!(h.s.known.len(), 128);
    let pex_count = |h: &H| known(h).iter().filter(|k| k.1).count();
    assert_eq!(
        pex_count(&h),
        27,
        "the list is full: 23 PEX peers find no place"
    );
    // More PEX peers never take a tracker peer's place (nor an untried PEX peer's).
    h.at(50_000).input(a, &pex(&batch(3, 50), &[]));
    assert_eq!(pex_count(&h), 27);
    assert!(known(&h).iter().all(|(x, _)| !batch(3, 50).contains(x)));
    // More tracker peers take PEX peers' places.
    let later = batch(4, 20);
    h.s.handle_peers(h.now, later.iter().copied());
    h.drain();
    assert_eq!(pex_count(&h), 7);
    assert!(later.iter().all(|x| known(&h).contains(&(*x, false))));
    // An address the tracker also gives is the tracker's from then on.
    let both = batch(2, 1)[0];
    assert!(known(&h).contains(&(both, true)));
    h.s.handle_peers(h.now, [both]);
    assert!(known(&h).contains(&(both, false)));
}

#[test]
fn a_free_slot_dials_a_tracker_peer_before_an_earlier_pex_one() {
    let t = four_pieces();
    let mut config = quiet();
    config.max_peers = 2;
    let mut h = H::started(&t, config, None);
    let a = pex_peer(&mut h, 1);
    let b = guest(&mut h, 2);
    // No slot: what PEX gives, then what the tracker gives, waits.
    assert_eq!(h.input(a, &pex(&batch(1, 3), &[])), []);
    h.s.handle_peers(h.now, [v4(9, 9, 9)]);
    assert_eq!(h.drain(), []);
    // A slot frees: the tracker's peer is dialled first, though it came last.
    h.s.handle_closed(h.now, b);
    assert_eq!(dialled(&h.drain()), [v4(9, 9, 9)]);
}

// ---- telling -------------------------------------------------------------------------------

/// Accept a peer from `ip`:40000 (fast, extended); its extended handshake names `ut_pex` and
/// `port`. Returns it and the outputs of its extended handshake.
fn pex_guest(h: &mut H, n: u8, ut_pex: Option<u8>, port: Option<u16>) -> (PeerHandle, Vec<Out>) {
    let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), 40000);
    let g = h.s.handle_incoming(h.now, from).unwrap();
    h.drain();
    assert_eq!(h.input(g, &h.their_handshake(n, true, true)).len(), 2);
    let out = h.input(g, &ext_hs(ut_pex, port, None));
    (g, out)
}

fn at_port(n: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), port)
}

#[test]
fn each_peer_hears_of_connects_and_drops_once_a_minute_never_of_itself() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    // Dialled: 10.0.0.1:6881, `ut_pex` 7; nobody to tell it about yet.
    let a = pex_peer(&mut h, 1);
    // At 2 s, c (from 10.0.0.3:40000, listening on 6883, `ut_pex` 3) says hello: at once it
    // hears of a (reachable: we dialled it), not of itself; and a, for its first message,
    // hears of c at the port c listens on.
    let (c, out) = pex_guest(h.at(2000), 3, Some(3), Some(6883));
    let reachable = PexFlags::REACHABLE;
    assert_eq!(sent_pex(&out, c, 3), [(vec![(addr(1), reachable)], vec![])]);
    let to_a = b"d5:added6:\x0a\x00\x00\x03\x1a\xe37:added.f1:\x006:added60:8:added6.f0:\
        7:dropped0:8:dropped60:e";
    let mut want = ((to_a.len() + 2) as u32).to_be_bytes().to_vec();
    want.extend_from_slice(&[20, 7]);
    want.extend_from_slice(to_a);
    assert_eq!(
        out.iter()
            .filter(|o| matches!(o, Out::Tx(p, _) if *p == a))
            .collect::<Vec<_>>(),
        [&tx(a, want)]
    );
    // At 3 s d (no `ut_pex`, listening on 6884) arrives: it is never told anything; a and c
    // heard from us a second ago and wait.
    let (d, out) = pex_guest(h.at(3000), 4, None, Some(6884));
    assert_eq!(out, []);
    // At 4 s c leaves; at 5 s e (`ut_pex` 5, no listening port) arrives: it hears of a and d,
    // and is never told to others (we do not know where it listens).
    h.at(4000);
    h.s.handle_closed(h.now, c);
    assert_eq!(h.drain().len(), 1, "PeerClosed");
    let (e, out) = pex_guest(h.at(5000), 5, Some(5), None);
    let heard = (
        vec![(addr(1), reachable), (at_port(4, 6884), PexFlags(0))],
        vec![],
    );
    assert_eq!(sent_pex(&out, e, 5), [heard]);
    // a's next message is due a minute after its first: the session's deadline says so.
    assert_eq!(h.at(61_000).timeout(), []);
    assert_eq!(h.deadline, Instant::from_millis(62_000));
    assert_eq!(h.at(61_999).timeout(), []);
    // Then a hears what changed: d came, c went.
    let out = h.at(62_000).timeout();
    let change = (
        vec![(at_port(4, 6884), PexFlags(0))],
        vec![at_port(3, 6883)],
    );
    assert_eq!(sent_pex(&out, a, 7), [change]);
    assert_eq!(out.len(), 1);
    // Nothing changed since: no PEX deadline is kept; the next thing is d's keep-alive.
    assert_eq!(h.deadline, Instant::from_millis(93_000));
    assert_eq!(h.at(93_000).timeout(), [tx(d, KEEPALIVE.to_vec())]);
}

#[test]
fn with_pex_off_nothing_is_offered_taken_or_told() {
    let t = four_pieces();
    let mut config = quiet();
    config.pex = false;
    config.partial_ext = false;
    let mut h = H::started(&t, config, None);
    let a = h.connect(1);
    let out = h.input(a, &h.their_handshake(1, true, true));
    // The extended handshake names no extension.
    let plain = b"d1:mde1:pi6881e4:reqqi975e1:v12:Enjambre 0.1e";
    let mut ours = ((plain.len() + 2) as u32).to_be_bytes().to_vec();
    ours.extend_from_slice(&[20, 0]);
    ours.extend_from_slice(plain);
    assert_eq!(out[0], tx(a, cat(&[&HAVE_NONE, &ours])));
    assert_eq!(h.input(a, &ext_hs(Some(7), Some(6881), None)), []);
    // A PEX message anyway: legal, ignored.
    assert_eq!(h.input(a, &pex(&batch(1, 5), &[])), []);
    assert_eq!(known(&h), [(addr(1), false)]);
    // Another peer connects: the first one, though it offered `ut_pex`, is not told.
    let (_, out) = pex_guest(h.at(2000), 3, Some(3), Some(6883));
    assert_eq!(sent_pex(&out, a, 7), []);
    assert!(out.iter().all(|o| !matches!(o, Out::Tx(p, _) if *p == a)));
}

#[test]
fn a_peer_that_fell_behind_the_log_hears_the_peers_connected_now() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    let a = pex_peer(&mut h, 1);
    let (_, out) = pex_guest(h.at(2000), 3, None, Some(6883));
    assert_eq!(sent_pex(&out, a, 7).len(), 1, "a hears of c at once");
    // 40 peers come and go within the minute: 80 events, more than the log's 64.
    for n in 10..50 {
        let (g, out) = pex_guest(h.at(3000 + u64::from(n)), n, None, Some(7000));
        assert_eq!(out, []);
        h.s.handle_closed(h.now, g);
        h.drain();
    }
    // a's next message is the peers connected now, with no drops (it cannot know which).
    let out = h.at(62_000).timeout();
    assert_eq!(
        sent_pex(&out, a, 7),
        [(vec![(at_port(3, 6883), PexFlags(0))], vec![])]
    );
}
