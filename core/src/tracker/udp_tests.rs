//! Tests of `udp.rs`.
use super::*;
use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

/// BEP 15 connect request: protocol_id 0x41727101980, action 0, transaction_id.
const CONNECT_REQUEST: [u8; 16] = [
    0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, // protocol_id
    0, 0, 0, 0, // action: connect
    0xde, 0xad, 0xbe, 0xef, // transaction_id
];

/// BEP 15 connect response.
const CONNECT_RESPONSE: [u8; 16] = [
    0, 0, 0, 0, // action: connect
    0xde, 0xad, 0xbe, 0xef, // transaction_id
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // connection_id
];

/// BEP 15 IPv4 announce request, field by field at the BEP's offsets.
fn announce_request() -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]); // 0: connection_id
    p.extend_from_slice(&[0, 0, 0, 1]); // 8: action announce
    p.extend_from_slice(&[0, 0, 0x30, 0x39]); // 12: transaction_id 12345
    p.extend_from_slice(&[0xaa; 20]); // 16: info_hash
    p.extend_from_slice(b"-TR4050-abcdefghijkl"); // 36: peer_id
    p.extend_from_slice(&100u64.to_be_bytes()); // 56: downloaded
    p.extend_from_slice(&200u64.to_be_bytes()); // 64: left
    p.extend_from_slice(&300u64.to_be_bytes()); // 72: uploaded
    p.extend_from_slice(&[0, 0, 0, 2]); // 80: event started
    p.extend_from_slice(&[0, 0, 0, 0]); // 84: IP address, default
    p.extend_from_slice(&[0x12, 0x34, 0x56, 0x78]); // 88: key
    p.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // 92: num_want -1
    p.extend_from_slice(&[0x1a, 0xe1]); // 96: port 6881
    assert_eq!(p.len(), 98);
    p
}

fn announce_request_value() -> Request<'static> {
    Request::Announce {
        connection_id: 0x0102_0304_0506_0708,
        transaction_id: 12345,
        info_hash: InfoHash([0xaa; 20]),
        peer_id: PeerId(*b"-TR4050-abcdefghijkl"),
        downloaded: 100,
        left: 200,
        uploaded: 300,
        event: AnnounceEvent::Started,
        ip: 0,
        key: 0x1234_5678,
        num_want: -1,
        port: 6881,
    }
}

fn encode_req(r: &Request<'_>) -> Vec<u8> {
    let mut out = vec![0u8; r.encoded_len()];
    assert_eq!(r.encode(&mut out), Ok(out.len()));
    out
}

fn encode_resp(r: &Response<'_>) -> Vec<u8> {
    let mut out = vec![0u8; r.encoded_len()];
    assert_eq!(r.encode(&mut out), Ok(out.len()));
    out
}

#[test]
fn connect_vectors() {
    let req = Request::Connect {
        transaction_id: 0xdead_beef,
    };
    assert_eq!(Request::decode(&CONNECT_REQUEST), Ok(req));
    assert_eq!(encode_req(&req), CONNECT_REQUEST);
    let resp = Response::Connect {
        transaction_id: 0xdead_beef,
        connection_id: 0x0102_0304_0506_0708,
    };
    assert_eq!(Response::decode(&CONNECT_RESPONSE), Ok(resp));
    assert_eq!(encode_resp(&resp), CONNECT_RESPONSE);
    // "Do not expect packets to be exactly of a certain size": extra bytes are ignored.
    let mut longer = CONNECT_RESPONSE.to_vec();
    longer.push(0x0a);
    assert_eq!(Response::decode(&longer), Ok(resp));
    let mut longer = CONNECT_REQUEST.to_vec();
    longer.extend_from_slice(&[1, 2, 3]);
    assert_eq!(Request::decode(&longer), Ok(req));
}

#[test]
fn connect_needs_the_magic() {
    let mut p = CONNECT_REQUEST;
    p[7] ^= 1;
    assert_eq!(Request::decode(&p), Err(TrackerError::BadPacket));
}

#[test]
fn announce_request_vector() {
    let p = announce_request();
    assert_eq!(Request::decode(&p), Ok(announce_request_value()));
    assert_eq!(encode_req(&announce_request_value()), p);
}

#[test]
fn announce_request_with_bep41_options() {
    // BEP 41: URLData option (type 2, length, bytes), then EndOfOptions (type 0).
    let mut p = announce_request();
    p.extend_from_slice(&[0x2, 0x0c]);
    p.extend_from_slice(b"/announce?a=");
    p.push(0x0);
    assert_eq!(Request::decode(&p), Ok(announce_request_value()));
    // Anything at all after the 98 bytes is ignored.
    p.extend_from_slice(&[0xff; 7]);
    assert_eq!(Request::decode(&p), Ok(announce_request_value()));
}

#[test]
fn announce_request_bad_event() {
    let mut p = announce_request();
    p[83] = 4;
    assert_eq!(Request::decode(&p), Err(TrackerError::BadField("event")));
}

#[test]
fn fixed_size_packets_truncated_anywhere_are_errors() {
    let announce = announce_request();
    for cut in 0..announce.len() {
        assert_eq!(
            Request::decode(&announce[..cut]),
            Err(TrackerError::BadPacket),
            "announce cut at {cut}"
        );
    }
    for cut in 0..CONNECT_LEN {
        assert_eq!(
            Request::decode(&CONNECT_REQUEST[..cut]),
            Err(TrackerError::BadPacket)
        );
        assert_eq!(
            Response::decode(&CONNECT_RESPONSE[..cut]),
            Err(TrackerError::BadPacket)
        );
    }
}

#[test]
fn announce_response_v4_and_v6() {
    let mut p = vec![0, 0, 0, 1, 0, 0, 0x30, 0x39];
    p.extend_from_slice(&1800u32.to_be_bytes()); // interval
    p.extend_from_slice(&5u32.to_be_bytes()); // leechers
    p.extend_from_slice(&7u32.to_be_bytes()); // seeders
    let header = p.clone();
    p.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0xc8, 0xd5]);
    let Ok(Response::Announce {
        transaction_id,
        interval,
        leechers,
        seeders,
        peers,
    }) = Response::decode(&p)
    else {
        panic!("not an announce response");
    };
    assert_eq!(
        (transaction_id, interval, leechers, seeders),
        (12345, 1800, 5, 7)
    );
    let v4: Vec<SocketAddr> = compact_peers(peers, false).collect();
    assert_eq!(
        v4,
        [
            "10.0.0.1:6881".parse().unwrap(),
            "10.0.0.2:51413".parse().unwrap()
        ]
    );

    // The same response over IPv6: 18 bytes per peer (BEP 15 "IPv6" section).
    let mut p6 = header.clone();
    let addr: SocketAddr = "[2001:db8::1]:6881".parse().unwrap();
    let mut written = vec![0u8; 38];
    let n = write_announce_response(
        &mut written,
        12345,
        1800,
        5,
        7,
        true,
        ["10.0.0.1:6881".parse().unwrap(), addr],
    )
    .unwrap();
    written.truncate(n);
    p6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p6.extend_from_slice(&[0x1a, 0xe1]);
    assert_eq!(written, p6);
    let Ok(Response::Announce { peers, .. }) = Response::decode(&p6) else {
        panic!("not an announce response");
    };
    assert_eq!(compact_peers(peers, true).collect::<Vec<_>>(), [addr]);

    // And the IPv4 writer picks only the IPv4 peers (mapped ones included).
    let mut written = vec![0u8; 64];
    let n = write_announce_response(
        &mut written,
        12345,
        1800,
        5,
        7,
        false,
        [
            "10.0.0.1:6881".parse().unwrap(),
            addr,
            "[::ffff:10.0.0.2]:51413".parse().unwrap(),
        ],
    )
    .unwrap();
    assert_eq!(&written[..n], &p[..]);
}

#[test]
fn variable_packets_truncated_anywhere() {
    let mut announce = vec![0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 60, 0, 0, 0, 1, 0, 0, 0, 2];
    announce.extend_from_slice(&[1, 2, 3, 4, 0, 80, 5, 6, 7, 8, 0, 81]);
    for cut in 0..=announce.len() {
        match Response::decode(&announce[..cut]) {
            Ok(Response::Announce { peers, .. }) => {
                assert!(cut >= 20 && (cut - 20) % 6 == 0, "cut {cut}");
                assert_eq!(peers, &announce[20..cut]);
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => {
                assert_eq!(e, TrackerError::BadPacket);
                assert!(cut < 20 || (cut - 20) % 6 != 0, "cut {cut}");
            }
        }
    }
    let mut scrape = vec![0, 0, 0, 2, 0, 0, 0, 9];
    scrape.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]);
    scrape.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6]);
    for cut in 0..=scrape.len() {
        match Response::decode(&scrape[..cut]) {
            Ok(Response::Scrape { stats, .. }) => {
                assert!(cut >= 8 && (cut - 8) % 12 == 0, "cut {cut}");
                assert_eq!(stats, &scrape[8..cut]);
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => assert_eq!(e, TrackerError::BadPacket),
        }
    }
    let mut req = vec![1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 2, 0, 0, 0, 9];
    req.extend_from_slice(&[0x11; 40]);
    for cut in 0..=req.len() {
        let ok = cut > 16 && (cut - 16) % 20 == 0;
        assert_eq!(Request::decode(&req[..cut]).is_ok(), ok, "cut {cut}");
    }
}

#[test]
fn scrape_vectors() {
    let hashes = [[0x11u8; 20], [0x22; 20]].concat();
    let req = Request::Scrape {
        connection_id: 42,
        transaction_id: 7,
        info_hashes: &hashes,
    };
    let p = encode_req(&req);
    assert_eq!(&p[..16], &[0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 2, 0, 0, 0, 7]);
    assert_eq!(Request::decode(&p), Ok(req));

    let stats = [
        ScrapeStats {
            seeders: 11,
            completed: 13772,
            leechers: 19,
        },
        ScrapeStats {
            seeders: 21,
            completed: 206,
            leechers: 20,
        },
    ];
    let mut out = [0u8; 32];
    let n = write_scrape_response(&mut out, 7, stats).unwrap();
    assert_eq!(n, 32);
    assert_eq!(&out[..12], &[0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 11]);
    let Ok(Response::Scrape {
        transaction_id: 7,
        stats: raw,
    }) = Response::decode(&out)
    else {
        panic!("not a scrape response");
    };
    assert_eq!(scrape_stats(raw).collect::<Vec<_>>(), stats);
}

#[test]
fn error_vector() {
    let mut p = vec![0, 0, 0, 3, 0, 0, 0, 5];
    p.extend_from_slice(b"torrent not registered");
    let resp = Response::Error {
        transaction_id: 5,
        message: b"torrent not registered",
    };
    assert_eq!(Response::decode(&p), Ok(resp));
    assert_eq!(encode_resp(&resp), p);
    assert_eq!(
        Response::decode(&[0, 0, 0, 3, 0, 0, 0, 5]),
        Ok(Response::Error {
            transaction_id: 5,
            message: b""
        })
    );
}

#[test]
fn unknown_actions() {
    // A client cannot send an error; a tracker cannot send action 4.
    let mut p = CONNECT_REQUEST;
    p[11] = 3;
    assert_eq!(Request::decode(&p), Err(TrackerError::BadPacket));
    assert_eq!(
        Response::decode(&[0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(TrackerError::BadPacket)
    );
    assert_eq!(
        Response::decode(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
        Err(TrackerError::BadPacket)
    );
}

#[test]
fn buffer_too_small_reports_exact_size() {
    let r = announce_request_value();
    for len in 0..ANNOUNCE_REQUEST_LEN {
        let mut out = vec![0u8; len];
        assert_eq!(r.encode(&mut out), Err(BufferTooSmall { required: 98 }));
    }
}

fn arb_request() -> impl Strategy<Value = Request<'static>> {
    let event = prop_oneof![
        Just(AnnounceEvent::None),
        Just(AnnounceEvent::Started),
        Just(AnnounceEvent::Completed),
        Just(AnnounceEvent::Stopped),
    ];
    prop_oneof![
        any::<u32>().prop_map(|transaction_id| Request::Connect { transaction_id }),
        (
            (
                any::<u64>(),
                any::<u32>(),
                any::<[u8; 20]>(),
                any::<[u8; 20]>()
            ),
            (any::<u64>(), any::<u64>(), any::<u64>(), event),
            (any::<u32>(), any::<u32>(), any::<i32>(), any::<u16>()),
        )
            .prop_map(
                |((cid, tid, ih, pid), (down, left, up, event), (ip, key, nw, port))| {
                    Request::Announce {
                        connection_id: cid,
                        transaction_id: tid,
                        info_hash: InfoHash(ih),
                        peer_id: PeerId(pid),
                        downloaded: down,
                        left,
                        uploaded: up,
                        event,
                        ip,
                        key,
                        num_want: nw,
                        port,
                    }
                }
            ),
        (
            any::<u64>(),
            any::<u32>(),
            proptest::collection::vec(any::<[u8; 20]>(), 1..8)
        )
            .prop_map(|(cid, tid, hashes)| Request::Scrape {
                connection_id: cid,
                transaction_id: tid,
                info_hashes: std::boxed::Box::leak(hashes.concat().into_boxed_slice()),
            }),
    ]
}

fn arb_response() -> impl Strategy<Value = Response<'static>> {
    let leak = |v: Vec<u8>| -> &'static [u8] { std::boxed::Box::leak(v.into_boxed_slice()) };
    prop_oneof![
        (any::<u32>(), any::<u64>()).prop_map(|(t, c)| Response::Connect {
            transaction_id: t,
            connection_id: c
        }),
        (
            any::<[u32; 4]>(),
            proptest::collection::vec(any::<[u8; 6]>(), 0..10)
        )
            .prop_map(move |([t, i, l, s], peers)| Response::Announce {
                transaction_id: t,
                interval: i,
                leechers: l,
                seeders: s,
                peers: leak(peers.concat()),
            }),
        (
            any::<u32>(),
            proptest::collection::vec(any::<[u8; 12]>(), 0..10)
        )
            .prop_map(move |(t, stats)| Response::Scrape {
                transaction_id: t,
                stats: leak(stats.concat()),
            }),
        (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(move |(t, m)| {
            Response::Error {
                transaction_id: t,
                message: leak(m),
            }
        }),
    ]
}

proptest! {
    #[test]
    fn request_round_trip(r in arb_request()) {
        let p = encode_req(&r);
        prop_assert_eq!(Request::decode(&p), Ok(r));
    }

    #[test]
    fn response_round_trip(r in arb_response()) {
        let p = encode_resp(&r);
        prop_assert_eq!(Response::decode(&p), Ok(r));
    }

    #[test]
    fn valid_headers_with_any_body(action in 0u32..5, tail in proptest::collection::vec(any::<u8>(), 0..60)) {
        let mut p = action.to_be_bytes().to_vec();
        p.extend_from_slice(&tail);
        if let Ok(r) = Response::decode(&p) {
            let again = encode_resp(&r);
            prop_assert_eq!(&p[..again.len()], &again[..]);
        }
        let mut q = PROTOCOL_ID.to_be_bytes().to_vec();
        q.extend_from_slice(&action.to_be_bytes());
        q.extend_from_slice(&tail);
        if let Ok(r) = Request::decode(&q) {
            let again = encode_req(&r);
            prop_assert_eq!(&q[..again.len()], &again[..]);
        }
    }

    #[test]
    fn any_bytes_decode_without_panic_and_re_encode(p in proptest::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(r) = Request::decode(&p) {
            let again = encode_req(&r);
            // What was read is exactly the front of the packet (options are dropped).
            prop_assert_eq!(&p[..again.len()], &again[..]);
        }
        if let Ok(r) = Response::decode(&p) {
            let again = encode_resp(&r);
            prop_assert_eq!(&p[..again.len()], &again[..]);
            // Only a connect response may carry ignored extra bytes.
            if !matches!(r, Response::Connect { .. }) {
                prop_assert_eq!(again.len(), p.len());
            }
        }
    }
}

/// Throughput of announce `Request::decode`; the tracker needs > 200k/s per core.
/// Run with `cargo test --release -p enjambre-core --lib tracker::udp -- --ignored`.
#[test]
#[ignore]
fn decode_throughput() {
    let p = announce_request();
    let n = 10_000_000u32;
    let start = std::time::Instant::now();
    let mut ports = 0u64;
    for _ in 0..n {
        if let Ok(Request::Announce { port, .. }) = Request::decode(core::hint::black_box(&p)) {
            ports += u64::from(port);
        }
    }
    let per_s = f64::from(n) / start.elapsed().as_secs_f64();
    std::println!("udp announce decode: {per_s:.0}/s ({ports})");
    assert!(per_s > 200_000.0);
}
