//! Tests of `resume.rs`.
use super::*;
use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

type State = ResumeState<4, 3, 4>;
const HASH: InfoHash = InfoHash([0x11; 20]);

/// 21 pieces of 1000 bytes, the last one 500.
fn geometry() -> Geometry {
    Geometry::new(1000, 20_500).unwrap()
}

#[test]
fn a_journal_replay_extends_partials_and_ignores_verified_pieces() {
    let g = geometry();
    let mut s = sample();
    // Piece 3 had [0,100) and [400,999): the journal says [100,400) was written since.
    assert_eq!(s.record_write(&g, 3, 100, 400), Ok(300));
    let p3 = s.partial.iter().find(|p| p.piece() == 3).unwrap();
    assert_eq!(p3.as_slice(), [(0, 999)]);
    // A piece not yet partial becomes one; the short last piece is bounded by its length.
    assert_eq!(s.record_write(&g, 20, 0, 10), Ok(0), "piece 20 is verified");
    let n = s.partial.len();
    assert_eq!(s.record_write(&g, 9, 0, 16), Ok(16));
    assert_eq!(s.partial.len(), n + 1);
    // Replaying the same record twice changes nothing.
    assert_eq!(s.record_write(&g, 9, 0, 16), Ok(0));
    // Out of bounds is refused, never recorded.
    assert_eq!(s.record_write(&g, 21, 0, 1), Err(ResumeError::Invalid));
    assert_eq!(s.record_write(&g, 4, 900, 1001), Err(ResumeError::Invalid));
    assert_eq!(s.record_write(&g, 4, 5, 5), Err(ResumeError::Invalid));
    // What was replayed encodes and decodes like any state.
    let mut buf = [0u8; State::max_encoded_len()];
    let bytes = s.encode(&mut buf).unwrap();
    assert_eq!(State::decode(bytes, HASH, g).unwrap(), s);
}

#[test]
fn a_journal_replay_verifies_and_discards_pieces() {
    let g = geometry();
    let mut s = sample();
    assert_eq!(s.record_write(&g, 9, 0, 1000), Ok(1000));
    assert_eq!(s.record_verified(9), Ok(()));
    assert!(s.have.get(9));
    assert!(s.partial.iter().all(|p| p.piece() != 9));
    // A verified piece ignores later writes; a discarded one starts from nothing.
    assert_eq!(s.record_write(&g, 9, 0, 10), Ok(0));
    assert_eq!(s.record_discard(3), Ok(()));
    assert!(s.partial.iter().all(|p| p.piece() != 3) && !s.have.get(3));
    assert_eq!(s.record_write(&g, 3, 0, 10), Ok(10));
    assert_eq!(s.record_verified(21), Err(ResumeError::Invalid));
    assert_eq!(s.record_discard(21), Err(ResumeError::Invalid));
    let mut buf = [0u8; State::max_encoded_len()];
    let bytes = s.encode(&mut buf).unwrap();
    assert_eq!(State::decode(bytes, HASH, g).unwrap(), s);
}

fn sample() -> State {
    let mut s = State::new(HASH, 21).unwrap();
    for i in [0, 1, 2, 7, 20] {
        s.have.set(i, true);
    }
    let mut p = PieceProgress::new(3, 1000);
    p.add(0, 100).unwrap();
    p.add(400, 999).unwrap();
    s.partial.push(p).unwrap();
    let mut p = PieceProgress::new(19, 1000);
    p.add(0, 1000).unwrap();
    s.partial.push(p).unwrap();
    s.uploaded = 1 << 40;
    s.downloaded = 123_456;
    s
}

fn encode(s: &State) -> Vec<u8> {
    let mut buf = vec![0; State::max_encoded_len()];
    s.encode(&mut buf).unwrap().to_vec()
}

fn decode(bytes: &[u8]) -> Result<State, ResumeError> {
    State::decode(bytes, HASH, geometry())
}

/// A body with arbitrary (possibly invalid) fields, framed with a correct CRC.
#[derive(Serialize)]
struct RawBody<'a> {
    info_hash: [u8; 20],
    piece_count: u32,
    have: &'a [u8],
    partial: &'a [RawPartial<'a>],
    uploaded: u64,
    downloaded: u64,
}

fn frame(version: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![version];
    out.extend_from_slice(body);
    out.extend_from_slice(&CRC.checksum(&out).to_le_bytes());
    out
}

/// Partial pieces as written: piece index and its ranges.
type RawPartial<'a> = (u32, &'a [(u32, u32)]);

fn raw(have: &[u8], partial: &[RawPartial<'_>]) -> Vec<u8> {
    let body = RawBody {
        info_hash: HASH.0,
        piece_count: 21,
        have,
        partial,
        uploaded: 5,
        downloaded: 6,
    };
    let mut buf = [0u8; 512];
    frame(RESUME_VERSION, postcard::to_slice(&body, &mut buf).unwrap())
}

#[test]
fn checksum_is_crc32c() {
    // The standard check value of CRC-32/ISCSI (Castagnoli).
    assert_eq!(CRC.checksum(b"123456789"), 0xe306_9283);
}

#[test]
fn golden_frame() {
    let mut s = ResumeState::<2, 1, 1>::new(HASH, 10).unwrap();
    s.have.set(0, true);
    s.have.set(9, true);
    let mut p = PieceProgress::new(3, 16384);
    p.add(0, 5000).unwrap();
    s.partial.push(p).unwrap();
    s.uploaded = 300;
    s.downloaded = 5000;
    let mut buf = [0; ResumeState::<2, 1, 1>::max_encoded_len()];
    let bytes = s.encode(&mut buf).unwrap();
    let mut expected = vec![RESUME_VERSION];
    expected.extend_from_slice(&[0x11; 20]);
    expected.extend_from_slice(&[
        10, 2, 0x80, 0x40, 1, 3, 1, 0, 0x88, 0x27, 0xac, 0x02, 0x88, 0x27,
    ]);
    let crc = CRC.checksum(&expected).to_le_bytes();
    expected.extend_from_slice(&crc);
    assert_eq!(bytes, &expected[..]);
    let g = Geometry::new(16384, 10 * 16384).unwrap();
    assert_eq!(ResumeState::<2, 1, 1>::decode(bytes, HASH, g), Ok(s));
}

#[test]
fn round_trip_of_a_sample() {
    let s = sample();
    assert_eq!(decode(&encode(&s)), Ok(s));
}

#[test]
fn every_single_bit_flip_is_corrupt() {
    let bytes = encode(&sample());
    for bit in 0..bytes.len() * 8 {
        let mut damaged = bytes.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(decode(&damaged), Err(ResumeError::Corrupt), "bit {bit}");
    }
}

#[test]
fn every_truncation_and_extension_is_corrupt() {
    let bytes = encode(&sample());
    for len in 0..bytes.len() {
        assert_eq!(
            decode(&bytes[..len]),
            Err(ResumeError::Corrupt),
            "length {len}"
        );
    }
    for extra in [0u8, 0xff] {
        let mut longer = bytes.clone();
        longer.push(extra);
        assert_eq!(decode(&longer), Err(ResumeError::Corrupt));
    }
    // Trailing bytes covered by a valid CRC are refused too.
    let mut inner = bytes[..bytes.len() - CRC_LEN].to_vec();
    inner.push(0);
    assert_eq!(
        decode(&frame(inner[0], &inner[1..])),
        Err(ResumeError::Corrupt)
    );
}

#[test]
fn another_torrent_or_shape_or_version_is_refused() {
    let bytes = encode(&sample());
    assert_eq!(
        State::decode(&bytes, InfoHash([0x22; 20]), geometry()),
        Err(ResumeError::WrongTorrent)
    );
    let shorter = Geometry::new(1000, 20_000).unwrap();
    assert_eq!(
        State::decode(&bytes, HASH, shorter),
        Err(ResumeError::WrongPieceCount)
    );
    let v2 = frame(2, &bytes[1..bytes.len() - CRC_LEN]);
    assert_eq!(decode(&v2), Err(ResumeError::UnsupportedVersion(2)));
    // A state too large for smaller capacities.
    let small = ResumeState::<2, 3, 4>::decode(&bytes, HASH, geometry());
    assert_eq!(small, Err(ResumeError::Capacity));
    assert_eq!(
        ResumeState::<4, 1, 4>::decode(&bytes, HASH, geometry()),
        Err(ResumeError::Capacity)
    );
    assert_eq!(
        ResumeState::<4, 3, 1>::decode(&bytes, HASH, geometry()),
        Err(ResumeError::Capacity)
    );
}

#[test]
fn inconsistent_fields_behind_a_valid_crc_are_refused() {
    let have = [0b1000_0000, 0, 0];
    assert!(decode(&raw(&have, &[(3, &[(0, 10), (20, 1000)])])).is_ok());
    let cases: [(&[u8], &[RawPartial<'_>]); 10] = [
        (&have, &[(0, &[(0, 10)])]), // partial piece already verified
        (&have, &[(3, &[(0, 10)]), (3, &[(20, 30)])]), // partial piece listed twice
        (&have, &[(21, &[(0, 10)])]), // piece out of range
        (&have, &[(3, &[(20, 30), (0, 10)])]), // ranges unsorted
        (&have, &[(3, &[(0, 20), (10, 30)])]), // ranges overlapping
        (&have, &[(3, &[(0, 10), (10, 30)])]), // ranges not merged
        (&have, &[(3, &[(5, 5)])]),  // empty range
        (&have, &[(20, &[(0, 501)])]), // past the short last piece
        (&[0, 0, 0b0000_0100], &[]), // spare bit set
        (&[0, 0], &[]),              // bitfield too short
    ];
    for (i, (have, partial)) in cases.iter().enumerate() {
        assert_eq!(
            decode(&raw(have, partial)),
            Err(ResumeError::Invalid),
            "case {i}"
        );
    }
    let five: &[(u32, u32)] = &[(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)];
    assert_eq!(
        decode(&raw(&have, &[(3, five)])),
        Err(ResumeError::Capacity)
    );
    let four: &[RawPartial<'_>] = &[
        (3, &[(0, 1)]),
        (4, &[(0, 1)]),
        (5, &[(0, 1)]),
        (6, &[(0, 1)]),
    ];
    assert_eq!(decode(&raw(&have, four)), Err(ResumeError::Capacity));
    assert_eq!(
        decode(&frame(RESUME_VERSION, &[])),
        Err(ResumeError::Corrupt)
    );
}

#[test]
fn encode_refuses_what_decode_would_refuse() {
    let mut s = sample();
    let p = s.partial[0].clone();
    s.partial.push(p).unwrap();
    assert_eq!(s.encode(&mut [0; 512]), Err(ResumeError::Invalid));
    let mut s = sample();
    s.have.set(3, true);
    assert_eq!(s.encode(&mut [0; 512]), Err(ResumeError::Invalid));
    let mut s = sample();
    s.piece_count = 20;
    assert_eq!(s.encode(&mut [0; 512]), Err(ResumeError::Invalid));
}

#[test]
fn short_buffers_are_refused() {
    let s = sample();
    let len = encode(&s).len();
    let mut buf = vec![0; len];
    for n in 0..len {
        assert_eq!(
            s.encode(&mut buf[..n]),
            Err(ResumeError::BufferTooSmall),
            "size {n}"
        );
    }
    assert_eq!(s.encode(&mut buf).map(|b| b.len()), Ok(len));
}

#[test]
fn the_worst_case_fits_max_encoded_len() {
    type Big = ResumeState<300, 5, 9>;
    let g = Geometry::new(u32::MAX, 2400 * u32::MAX as u64).unwrap();
    let mut s = Big::new(HASH, g.piece_count()).unwrap();
    s.have.fill();
    for piece in 2395..2400 {
        s.have.set(piece, false);
        let mut p = PieceProgress::new(piece, u32::MAX);
        for i in 0..9 {
            p.add(u32::MAX - 100 + 2 * i, u32::MAX - 99 + 2 * i)
                .unwrap();
        }
        s.partial.push(p).unwrap();
    }
    s.uploaded = u64::MAX;
    s.downloaded = u64::MAX;
    let mut buf = [0; Big::max_encoded_len()];
    let len = s.encode(&mut buf).unwrap().len();
    assert!(len <= Big::max_encoded_len());
    // The bound over-counts only the varints of the piece count and the five piece indices.
    assert_eq!(Big::max_encoded_len() - len, 3 + 5 * 3);
    assert_eq!(Big::decode(&buf[..len], HASH, g), Ok(s));
}

fn arb_state() -> impl Strategy<Value = State> {
    let partial = proptest::collection::vec(
        (
            0u32..21,
            proptest::collection::vec((0u32..1000, 1u32..200), 0..6),
        ),
        0..4,
    );
    (any::<[u8; 3]>(), partial, any::<u64>(), any::<u64>()).prop_map(|(have, partial, up, down)| {
        let mut s = State::new(HASH, 21).unwrap();
        let mut bytes = have;
        bytes[2] &= 0xf8;
        s.have = Bitfield::from_wire(21, &bytes).unwrap();
        for (piece, ranges) in partial {
            if s.have.get(piece) || s.partial.iter().any(|p| p.piece() == piece) {
                continue;
            }
            let len = if piece == 20 { 500 } else { 1000 };
            let mut p = PieceProgress::new(piece, len);
            for (start, n) in ranges {
                let _ = p.add(start, start + n);
            }
            let _ = s.partial.push(p);
        }
        s.uploaded = up;
        s.downloaded = down;
        s
    })
}

proptest! {
    #[test]
    fn round_trip(s in arb_state()) {
        let bytes = encode(&s);
        prop_assert!(bytes.len() <= State::max_encoded_len());
        prop_assert_eq!(decode(&bytes), Ok(s));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&bytes);
        // And with a valid CRC, so the body itself is parsed.
        if let Some((&v, body)) = bytes.split_first() {
            let _ = decode(&frame(v, body));
        }
    }
}
