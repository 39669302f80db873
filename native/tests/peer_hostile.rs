//! Issue 9, careless and hostile peers against `enjambre seed` on loopback: connections that
//! handshake and then say nothing cannot keep a real leech out, and an accepting seed shows
//! nothing of itself before a valid handshake, closing a wrong protocol string at once.

mod peer_support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use peer_support::{create, data, enjambre, free_port, info_hash, run, wait_listening, Background};

/// `enjambre seed` on 127.0.0.1:`port` with at most `max_peers` peers.
fn seed(torrent: &Path, file: &Path, port: u16, max_peers: usize) -> Background {
    let bg = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(torrent)
            .arg("--data")
            .arg(file)
            .args(["--port", &port.to_string(), "--listen", "127.0.0.1"])
            .args(["--max-peers", &max_peers.to_string()]),
    );
    wait_listening(port);
    bg
}

/// A BitTorrent handshake (fast and extended bits set) for `info_hash` from peer `id`.
fn handshake(info_hash: &[u8; 20], id: u8) -> Vec<u8> {
    let mut h = b"\x13BitTorrent protocol".to_vec();
    h.extend_from_slice(&[0, 0, 0, 0, 0, 0x10, 0, 0x04]);
    h.extend_from_slice(info_hash);
    h.extend_from_slice(b"-XX0001-idle-peer-");
    h.extend_from_slice(&[b'0' + id / 10, b'0' + id % 10]);
    h
}

fn info_hash_bytes(torrent: &Path) -> [u8; 20] {
    let hex = info_hash(torrent);
    let mut out = [0u8; 20];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

/// A connection to `to` from the loopback address `from`.
fn dial_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    sock.connect(&to.into()).unwrap();
    sock.into()
}

/// What the other side did within `wait`: the bytes it sent, and whether it closed.
fn heard(sock: &mut TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (got, false);
        }
        sock.set_read_timeout(Some(left)).unwrap();
        match sock.read(&mut buf) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (got, false)
            }
            Err(_) => return (got, true),
        }
    }
}

#[test]
fn idle_connections_from_one_address_or_many_do_not_keep_a_leech_out() {
    let dir = tempfile::tempdir().unwrap();
    let original = data(1_000_000, 11);
    let file = dir.path().join("film.bin");
    std::fs::write(&file, &original).unwrap();
    let torrent = create(&file, &dir.path().join("film.torrent"), &[], 32768);
    let hash = info_hash_bytes(&torrent);
    let port = free_port();
    let seed_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = seed(&torrent, &file, port, 8);
    // `seed` knows the port is open by connecting to it once; give the seed time to see that
    // probe close, so it holds no slot when the idle peers come.
    std::thread::sleep(Duration::from_millis(500));

    // 60 connections that send a valid handshake and then nothing: 20 from 127.0.0.2, then 4
    // from each of 127.0.0.3 to 127.0.0.12.
    let sources: Vec<Ipv4Addr> = std::iter::repeat_n(Ipv4Addr::new(127, 0, 0, 2), 20)
        .chain((3..=12).flat_map(|k| std::iter::repeat_n(Ipv4Addr::new(127, 0, 0, k), 4)))
        .collect();
    let mut idle: Vec<(Ipv4Addr, TcpStream)> = Vec::new();
    for (k, from) in sources.into_iter().enumerate() {
        let mut sock = dial_from(from, seed_addr);
        // A refused connection may be closed before the handshake is written.
        let _ = sock.write_all(&handshake(&hash, k as u8));
        idle.push((from, sock));
    }
    let answered: Vec<Ipv4Addr> = idle
        .iter_mut()
        .filter_map(|(from, sock)| {
            let (bytes, _) = heard(sock, Duration::from_millis(300));
            (bytes.len() >= 68).then_some(*from)
        })
        .collect();
    let from_one = answered.iter().filter(|a| a.octets()[3] == 2).count();
    assert_eq!(from_one, 2, "one address gets a quarter of 8 slots");
    assert_eq!(answered.len(), 8, "every slot is taken by an idle peer");

    // A real leech arrives while they hold every slot, and gets the whole file.
    let started = Instant::now();
    let out = dir.path().join("out");
    let o = run(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(&out)
            .args([
                "--port",
                &free_port().to_string(),
                "--peer",
                &seed_addr.to_string(),
            ]),
        Duration::from_secs(45),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(out.join("film.bin")).unwrap() == original);
    eprintln!(
        "leech done {:?} after the idle peers came",
        started.elapsed()
    );
    drop(idle);
    s.stop();
}

#[test]
fn an_accepting_seed_says_nothing_before_a_valid_handshake_and_closes_a_wrong_one_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.bin");
    std::fs::write(&file, data(100_000, 3)).unwrap();
    let torrent = create(&file, &dir.path().join("notes.torrent"), &[], 32768);
    let hash = info_hash_bytes(&torrent);
    let port = free_port();
    let seed_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = seed(&torrent, &file, port, 50);

    // Connected and silent: the seed shows nothing, not even its protocol string.
    let mut sock = TcpStream::connect(seed_addr).unwrap();
    assert_eq!(
        heard(&mut sock, Duration::from_millis(500)),
        (vec![], false)
    );
    // A protocol string one letter off is closed when it arrives, not after 30 s.
    sock.write_all(b"\x13BitTorrent protocoX").unwrap();
    let at = Instant::now();
    assert_eq!(heard(&mut sock, Duration::from_secs(5)), (vec![], true));
    assert!(at.elapsed() < Duration::from_secs(1), "{:?}", at.elapsed());

    // A handshake for a torrent the seed does not serve: closed, nothing of the seed seen.
    let mut sock = TcpStream::connect(seed_addr).unwrap();
    sock.write_all(&handshake(&[7; 20], 1)).unwrap();
    assert_eq!(heard(&mut sock, Duration::from_secs(5)), (vec![], true));

    // A valid one, sent in two parts: the seed answers only once the last byte is in.
    let mut sock = TcpStream::connect(seed_addr).unwrap();
    let ours = handshake(&hash, 2);
    sock.write_all(&ours[..67]).unwrap();
    assert_eq!(
        heard(&mut sock, Duration::from_millis(500)),
        (vec![], false)
    );
    sock.write_all(&ours[67..]).unwrap();
    let (reply, closed) = heard(&mut sock, Duration::from_millis(500));
    assert!(!closed);
    assert!(reply.len() >= 68, "{reply:?}");
    assert_eq!(&reply[..20], b"\x13BitTorrent protocol");
    assert_eq!(&reply[28..48], &hash);
    s.stop();
}
