//! Scenarios of the tracker client: a UDP tracker that answers late or not at all, HTTP
//! responses cut at every byte, and BEP 12 orders.

use std::boxed::Box;
use std::string::String;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::tracker::udp::{Request, Response};
use crate::tracker::AnnounceEvent;
use crate::{Duration, InfoHash, Instant, PeerId};

fn at(s: u64) -> Instant {
    Instant::from_millis(s * 1000)
}

fn request() -> UdpAnnounce {
    UdpAnnounce {
        info_hash: InfoHash([1; 20]),
        peer_id: PeerId([2; 20]),
        downloaded: 10,
        left: 20,
        uploaded: 30,
        event: AnnounceEvent::Started,
        key: 7,
        num_want: 50,
        port: 6881,
    }
}

/// What the tracker would read from our next datagram.
fn sent(t: &mut UdpTracker, now: Instant) -> Option<Request<'static>> {
    let mut out = [0u8; MAX_REQUEST];
    let len = t.poll_transmit(now, &mut out)?;
    let owned: &'static mut [u8] = Box::leak(out[..len].to_vec().into_boxed_slice());
    Some(Request::decode(owned).expect("we send valid BEP 15"))
}

fn reply(r: Response<'_>) -> Vec<u8> {
    let mut out = vec![0u8; 512];
    let len = r.encode(&mut out).unwrap();
    out.truncate(len);
    out
}

#[test]
fn udp_connects_then_announces_and_reuses_the_id_for_a_minute() {
    let mut t = UdpTracker::new(Retransmit::BEP15, 1);
    t.announce(at(0), request());
    let Some(Request::Connect { transaction_id }) = sent(&mut t, at(0)) else {
        panic!("connect first")
    };
    assert_eq!(sent(&mut t, at(0)), None, "sent once");
    let connected = reply(Response::Connect {
        transaction_id,
        connection_id: 0xABCD,
    });
    assert_eq!(t.handle_datagram(at(1), &connected), None);
    let Some(Request::Announce {
        connection_id: 0xABCD,
        transaction_id,
        port: 6881,
        left: 20,
        ..
    }) = sent(&mut t, at(1))
    else {
        panic!("then the announce with the id")
    };
    let peers = [127, 0, 0, 1, 0x1A, 0xE1];
    let answer = reply(Response::Announce {
        transaction_id,
        interval: 900,
        leechers: 3,
        seeders: 4,
        peers: &peers,
    });
    assert_eq!(
        t.handle_datagram(at(2), &answer),
        Some(UdpOutcome::Announced {
            interval: 900,
            leechers: 3,
            seeders: 4,
            peers: &peers
        })
    );
    assert!(!t.is_busy());
    // 59 s after the id came: announce straight away. 61 s after: connect again.
    t.announce(at(60), request());
    assert!(matches!(
        sent(&mut t, at(60)),
        Some(Request::Announce {
            connection_id: 0xABCD,
            ..
        })
    ));
    t.cancel();
    t.announce(at(62), request());
    assert!(matches!(
        sent(&mut t, at(62)),
        Some(Request::Connect { .. })
    ));
}

#[test]
fn udp_retransmits_on_the_bep15_schedule_then_gives_up() {
    let schedule = Retransmit {
        base: Duration::from_secs(15),
        max_n: 3,
    };
    let mut t = UdpTracker::new(schedule, 2);
    t.announce(at(0), request());
    let mut now = at(0);
    let mut ids = Vec::new();
    let mut sends = Vec::new();
    loop {
        if let Some(Request::Connect { transaction_id }) = sent(&mut t, now) {
            ids.push(transaction_id);
            sends.push(now.as_millis() / 1000);
        }
        let deadline = t.poll_timeout().expect("busy");
        assert_eq!(
            t.handle_timeout(Instant::from_millis(deadline.as_millis() - 1)),
            None
        );
        now = deadline;
        if let Some(outcome) = t.handle_timeout(now) {
            assert_eq!(outcome, UdpOutcome::GaveUp);
            break;
        }
    }
    assert_eq!(sends, [0, 15, 45, 105], "waits of 15, 30, 60 and 120 s");
    assert_eq!(now, at(225));
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "a new transaction id each time");
    assert!(!t.is_busy());
}

#[test]
fn udp_ignores_stray_datagrams_and_reports_a_refusal() {
    let mut t = UdpTracker::new(Retransmit::BEP15, 3);
    t.announce(at(0), request());
    let Some(Request::Connect { transaction_id }) = sent(&mut t, at(0)) else {
        panic!()
    };
    let stray = [
        reply(Response::Connect {
            transaction_id: transaction_id ^ 1,
            connection_id: 9,
        }),
        reply(Response::Announce {
            transaction_id,
            interval: 1,
            leechers: 0,
            seeders: 0,
            peers: &[],
        }),
        b"\x00\x00\x00\x00garbage".to_vec(),
        Vec::new(),
    ];
    for d in &stray {
        assert_eq!(t.handle_datagram(at(1), d), None, "{d:?}");
    }
    assert!(t.is_busy());
    let refusal = reply(Response::Error {
        transaction_id,
        message: b"go away",
    });
    assert_eq!(
        t.handle_datagram(at(1), &refusal),
        Some(UdpOutcome::Refused(b"go away"))
    );
    assert!(!t.is_busy());
}

#[test]
fn udp_connects_again_when_the_id_expires_during_retransmissions() {
    let mut t = UdpTracker::new(Retransmit::BEP15, 4);
    t.announce(at(0), request());
    let Some(Request::Connect { transaction_id }) = sent(&mut t, at(0)) else {
        panic!()
    };
    let ok = reply(Response::Connect {
        transaction_id,
        connection_id: 5,
    });
    t.handle_datagram(at(0), &ok);
    assert!(matches!(
        sent(&mut t, at(0)),
        Some(Request::Announce { .. })
    ));
    // No answer for 15 s, then 30 s more: the second retransmission is past the minute.
    t.handle_timeout(at(15));
    assert!(matches!(
        sent(&mut t, at(15)),
        Some(Request::Announce { .. })
    ));
    t.handle_timeout(at(45));
    assert!(matches!(
        sent(&mut t, at(45)),
        Some(Request::Announce { .. })
    ));
    t.handle_timeout(at(105));
    assert!(matches!(
        sent(&mut t, at(105)),
        Some(Request::Connect { .. })
    ));
}

#[test]
fn urls_of_every_scheme_parse_and_bad_ones_are_refused() {
    let u = TrackerUrl::parse("HTTP://tracker.example:8080/announce?x=1").unwrap();
    assert_eq!(
        (u.scheme, u.host, u.port, u.path),
        (Scheme::Http, "tracker.example", 8080, "/announce?x=1")
    );
    let u = TrackerUrl::parse("https://t.example/a").unwrap();
    assert_eq!((u.scheme, u.port), (Scheme::Https, 443));
    let u = TrackerUrl::parse("udp://[::1]:6969/announce").unwrap();
    assert_eq!((u.scheme, u.host, u.port), (Scheme::Udp, "::1", 6969));
    let u = TrackerUrl::parse("http://10.0.0.1?info").unwrap();
    assert_eq!((u.port, u.path), (80, "?info"));
    for bad in [
        "ftp://x/",
        "http://",
        "http://user@host/",
        "udp://host/announce",
        "http://host:99999/",
        "http://host/a b",
        "http://[::1/",
        "http://a:b:c/",
        "notaurl",
    ] {
        assert!(TrackerUrl::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_get_request_names_the_host_and_appends_the_query() {
    let mut out = [0u8; 256];
    let url = TrackerUrl::parse("http://[::1]:6969/announce?passkey=a").unwrap();
    let len = write_get(&mut out, &url, b"info_hash=%01", "enjambre/0").unwrap();
    assert_eq!(
        core::str::from_utf8(&out[..len]).unwrap(),
        "GET /announce?passkey=a&info_hash=%01 HTTP/1.1\r\nHost: [::1]:6969\r\n\
         User-Agent: enjambre/0\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    );
    let mut small = [0u8; 20];
    let whole = write_get(&mut out, &url, b"q", "ua").unwrap();
    assert_eq!(
        write_get(&mut small, &url, b"q", "ua"),
        Err(crate::BufferTooSmall { required: whole })
    );
}

/// Feed `response` cut at every position: incomplete until the end, then the same body.
fn read_at_every_cut(response: &[u8], eof_needed: bool) -> (u16, Vec<u8>) {
    for cut in 0..response.len() {
        let mut buf = response[..cut].to_vec();
        assert_eq!(read_response(&mut buf, false), Ok(None), "cut at {cut}");
    }
    let mut buf = response.to_vec();
    let reply = match read_response(&mut buf, false).unwrap() {
        Some(r) => {
            assert!(!eof_needed);
            r
        }
        None => {
            assert!(eof_needed);
            read_response(&mut buf, true).unwrap().unwrap()
        }
    };
    (reply.status, buf[reply.body].to_vec())
}

#[test]
fn responses_are_framed_by_length_by_chunks_or_by_close() {
    let by_length = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nd1:ae";
    assert_eq!(
        read_at_every_cut(by_length, false),
        (200, b"d1:ae".to_vec())
    );
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3;ext=1\r\nd1:\r\n2\r\nae\r\n0\r\nX-Trailer: 1\r\n\r\n";
    assert_eq!(read_at_every_cut(chunked, false), (200, b"d1:ae".to_vec()));
    let by_close = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
    assert_eq!(read_at_every_cut(by_close, true), (404, b"nope".to_vec()));
}

#[test]
fn bad_or_cut_responses_are_errors() {
    for (bytes, eof, error) in [
        (&b"SSH-2.0-OpenSSH\r\n\r\n"[..], false, HttpError::BadHead),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            false,
            HttpError::BadFraming,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            false,
            HttpError::BadFraming,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
            true,
            HttpError::Truncated,
        ),
        (b"HTTP/1.1 200", true, HttpError::Truncated),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            false,
            HttpError::BadFraming,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
            false,
            HttpError::BadFraming,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            true,
            HttpError::Truncated,
        ),
    ] {
        let mut buf = bytes.to_vec();
        assert_eq!(
            read_response(&mut buf, eof),
            Err(error),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn tiers_keep_their_order_shuffle_inside_and_promote_who_answered() {
    let list = [
        (1, "c"),
        (0, "a1"),
        (0, "a2"),
        (0, "a3"),
        (1, "c"),
        (2, "d"),
    ];
    let mut shuffles = std::collections::HashSet::new();
    for seed in 0..40 {
        let t = Tiers::<8>::new(list, &mut Rng::new(seed)).unwrap();
        let order: Vec<u16> = t.order().collect();
        assert_eq!(order.len(), 5, "the duplicate is dropped");
        let mut first: Vec<u16> = order[..3].to_vec();
        first.sort_unstable();
        assert_eq!(first, [1, 2, 3], "tier 0 first");
        assert_eq!(&order[3..], [0, 5], "then tiers 1 and 2");
        shuffles.insert(order[..3].to_vec());
    }
    assert_eq!(shuffles.len(), 6, "every order of tier 0 happens");
    let mut t = Tiers::<8>::new(list, &mut Rng::new(9)).unwrap();
    let last_of_tier0 = t.order().nth(2).unwrap();
    t.promote(last_of_tier0);
    let order: Vec<u16> = t.order().collect();
    assert_eq!(order[0], last_of_tier0);
    assert_eq!(&order[3..], [0, 5], "other tiers untouched");
    assert_eq!(
        Tiers::<2>::new(list, &mut Rng::new(1)),
        Err(TooManyTrackers)
    );
}
