//! UDP (BEP 15) against the real binary: connect, announce, scrape, forged connection ids and
//! hostile packets.

mod tracker_support;

use std::time::Duration;

use enjambre_core::tracker::udp::{Request, Response};
use enjambre_core::tracker::AnnounceEvent;
use enjambre_core::InfoHash;
use tracker_support::*;

#[test]
fn connect_announce_and_scrape() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let c = UdpClient::connect(t.udp);
    let ih = InfoHash([9; 20]);
    let mut buf = [0u8; 2048];
    for n in 0..5u16 {
        let left = if n == 0 { 0 } else { 10 };
        c.announce(
            ih,
            peer_id(n.into()),
            8000 + n,
            left,
            AnnounceEvent::Started,
            -1,
            &mut buf,
        );
    }
    let n = c.announce(ih, peer_id(3), 8003, 10, AnnounceEvent::None, 50, &mut buf);
    match Response::decode(&buf[..n]).unwrap() {
        Response::Announce {
            transaction_id,
            interval,
            leechers,
            seeders,
            peers,
        } => {
            assert_eq!(transaction_id, 99);
            assert_eq!(interval, 600);
            assert_eq!((seeders, leechers), (1, 4));
            let ports = compact_ports(peers);
            assert_eq!(ports.len(), 4);
            assert!(!ports.contains(&8003));
        }
        other => panic!("unexpected {other:?}"),
    }
    // numwant 2.
    let n = c.announce(ih, peer_id(3), 8003, 10, AnnounceEvent::None, 2, &mut buf);
    match Response::decode(&buf[..n]).unwrap() {
        Response::Announce { peers, .. } => assert_eq!(peers.len(), 12),
        other => panic!("unexpected {other:?}"),
    }
    // Completion, then scrape two hashes.
    c.announce(
        ih,
        peer_id(1),
        8001,
        0,
        AnnounceEvent::Completed,
        -1,
        &mut buf,
    );
    let mut hashes = ih.0.to_vec();
    hashes.extend_from_slice(&[0xee; 20]);
    let n = c
        .request(
            &Request::Scrape {
                connection_id: c.conn,
                transaction_id: 5,
                info_hashes: &hashes,
            },
            &mut buf,
        )
        .unwrap();
    match Response::decode(&buf[..n]).unwrap() {
        Response::Scrape {
            transaction_id: 5,
            stats,
        } => {
            assert_eq!(stats.len(), 24);
            let word = |i: usize| u32::from_be_bytes(stats[i * 4..i * 4 + 4].try_into().unwrap());
            assert_eq!(
                (word(0), word(1), word(2)),
                (2, 1, 3),
                "seeders, completed, leechers"
            );
            assert_eq!((word(3), word(4), word(5)), (0, 0, 0));
        }
        other => panic!("unexpected {other:?}"),
    }
    // HTTP sees the same swarm.
    let v = t.json(&format!("/swarm/{ih}"));
    assert_eq!(v["seeders"], 2);
    assert_eq!(v["completed"], 1);
}

#[test]
fn forged_connection_ids_are_refused() {
    let t = Tracker::start(&["--poll-interval", "0"]);
    let mut c = UdpClient::connect(t.udp);
    let ih = InfoHash([10; 20]);
    let mut buf = [0u8; 2048];
    for forged in [
        0u64,
        0x41727101980,
        c.conn ^ 1,
        c.conn.wrapping_add(1 << 40),
    ] {
        c.conn = forged;
        let n = c.announce(
            ih,
            peer_id(1),
            8100,
            1,
            AnnounceEvent::Started,
            -1,
            &mut buf,
        );
        match Response::decode(&buf[..n]).unwrap() {
            Response::Error {
                transaction_id: 99,
                message,
            } => assert_eq!(message, b"bad connection id"),
            other => panic!("forged id {forged:#x} accepted: {other:?}"),
        }
    }
    // Another client's id does not work from a different address either.
    let other = std::net::UdpSocket::bind("127.0.0.2:0");
    let expected = 4 + u32::from(other.is_ok());
    if let Ok(sock) = other {
        let real = UdpClient::connect(t.udp);
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut out = [0u8; 256];
        let n = real
            .announce_req(ih, peer_id(2), 8101, 1, AnnounceEvent::Started, -1)
            .encode(&mut out)
            .unwrap();
        sock.send_to(&out[..n], t.udp).unwrap();
        let (n, _) = sock.recv_from(&mut buf).expect("error reply");
        assert!(matches!(
            Response::decode(&buf[..n]).unwrap(),
            Response::Error { .. }
        ));
    }
    assert_eq!(t.json("/stats")["peers"], 0);
    let (_, _, metrics) = t.get("/metrics");
    let want = format!("enjambre_tracker_udp_bad_connection_ids_total {expected}\n");
    assert!(
        String::from_utf8_lossy(&metrics).contains(&want),
        "{}",
        String::from_utf8_lossy(&metrics)
    );
}

#[test]
fn hostile_packets_get_no_answer_and_do_no_harm() {
    let mut t = Tracker::start(&["--poll-interval", "0"]);
    let c = UdpClient::connect(t.udp);
    c.sock
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let mut valid = [0u8; 256];
    let n = c
        .announce_req(
            InfoHash([11; 20]),
            peer_id(1),
            8200,
            1,
            AnnounceEvent::Started,
            -1,
        )
        .encode(&mut valid)
        .unwrap();
    // Every truncation of a valid announce, empty packets, garbage, wrong protocol id on connect.
    let mut hostile: Vec<Vec<u8>> = (0..n).map(|k| valid[..k].to_vec()).collect();
    hostile.push(vec![0xff; 1500]);
    hostile.push(vec![0; 16]);
    let mut bad_connect = vec![0u8; 16];
    bad_connect[11] = 0; // action connect, protocol id zero
    hostile.push(bad_connect);
    let mut unknown_action = valid[..n].to_vec();
    unknown_action[11] = 9;
    hostile.push(unknown_action.clone());
    for p in &hostile {
        c.send_raw(p);
        if let Some(k) = c.recv(&mut buf) {
            // Only packets carrying our valid connection id may be answered, with an error.
            assert!(
                p.len() >= 16 && p[..8] == valid[..8],
                "answered a packet without a valid connection id: {p:?}"
            );
            assert!(matches!(
                Response::decode(&buf[..k]).unwrap(),
                Response::Error { .. }
            ));
        }
    }
    // Garbage without a valid connection id gets no reply at all.
    let mut forged = unknown_action;
    forged[..8].copy_from_slice(&[1; 8]);
    c.send_raw(&forged);
    assert!(c.recv(&mut buf).is_none());
    assert!(t.alive());
    // Still serving.
    let c2 = UdpClient::connect(t.udp);
    c2.announce(
        InfoHash([11; 20]),
        peer_id(2),
        8201,
        1,
        AnnounceEvent::Started,
        -1,
        &mut buf,
    );
    assert_eq!(t.json("/stats")["peers"], 1);
}

#[test]
fn udp_over_ipv6_returns_18_byte_peers() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback; skipped");
        return;
    }
    let t = Tracker::start_on("[::1]:0", &["--poll-interval", "0"]);
    let c = UdpClient::connect(t.udp);
    let ih = InfoHash([12; 20]);
    let mut buf = [0u8; 2048];
    c.announce(
        ih,
        peer_id(1),
        8301,
        1,
        AnnounceEvent::Started,
        -1,
        &mut buf,
    );
    let n = c.announce(
        ih,
        peer_id(2),
        8302,
        1,
        AnnounceEvent::Started,
        -1,
        &mut buf,
    );
    match Response::decode(&buf[..n]).unwrap() {
        Response::Announce { peers, .. } => {
            assert_eq!(peers.len(), 18);
            assert_eq!(&peers[..16], &std::net::Ipv6Addr::LOCALHOST.octets());
            assert_eq!(u16::from_be_bytes([peers[16], peers[17]]), 8301);
        }
        other => panic!("unexpected {other:?}"),
    }
}
