//! Fetch machines against fake peers built from the wire codecs, sharing one assembler.

use super::assembler_tests::random_bytes;
use super::fake_peer::*;
use super::*;
use crate::sha1::Sha1Smol;
use crate::wire::{Message, MetadataMessage, WireError};
use crate::{InfoHash, Instant};
use proptest::prelude::*;
use std::vec::Vec;

#[test]
fn a_40_kib_info_dictionary_arrives_byte_identical() {
    let info = random_bytes(40 * 1024, 11);
    let mut buf = std::vec![0u8; 64 * 1024];
    let mut asm = Asm::new(&mut buf, hash(&info), TIMEOUT);
    let mut links = [link(1, hash(&info), FakePeer::new(&info, Serve::Honestly))];
    assert_eq!(run(&mut links, &mut asm, Instant::ZERO), [(1, Ev::Done)]);
    assert_eq!(asm.info(), Some(&info[..]));
    let peer = &links[0].peer;
    let h = peer.their_handshake.unwrap();
    assert_eq!((h.info_hash, h.peer_id), (hash(&info), OURS));
    assert!(h.extensions().extended);
    assert_eq!(
        peer.our_ext,
        Some((Some(OUR_UT), Some("Enjambre 0.1".into())))
    );
    assert_eq!(peer.requests, [0, 1, 2]);
}

/// What a peer says in the small transcript: the greeting, messages to skip or refuse, one
/// piece.
fn small_transcript(info: &[u8]) -> Vec<u8> {
    let mut t = greeting(hash(info), Some(info.len() as u32));
    let mut buf = [0u8; 64];
    for m in [
        Message::Bitfield(crate::wire::Split::contiguous(&[0xff, 0x80])),
        Message::Have(3),
        Message::KeepAlive,
        Message::Unchoke,
    ] {
        let n = m.encode(&mut buf).unwrap();
        t.extend_from_slice(&buf[..n]);
    }
    // A message type from the future (ignored), and a request for our metadata (refused).
    t.extend(framed(OUR_UT, b"d8:msg_typei9e5:piecei0ee"));
    t.extend(encode(MetadataMessage::Request { piece: 4 }));
    t.extend(encode(MetadataMessage::Data {
        piece: 0,
        total_size: info.len() as u32,
        data: info,
    }));
    t
}

/// Feed `chunks` one after another, draining between them; return what we sent and the end.
fn feed(info: &[u8], chunks: &[&[u8]]) -> (Vec<u8>, FetchOutput<'static, u32, 8>) {
    let mut buf = [0u8; 1024];
    let mut asm = Asm::new(&mut buf, hash(info), TIMEOUT);
    let mut fetch = Fetch::new(1, hash(info), config());
    let mut sent = Vec::new();
    let mut out = [0u8; 512];
    let mut drain = |fetch: &mut Fetch, asm: &mut Asm<'_>| loop {
        match fetch.poll_output(Instant::ZERO, asm, &mut out) {
            FetchOutput::Transmit(b) => sent.extend_from_slice(b),
            FetchOutput::Timeout(t) => return FetchOutput::Timeout(t),
            FetchOutput::Done => return FetchOutput::Done,
            FetchOutput::Failed(e) => return FetchOutput::Failed(e),
            FetchOutput::Mismatch(p) => return FetchOutput::Mismatch(p),
        }
    };
    let mut end = drain(&mut fetch, &mut asm);
    for chunk in chunks {
        assert_eq!(fetch.handle_input(chunk), chunk.len());
        end = drain(&mut fetch, &mut asm);
    }
    assert_eq!(asm.info().is_some(), end == FetchOutput::Done);
    (sent, end)
}

#[test]
fn every_split_of_a_small_transcript_gives_the_same_result() {
    let info = random_bytes(300, 12);
    let t = small_transcript(&info);
    let (sent, end) = feed(&info, &[&t]);
    assert_eq!(end, FetchOutput::Done);
    let mut peer = FakePeer::silent(&info, Serve::Silently);
    peer.take(&sent);
    assert_eq!(peer.requests, [0]);
    assert_eq!(peer.rejects_from_us, [4]);
    for cut in 0..=t.len() {
        let (a, b) = t.split_at(cut);
        assert_eq!(
            feed(&info, &[a, b]),
            (sent.clone(), FetchOutput::Done),
            "{cut}"
        );
    }
    let bytes: Vec<&[u8]> = t.chunks(1).collect();
    assert_eq!(feed(&info, &bytes), (sent.clone(), FetchOutput::Done));
    // Cut short anywhere, it is waiting, never failed.
    for cut in 0..t.len() {
        assert!(matches!(
            feed(&info, &[&t[..cut]]).1,
            FetchOutput::Timeout(_)
        ));
    }
}

#[test]
fn a_peer_serving_a_wrong_piece_is_named_and_the_fetch_starts_over() {
    let info = random_bytes(40 * 1024, 13);
    let mut buf = std::vec![0u8; 64 * 1024];
    let mut asm = Asm::new(&mut buf, hash(&info), TIMEOUT);
    let mut links = [
        link(1, hash(&info), FakePeer::new(&info, Serve::Honestly)),
        link(2, hash(&info), FakePeer::new(&info, Serve::Corrupted)),
    ];
    let events = run(&mut links, &mut asm, Instant::ZERO);
    let Some((_, Ev::Mismatch(peers))) = events.last() else {
        panic!("{events:?}");
    };
    assert!(peers.contains(&2), "{peers:?}");
    assert_eq!(asm.progress().0, 0);
    // The shell bans peer 2; peer 1 fetches everything again.
    links[1].closed = true;
    asm.forget(2);
    assert_eq!(run(&mut links, &mut asm, Instant::ZERO), [(1, Ev::Done)]);
    assert_eq!(asm.info(), Some(&info[..]));
}

#[test]
fn a_rejected_piece_is_asked_of_another_peer() {
    let info = random_bytes(40 * 1024, 14);
    let mut buf = std::vec![0u8; 64 * 1024];
    let mut asm = Asm::new(&mut buf, hash(&info), TIMEOUT);
    let mut links = [
        link(1, hash(&info), FakePeer::new(&info, Serve::Rejecting)),
        link(2, hash(&info), FakePeer::new(&info, Serve::Honestly)),
    ];
    assert_eq!(run(&mut links[..1], &mut asm, Instant::ZERO), []);
    assert_eq!(links[0].peer.requests, [0, 1]);
    assert_eq!(links[0].timeout, Some(Instant::ZERO + TIMEOUT), "paused");
    assert_eq!(run(&mut links, &mut asm, Instant::ZERO), [(2, Ev::Done)]);
    assert_eq!(links[1].peer.requests, [0, 1, 2]);
    assert_eq!(asm.info(), Some(&info[..]));
}

#[test]
fn a_silent_peers_pieces_are_asked_again_after_the_timeout() {
    let info = random_bytes(40 * 1024, 15);
    let mut buf = std::vec![0u8; 64 * 1024];
    let mut asm = Asm::new(&mut buf, hash(&info), TIMEOUT);
    let mut links = [
        link(1, hash(&info), FakePeer::new(&info, Serve::Silently)),
        link(2, hash(&info), FakePeer::new(&info, Serve::Honestly)),
    ];
    assert_eq!(run(&mut links[..1], &mut asm, Instant::ZERO), []);
    assert_eq!(links[0].timeout, None, "nothing it could take");
    let t1 = Instant::from_millis(1);
    assert_eq!(run(&mut links, &mut asm, t1), []);
    assert_eq!(links[1].peer.requests, [2]);
    assert_eq!(links[1].timeout, Some(Instant::ZERO + TIMEOUT));
    assert_eq!(asm.progress(), (1, 3));
    assert_eq!(
        run(&mut links, &mut asm, Instant::ZERO + TIMEOUT),
        [(2, Ev::Done)]
    );
    assert_eq!(links[1].peer.requests, [2, 0, 1]);
    assert_eq!(asm.info(), Some(&info[..]));
}

#[test]
fn a_metadata_size_beyond_the_buffer_or_the_pieces_is_refused() {
    let info = random_bytes(40 * 1024, 16);
    let mut buf = std::vec![0u8; 32 * 1024];
    let mut asm = Asm::new(&mut buf, hash(&info), TIMEOUT);
    let mut links = [link(1, hash(&info), FakePeer::new(&info, Serve::Honestly))];
    let refused = SizeError::LargerThanBuffer {
        size: 40 * 1024,
        buffer: 32 * 1024,
    };
    let events = run(&mut links, &mut asm, Instant::ZERO);
    assert_eq!(events, [(1, Ev::Failed(FetchError::Size(refused)))]);
    assert!(links[0].peer.requests.is_empty());

    let mut buf = std::vec![0u8; 64 * 1024];
    let mut asm = MetadataAssembler::<Sha1Smol, u32, 2>::new(&mut buf, hash(&info), TIMEOUT);
    let mut fetch = Fetch::new(1, hash(&info), config());
    fetch.handle_input(&greeting(hash(&info), Some(40 * 1024)));
    let mut out = [0u8; 512];
    // Our handshake, then (the peer's read) our extended handshake.
    // Our handshake alone first: aria2 drops a peer whose extended handshake comes with it.
    for len in [68, 57] {
        let sent = fetch.poll_output(Instant::ZERO, &mut asm, &mut out);
        assert!(
            matches!(sent, FetchOutput::Transmit(b) if b.len() == len),
            "{sent:?}"
        );
    }
    let refused = SizeError::TooManyPieces {
        size: 40 * 1024,
        max: 2,
    };
    let failed = FetchOutput::Failed(FetchError::Size(refused));
    assert_eq!(fetch.poll_output(Instant::ZERO, &mut asm, &mut out), failed);
}

#[test]
fn a_peer_without_metadata_size_is_asked_for_piece_0_first() {
    let info = random_bytes(20000, 17);
    let mut buf = std::vec![0u8; 64 * 1024];
    let mut asm = Asm::new(&mut buf, hash(&info), TIMEOUT);
    let mut peer = FakePeer::silent(&info, Serve::Honestly);
    peer.outbox = greeting(hash(&info), None);
    let mut links = [link(1, hash(&info), peer)];
    assert_eq!(run(&mut links, &mut asm, Instant::ZERO), [(1, Ev::Done)]);
    assert_eq!(links[0].peer.requests, [0, 1]);
}

/// Run one peer that sends `greeting` (and serves `serve`); return the events.
fn one(info: &[u8], greeting: Vec<u8>, serve: Serve) -> Vec<(u32, Ev)> {
    let mut buf = std::vec![0u8; 64 * 1024];
    let mut asm = Asm::new(&mut buf, hash(info), TIMEOUT);
    let mut peer = FakePeer::silent(info, serve);
    peer.outbox = greeting;
    run(&mut [link(1, hash(info), peer)], &mut asm, Instant::ZERO)
}

#[test]
fn a_peer_that_cannot_or_will_not_serve_fails_with_the_reason() {
    let info = random_bytes(20000, 18);
    let size = Some(20000);
    let failed = |e| std::vec![(1, Ev::Failed(e))];
    let other = greeting(InfoHash([9; 20]), size);
    assert_eq!(
        one(&info, other, Serve::Honestly),
        failed(FetchError::WrongInfoHash)
    );

    let mut plain = greeting(hash(&info), size);
    plain[25] = 0; // the BEP 10 bit
    let no_ext = failed(FetchError::NoExtensionProtocol);
    assert_eq!(one(&info, plain, Serve::Honestly), no_ext);

    let mut no_ut = greeting(hash(&info), size)[..68].to_vec();
    no_ut.extend(framed(0, b"d1:md6:ut_pexi1eee"));
    let no_ut_metadata = failed(FetchError::NoUtMetadata);
    assert_eq!(one(&info, no_ut, Serve::Honestly), no_ut_metadata);

    let mut us = greeting(hash(&info), size);
    us[48..68].copy_from_slice(&OURS.0);
    assert_eq!(
        one(&info, us, Serve::Honestly),
        failed(FetchError::SelfConnection)
    );

    let short = PieceFault::Length {
        piece: 0,
        expected: 16384,
        received: 16383,
    };
    let g = greeting(hash(&info), size);
    assert_eq!(
        one(&info, g, Serve::Short),
        failed(FetchError::Piece(short))
    );

    let mut bad = greeting(hash(&info), size);
    bad.extend(framed(OUR_UT, b"d8:msg_typei1e5:piecei-1ee"));
    let field = crate::wire::MetadataError::BadField(crate::wire::MetadataField::Piece);
    assert_eq!(
        one(&info, bad, Serve::Honestly),
        failed(FetchError::Metadata(field))
    );
}

#[test]
fn an_overlong_bitfield_is_skipped_but_an_overlong_metadata_message_fails() {
    let info = random_bytes(20000, 19);
    let mut g = greeting(hash(&info), Some(20000));
    let bitfield = std::vec![0xffu8; 40000];
    let mut m = std::vec![0u8; 40005];
    Message::Bitfield(crate::wire::Split::contiguous(&bitfield))
        .encode(&mut m)
        .unwrap();
    g.extend(&m);
    assert_eq!(one(&info, g.clone(), Serve::Honestly), [(1, Ev::Done)]);

    g.extend(framed(OUR_UT, &std::vec![b'x'; FETCH_RX_LEN]));
    let too_long = WireError::MessageTooLong {
        len: FETCH_RX_LEN as u32 + 2,
        max: FETCH_RX_LEN as u32 - 4,
    };
    let events = one(&info, g, Serve::Silently);
    assert_eq!(events, [(1, Ev::Failed(FetchError::Wire(too_long)))]);
}

#[test]
fn a_small_output_buffer_is_a_clear_error() {
    let info = random_bytes(100, 20);
    let mut buf = [0u8; 1024];
    let mut asm = Asm::new(&mut buf, hash(&info), TIMEOUT);
    let mut fetch = Fetch::new(1, hash(&info), config());
    let mut out = [0u8; MIN_FETCH_OUTPUT - 1];
    let failed = FetchOutput::Failed(FetchError::OutputTooSmall);
    assert_eq!(fetch.poll_output(Instant::ZERO, &mut asm, &mut out), failed);
    assert_eq!(fetch.handle_input(b"anything"), 8);
}

proptest! {
    /// After a valid greeting, any bytes: no panic, and a failure is final.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        cut in 0usize..300,
    ) {
        let info = random_bytes(100, 21);
        let mut buf = [0u8; 1024];
        let mut asm = Asm::new(&mut buf, hash(&info), TIMEOUT);
        let mut fetch = MetadataFetch::<u32, 256>::new(1, hash(&info), config());
        let mut stream = greeting(hash(&info), Some(100));
        stream.extend(&bytes);
        let (a, b) = stream.split_at(cut.min(stream.len()));
        let mut out = [0u8; 512];
        for chunk in [a, b] {
            let mut rest = chunk;
            while !rest.is_empty() {
                let n = fetch.handle_input(rest);
                rest = &rest[n..];
                let mut end = None;
                for _ in 0..100 {
                    match fetch.poll_output(Instant::ZERO, &mut asm, &mut out) {
                        FetchOutput::Transmit(_) | FetchOutput::Mismatch(_) => {}
                        other => { end = Some(std::format!("{other:?}")); break; }
                    }
                }
                prop_assert!(end.is_some(), "poll_output never settles");
                if n == 0 && end.as_deref().is_some_and(|e| e.starts_with("Timeout")) {
                    break;
                }
            }
        }
    }
}
