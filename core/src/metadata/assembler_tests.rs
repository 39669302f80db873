//! The assembler alone: sizes, faults, rejects, timeouts, a lying peer.

use super::*;
use crate::sha1::{digest, Sha1Smol};
use crate::{Duration, InfoHash, Instant};
use proptest::prelude::*;
use std::vec::Vec;

type Asm<'b, const P: usize> = MetadataAssembler<'b, Sha1Smol, u32, P>;

const A: u32 = 1;
const B: u32 = 2;
const TIMEOUT: Duration = Duration::from_secs(10);

/// Deterministic bytes that do not repeat per piece.
pub(super) fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn hash(info: &[u8]) -> InfoHash {
    InfoHash(digest::<Sha1Smol>(info))
}

fn at(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

fn piece(info: &[u8], i: u32) -> &[u8] {
    crate::wire::metadata_piece(info, i).unwrap()
}

#[test]
fn sizes_that_cannot_fit_are_refused() {
    let mut buf = [0u8; 40000];
    let mut asm = Asm::<2>::new(&mut buf, InfoHash::default(), TIMEOUT);
    assert_eq!(asm.set_size(0), Err(SizeError::Empty));
    assert_eq!(
        asm.set_size(40001),
        Err(SizeError::LargerThanBuffer {
            size: 40001,
            buffer: 40000
        })
    );
    assert_eq!(
        asm.set_size(32769),
        Err(SizeError::TooManyPieces {
            size: 32769,
            max: 2
        })
    );
    assert_eq!(asm.size(), None);
    assert_eq!(asm.set_size(32768), Ok(()));
    assert_eq!(asm.set_size(32768), Ok(()));
    assert_eq!(
        asm.set_size(20000),
        Err(SizeError::Conflict {
            known: 32768,
            offered: 20000
        })
    );
    assert_eq!(asm.size(), Some(32768));
    assert_eq!(asm.progress(), (0, 2));
}

#[test]
fn one_peer_fills_every_piece_and_gets_the_info_dictionary() {
    let info = random_bytes(40000, 1);
    let mut buf = [0u8; 65536];
    let mut asm = Asm::<4>::new(&mut buf, hash(&info), TIMEOUT);
    asm.set_size(40000).unwrap();
    let asked: Vec<u32> = (0..4).filter_map(|_| asm.next_request(A, at(0))).collect();
    assert_eq!(asked, [0, 1, 2]);
    assert_eq!(
        asm.receive(A, 2, 40000, piece(&info, 2)),
        Ok(Received::Stored)
    );
    assert_eq!(
        asm.receive(A, 0, 40000, piece(&info, 0)),
        Ok(Received::Stored)
    );
    assert_eq!(asm.progress(), (2, 3));
    let done = asm.receive(A, 1, 40000, piece(&info, 1));
    assert_eq!(done, Ok(Received::Complete(&info[..])));
    assert_eq!(asm.info(), Some(&info[..]));
    assert_eq!(asm.next_request(B, at(1)), None);
    assert_eq!(asm.next_timeout(B), None);
}

#[test]
fn a_wrong_total_size_or_length_is_the_senders_fault_and_the_piece_is_missing_again() {
    let info = random_bytes(20000, 2);
    let mut buf = [0u8; 65536];
    let mut asm = Asm::<4>::new(&mut buf, hash(&info), TIMEOUT);
    asm.set_size(20000).unwrap();
    assert_eq!(asm.next_request(A, at(0)), Some(0));
    assert_eq!(asm.next_request(A, at(0)), Some(1));
    let fault = asm.receive(A, 1, 20001, piece(&info, 1));
    let want = PieceFault::TotalSize {
        known: 20000,
        received: 20001,
    };
    assert_eq!(fault, Err(ReceiveError::Fault(want)));
    // The last piece is 20000 - 16384 = 3616 bytes, exactly.
    assert_eq!(asm.next_request(B, at(0)), Some(1));
    let fault = asm.receive(B, 1, 20000, &info[16384..19999]);
    let want = PieceFault::Length {
        piece: 1,
        expected: 3616,
        received: 3615,
    };
    assert_eq!(fault, Err(ReceiveError::Fault(want)));
    assert_eq!(asm.next_request(B, at(0)), Some(1));
    assert_eq!(
        asm.receive(A, 0, 20000, &info[..16383]),
        Err(ReceiveError::Fault(PieceFault::Length {
            piece: 0,
            expected: 16384,
            received: 16383
        }))
    );
    assert_eq!(asm.size(), Some(20000));
}

#[test]
fn data_not_asked_of_its_sender_is_ignored() {
    let info = random_bytes(20000, 3);
    let mut buf = [0u8; 65536];
    let mut asm = Asm::<4>::new(&mut buf, hash(&info), TIMEOUT);
    asm.set_size(20000).unwrap();
    assert_eq!(asm.next_request(A, at(0)), Some(0));
    assert_eq!(
        asm.receive(B, 0, 20000, piece(&info, 0)),
        Ok(Received::Ignored)
    );
    assert_eq!(
        asm.receive(A, 1, 20000, piece(&info, 1)),
        Ok(Received::Ignored)
    );
    assert_eq!(asm.receive(A, 9, 1, b"x"), Ok(Received::Ignored));
    assert_eq!(asm.progress(), (0, 2));
}

#[test]
fn a_rejected_piece_goes_to_another_peer() {
    let mut buf = [0u8; 65536];
    let mut asm = Asm::<4>::new(&mut buf, InfoHash::default(), TIMEOUT);
    asm.set_size(20000).unwrap();
    assert_eq!(asm.next_request(A, at(0)), Some(0));
    assert_eq!(asm.next_request(A, at(0)), Some(1));
    assert_eq!(asm.next_request(B, at(0)), None);
    asm.reject(B, 0); // not B's to reject
    assert_eq!(asm.next_request(B, at(0)), None);
    asm.reject(A, 0);
    assert_eq!(asm.next_request(B, at(0)), Some(0));
    asm.forget(A);
    assert_eq!(asm.next_request(B, at(0)), Some(1));
}

#[test]
fn a_silent_peers_piece_is_asked_elsewhere_after_the_timeout() {
    let info = random_bytes(20000, 4);
    let mut buf = [0u8; 65536];
    let mut asm = Asm::<4>::new(&mut buf, hash(&info), TIMEOUT);
    asm.set_size(20000).unwrap();
    assert_eq!(asm.next_request(A, at(0)), Some(0));
    assert_eq!(asm.next_request(A, at(3)), Some(1));
    assert_eq!(asm.next_timeout(A), None, "A's own requests are not for A");
    assert_eq!(asm.next_timeout(B), Some(at(10)));
    assert_eq!(asm.next_request(B, at(9)), None);
    assert_eq!(asm.next_request(B, at(10)), Some(0));
    assert_eq!(
        asm.next_request(A, at(12)),
        None,
        "never back to the silent peer"
    );
    assert_eq!(asm.next_request(B, at(13)), Some(1));
    // A wakes up: too late, its answers are no longer wanted.
    assert_eq!(
        asm.receive(A, 0, 20000, piece(&info, 0)),
        Ok(Received::Ignored)
    );
    assert_eq!(
        asm.receive(B, 0, 20000, piece(&info, 0)),
        Ok(Received::Stored)
    );
    let done = asm.receive(B, 1, 20000, piece(&info, 1));
    assert_eq!(done, Ok(Received::Complete(&info[..])));
}

#[test]
fn a_wrong_piece_names_every_sender_and_resets_everything() {
    let info = random_bytes(40000, 5);
    let mut bad = piece(&info, 1).to_vec();
    bad[100] ^= 1;
    let mut buf = [0u8; 65536];
    let mut asm = Asm::<4>::new(&mut buf, hash(&info), TIMEOUT);
    asm.set_size(40000).unwrap();
    assert_eq!(asm.next_request(A, at(0)), Some(0));
    assert_eq!(asm.next_request(B, at(0)), Some(1));
    assert_eq!(asm.next_request(A, at(0)), Some(2));
    assert_eq!(
        asm.receive(A, 0, 40000, piece(&info, 0)),
        Ok(Received::Stored)
    );
    assert_eq!(
        asm.receive(A, 2, 40000, piece(&info, 2)),
        Ok(Received::Stored)
    );
    let Err(ReceiveError::HashMismatch { peers }) = asm.receive(B, 1, 40000, &bad) else {
        panic!("the hash should not match");
    };
    assert_eq!(peers[..], [A, B]);
    assert_eq!(asm.size(), None);
    assert_eq!(asm.progress(), (0, 1));
    assert_eq!(asm.info(), None);
    // Start over, with A alone this time.
    asm.set_size(40000).unwrap();
    for i in 0..3 {
        assert_eq!(asm.next_request(A, at(1)), Some(i));
    }
    for i in 0..3 {
        let r = asm.receive(A, i, 40000, piece(&info, i));
        assert!(r.is_ok());
    }
    assert_eq!(asm.info(), Some(&info[..]));
}

#[test]
fn an_unknown_size_is_learnt_from_piece_0() {
    let info = random_bytes(40000, 6);
    let mut buf = [0u8; 65536];
    let mut asm = Asm::<4>::new(&mut buf, hash(&info), TIMEOUT);
    assert_eq!(asm.progress(), (0, 1));
    assert_eq!(asm.next_request(A, at(0)), Some(0));
    assert_eq!(
        asm.next_request(B, at(0)),
        None,
        "only piece 0 until the size is known"
    );
    let refused = asm.receive(A, 0, 70000, piece(&info, 0));
    let want = SizeError::LargerThanBuffer {
        size: 70000,
        buffer: 65536,
    };
    assert_eq!(refused, Err(ReceiveError::Fault(PieceFault::Size(want))));
    assert_eq!(asm.size(), None);
    assert_eq!(asm.next_request(B, at(0)), Some(0));
    assert_eq!(
        asm.receive(B, 0, 40000, piece(&info, 0)),
        Ok(Received::Stored)
    );
    assert_eq!(asm.size(), Some(40000));
    assert_eq!(asm.next_request(A, at(0)), Some(1));
}

#[derive(Debug, Clone)]
enum Op {
    Size(u32),
    Request(u32, u64),
    Receive(u32, u32, u32, usize),
    Reject(u32, u32),
    Forget(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![0u32..70000, any::<u32>()];
    prop_oneof![
        size.clone().prop_map(Op::Size),
        (0u32..3, 0u64..100).prop_map(|(p, t)| Op::Request(p, t)),
        (0u32..3, 0u32..6, size, 0usize..17000).prop_map(|(p, i, s, l)| Op::Receive(p, i, s, l)),
        (0u32..3, 0u32..6).prop_map(|(p, i)| Op::Reject(p, i)),
        (0u32..3).prop_map(Op::Forget),
    ]
}

proptest! {
    /// Any sequence of calls: no panic, and the progress never exceeds the piece count.
    #[test]
    fn any_calls_never_panic(ops in proptest::collection::vec(op(), 0..40)) {
        let data = [7u8; 17000];
        let mut buf = [0u8; 50000];
        let mut asm = Asm::<3>::new(&mut buf, InfoHash::default(), TIMEOUT);
        for op in ops {
            match op {
                Op::Size(s) => { let _ = asm.set_size(s); }
                Op::Request(p, t) => {
                    if let Some(i) = asm.next_request(p, Instant::from_millis(t * 1000)) {
                        prop_assert!(i < 3);
                    }
                }
                Op::Receive(p, i, s, l) => { let _ = asm.receive(p, i, s, &data[..l]); }
                Op::Reject(p, i) => asm.reject(p, i),
                Op::Forget(p) => asm.forget(p),
            }
            let (got, count) = asm.progress();
            prop_assert!(got <= count && count <= 3);
        }
    }
}
