//! Issue 9 item 4, slowloris on the tracker: sockets that dribble a request head one byte at a
//! time fill only their own address's connection cap, a real client from another address is
//! still answered, and every dribbling head is closed at the head deadline. Loopback only,
//! 20 sockets, bounded to a few seconds.

mod tracker_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use enjambre_core::InfoHash;
use socket2::{Domain, Protocol, Socket, Type};
use tracker_support::*;

/// A TCP connection to `to` from the loopback address `from_ip`.
fn connect_from(from_ip: &str, to: SocketAddr) -> TcpStream {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    let from: SocketAddr = format!("{from_ip}:0").parse().unwrap();
    s.bind(&from.into()).unwrap();
    s.connect(&to.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_nonblocking(true).unwrap();
    s
}

/// Whether the tracker has closed `s` (anything it sent before closing is read and dropped).
fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn slow_heads_from_one_address_fill_its_cap_only_and_are_closed_at_the_deadline() {
    let t = Tracker::start(&[
        "--poll-interval",
        "0",
        "--max-connections",
        "16",
        "--max-connections-per-ip",
        "4",
        "--http-head-timeout",
        "2",
    ]);
    let head = b"GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: t\r\n";
    let opened = Instant::now();
    let mut slow: Vec<(TcpStream, Option<Duration>)> = (0..20)
        .map(|_| (connect_from("127.0.0.2", t.http), None))
        .collect();

    // Dribble one byte every 200 ms on every socket, noting when each is closed.
    let mut sent = 0;
    let dribble = |slow: &mut Vec<(TcpStream, Option<Duration>)>, sent: &mut usize| {
        for (s, closed_at) in slow.iter_mut() {
            if closed_at.is_none()
                && (closed(s) || s.write_all(&head[*sent % head.len()..][..1]).is_err())
            {
                *closed_at = Some(opened.elapsed());
            }
        }
        *sent += 1;
        std::thread::sleep(Duration::from_millis(200));
    };
    for _ in 0..4 {
        dribble(&mut slow, &mut sent);
    }
    let open = slow.iter().filter(|(_, c)| c.is_none()).count();
    assert_eq!(open, 4, "one address keeps exactly its cap of connections");

    // A real client from another address is answered meanwhile.
    let ih = InfoHash([4; 20]);
    let body = t.announce(&ih, &peer_id(1), 6881, 10, "&event=started");
    assert!(bdecode(&body).as_dict().unwrap().get(b"interval").is_some());

    // The dribbling heads are closed at the 2 s deadline, not kept alive by each byte.
    while slow.iter().any(|(_, c)| c.is_none()) && opened.elapsed() < Duration::from_secs(8) {
        dribble(&mut slow, &mut sent);
    }
    for (_, closed_at) in &slow {
        let at = closed_at.expect("a dribbling head outlived the deadline by 6 s");
        assert!(at < Duration::from_secs(4), "closed after {at:?}");
    }
    let kept: Vec<Duration> = slow
        .iter()
        .filter_map(|(_, c)| *c)
        .filter(|c| *c > Duration::from_millis(1500))
        .collect();
    assert_eq!(
        kept.len(),
        4,
        "the four accepted ones lived until the deadline: {kept:?}"
    );
    let m = String::from_utf8(t.get("/metrics").2).unwrap();
    assert!(
        m.contains("enjambre_tracker_http_slow_heads_total 4\n"),
        "{m}"
    );
}

#[test]
fn a_connection_that_never_sends_a_head_is_closed_at_the_deadline() {
    let t = Tracker::start(&["--poll-interval", "0", "--http-head-timeout", "1"]);
    let mut s = connect_from("127.0.0.1", t.http);
    let opened = Instant::now();
    while !closed(&mut s) {
        assert!(
            opened.elapsed() < Duration::from_secs(5),
            "silent connection kept"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(opened.elapsed() >= Duration::from_millis(900));
    // Keep-alive between requests is governed by the idle timeout, not the head deadline.
    let mut k = TcpStream::connect(t.http).unwrap();
    k.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..2 {
        k.write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = k.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        std::thread::sleep(Duration::from_millis(1500));
    }
}
