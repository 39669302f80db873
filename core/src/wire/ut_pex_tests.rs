//! BEP 11 `ut_pex` codec: hand-written byte vectors, hostile payloads, round trips.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::ut_pex::*;
use super::{Message, Split, Status};
use crate::bencode::BencodeError;
use crate::BufferTooSmall;
use proptest::prelude::*;
use std::vec::Vec;

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The whole wire message for `payload` sent with extended id `ext`.
fn framed(ext: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len() + 2).unwrap();
    let mut v = len.to_be_bytes().to_vec();
    v.extend_from_slice(&[20, ext]);
    v.extend_from_slice(payload);
    v
}

fn encoded(added: &[(SocketAddr, PexFlags)], dropped: &[SocketAddr], ext: u8) -> Vec<u8> {
    let u = PexUpdate {
        added: added.iter().copied(),
        dropped: dropped.iter().copied(),
    };
    let mut out = std::vec![0u8; u.encoded_len()];
    assert_eq!(u.encode(ext, &mut out), Ok(out.len()));
    out
}

fn added_of(m: &PexMessage<'_>) -> Vec<(SocketAddr, PexFlags)> {
    m.added().collect()
}

fn dropped_of(m: &PexMessage<'_>) -> Vec<SocketAddr> {
    m.dropped().collect()
}

/// Both families, flags, a drop: every key, sorted, spelled out byte by byte.
const FULL: &[u8] = b"d\
    5:added6:\x0a\x00\x00\x01\x1a\xe1\
    7:added.f1:\x12\
    6:added618:\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe2\
    8:added6.f1:\x01\
    7:dropped6:\xc0\xa8\x01\x02\xc8\xd5\
    8:dropped60:\
    e";

#[test]
fn a_full_message_decodes_and_encodes_to_the_same_bytes() {
    let m = PexMessage::decode(FULL).unwrap();
    let seed_reachable = PexFlags(0x12);
    assert!(seed_reachable.contains(PexFlags::SEED));
    assert!(seed_reachable.contains(PexFlags::REACHABLE));
    assert!(!seed_reachable.contains(PexFlags::ENCRYPTION));
    let want = [
        (a("10.0.0.1:6881"), seed_reachable),
        (a("[2001:db8::1]:6882"), PexFlags::ENCRYPTION),
    ];
    assert_eq!(added_of(&m), want);
    assert_eq!(dropped_of(&m), [a("192.168.1.2:51413")]);
    assert_eq!((m.added_len(), m.dropped_len()), (2, 1));
    assert_eq!(
        encoded(&want, &[a("192.168.1.2:51413")], 1),
        framed(1, FULL)
    );
}

#[test]
fn an_empty_update_still_writes_every_key() {
    let bytes = b"d5:added0:7:added.f0:6:added60:8:added6.f0:7:dropped0:8:dropped60:e";
    assert_eq!(encoded(&[], &[], 3), framed(3, bytes));
    let m = PexMessage::decode(bytes).unwrap();
    assert_eq!((m.added_len(), m.dropped_len()), (0, 0));
}

#[test]
fn missing_keys_are_empty_and_unknown_ones_ignored_in_any_order() {
    let m = PexMessage::decode(b"de").unwrap();
    assert_eq!((added_of(&m), dropped_of(&m)), (Vec::new(), Vec::new()));
    // Only `dropped6`, unsorted among unknown keys.
    let bytes = b"d1:zi1e8:dropped618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x50\
        1:a0:e";
    let m = PexMessage::decode(bytes).unwrap();
    assert_eq!(added_of(&m), []);
    assert_eq!(dropped_of(&m), [a("[::1]:80")]);
    // `added` without `added.f`: no flags known.
    let m = PexMessage::decode(b"d5:added12:\x01\x02\x03\x04\x00\x01\x05\x06\x07\x08\x00\x02e")
        .unwrap();
    assert_eq!(
        added_of(&m),
        [(a("1.2.3.4:1"), PexFlags(0)), (a("5.6.7.8:2"), PexFlags(0))]
    );
}

#[test]
fn flags_shorter_or_longer_than_their_list_are_read_leniently() {
    let two = b"\x01\x02\x03\x04\x00\x01\x05\x06\x07\x08\x00\x02";
    let mut short = b"d5:added12:".to_vec();
    short.extend_from_slice(two);
    short.extend_from_slice(b"7:added.f1:\x02e");
    let m = PexMessage::decode(&short).unwrap();
    assert_eq!(
        added_of(&m),
        [
            (a("1.2.3.4:1"), PexFlags::SEED),
            (a("5.6.7.8:2"), PexFlags(0))
        ]
    );
    let mut long = b"d5:added12:".to_vec();
    long.extend_from_slice(two);
    long.extend_from_slice(b"7:added.f3:\x10\x02\xffe");
    let m = PexMessage::decode(&long).unwrap();
    assert_eq!(
        added_of(&m),
        [
            (a("1.2.3.4:1"), PexFlags::REACHABLE),
            (a("5.6.7.8:2"), PexFlags::SEED)
        ]
    );
}

#[test]
fn mapped_ipv4_is_read_and_written_as_ipv4() {
    let mut bytes = b"d6:added618:".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4, 0, 80]);
    bytes.push(b'e');
    let m = PexMessage::decode(&bytes).unwrap();
    assert_eq!(added_of(&m), [(a("1.2.3.4:80"), PexFlags(0))]);
    let mapped = SocketAddr::new(IpAddr::V6(Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped()), 80);
    let out = encoded(&[(mapped, PexFlags(0))], &[mapped], 1);
    let want = b"d5:added6:\x01\x02\x03\x04\x00\x507:added.f1:\x006:added60:8:added6.f0:\
        7:dropped6:\x01\x02\x03\x04\x00\x508:dropped60:e";
    assert_eq!(out, framed(1, want));
}

#[test]
fn hostile_payloads_are_errors_that_name_the_fault() {
    use PexError::*;
    use PexField::*;
    let cases: [(&[u8], PexError); 11] = [
        (b"d5:added5:abcdee", BadField(Added)),
        (b"d5:added7:abcdefge", BadField(Added)),
        (b"d5:addedi1ee", BadField(Added)),
        (b"d5:addedle7:added.f0:e", BadField(Added)),
        (b"d7:added.fi1ee", BadField(AddedFlags)),
        (b"d7:dropped1:xe", BadField(Dropped)),
        (b"d6:added66:abcdefe", BadField(Added6)),
        (b"d8:added6.fdee", BadField(Added6Flags)),
        (b"d8:dropped619:0123456789abcdefghie", BadField(Dropped6)),
        (b"li1ee", NotADict),
        (b"", Bencode(BencodeError::UnexpectedEof)),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            PexMessage::decode(bytes),
            Err(want),
            "{}",
            std::string::String::from_utf8_lossy(bytes)
        );
    }
    for bytes in [
        &b"dex"[..],
        b"d5:added0:",
        b"d5:added07:e",
        b"d5:addedi01ee",
    ] {
        assert!(matches!(PexMessage::decode(bytes), Err(Bencode(_))));
    }
}

#[test]
fn a_flood_decodes_lazily_and_counts_exactly() {
    // 1000 IPv4 peers: nothing is copied, the count is exact, iteration is in order.
    let mut bytes = b"d5:added6000:".to_vec();
    for i in 0..1000u32 {
        bytes.extend_from_slice(&i.to_be_bytes());
        bytes.extend_from_slice(&6881u16.to_be_bytes());
    }
    bytes.push(b'e');
    let m = PexMessage::decode(&bytes).unwrap();
    assert_eq!(m.added_len(), 1000);
    assert_eq!(m.added().count(), 1000);
    assert_eq!(m.added().nth(999).unwrap().0, a("0.0.3.231:6881"));
}

#[test]
fn short_buffers_fail_with_the_exact_size() {
    let added = [
        (a("10.0.0.1:1"), PexFlags::SEED),
        (a("[::2]:2"), PexFlags(0)),
    ];
    let dropped = [a("10.0.0.3:3"), a("[::4]:4")];
    let u = PexUpdate {
        added: added.iter().copied(),
        dropped: dropped.iter().copied(),
    };
    let n = u.encoded_len();
    for len in 0..n {
        let mut out = std::vec![0u8; len];
        assert_eq!(
            u.encode(1, &mut out),
            Err(BufferTooSmall { required: n }),
            "{len}"
        );
    }
}

fn any_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)),
    ]
}

/// What a decoder reads back: canonical addresses, IPv4 first, each family in order.
fn by_family<T: Clone>(items: &[T], addr: impl Fn(&T) -> SocketAddr) -> Vec<SocketAddr> {
    let canon = |t: &T| {
        let x = addr(t);
        SocketAddr::new(x.ip().to_canonical(), x.port())
    };
    let v4 = items.iter().map(canon).filter(|x| x.is_ipv4());
    let v6 = items.iter().map(canon).filter(|x| x.is_ipv6());
    v4.chain(v6).collect()
}

proptest! {
    #[test]
    fn round_trips_through_the_wire(
        added in proptest::collection::vec((any_addr(), any::<u8>()), 0..40),
        dropped in proptest::collection::vec(any_addr(), 0..40),
        ext in 1u8..,
        cut in 0usize..2000,
    ) {
        let added: Vec<(SocketAddr, PexFlags)> =
            added.into_iter().map(|(x, f)| (x, PexFlags(f))).collect();
        let bytes = encoded(&added, &dropped, ext);
        let (x, y) = bytes.split_at(cut.min(bytes.len()));
        let Ok(Status::Complete((Message::Extended { id, payload }, used))) =
            Message::decode(x, y, 1 << 16) else {
            return Err(TestCaseError::fail("not an extended message"));
        };
        prop_assert_eq!(id, ext);
        prop_assert_eq!(used, bytes.len());
        let mut flat = std::vec![0u8; payload.len()];
        payload.copy_to(&mut flat);
        prop_assert!(Split::contiguous(&flat) == payload);
        let m = PexMessage::decode(&flat).unwrap();
        let got: Vec<SocketAddr> = m.added().map(|(x, _)| x).collect();
        prop_assert_eq!(got, by_family(&added, |t| t.0));
        // Flags travel with their peer.
        for (x, f) in m.added() {
            let same = |t: &&(SocketAddr, PexFlags)| {
                SocketAddr::new(t.0.ip().to_canonical(), t.0.port()) == x && t.1 == f
            };
            prop_assert!(added.iter().any(|t| same(&t)));
        }
        prop_assert_eq!(dropped_of(&m), by_family(&dropped, |x| *x));
        prop_assert_eq!((m.added_len(), m.dropped_len()), (added.len(), dropped.len()));
    }

    #[test]
    fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(m) = PexMessage::decode(&bytes) {
            // What was read re-encodes into a message that reads back the same.
            let (x, d): (Vec<_>, Vec<_>) = (m.added().collect(), m.dropped().collect());
            let out = encoded(&x, &d, 1);
            let back = PexMessage::decode(&out[6..]).unwrap();
            prop_assert_eq!(added_of(&back), x);
            prop_assert_eq!(dropped_of(&back), d);
        }
    }

    #[test]
    fn dictionaries_with_noise_never_panic(
        added in proptest::collection::vec((any_addr(), any::<u8>()), 0..4),
        dropped in proptest::collection::vec(any_addr(), 0..4),
        at in 0usize..200,
        noise in any::<u8>(),
    ) {
        let added: Vec<(SocketAddr, PexFlags)> =
            added.into_iter().map(|(x, f)| (x, PexFlags(f))).collect();
        let mut bytes = encoded(&added, &dropped, 1).split_off(6);
        if let Some(b) = bytes.get_mut(at) {
            *b = noise;
        }
        if let Ok(m) = PexMessage::decode(&bytes) {
            prop_assert_eq!(m.added().count(), m.added_len());
            prop_assert_eq!(m.dropped().count(), m.dropped_len());
        }
    }
}
