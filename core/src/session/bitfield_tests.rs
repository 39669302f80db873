//! Transcript test: a bitfield bigger than the output buffer still reaches the peer whole.
//!
//! 150 000 one-byte pieces make an 18 755-byte `Bitfield` message, more than the
//! [`MIN_OUTPUT_BUF`] bytes the session is polled with. The bytes to a peer are a stream: the
//! message may be split across transmits, but every byte must go out, in order, followed by
//! our requests.

use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{Command, Config, Output, PeerHandle, Resume, Session, MIN_OUTPUT_BUF};
use crate::sha1::{Sha1 as _, Sha1Smol};
use crate::wire::{Extensions, Handshake, Message, Split};
use crate::{Geometry, InfoHash, Instant, PeerId};

const PIECES: u32 = 150_000;
const BYTES: usize = 32 * 1024;
const OUR_ID: PeerId = PeerId(*b"-EJ0001-ourselfabcde");
/// The piece hashes are owned by the session here.
type S = Session<Sha1Smol, Vec<u8>, 2, BYTES, 4, { 64 * 1024 }, 8>;

fn msg(m: Message<'_>) -> Vec<u8> {
    let mut out = vec![0; m.encoded_len()];
    assert_eq!(m.encode(&mut out), Ok(out.len()));
    out
}

/// Poll until `Timeout`: the transmits to `peer`, each checked to fit the buffer.
fn drain(s: &mut S, now: Instant, buf: &mut [u8], peer: Option<PeerHandle>) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    for _ in 0..1000 {
        match s.poll_output(now, buf) {
            Output::Timeout(_) => return sent,
            Output::Transmit { peer: p, bytes } if Some(p) == peer => {
                sent.push(bytes.to_vec());
                s.handle_sent(now, p, sent[sent.len() - 1].len());
            }
            other => assert!(
                matches!(other, Output::Command(_) | Output::Event(_)),
                "unexpected {other:?}"
            ),
        }
    }
    panic!("poll_output never returned Timeout");
}

#[test]
fn a_bitfield_larger_than_the_buffer_is_streamed_whole_then_the_requests_follow() {
    // A session with 32 KiB bitfields is larger than a test thread's default stack.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(stream_a_large_bitfield)
        .unwrap()
        .join()
        .unwrap();
}

/// A session over `pieces` one-byte pieces with every piece but the last, its announce done;
/// returns it with its torrent's info-hash and our bitfield bytes.
fn session(pieces: u32, now: Instant) -> (Box<S>, InfoHash, Vec<u8>) {
    let data: Vec<u8> = (0..pieces).map(|i| (i * 7) as u8).collect();
    let mut hashes = Vec::new();
    for b in &data {
        let mut h = Sha1Smol::default();
        h.update(core::slice::from_ref(b));
        hashes.extend_from_slice(&h.finish());
    }
    let geometry = Geometry::new(1, pieces as u64).unwrap();
    let info_hash = InfoHash(*b"a-torrent-of-150k-pc");
    let mut resume = Box::new(Resume::<BYTES, 4>::new(info_hash, pieces).unwrap());
    for i in 0..pieces - 1 {
        resume.have.set(i, true);
    }
    let our_bits = resume.have.as_bytes().to_vec();
    let config = Config::new(OUR_ID, 6881);
    let mut s = Box::new(S::new(now, config, info_hash, geometry, hashes, Some(&resume)).unwrap());
    let mut buf = vec![0u8; MIN_OUTPUT_BUF];
    drain(&mut s, now, &mut buf, None);
    s.handle_announce_ok(now, crate::Duration::from_secs(1800), None);
    (s, info_hash, our_bits)
}

fn stream_a_large_bitfield() {
    let now = Instant::from_millis(1000);
    let (mut s, info_hash, our_bits) = session(PIECES, now);
    assert_eq!(our_bits.len(), 18_750);
    let our_id = OUR_ID;
    let mut buf = vec![0u8; MIN_OUTPUT_BUF];
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 6881);
    s.handle_peers(now, [addr]);
    let Output::Command(Command::Connect { peer, .. }) = s.poll_output(now, &mut buf) else {
        panic!("expected a Connect");
    };
    s.handle_connected(now, peer);
    let ext = Extensions {
        fast: true,
        extended: false,
        dht: false,
    };
    let mut sent = drain(&mut s, now, &mut buf, Some(peer));

    // The seed: its handshake, HaveAll, Unchoke.
    let theirs = Handshake::new(info_hash, PeerId(*b"-TT0001-000000000001"), ext).encode();
    let mut input = theirs.to_vec();
    input.extend(msg(Message::HaveAll));
    input.extend(msg(Message::Unchoke));
    let mut rest = &input[..];
    while !rest.is_empty() {
        let n = s.handle_input(now, peer, rest);
        rest = &rest[n..];
        sent.extend(drain(&mut s, now, &mut buf, Some(peer)));
        assert!(n > 0 || rest.is_empty(), "the session takes no more bytes");
    }

    assert!(
        sent.len() >= 2,
        "one transmit cannot hold it: {}",
        sent.len()
    );
    let stream: Vec<u8> = sent.concat();
    let ours = Handshake::new(
        info_hash,
        our_id,
        Extensions {
            extended: true,
            ..ext
        },
    )
    .encode();
    let mut expected = ours.to_vec();
    expected.extend(msg(Message::Bitfield(Split {
        a: &our_bits,
        b: &[],
    })));
    expected.extend(msg(Message::Interested));
    expected.extend(msg(Message::Request {
        index: PIECES - 1,
        begin: 0,
        length: 1,
    }));
    assert_eq!(stream.len(), expected.len());
    assert!(
        stream == expected,
        "the stream differs from the expected messages"
    );
}

#[test]
fn a_bitfield_that_fits_but_leaves_no_room_for_the_extended_handshake_is_sent_once() {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(bitfield_then_extended_handshake)
        .unwrap()
        .join()
        .unwrap();
}

/// Accepting, we answer with our handshake (68 bytes), our bitfield (16 355 bytes for 130 800
/// pieces) and our extended handshake: the first two fill all but 25 bytes of the buffer.
fn bitfield_then_extended_handshake() {
    let now = Instant::from_millis(1000);
    let (mut s, info_hash, our_bits) = session(130_800, now);
    let mut buf = vec![0u8; MIN_OUTPUT_BUF];
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 6881);
    let peer = s.handle_incoming(now, addr).unwrap();
    drain(&mut s, now, &mut buf, Some(peer));
    let ext = Extensions {
        fast: true,
        extended: true,
        dht: false,
    };
    let theirs = Handshake::new(info_hash, PeerId(*b"-TT0001-000000000002"), ext).encode();
    assert_eq!(s.handle_input(now, peer, &theirs), theirs.len());
    let stream = drain(&mut s, now, &mut buf, Some(peer)).concat();
    assert_eq!(
        stream[..68],
        Handshake::new(info_hash, OUR_ID, ext).encode()[..]
    );
    // The messages after it, as (id, payload length).
    let mut messages = Vec::new();
    let mut rest = &stream[68..];
    while rest.len() >= 5 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        assert!(rest.len() >= 4 + len, "a message cut short");
        messages.push((rest[4], len - 1));
        rest = &rest[4 + len..];
    }
    assert!(rest.is_empty());
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0], (5, our_bits.len()));
    assert_eq!(messages[1].0, 20);
}
