//! Scenarios for the message codec: BEP byte vectors, every split, hostile peers, round trips.

use super::*;
use crate::ring::RingBuffer;
use proptest::prelude::*;
use std::vec::Vec;

const MAX: u32 = 1 << 17;

/// A message and its exact bytes on the wire.
type Vector = (Message<'static>, &'static [u8]);

/// Each message next to its bytes as BEP 3 (ids 0-8), BEP 5 (9), BEP 6 (0x0D-0x11) and
/// BEP 10 (20) lay them out.
fn vectors() -> Vec<Vector> {
    std::vec![
        (Message::KeepAlive, b"\0\0\0\0"),
        (Message::Choke, b"\0\0\0\x01\x00"),
        (Message::Unchoke, b"\0\0\0\x01\x01"),
        (Message::Interested, b"\0\0\0\x01\x02"),
        (Message::NotInterested, b"\0\0\0\x01\x03"),
        (
            Message::Have(0x0102_0304),
            b"\0\0\0\x05\x04\x01\x02\x03\x04"
        ),
        (
            Message::Bitfield(Split::contiguous(b"\xff\xe0")),
            b"\0\0\0\x03\x05\xff\xe0",
        ),
        (Message::Bitfield(Split::contiguous(b"")), b"\0\0\0\x01\x05"),
        (
            Message::Request {
                index: 1,
                begin: 0x4000,
                length: 0x4000,
            },
            b"\0\0\0\x0d\x06\0\0\0\x01\0\0\x40\0\0\0\x40\0",
        ),
        (
            Message::Piece {
                index: 2,
                begin: 0x8000,
                data: Split::contiguous(b"abc"),
            },
            b"\0\0\0\x0c\x07\0\0\0\x02\0\0\x80\0abc",
        ),
        (
            Message::Piece {
                index: 0,
                begin: 0,
                data: Split::contiguous(b""),
            },
            b"\0\0\0\x09\x07\0\0\0\0\0\0\0\0",
        ),
        (
            Message::Cancel {
                index: 1,
                begin: 0x4000,
                length: 0x4000,
            },
            b"\0\0\0\x0d\x08\0\0\0\x01\0\0\x40\0\0\0\x40\0",
        ),
        (Message::Port(6881), b"\0\0\0\x03\x09\x1a\xe1"),
        (Message::Suggest(7), b"\0\0\0\x05\x0d\0\0\0\x07"),
        (Message::HaveAll, b"\0\0\0\x01\x0e"),
        (Message::HaveNone, b"\0\0\0\x01\x0f"),
        (
            Message::Reject {
                index: 3,
                begin: 0,
                length: 0x4000,
            },
            b"\0\0\0\x0d\x10\0\0\0\x03\0\0\0\0\0\0\x40\0",
        ),
        (Message::AllowedFast(9), b"\0\0\0\x05\x11\0\0\0\x09"),
        (
            // BEP 10's own example handshake payload.
            Message::Extended {
                id: 0,
                payload: Split::contiguous(
                    b"d1:md11:LT_metadatai1e6:ut_pexi2ee1:pi6881e1:v12:uTorrent 1.2e",
                ),
            },
            b"\0\0\0\x40\x14\x00d1:md11:LT_metadatai1e6:ut_pexi2ee1:pi6881e1:v12:uTorrent 1.2e",
        ),
        (
            Message::Extended {
                id: 3,
                payload: Split::contiguous(b""),
            },
            b"\0\0\0\x02\x14\x03",
        ),
    ]
}

#[test]
fn bep_vectors_decode_and_encode_byte_for_byte() {
    for (message, bytes) in vectors() {
        assert_eq!(
            Message::decode(bytes, &[], MAX),
            Ok(Status::Complete((message, bytes.len()))),
            "{message:?}"
        );
        assert_eq!(message.encoded_len(), bytes.len(), "{message:?}");
        let mut out = [0u8; 128];
        assert_eq!(message.encode(&mut out), Ok(bytes.len()));
        assert_eq!(&out[..bytes.len()], bytes, "{message:?}");
    }
}

#[test]
fn every_vector_decodes_split_at_every_position() {
    for (message, bytes) in vectors() {
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            let got = Message::decode(a, b, MAX);
            assert_eq!(
                got,
                Ok(Status::Complete((message, bytes.len()))),
                "{message:?} cut {cut}"
            );
        }
    }
}

#[test]
fn every_vector_is_partial_until_its_last_byte() {
    for (message, bytes) in vectors() {
        for n in 0..bytes.len() {
            // Also split the prefix, so partial reads straddle the halves too.
            for cut in [0, n / 2, n] {
                let (a, b) = bytes[..n].split_at(cut);
                assert_eq!(
                    Message::decode(a, b, MAX),
                    Ok(Status::Partial),
                    "{message:?} {n}"
                );
            }
        }
    }
}

#[test]
fn a_stream_through_a_small_ring_in_every_chunk_size() {
    // All vectors back to back through a 24-byte ring, so that messages wrap around its end.
    // The 70-byte extended handshake cannot fit there: all of them also go through 100 bytes.
    let small: Vec<Vector> = vectors()
        .into_iter()
        .filter(|(_, b)| b.len() <= 24)
        .collect();
    let all = vectors();
    let mut wrapped = (false, false);
    for chunk in 1..=24 {
        wrapped.0 |= check_stream(&small, feed::<24>, chunk);
        wrapped.1 |= check_stream(&all, feed::<100>, chunk);
    }
    assert_eq!(
        wrapped,
        (true, true),
        "no message ever straddled the ring's end"
    );
}

/// Check that `vectors` come out of `feed` as they went in; return whether any wrapped.
fn check_stream(vectors: &[Vector], feed: Feed, chunk: usize) -> bool {
    let stream: Vec<u8> = vectors
        .iter()
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    let fed = feed(&stream, chunk, false);
    let expected: Vec<&[u8]> = vectors.iter().map(|(_, b)| *b).collect();
    assert_eq!(fed.messages, expected, "chunk {chunk}");
    fed.wrapped
}

/// [`feed`] with its ring size chosen.
pub(super) type Feed = fn(&[u8], usize, bool) -> Fed;

/// What [`feed`] decoded.
#[derive(Debug)]
pub(super) struct Fed {
    /// The handshake, when one was expected first.
    pub(super) handshake: Option<Handshake>,
    /// Each message, encoded again (which must give back the bytes it was decoded from).
    pub(super) messages: Vec<Vec<u8>>,
    /// Whether some message was decoded from both halves of the ring.
    pub(super) wrapped: bool,
}

/// Push `stream` into a ring of `N` bytes `chunk` bytes at a time, decoding everything complete
/// after each write, as a session does: the handshake first if `handshake_first`, then messages.
pub(super) fn feed<const N: usize>(stream: &[u8], chunk: usize, handshake_first: bool) -> Fed {
    let mut ring = RingBuffer::<N>::new();
    let mut fed = Fed {
        handshake: None,
        messages: Vec::new(),
        wrapped: false,
    };
    for mut piece in stream.chunks(chunk) {
        while !piece.is_empty() {
            let accepted = ring.write(piece);
            piece = &piece[accepted..];
            loop {
                let (a, b) = ring.as_slices();
                if handshake_first && fed.handshake.is_none() {
                    let Status::Complete(h) = Handshake::decode(a, b).unwrap() else {
                        break;
                    };
                    fed.handshake = Some(h);
                    ring.consume(HANDSHAKE_LEN);
                    continue;
                }
                let Status::Complete((message, consumed)) = Message::decode(a, b, MAX).unwrap()
                else {
                    break;
                };
                fed.wrapped |= !b.is_empty() && a.len() < consumed;
                let mut encoding = std::vec![0u8; message.encoded_len()];
                assert_eq!(message.encode(&mut encoding), Ok(consumed));
                fed.messages.push(encoding);
                ring.consume(consumed);
            }
            assert!(
                accepted > 0 || !ring.is_empty(),
                "a message larger than the ring"
            );
        }
    }
    assert!(ring.is_empty());
    fed
}

#[test]
fn a_huge_length_prefix_is_refused_before_any_body_arrives() {
    let huge = [0xff, 0xff, 0xff, 0xff];
    let expected = Err(WireError::MessageTooLong {
        len: u32::MAX,
        max: MAX,
    });
    for cut in 0..=4 {
        let (a, b) = huge.split_at(cut);
        assert_eq!(Message::decode(a, b, MAX), expected);
    }
    // Three bytes are not yet a prefix.
    assert_eq!(Message::decode(&huge[..3], &[], MAX), Ok(Status::Partial));
    // The limit itself is allowed; one more is not.
    let at_limit = (MAX).to_be_bytes();
    assert_eq!(Message::decode(&at_limit, &[7], MAX), Ok(Status::Partial));
    let over = (MAX + 1).to_be_bytes();
    assert_eq!(
        Message::decode(&over, &[], MAX),
        Err(WireError::MessageTooLong {
            len: MAX + 1,
            max: MAX
        })
    );
}

#[test]
fn a_limit_of_u32_max_does_not_overflow() {
    let bytes = [0xff, 0xff, 0xff, 0xff, 7, 0, 0, 0, 0];
    assert_eq!(Message::decode(&bytes, &[], u32::MAX), Ok(Status::Partial));
}

#[test]
fn fixed_size_messages_with_a_wrong_length_are_refused_at_their_id() {
    let cases: &[(u8, u32)] = &[
        (0, 2),
        (1, 0x4000),
        (2, 5),
        (3, 2),
        (4, 4),
        (4, 6),
        (6, 12),
        (6, 14),
        (7, 8),
        (8, 1),
        (9, 2),
        (9, 4),
        (0x0d, 1),
        (0x0e, 5),
        (0x0f, 2),
        (0x10, 9),
        (0x11, 13),
        (20, 1),
    ];
    for &(id, len) in cases {
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.push(id);
        let expected = Err(WireError::BadLength { id, len });
        // Decided from the 5-byte header alone, wherever it splits ...
        for cut in 0..=5 {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(Message::decode(a, b, MAX), expected, "id {id} len {len}");
        }
        // ... and the same once the whole body is there.
        bytes.resize(4 + len as usize, 0);
        assert_eq!(
            Message::decode(&bytes, &[], MAX),
            expected,
            "id {id} len {len}"
        );
    }
}

#[test]
fn unknown_ids_are_refused_at_their_id() {
    for id in (10..=12).chain(0x12..20).chain(21..=255) {
        let bytes = [0, 0, 0, 1, id];
        for cut in 0..=5 {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(
                Message::decode(a, b, MAX),
                Err(WireError::UnknownMessage { id })
            );
        }
    }
}

#[test]
fn only_the_first_message_is_consumed() {
    let bytes = b"\0\0\0\x01\x01\0\0\0\x05\x04\0\0\0\x07";
    let first = Message::decode(&bytes[..3], &bytes[3..], MAX);
    assert_eq!(first, Ok(Status::Complete((Message::Unchoke, 5))));
    let second = Message::decode(&bytes[5..], &[], MAX);
    assert_eq!(second, Ok(Status::Complete((Message::Have(7), 9))));
}

#[test]
fn a_piece_spanning_both_halves_borrows_both() {
    let bytes = b"\0\0\0\x0d\x07\0\0\0\x02\0\0\0\0wxyz";
    let (a, b) = bytes.split_at(15);
    let Ok(Status::Complete((Message::Piece { data, .. }, 17))) = Message::decode(a, b, MAX) else {
        panic!("not a piece");
    };
    assert_eq!((data.a, data.b), (&b"wx"[..], &b"yz"[..]));
}

#[test]
fn piece_header_matches_an_encoded_piece() {
    let data = [0x5a; 100];
    let piece = Message::Piece {
        index: 17,
        begin: 0x4000,
        data: Split::contiguous(&data),
    };
    let mut out = [0u8; 113];
    piece.encode(&mut out).unwrap();
    assert_eq!(piece_header(17, 0x4000, 100), out[..13]);
    assert_eq!(piece_header(0, 0, u32::MAX)[..4], [0xff; 4]);
}

#[test]
fn encoding_into_a_short_buffer_fails_without_writing() {
    for (message, bytes) in vectors() {
        let mut out = std::vec![0xaa; bytes.len() - 1];
        assert_eq!(
            message.encode(&mut out),
            Err(crate::BufferTooSmall {
                required: bytes.len()
            })
        );
        assert!(out.iter().all(|&b| b == 0xaa));
    }
}

/// An owned message for proptest; `view` borrows it as a [`Message`].
#[derive(Debug, Clone)]
struct Owned {
    kind: u8,
    ints: [u32; 3],
    port: u16,
    ext: u8,
    payload: Vec<u8>,
}

impl Owned {
    fn view(&self) -> Message<'_> {
        let [index, begin, length] = self.ints;
        let bytes = Split::contiguous(&self.payload);
        match self.kind {
            0 => Message::KeepAlive,
            1 => Message::Choke,
            2 => Message::Unchoke,
            3 => Message::Interested,
            4 => Message::NotInterested,
            5 => Message::Have(index),
            6 => Message::Bitfield(bytes),
            7 => Message::Request {
                index,
                begin,
                length,
            },
            8 => Message::Piece {
                index,
                begin,
                data: bytes,
            },
            9 => Message::Cancel {
                index,
                begin,
                length,
            },
            10 => Message::Port(self.port),
            11 => Message::Suggest(index),
            12 => Message::HaveAll,
            13 => Message::HaveNone,
            14 => Message::Reject {
                index,
                begin,
                length,
            },
            15 => Message::AllowedFast(index),
            _ => Message::Extended {
                id: self.ext,
                payload: bytes,
            },
        }
    }
}

fn owned() -> impl Strategy<Value = Owned> {
    (
        0u8..17,
        any::<[u32; 3]>(),
        any::<u16>(),
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(kind, ints, port, ext, payload)| Owned {
            kind,
            ints,
            port,
            ext,
            payload,
        })
}

proptest! {
    /// encode -> decode gives the message back, wherever the ring splits it.
    #[test]
    fn every_message_round_trips(m in owned(), cut: usize, trailing in proptest::collection::vec(any::<u8>(), 0..8)) {
        let message = m.view();
        let mut bytes = std::vec![0u8; message.encoded_len()];
        prop_assert_eq!(message.encode(&mut bytes), Ok(bytes.len()));
        let len = bytes.len();
        bytes.extend_from_slice(&trailing);
        let cut = cut % (bytes.len() + 1);
        let (a, b) = bytes.split_at(cut);
        prop_assert_eq!(Message::decode(a, b, MAX), Ok(Status::Complete((message, len))));
    }

    /// Whatever the bytes, the outcome is exactly one of: a message that re-encodes to the bytes
    /// it consumed, Partial on a prefix that is still valid, or the right error.
    #[test]
    fn arbitrary_bytes_are_classified_exactly(
        head in (0u32..40, prop_oneof![0u8..=21, any::<u8>()]),
        body in proptest::collection::vec(any::<u8>(), 0..48),
        keep: usize,
        cut: usize,
        max in 0u32..48,
    ) {
        let (len, id) = head;
        let mut bytes = len.to_be_bytes().to_vec();
        bytes.push(id);
        bytes.extend_from_slice(&body);
        bytes.truncate(keep % (bytes.len() + 1));
        let (a, b) = bytes.split_at(cut % (bytes.len() + 1));
        match Message::decode(a, b, max) {
            Ok(Status::Complete((message, consumed))) => {
                let mut out = std::vec![0u8; consumed];
                prop_assert_eq!(message.encode(&mut out), Ok(consumed));
                prop_assert_eq!(&out[..], &bytes[..consumed]);
            }
            Ok(Status::Partial) => prop_assert!(bytes.len() < 4 || bytes.len() < 4 + len as usize),
            Err(WireError::MessageTooLong { len: got, max: m }) => {
                prop_assert_eq!((got, m), (len, max));
                prop_assert!(len > max);
            }
            Err(WireError::BadLength { id: got, len: l }) => {
                prop_assert_eq!((got, l), (id, len));
                prop_assert!(len <= max && bytes.len() >= 5);
            }
            Err(WireError::UnknownMessage { id: got }) => {
                prop_assert_eq!(got, id);
                prop_assert!(!matches!(id, 0..=9 | 0x0d..=0x11 | 20));
            }
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }
}
