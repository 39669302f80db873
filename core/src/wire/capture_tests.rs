//! Real traffic: the first bytes aria2 1.36.0 and libtorrent 2.0.8 seeds sent us on loopback
//! (see core/tests/vectors/README.md for how they were captured).

use super::tests::{feed, Feed};
use super::*;
use crate::InfoHash;
use core::net::{IpAddr, Ipv4Addr};
use std::vec::Vec;

const ARIA2_BITFIELD: &[u8] = include_bytes!("../../tests/vectors/aria2-handshake-bitfield.bin");
const ARIA2_HAVEALL: &[u8] = include_bytes!("../../tests/vectors/aria2-handshake-haveall.bin");
const LT_BITFIELD: &[u8] = include_bytes!("../../tests/vectors/libtorrent-handshake-bitfield.bin");
const LT_HAVEALL: &[u8] = include_bytes!("../../tests/vectors/libtorrent-handshake-haveall.bin");

/// The captured torrent: one 82,920-byte file in 16 KiB pieces, so 6 pieces.
const INFO_HASH: &str = "89594d5e3663e99aee52d36c34fe27983a060353";
const MAX: u32 = 1 << 17;

/// Decode a capture held as two ring halves: the handshake, then every message to the end.
fn decode_all<'a>(a: &'a [u8], b: &'a [u8]) -> (Handshake, Vec<Message<'a>>) {
    let all = Split::new(a, b);
    let Ok(Status::Complete(handshake)) = Handshake::decode(a, b) else {
        panic!("no handshake");
    };
    let mut at = HANDSHAKE_LEN;
    let mut messages = Vec::new();
    while at < all.len() {
        let rest = all.slice(at, all.len() - at).unwrap();
        match Message::decode(rest.a, rest.b, MAX) {
            Ok(Status::Complete((message, consumed))) => {
                messages.push(message);
                at += consumed;
            }
            other => panic!("at byte {at}: {other:?}"),
        }
    }
    (handshake, messages)
}

/// Return the extended handshake, which both clients send first.
fn extended_handshake<'a>(messages: &[Message<'a>]) -> ExtendedHandshake<'a> {
    let Some(Message::Extended { id: 0, payload }) = messages.first() else {
        panic!("first message is not the extended handshake: {messages:?}");
    };
    ExtendedHandshake::decode(payload.as_contiguous().unwrap()).unwrap()
}

#[test]
fn aria2_seed_sends_handshake_extended_handshake_and_bitfield() {
    let (handshake, messages) = decode_all(ARIA2_BITFIELD, &[]);
    assert_eq!(Some(handshake.info_hash), InfoHash::from_hex(INFO_HASH));
    assert!(handshake.peer_id.0.starts_with(b"A2-1-36-0-"));
    let ext = handshake.extensions();
    assert!(ext.fast && ext.extended && !ext.dht);

    let eh = extended_handshake(&messages);
    assert_eq!(eh.ut_metadata, Some(9));
    assert_eq!(eh.ut_pex, Some(8));
    assert_eq!(eh.metadata_size, Some(190));
    assert_eq!(eh.listen_port, Some(46881));
    assert_eq!(eh.client, Some("aria2/1.36.0"));
    assert_eq!((eh.reqq, eh.yourip), (None, None));

    // Six pieces, all present: 0b1111_1100, spare bits zero.
    let rest = &messages[1..];
    assert_eq!(rest, [Message::Bitfield(Split::contiguous(&[0xfc]))]);
}

#[test]
fn aria2_seed_with_the_fast_extension_sends_have_all_and_allowed_fast() {
    let (handshake, messages) = decode_all(ARIA2_HAVEALL, &[]);
    assert!(handshake.peer_id.0.starts_with(b"A2-1-36-0-"));
    assert_eq!(extended_handshake(&messages).client, Some("aria2/1.36.0"));
    let rest = &messages[1..];
    assert_eq!(rest[0], Message::HaveAll);
    // BEP 6's allowed-fast set: here every one of the 6 pieces, in aria2's order.
    let allowed: Vec<u32> = rest[1..]
        .iter()
        .map(|m| match m {
            Message::AllowedFast(p) => *p,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(allowed, [5, 3, 4, 1, 2, 0]);
}

#[test]
fn libtorrent_seed_sends_handshake_extended_handshake_bitfield_and_unchoke() {
    let (handshake, messages) = decode_all(LT_BITFIELD, &[]);
    assert_eq!(Some(handshake.info_hash), InfoHash::from_hex(INFO_HASH));
    assert!(handshake.peer_id.0.starts_with(b"-LT2080-"));
    let ext = handshake.extensions();
    assert!(ext.fast && ext.extended && ext.dht);

    let eh = extended_handshake(&messages);
    assert_eq!(eh.ut_metadata, Some(2));
    assert_eq!(eh.ut_pex, Some(1));
    assert_eq!(eh.metadata_size, Some(190));
    assert_eq!(eh.reqq, Some(2000));
    assert_eq!(eh.client, Some("libtorrent/2.0.8"));
    assert_eq!(eh.listen_port, None);
    assert_eq!(eh.yourip_addr(), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));

    let rest = &messages[1..];
    assert_eq!(
        rest,
        [
            Message::Bitfield(Split::contiguous(&[0xfc])),
            Message::Unchoke
        ]
    );
}

#[test]
fn libtorrent_seed_with_the_fast_extension_sends_have_all() {
    let (_, messages) = decode_all(LT_HAVEALL, &[]);
    assert_eq!(extended_handshake(&messages).reqq, Some(2000));
    assert_eq!(messages[1..], [Message::HaveAll, Message::Unchoke]);
}

#[test]
fn every_capture_decodes_the_same_split_at_every_position() {
    for capture in [ARIA2_BITFIELD, ARIA2_HAVEALL, LT_BITFIELD, LT_HAVEALL] {
        let whole = decode_all(capture, &[]);
        for cut in 0..=capture.len() {
            let (a, b) = capture.split_at(cut);
            assert_eq!(decode_all(a, b), whole, "cut at {cut}");
        }
    }
}

#[test]
fn every_capture_decodes_through_a_ring_in_every_chunk_size() {
    // Rings just big enough for each client's largest message (its extended handshake: 90
    // bytes for aria2, 214 for libtorrent), so that messages straddle the end of the ring.
    let cases: [(&[u8], Feed); 4] = [
        (ARIA2_BITFIELD, feed::<100>),
        (ARIA2_HAVEALL, feed::<100>),
        (LT_BITFIELD, feed::<220>),
        (LT_HAVEALL, feed::<220>),
    ];
    for (capture, feed) in cases {
        let (handshake, messages) = decode_all(capture, &[]);
        let expected: Vec<Vec<u8>> = messages
            .iter()
            .map(|m| {
                let mut out = std::vec![0u8; m.encoded_len()];
                m.encode(&mut out).unwrap();
                out
            })
            .collect();
        let mut wrapped = false;
        for chunk in 1..=capture.len() {
            let fed = feed(capture, chunk, true);
            assert_eq!(fed.handshake, Some(handshake), "chunk {chunk}");
            assert_eq!(fed.messages, expected, "chunk {chunk}");
            wrapped |= fed.wrapped;
        }
        assert!(wrapped);
    }
}
