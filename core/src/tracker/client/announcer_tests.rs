//! Scenarios of the announcer: rounds over tiers where trackers fail, refuse the self-report,
//! answer over HTTP or UDP, or all give up; played as transcripts of what the announcer asks
//! for and what the shell reports back.

use std::string::String;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::tracker::udp::{Request, Response};
use crate::tracker::{
    write_announce_response, write_failure, AnnounceEvent, AnnounceReply, AnnounceResponse,
    ReplyPeer, TrackerError,
};
use crate::{Duration, InfoHash, Instant, PeerId};

const ME: Identity = Identity {
    info_hash: InfoHash([0x12; 20]),
    peer_id: PeerId(*b"-EJ0100-abcdefghijkl"),
    port: 6881,
    key: 7,
    numwant: NUMWANT,
};

const STARTED: Announce = Announce {
    event: AnnounceEvent::Started,
    uploaded: 1,
    downloaded: 2,
    left: 3,
};

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// An announcer over `(tier, url)` pairs, with a fixed seed.
fn announcer(list: &[(u16, &str)]) -> Announcer<8> {
    let tiers = Tiers::new(list.iter().copied(), &mut Rng::new(5)).unwrap();
    Announcer::new(ME, tiers, Retransmit::BEP15, 9)
}

fn urls(list: &[(u16, &'static str)]) -> Vec<&'static str> {
    list.iter().map(|&(_, u)| u).collect()
}

/// What the announcer asks for, owned so the transcript can keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Asked {
    Http { url: String, query: String },
    Udp { url: String },
    GaveUp,
}

fn poll(a: &mut Announcer<8>, urls: &[&str], bitfield: Option<&[u8]>) -> Option<Asked> {
    let mut out = vec![0u8; MAX_QUERY + 512];
    Some(match a.poll(at(0), urls, bitfield, &mut out)? {
        Action::Http {
            tracker,
            query,
            self_report,
            ..
        } => {
            let query = String::from_utf8(query.to_vec()).unwrap();
            assert_eq!(self_report, query.contains("&bitfield="));
            Asked::Http {
                url: String::from(urls[usize::from(tracker)]),
                query,
            }
        }
        Action::Udp { tracker, .. } => Asked::Udp {
            url: String::from(urls[usize::from(tracker)]),
        },
        Action::GaveUp => Asked::GaveUp,
    })
}

fn asked_url(asked: &Option<Asked>) -> &str {
    match asked {
        Some(Asked::Http { url, .. } | Asked::Udp { url }) => url,
        other => panic!("expected a tracker to ask, got {other:?}"),
    }
}

fn body(interval: u32, peers: &[ReplyPeer]) -> Vec<u8> {
    let reply = AnnounceReply {
        interval,
        min_interval: Some(60),
        complete: 4,
        incomplete: 7,
        warning: None,
        compact: true,
        peers,
    };
    let mut out = vec![0u8; 512];
    let n = write_announce_response(&mut out, &reply).unwrap();
    out.truncate(n);
    out
}

fn peer(addr: &str) -> ReplyPeer {
    ReplyPeer {
        addr: addr.parse().unwrap(),
        peer_id: None,
    }
}

#[test]
fn the_first_tier_fails_the_second_answers_and_is_tried_first_within_its_tier() {
    let list = [
        (0, "http://a.example/announce"),
        (1, "http://b.example/announce"),
        (1, "http://c.example/announce"),
    ];
    let urls = urls(&list);
    let mut a = announcer(&list);
    a.start(STARTED);
    let first = poll(&mut a, &urls, None);
    assert_eq!(asked_url(&first), "http://a.example/announce");
    let Some(Asked::Http { query, .. }) = &first else {
        panic!()
    };
    for part in [
        "info_hash=%12%12",
        "peer_id=-EJ0100-abcdefghijkl",
        "port=6881",
        "uploaded=1",
        "downloaded=2",
        "left=3",
        "event=started",
        "numwant=80",
        "key=00000007",
    ] {
        assert!(query.contains(part), "{part} missing from {query}");
    }
    assert_eq!(poll(&mut a, &urls, None), None, "a's answer is awaited");
    assert_eq!(
        a.handle_failure(Failure::Unreachable),
        Some(Step::Failed {
            tracker: 0,
            failure: Failure::Unreachable,
            reason: None
        })
    );

    let second = poll(&mut a, &urls, None);
    let second_url = String::from(asked_url(&second));
    assert_ne!(second_url, "http://a.example/announce");
    let answer = body(900, &[peer("10.0.0.1:6881"), peer("[2001:db8::1]:51413")]);
    let Some(Step::Answered(got)) = a.handle_http(200, &answer) else {
        panic!("answered")
    };
    assert_eq!(urls[usize::from(got.tracker)], second_url);
    assert_eq!(got.interval, Duration::from_secs(900));
    assert_eq!(got.min_interval, Some(Duration::from_secs(60)));
    assert_eq!((got.seeders, got.leechers), (Some(4), Some(7)));
    let peers: Vec<_> = got.peers().collect();
    assert_eq!(
        peers,
        [
            "10.0.0.1:6881".parse().unwrap(),
            "[2001:db8::1]:51413".parse().unwrap()
        ]
    );
    assert!(!a.is_busy(), "the round is over");
    assert_eq!(poll(&mut a, &urls, None), None);

    // Next round: tier 0 still first (BEP 12), then the tracker that answered.
    let order: Vec<&str> = a.order().map(|i| urls[usize::from(i)]).collect();
    assert_eq!(order[0], "http://a.example/announce");
    assert_eq!(order[1], second_url);
    a.start(STARTED);
    assert_eq!(a.failures().count(), 0, "a new round forgets the last one");
    assert_eq!(
        asked_url(&poll(&mut a, &urls, None)),
        "http://a.example/announce"
    );
}

#[test]
fn a_tracker_refusing_the_self_report_is_asked_again_without_it_and_never_offered_it_again() {
    let list = [(0, "http://small.example/a"), (1, "http://big.example/a")];
    let urls = urls(&list);
    let mut a = announcer(&list);
    let bits = [0b1010_0000u8];
    a.start(STARTED);
    let Some(Asked::Http { url, query }) = poll(&mut a, &urls, Some(&bits)) else {
        panic!()
    };
    assert_eq!(url, "http://small.example/a");
    assert!(query.ends_with("&bitfield=oA"), "{query}");
    assert_eq!(a.handle_http(431, b""), Some(Step::Again));
    let Some(Asked::Http { url, query }) = poll(&mut a, &urls, Some(&bits)) else {
        panic!()
    };
    assert_eq!(url, "http://small.example/a", "the same tracker, at once");
    assert!(!query.contains("bitfield="), "{query}");
    assert!(matches!(
        a.handle_http(200, &body(60, &[])),
        Some(Step::Answered(_))
    ));

    // 414 to a request without the self-report is a plain failure.
    a.start(STARTED);
    let Some(Asked::Http { query, .. }) = poll(&mut a, &urls, Some(&bits)) else {
        panic!()
    };
    assert!(!query.contains("bitfield="), "not offered again: {query}");
    assert_eq!(
        a.handle_http(414, b""),
        Some(Step::Failed {
            tracker: 0,
            failure: Failure::Status(414),
            reason: None
        })
    );
    // Other trackers still get it.
    let Some(Asked::Http { url, query }) = poll(&mut a, &urls, Some(&bits)) else {
        panic!()
    };
    assert_eq!(url, "http://big.example/a");
    assert!(query.contains("&bitfield=oA"), "{query}");
}

#[test]
fn a_self_report_longer_than_a_tracker_head_or_the_buffer_is_left_out() {
    let list = [(0, "http://t.example/a")];
    let urls = urls(&list);
    let mut a = announcer(&list);
    let mut out = vec![0u8; MAX_QUERY + 512];
    // 35 000 pieces still fit; 140 000 pieces (17 500 bytes, 23 KB of base64) do not.
    a.start(STARTED);
    let Some(Action::Http {
        query, self_report, ..
    }) = a.poll(at(0), &urls, Some(&[0xff; 4375]), &mut out)
    else {
        panic!()
    };
    assert!(self_report && query.len() <= MAX_QUERY, "{}", query.len());
    a.handle_failure(Failure::TimedOut);
    assert_eq!(a.poll(at(0), &urls, None, &mut out), Some(Action::GaveUp));

    a.start(STARTED);
    let Some(Action::Http {
        query, self_report, ..
    }) = a.poll(at(0), &urls, Some(&[0xff; 17_500]), &mut out)
    else {
        panic!()
    };
    let query = core::str::from_utf8(query).unwrap();
    assert!(!self_report && !query.contains("bitfield="), "{query}");
    assert!(query.contains("info_hash=") && query.contains("left=3"));
    a.handle_failure(Failure::TimedOut);
    let _ = a.poll(at(0), &urls, None, &mut out);

    // A board's small buffer: the report is left out when it does not fit...
    let mut small = [0u8; 200];
    a.start(STARTED);
    let Some(Action::Http { self_report, .. }) =
        a.poll(at(0), &urls, Some(&[0xff; 64]), &mut small)
    else {
        panic!()
    };
    assert!(!self_report);
    a.handle_failure(Failure::TimedOut);
    let _ = a.poll(at(0), &urls, None, &mut small);

    // ...and a buffer too small for any announce fails that tracker, not the caller.
    let mut tiny = [0u8; 16];
    a.start(STARTED);
    assert_eq!(a.poll(at(0), &urls, None, &mut tiny), Some(Action::GaveUp));
    assert_eq!(
        a.failures().collect::<Vec<_>>(),
        [(0, Failure::RequestTooLong)]
    );
}

#[test]
fn when_every_tracker_fails_the_round_gives_up_listing_each_error_once() {
    let list = [
        (0, "http://refusing.example/a"),
        (1, "gopher://old.example/a"),
        (2, "https://secure.example/a"),
        (3, "http://garbage.example/a"),
        (4, "udp://silent.example:6969"),
        (5, "http://busy.example/a"),
    ];
    let urls = urls(&list);
    let mut a = announcer(&list);
    a.start(STARTED);

    assert_eq!(
        asked_url(&poll(&mut a, &urls, None)),
        "http://refusing.example/a"
    );
    let mut refusal = vec![0u8; 128];
    let n = write_failure(&mut refusal, "unregistered torrent").unwrap();
    assert_eq!(
        a.handle_http(200, &refusal[..n]),
        Some(Step::Failed {
            tracker: 0,
            failure: Failure::Refused,
            reason: Some("unregistered torrent")
        })
    );
    // The unreadable URL is passed over without asking the shell.
    let Some(Asked::Http { url, .. }) = poll(&mut a, &urls, None) else {
        panic!()
    };
    assert_eq!(url, "https://secure.example/a");
    // A shell without TLS says so.
    a.handle_failure(Failure::Unsupported);
    assert_eq!(
        asked_url(&poll(&mut a, &urls, None)),
        "http://garbage.example/a"
    );
    assert!(matches!(
        a.handle_http(200, b"<html>"),
        Some(Step::Failed {
            failure: Failure::BadResponse(_),
            ..
        })
    ));
    assert_eq!(
        poll(&mut a, &urls, None),
        Some(Asked::Udp {
            url: "udp://silent.example:6969".into()
        })
    );
    // BEP 15's schedule runs out: 15 s, then 30 s, ... up to 15 · 2⁸.
    let mut now = at(0);
    let mut out = [0u8; MAX_REQUEST];
    let step = loop {
        assert!(
            a.poll_transmit(now, &mut out).is_some(),
            "a connect is sent"
        );
        now = a.poll_timeout().unwrap();
        if let Some(step) = a.handle_timeout(now) {
            break step;
        }
    };
    assert_eq!(now, at(15_000 * 511));
    assert_eq!(
        step,
        Step::Failed {
            tracker: 4,
            failure: Failure::TimedOut,
            reason: None
        }
    );
    assert_eq!(
        asked_url(&poll(&mut a, &urls, None)),
        "http://busy.example/a"
    );
    a.handle_http(503, b"");
    assert_eq!(poll(&mut a, &urls, None), Some(Asked::GaveUp));
    assert_eq!(poll(&mut a, &urls, None), None, "given up once");
    let not_bencode: TrackerError = AnnounceResponse::parse(b"<html>").unwrap_err();
    assert_eq!(
        a.failures().collect::<Vec<_>>(),
        [
            (0, Failure::Refused),
            (1, Failure::BadUrl),
            (2, Failure::Unsupported),
            (3, Failure::BadResponse(not_bencode)),
            (4, Failure::TimedOut),
            (5, Failure::Status(503)),
        ]
    );
    assert_eq!(
        std::format!("{}", Failure::Status(503)),
        "the tracker answered HTTP 503"
    );
}

#[test]
fn a_torrent_without_trackers_gives_up_at_once() {
    let mut a = announcer(&[]);
    assert!(a.is_empty());
    a.start(STARTED);
    assert_eq!(poll(&mut a, &[], None), Some(Asked::GaveUp));
    assert_eq!(a.failures().count(), 0);
}

/// What the UDP tracker reads from our next datagram.
fn udp_sent(a: &mut Announcer<8>, now: Instant) -> Request<'static> {
    let mut out = [0u8; MAX_REQUEST];
    let len = a.poll_transmit(now, &mut out).expect("a datagram is due");
    let owned: &'static mut [u8] = std::boxed::Box::leak(out[..len].to_vec().into_boxed_slice());
    Request::decode(owned).expect("we send valid BEP 15")
}

fn encoded(r: Response<'_>) -> Vec<u8> {
    let mut out = vec![0u8; 512];
    let len = r.encode(&mut out).unwrap();
    out.truncate(len);
    out
}

#[test]
fn udp_and_http_trackers_mixed_in_tiers() {
    let list = [
        (0, "udp://u.example:6969/announce"),
        (1, "http://h.example/a"),
    ];
    let urls = urls(&list);
    let mut a = announcer(&list);
    let bits = [0xf0u8];

    // Round 1: the UDP tracker refuses, the HTTP one (with the self-report) answers.
    a.start(STARTED);
    assert_eq!(
        poll(&mut a, &urls, Some(&bits)),
        Some(Asked::Udp {
            url: "udp://u.example:6969/announce".into()
        })
    );
    let Request::Connect { transaction_id } = udp_sent(&mut a, at(0)) else {
        panic!("connect first")
    };
    let connected = encoded(Response::Connect {
        transaction_id,
        connection_id: 0xfeed,
    });
    assert_eq!(a.handle_datagram(at(10), &connected, false), None);
    let Request::Announce {
        transaction_id,
        connection_id: 0xfeed,
        left: 3,
        event: AnnounceEvent::Started,
        num_want: 80,
        key: 7,
        ..
    } = udp_sent(&mut a, at(10))
    else {
        panic!("then the announce")
    };
    let refused = encoded(Response::Error {
        transaction_id,
        message: b"torrent not tracked",
    });
    assert_eq!(
        a.handle_datagram(at(20), &refused, false),
        Some(Step::Failed {
            tracker: 0,
            failure: Failure::Refused,
            reason: Some("torrent not tracked")
        })
    );
    let Some(Asked::Http { query, .. }) = poll(&mut a, &urls, Some(&bits)) else {
        panic!()
    };
    assert!(query.contains("&bitfield=8A"), "{query}");
    let no_interval = b"d5:peers6:\x0a\x00\x00\x02\x1a\xe1e";
    let Some(Step::Answered(got)) = a.handle_http(200, no_interval) else {
        panic!()
    };
    assert_eq!(got.interval, DEFAULT_INTERVAL, "none given: 30 minutes");
    assert_eq!(
        got.peers().collect::<Vec<_>>(),
        ["10.0.0.2:6881".parse().unwrap()]
    );

    // Round 2: the UDP tracker answers over IPv6 with a zero interval.
    a.start(Announce {
        event: AnnounceEvent::None,
        ..STARTED
    });
    poll(&mut a, &urls, Some(&bits));
    let Request::Connect { transaction_id } = udp_sent(&mut a, at(30_000)) else {
        panic!("the refusal dropped the connection id")
    };
    let connected = encoded(Response::Connect {
        transaction_id,
        connection_id: 0xbeef,
    });
    a.handle_datagram(at(30_010), &connected, true);
    let Request::Announce { transaction_id, .. } = udp_sent(&mut a, at(30_010)) else {
        panic!()
    };
    let mut peers = [0u8; 18];
    peers[..16].copy_from_slice(
        &"2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    peers[16..].copy_from_slice(&51413u16.to_be_bytes());
    let answer = encoded(Response::Announce {
        transaction_id,
        interval: 0,
        leechers: 1,
        seeders: 2,
        peers: &peers,
    });
    let Some(Step::Answered(got)) = a.handle_datagram(at(30_020), &answer, true) else {
        panic!()
    };
    assert_eq!(got.tracker, 0);
    assert_eq!(got.interval, Duration::from_secs(1), "never zero");
    assert_eq!((got.seeders, got.leechers), (Some(2), Some(1)));
    assert_eq!(
        got.peers().collect::<Vec<_>>(),
        ["[2001:db8::7]:51413".parse().unwrap()]
    );

    // Round 3, within the connection id's minute: straight to the announce.
    a.start(STARTED);
    poll(&mut a, &urls, None);
    assert!(matches!(
        udp_sent(&mut a, at(60_000)),
        Request::Announce {
            connection_id: 0xbeef,
            ..
        }
    ));
    // A shell whose socket fails says so; the next tracker is asked.
    assert!(a.handle_failure(Failure::Unreachable).is_some());
    assert_eq!(a.poll_timeout(), None, "the exchange is dropped");
    assert_eq!(asked_url(&poll(&mut a, &urls, None)), "http://h.example/a");
}

#[test]
fn a_tracker_id_goes_back_to_the_tracker_that_gave_it() {
    let list = [(0, "http://a.example/a"), (1, "http://b.example/a")];
    let urls = urls(&list);
    let mut a = announcer(&list);
    a.start(STARTED);
    poll(&mut a, &urls, None);
    let with_id = b"d8:intervali60e5:peers0:10:tracker id3:x&ye";
    assert!(matches!(
        a.handle_http(200, with_id),
        Some(Step::Answered(_))
    ));
    a.start(STARTED);
    let Some(Asked::Http { query, .. }) = poll(&mut a, &urls, None) else {
        panic!()
    };
    assert!(query.contains("&trackerid=x%26y"), "{query}");
    a.handle_failure(Failure::TimedOut);
    let Some(Asked::Http { url, query }) = poll(&mut a, &urls, None) else {
        panic!()
    };
    assert_eq!(url, "http://b.example/a");
    assert!(!query.contains("trackerid"), "{query}");
}
