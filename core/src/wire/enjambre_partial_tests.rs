//! `enjambre_partial` codec: hand-written byte vectors, hostile payloads, round trips.

use core::ops::Range;

use super::enjambre_partial::*;
use super::{Message, Status};
use crate::BufferTooSmall;
use proptest::prelude::*;
use std::vec::Vec;

/// Encode `pieces` with extended id `ext`; return the whole message.
fn encoded(d: u64, u: u64, pieces: &[(u32, Vec<Range<u32>>)], ext: u8) -> Vec<u8> {
    let update = PartialUpdate {
        downloaded: d,
        uploaded: u,
        pieces: pieces.iter().map(|(i, r)| (*i, r.iter().cloned())),
    };
    let mut out = std::vec![0u8; 4096];
    let n = update.encode(ext, &mut out).unwrap();
    out.truncate(n);
    out
}

/// The pieces of a message as plain values.
fn read(m: &PartialMessage<'_>) -> Vec<(u32, u32, Vec<Range<u32>>)> {
    m.pieces()
        .map(|p| (p.index, p.held, p.ranges().collect()))
        .collect()
}

#[test]
fn a_hand_written_message_decodes() {
    // Piece 7 holds 0..16384 and 32768..49152; piece 9 holds 100..200.
    let payload: &[u8] = b"d1:di1000e1:pld1:hi32768e1:ii7e1:r16:\
        \x00\x00\x00\x00\x00\x00\x40\x00\x00\x00\x80\x00\x00\x00\xc0\x00e\
        d1:hi100e1:ii9e1:r8:\x00\x00\x00\x64\x00\x00\x00\xc8ee1:ui5ee";
    let m = PartialMessage::decode(payload).unwrap();
    assert_eq!(m.downloaded, 1000);
    assert_eq!(m.uploaded, 5);
    assert_eq!(m.pieces_len(), 2);
    assert_eq!(
        read(&m),
        [
            (7, 32768, std::vec![0..16384, 32768..49152]),
            (9, 100, std::vec![100..200]),
        ]
    );
    let p = m.pieces().next().unwrap();
    assert!(p.holds(0..16384));
    assert!(p.holds(40000..49152));
    assert!(!p.holds(16000..17000), "straddles a hole");
    assert!(!p.holds(5..5), "empty");
    // Our encoder writes exactly these bytes, with id 3 in front.
    let again = encoded(
        1000,
        5,
        &[
            (7, std::vec![0..16384, 32768..49152]),
            (9, std::vec![100..200]),
        ],
        3,
    );
    assert_eq!(
        &again[..4],
        &u32::try_from(payload.len() + 2).unwrap().to_be_bytes()
    );
    assert_eq!(&again[4..6], &[20, 3]);
    assert_eq!(&again[6..], payload);
}

#[test]
fn absent_fields_read_as_zero_and_unknown_keys_are_ignored() {
    let m = PartialMessage::decode(b"d1:zi1e1:ui2ee").unwrap();
    assert_eq!((m.downloaded, m.uploaded, m.pieces_len()), (0, 2, 0));
    assert_eq!(m.pieces().count(), 0);
}

#[test]
fn hostile_payloads_are_errors() {
    use PartialError::*;
    use PartialField::*;
    let cases: &[(&[u8], PartialError)] = &[
        (b"li1ee", NotADict),
        (b"d1:di-1ee", BadField(Downloaded)),
        (b"d1:u1:xe", BadField(Uploaded)),
        (b"d1:pi1ee", BadField(Pieces)),
        (b"d1:pli1eee", BadField(Pieces)),
        (b"d1:pld1:hi0e1:r0:eee", BadField(Index)),
        (b"d1:pld1:ii-1e1:hi0e1:r0:eee", BadField(Index)),
        (b"d1:pld1:ii1e1:hi0eeee", BadField(Ranges)),
        (b"d1:pld1:ii1e1:hi0e1:r3:abceee", BadField(Ranges)),
        // Empty range.
        (
            b"d1:pld1:ii1e1:hi0e1:r8:\x00\x00\x00\x05\x00\x00\x00\x05eee",
            BadField(Ranges),
        ),
        // Reversed range.
        (
            b"d1:pld1:ii1e1:hi1e1:r8:\x00\x00\x00\x06\x00\x00\x00\x05eee",
            BadField(Ranges),
        ),
        // Touching ranges: 0..4 then 4..8.
        (
            b"d1:pld1:ii1e1:hi8e1:r16:\x00\x00\x00\x00\x00\x00\x00\x04\
              \x00\x00\x00\x04\x00\x00\x00\x08eee",
            BadField(Ranges),
        ),
        // Unsorted ranges.
        (
            b"d1:pld1:ii1e1:hi8e1:r16:\x00\x00\x00\x05\x00\x00\x00\x09\
              \x00\x00\x00\x00\x00\x00\x00\x04eee",
            BadField(Ranges),
        ),
        // `h` that is not the ranges' sum.
        (
            b"d1:pld1:ii1e1:hi3e1:r8:\x00\x00\x00\x00\x00\x00\x00\x04eee",
            BadField(Held),
        ),
    ];
    for (payload, want) in cases {
        assert_eq!(
            PartialMessage::decode(payload),
            Err(*want),
            "{}",
            payload.escape_ascii()
        );
    }
    assert!(matches!(
        PartialMessage::decode(b"d1:p"),
        Err(PartialError::Bencode(_))
    ));
}

#[test]
fn too_many_pieces_or_ranges_are_refused() {
    let many: Vec<_> = (0..MAX_PARTIAL_PIECES as u32 + 1)
        .map(|i| (i, std::vec![0..1]))
        .collect();
    let m = encoded(0, 0, &many, 3);
    assert_eq!(PartialMessage::decode(&m[6..]), Err(PartialError::TooLarge));
    let ok = encoded(0, 0, &many[..MAX_PARTIAL_PIECES], 3);
    assert_eq!(
        PartialMessage::decode(&ok[6..]).unwrap().pieces_len(),
        MAX_PARTIAL_PIECES
    );
    let ranges: Vec<_> = (0..MAX_PARTIAL_RANGES as u32 + 1)
        .map(|k| 2 * k..2 * k + 1)
        .collect();
    let m = encoded(0, 0, &[(0, ranges.clone())], 3);
    assert_eq!(PartialMessage::decode(&m[6..]), Err(PartialError::TooLarge));
    let ok = encoded(0, 0, &[(0, ranges[..MAX_PARTIAL_RANGES].to_vec())], 3);
    let m = PartialMessage::decode(&ok[6..]).unwrap();
    assert_eq!(m.pieces().next().unwrap().ranges_len(), MAX_PARTIAL_RANGES);
}

#[test]
fn short_buffers_fail_without_panicking() {
    let update = PartialUpdate {
        downloaded: 1,
        uploaded: 2,
        pieces: [(3u32, [0u32..10, 20..30])]
            .into_iter()
            .map(|(i, r)| (i, r.into_iter())),
    };
    let mut big = [0u8; 200];
    let n = update.encode(3, &mut big).unwrap();
    for len in 0..n {
        let mut out = std::vec![0u8; len];
        let e: BufferTooSmall = update.encode(3, &mut out).unwrap_err();
        assert!(e.required > len, "{len}: {e:?}");
    }
}

/// Sorted, non-empty, non-touching ranges from a list of (gap, length) steps.
fn ranges_from(steps: &[(u16, u16)]) -> Vec<Range<u32>> {
    let mut at = 0u32;
    let mut out = Vec::new();
    for (k, &(gap, len)) in steps.iter().enumerate() {
        let gap = u32::from(gap) + u32::from(k > 0);
        let start = at + gap;
        let end = start + u32::from(len) + 1;
        out.push(start..end);
        at = end;
    }
    out
}

proptest! {
    #[test]
    fn round_trips(
        d: u32,
        u: u32,
        pieces in proptest::collection::vec(
            (any::<u32>(), proptest::collection::vec((any::<u16>(), any::<u16>()), 0..6)),
            0..8,
        ),
        ext in 1u8..,
    ) {
        let pieces: Vec<_> = pieces.iter().map(|(i, s)| (*i, ranges_from(s))).collect();
        let m = encoded(d.into(), u.into(), &pieces, ext);
        let Ok(Status::Complete((Message::Extended { id, payload }, n))) =
            Message::decode(&m, &[], 1 << 16) else {
            return Err(TestCaseError::fail("not an extended message"));
        };
        prop_assert_eq!((id, n), (ext, m.len()));
        let payload = payload.as_contiguous().unwrap();
        let back = PartialMessage::decode(payload).unwrap();
        prop_assert_eq!((back.downloaded, back.uploaded), (u64::from(d), u64::from(u)));
        let want: Vec<_> = pieces
            .iter()
            .map(|(i, r)| (*i, r.iter().map(|r| r.end - r.start).sum::<u32>(), r.clone()))
            .collect();
        prop_assert_eq!(read(&back), want);
    }

    #[test]
    fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        if let Ok(m) = PartialMessage::decode(&bytes) {
            let pieces: Vec<_> = m.pieces().map(|p| (p.index, p.ranges().collect())).collect();
            prop_assert_eq!(pieces.len(), m.pieces_len());
            let again = encoded(m.downloaded, m.uploaded, &pieces, 3);
            let back = PartialMessage::decode(&again[6..]).unwrap();
            prop_assert_eq!(read(&back), read(&m));
        }
    }
}
