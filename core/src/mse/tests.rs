//! Scenarios: both roles against each other at every split of the bytes, a responder facing a
//! hand-built initiator (PadC and an IA, as Transmission sends), and the refusals.

use super::keys;
use super::*;

const HASH: [u8; 20] = [0x11; 20];
const OTHER: [u8; 20] = [0x22; 20];

fn serves(hashes: &'static [[u8; 20]]) -> impl FnMut(&[u8; 20]) -> Option<[u8; 20]> {
    move |req2| {
        hashes
            .iter()
            .find(|h| keys::hash(&[b"req2", &h[..]]) == *req2)
            .copied()
    }
}

/// Run both sides to the end, delivering each side's bytes in pieces of at most `chunk`.
fn run(a: &mut Initiator, b: &mut Responder, chunk: usize) -> Result<(), MseError> {
    for _ in 0..10_000 {
        let out = a.transmit();
        let n = out.len().min(chunk);
        let piece: heapless::Vec<u8, 1024> = heapless::Vec::from_slice(&out[..n]).unwrap();
        a.sent(n);
        assert_eq!(b.receive(&piece, serves(&[OTHER, HASH]))?, n);
        let out = b.transmit();
        let m = out.len().min(chunk);
        let piece: heapless::Vec<u8, 1024> = heapless::Vec::from_slice(&out[..m]).unwrap();
        b.sent(m);
        assert_eq!(a.receive(&piece)?, m);
        if a.is_done() && b.is_done() && a.transmit().is_empty() && b.transmit().is_empty() {
            return Ok(());
        }
    }
    panic!("the exchange never finished");
}

fn check_streams(a: &Established, b: &Established) {
    let mut msg = *b"\x13BitTorrent protocol";
    let mut x = a.encrypt.clone();
    let mut y = b.decrypt.clone();
    x.apply(&mut msg);
    assert_ne!(&msg, b"\x13BitTorrent protocol");
    y.apply(&mut msg);
    assert_eq!(&msg, b"\x13BitTorrent protocol");
    let mut back = *b"seeding";
    b.encrypt.clone().apply(&mut back);
    a.decrypt.clone().apply(&mut back);
    assert_eq!(&back, b"seeding");
}

#[test]
fn both_roles_agree_whatever_the_read_sizes() {
    for chunk in [1, 2, 7, 20, 95, 96, 97, 500, 1024] {
        for (pad_a, pad_b) in [(0, 0), (13, 512), (512, 1)] {
            let mut a = Initiator::new(HASH, [3; 20], pad_a, Methods::RC4);
            let mut b = Responder::new([9; 20], pad_b, Methods::BOTH, false);
            run(&mut a, &mut b, chunk).unwrap();
            let (ea, eb) = (a.established().unwrap(), b.established().unwrap());
            assert_eq!((ea.method, eb.method), (Method::Rc4, Method::Rc4));
            assert_eq!(eb.info_hash, HASH);
            assert_eq!(eb.ia_len, 0);
            assert!(a.leftover().is_empty() && b.leftover().is_empty());
            check_streams(&ea, &eb);
        }
    }
}

#[test]
fn every_split_of_the_whole_initiator_side_works() {
    // All of A's bytes written at once (Ya, PadA and step 3 need Yb first, so: two rounds),
    // each delivered to B split at every position.
    let mut reference = Initiator::new(HASH, [5; 20], 40, Methods::BOTH);
    let mut b0 = Responder::new([6; 20], 30, Methods::BOTH, false);
    run(&mut reference, &mut b0, 4096).unwrap();
    let mut a0 = Initiator::new(HASH, [5; 20], 40, Methods::BOTH);
    let step1: heapless::Vec<u8, 1024> = heapless::Vec::from_slice(a0.transmit()).unwrap();
    let mut probe = Responder::new([6; 20], 30, Methods::BOTH, false);
    probe.receive(&step1, serves(&[HASH])).unwrap();
    a0.sent(step1.len());
    a0.receive(probe.transmit()).unwrap();
    let mut all: heapless::Vec<u8, 1024> = step1.clone();
    all.extend_from_slice(a0.transmit()).unwrap();
    for at in 0..=all.len() {
        let mut b = Responder::new([6; 20], 30, Methods::BOTH, false);
        let n = b.receive(&all[..at], serves(&[HASH])).unwrap();
        let m = b.receive(&all[at..], serves(&[HASH])).unwrap();
        assert_eq!(n + m, all.len(), "split at {at}");
        assert!(b.is_done(), "split at {at}");
        assert_eq!(b.established().unwrap().method, Method::Rc4);
    }
}

#[test]
fn payload_arriving_with_the_last_message_is_leftover() {
    let mut a = Initiator::new(HASH, [1; 20], 7, Methods::RC4);
    let mut b = Responder::new([2; 20], 7, Methods::RC4, false);
    let s1: heapless::Vec<u8, 1024> = heapless::Vec::from_slice(a.transmit()).unwrap();
    a.sent(s1.len());
    b.receive(&s1, serves(&[HASH])).unwrap();
    let s2: heapless::Vec<u8, 1024> = heapless::Vec::from_slice(b.transmit()).unwrap();
    b.sent(s2.len());
    a.receive(&s2).unwrap();
    let s3: heapless::Vec<u8, 1024> = heapless::Vec::from_slice(a.transmit()).unwrap();
    a.sent(s3.len());
    b.receive(&s3, serves(&[HASH])).unwrap();
    let eb = b.established().unwrap();
    // B's step 4 and its first payload bytes in one read.
    let mut s4: heapless::Vec<u8, 1024> = heapless::Vec::from_slice(b.transmit()).unwrap();
    let mut hello = *b"hello";
    eb.encrypt.clone().apply(&mut hello);
    s4.extend_from_slice(&hello).unwrap();
    assert_eq!(a.receive(&s4).unwrap(), s4.len());
    let mut left = [0u8; 5];
    left.copy_from_slice(a.leftover());
    a.established().unwrap().decrypt.apply(&mut left);
    assert_eq!(&left, b"hello");
}

#[test]
fn responder_reads_padc_and_an_initial_payload_built_from_the_spec() {
    // Step 1 and 3 written by hand, as another client would.
    let xa = [0x42u8; 20];
    let mut b = Responder::new([0x24; 20], 100, Methods::BOTH, true);
    let mut step1 = [0u8; 96 + 5];
    step1[..96].copy_from_slice(&dh::public_key(&xa));
    b.receive(&step1, serves(&[HASH])).unwrap();
    let yb: [u8; 96] = b.transmit()[..96].try_into().unwrap();
    assert_eq!(b.transmit().len(), 96 + 100);
    b.sent(196);
    let s = dh::shared_secret(&xa, &yb).unwrap();
    let mut step3: heapless::Vec<u8, 256> = heapless::Vec::new();
    step3
        .extend_from_slice(&keys::hash(&[b"req1", &s]))
        .unwrap();
    let req2 = keys::hash(&[b"req2", &HASH]);
    let req3 = keys::hash(&[b"req3", &s]);
    step3.extend_from_slice(&keys::xor(&req2, &req3)).unwrap();
    let mut enc = Rc4::mse(&keys::hash(&[b"keyA", &s, &HASH]));
    let mut tail: heapless::Vec<u8, 64> = heapless::Vec::new();
    tail.extend_from_slice(&[0; 8]).unwrap(); // VC
    tail.extend_from_slice(&[0, 0, 0, 3]).unwrap(); // plaintext or RC4
    tail.extend_from_slice(&[0, 3, 1, 2, 3]).unwrap(); // PadC of 3
    tail.extend_from_slice(&[0, 5]).unwrap(); // len(IA)
    tail.extend_from_slice(b"hello").unwrap(); // IA
    enc.apply(&mut tail);
    step3.extend_from_slice(&tail).unwrap();
    step3.extend_from_slice(b" world").unwrap(); // plaintext payload after the IA
    assert_eq!(b.receive(&step3, serves(&[HASH])).unwrap(), step3.len());
    let eb = b.established().unwrap();
    assert_eq!(
        eb.method,
        Method::Plaintext,
        "prefers plaintext when offered"
    );
    assert_eq!(eb.ia_len, 5);
    let mut left: heapless::Vec<u8, 16> = heapless::Vec::from_slice(b.leftover()).unwrap();
    eb.decrypt.clone().apply(&mut left[..5]);
    assert_eq!(&left[..], b"hello world");
    // Step 4: VC, select = plaintext, no PadD, under keyB.
    let mut step4: [u8; 14] = b.transmit().try_into().unwrap();
    Rc4::mse(&keys::hash(&[b"keyB", &s, &HASH])).apply(&mut step4);
    assert_eq!(step4, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
}

#[test]
fn an_unknown_torrent_is_refused() {
    let mut a = Initiator::new(OTHER, [3; 20], 0, Methods::RC4);
    let mut b = Responder::new([4; 20], 0, Methods::RC4, false);
    let s1: heapless::Vec<u8, 1024> = heapless::Vec::from_slice(a.transmit()).unwrap();
    b.receive(&s1, serves(&[HASH])).unwrap();
    a.receive(b.transmit()).unwrap();
    let s3: heapless::Vec<u8, 1024> = heapless::Vec::from_slice(a.transmit()).unwrap();
    assert_eq!(
        b.receive(&s3[s1.len()..], serves(&[HASH])),
        Err(MseError::UnknownTorrent)
    );
}

#[test]
fn methods_in_common_are_required() {
    let mut a = Initiator::new(HASH, [3; 20], 0, Methods::RC4);
    let plain_only = Methods {
        plaintext: true,
        rc4: false,
    };
    let mut b = Responder::new([4; 20], 0, plain_only, true);
    assert_eq!(run(&mut a, &mut b, 4096), Err(MseError::NoCommonMethod));
}

#[test]
fn a_plaintext_handshake_never_synchronises() {
    // A BitTorrent handshake and more, where Ya and PadA would be: no req1 within the bound.
    let mut b = Responder::new([4; 20], 0, Methods::BOTH, false);
    let junk = [0x13u8; 96 + 600];
    assert_eq!(b.receive(&junk, serves(&[HASH])), Err(MseError::NoSync));
    let mut a = Initiator::new(HASH, [3; 20], 0, Methods::BOTH);
    assert_eq!(a.receive(&[0x55; 96 + 600]), Err(MseError::NoSync));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Any bytes in any read sizes: neither side panics or takes more than it was given, and
    /// one that says it is done has streams to hand over.
    #[test]
    fn careless_bytes_never_panic(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1400),
        chunk in 1usize..700,
    ) {
        let mut a = Initiator::new(HASH, [1; 20], 5, Methods::BOTH);
        let mut b = Responder::new([2; 20], 5, Methods::BOTH, false);
        for piece in bytes.chunks(chunk) {
            if let Ok(n) = a.receive(piece) {
                proptest::prop_assert!(n <= piece.len());
                proptest::prop_assert_eq!(a.is_done(), a.established().is_some());
            }
            if let Ok(n) = b.receive(piece, serves(&[HASH])) {
                proptest::prop_assert!(n <= piece.len());
                proptest::prop_assert_eq!(b.is_done(), b.established().is_some());
            }
        }
    }

    /// A real exchange with one byte of each side's stream changed: each side fails or
    /// finishes, never panics.
    #[test]
    fn one_changed_byte_never_panics(at in 0usize..800, flip in 1u8..=255, chunk in 1usize..300) {
        let mut a = Initiator::new(HASH, [5; 20], 40, Methods::BOTH);
        let mut b = Responder::new([6; 20], 30, Methods::BOTH, false);
        let (mut a_sent, mut b_sent) = (0usize, 0usize);
        for _ in 0..200 {
            let mut out: heapless::Vec<u8, 1024> = heapless::Vec::from_slice(a.transmit()).unwrap();
            a.sent(out.len());
            if (a_sent..a_sent + out.len()).contains(&at) {
                out[at - a_sent] ^= flip;
            }
            a_sent += out.len();
            let mut ok = true;
            for piece in out.chunks(chunk) {
                ok &= b.receive(piece, serves(&[HASH])).is_ok();
            }
            let mut back: heapless::Vec<u8, 1024> = heapless::Vec::from_slice(b.transmit()).unwrap();
            b.sent(back.len());
            if (b_sent..b_sent + back.len()).contains(&at) {
                back[at - b_sent] ^= flip;
            }
            b_sent += back.len();
            for piece in back.chunks(chunk) {
                ok &= a.receive(piece).is_ok();
            }
            if !ok || (a.is_done() && b.is_done()) {
                break;
            }
        }
    }
}
