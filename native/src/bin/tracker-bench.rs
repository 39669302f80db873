//! `tracker-bench`: announces per second over UDP and HTTP, and memory per registered peer
//! (without a bitfield, and with a 10,000-piece one), for `enjambre tracker` or any tracker
//! given by address (e.g. aquatic), on loopback.
//!
//! Run: `cargo run --release -p enjambre --bin tracker-bench` (starts `enjambre tracker` pinned to
//! CPU 0 and loads it from CPU 1), or `tracker-bench --udp ADDR --http ADDR --pid PID` against a
//! tracker started elsewhere. The load generator is one thread: a window of requests in flight
//! on one UDP socket; keep-alive connections with one request in flight each for HTTP.

mod bench_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use bench_common::{cpu_secs, pin_self, rss_kb, start_tracker, udp_connect};

use enjambre_core::tracker::udp::{Request, Response};
use enjambre_core::tracker::AnnounceEvent;
use enjambre_core::{InfoHash, PeerId};

struct Opts {
    udp: Option<SocketAddr>,
    http: Option<SocketAddr>,
    pid: Option<u32>,
    secs: u64,
    peers: u32,
    bitfield_peers: u32,
    per_torrent: u32,
    skip: Vec<String>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        udp: None,
        http: None,
        pid: None,
        secs: 10,
        peers: 200_000,
        bitfield_peers: 20_000,
        per_torrent: 1000,
        skip: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--udp" => o.udp = Some(val().parse().expect("--udp ADDR")),
            "--http" => o.http = Some(val().parse().expect("--http ADDR")),
            "--pid" => o.pid = Some(val().parse().expect("--pid PID")),
            "--secs" => o.secs = val().parse().expect("--secs N"),
            "--peers" => o.peers = val().parse().expect("--peers N"),
            "--bitfield-peers" => o.bitfield_peers = val().parse().expect("--bitfield-peers N"),
            "--skip" => o.skip.push(val()),
            "--peers-per-torrent" => o.per_torrent = val().parse().expect("--peers-per-torrent N"),
            _ => {
                eprintln!("usage: tracker-bench [--udp ADDR --http ADDR --pid PID] [--secs N] [--peers N] [--bitfield-peers N] [--peers-per-torrent N] [--skip udp|http|mem|bitfield]");
                std::process::exit(2);
            }
        }
    }
    o
}

/// A throughput figure: requests per wall-clock second and per CPU-second of the tracker.
struct Rate {
    count: u64,
    wall: f64,
    cpu: f64,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0}/s wall, {:.0} per tracker CPU-second (tracker busy {:.0}%)",
            self.count as f64 / self.wall,
            self.count as f64 / self.cpu.max(1e-9),
            100.0 * self.cpu / self.wall
        )
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn info_hash(i: u32) -> InfoHash {
    let mut h = [0x5au8; 20];
    h[..4].copy_from_slice(&i.to_be_bytes());
    InfoHash(h)
}

fn peer_id_of(i: u32) -> PeerId {
    let mut p = *b"-BN0001-000000000000";
    p[8..12].copy_from_slice(&i.to_be_bytes());
    PeerId(p)
}

/// UDP announces/s with `window` requests in flight, over `torrents` × `per_torrent` peers.
fn udp_throughput(to: SocketAddr, pid: u32, secs: u64, torrents: u32, per_torrent: u32) -> Rate {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(8 << 20);
    let conn = udp_connect(&sock, to);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = [0u8; 128];
    let mut buf = [0u8; 4096];
    let mut send = |rng: &mut Rng| {
        let t = (rng.next() % u64::from(torrents)) as u32;
        let p = (rng.next() % u64::from(per_torrent)) as u32;
        let left = if rng.next() % 4 == 0 { 0 } else { 1000 };
        let r = Request::Announce {
            connection_id: conn,
            transaction_id: p,
            info_hash: info_hash(t),
            peer_id: peer_id_of(p),
            downloaded: 0,
            left,
            uploaded: 0,
            event: AnnounceEvent::None,
            ip: 0,
            key: p,
            num_want: 50,
            port: 1024 + p as u16,
        };
        let n = r.encode(&mut out).unwrap();
        let _ = sock.send_to(&out[..n], to);
    };
    let window = 256;
    for _ in 0..window {
        send(&mut rng);
    }
    let warmup = Instant::now() + Duration::from_secs(1);
    let mut counted = 0u64;
    let mut start = None;
    let mut cpu0 = 0.0;
    let end = warmup + Duration::from_secs(secs);
    loop {
        match sock.recv_from(&mut buf) {
            Ok((k, _)) => {
                if matches!(Response::decode(&buf[..k]), Ok(Response::Announce { .. })) {
                    let now = Instant::now();
                    if now >= warmup {
                        if start.is_none() {
                            start = Some(now);
                            cpu0 = cpu_secs(pid);
                        }
                        counted += 1;
                    }
                    if now >= end {
                        break;
                    }
                }
                send(&mut rng);
            }
            Err(_) => {
                // Lost replies: refill the window.
                for _ in 0..window / 4 {
                    send(&mut rng);
                }
                if Instant::now() >= end {
                    break;
                }
            }
        }
    }
    let wall = start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(1.0);
    Rate {
        count: counted,
        wall,
        cpu: cpu_secs(pid) - cpu0,
    }
}

fn pct(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

fn http_request(ih: InfoHash, peer: u32, extra: &str) -> Vec<u8> {
    format!(
        "GET /announce?info_hash={}&peer_id={}&port={}&uploaded=0&downloaded=0&left=1000&compact=1&numwant=50{extra} HTTP/1.1\r\nHost: bench\r\n\r\n",
        pct(&ih.0),
        pct(&peer_id_of(peer).0),
        1024 + (peer % 60000)
    )
    .into_bytes()
}

/// Read one HTTP response with a Content-Length from a keep-alive stream.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return true;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// HTTP announces/s over `conns` keep-alive connections, one request in flight each, driven
/// round-robin from one thread (each connection's response is awaited before its next request
/// is sent, with all connections' requests outstanding together).
fn http_throughput(
    to: SocketAddr,
    pid: u32,
    secs: u64,
    conns: usize,
    torrents: u32,
    per_torrent: u32,
) -> Rate {
    let mut socks: Vec<TcpStream> = (0..conns)
        .map(|_| {
            let s = TcpStream::connect(to).unwrap();
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        })
        .collect();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let req = |rng: &mut Rng| {
        let t = (rng.next() % u64::from(torrents)) as u32;
        let p = (rng.next() % u64::from(per_torrent)) as u32;
        http_request(info_hash(t), p, "")
    };
    for s in socks.iter_mut() {
        s.write_all(&req(&mut rng)).unwrap();
    }
    let mut buf = Vec::with_capacity(8192);
    let warmup = Instant::now() + Duration::from_secs(1);
    let end = warmup + Duration::from_secs(secs);
    let mut counted = 0u64;
    let mut start = None;
    let mut cpu0 = 0.0;
    'outer: loop {
        for s in socks.iter_mut() {
            if !read_response(s, &mut buf) {
                break 'outer;
            }
            let now = Instant::now();
            if now >= warmup {
                if start.is_none() {
                    start = Some(now);
                    cpu0 = cpu_secs(pid);
                }
                counted += 1;
            }
            if now >= end {
                break 'outer;
            }
            s.write_all(&req(&mut rng)).unwrap();
        }
    }
    let wall = start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(1.0);
    Rate {
        count: counted,
        wall,
        cpu: cpu_secs(pid) - cpu0,
    }
}

/// Register `n` peers over UDP (`per_torrent` peers per torrent) and return the RSS growth per peer.
fn memory_per_peer_udp(to: SocketAddr, pid: u32, n: u32, per_torrent: u32) -> f64 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let conn = udp_connect(&sock, to);
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kb(pid);
    let mut out = [0u8; 128];
    let mut buf = [0u8; 4096];
    let mut in_flight = 0u32;
    for i in 0..n {
        let r = Request::Announce {
            connection_id: conn,
            transaction_id: i,
            info_hash: info_hash(1_000_000 + i / per_torrent),
            peer_id: peer_id_of(i),
            downloaded: 0,
            left: 1000,
            uploaded: 0,
            event: AnnounceEvent::Started,
            ip: 0,
            key: i,
            num_want: 0,
            port: 1024 + (i % per_torrent) as u16,
        };
        let k = r.encode(&mut out).unwrap();
        let _ = sock.send_to(&out[..k], to);
        in_flight += 1;
        while in_flight >= 128 {
            match sock.recv_from(&mut buf) {
                Ok(_) => in_flight -= 1,
                Err(_) => in_flight = 0,
            }
        }
    }
    while in_flight > 0 && sock.recv_from(&mut buf).is_ok() {
        in_flight -= 1;
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kb(pid);
    (after.saturating_sub(before) * 1024) as f64 / f64::from(n)
}

/// Register `n` peers over HTTP each with a 10,000-piece bitfield (random, about half set) and
/// return the RSS growth per peer.
fn memory_per_peer_bitfield(to: SocketAddr, pid: u32, n: u32) -> f64 {
    let mut s = TcpStream::connect(to).unwrap();
    s.set_nodelay(true).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kb(pid);
    let mut rng = Rng(0xfeed_beef_cafe_1234);
    let mut buf = Vec::new();
    let mut bits = vec![0u8; 1250];
    let mut b64 = vec![0u8; enjambre_core::tracker::base64url::encoded_len(bits.len())];
    for i in 0..n {
        for b in bits.iter_mut() {
            *b = rng.next() as u8;
        }
        let k = enjambre_core::tracker::base64url::encode_into(&bits, &mut b64).unwrap();
        let extra = format!("&bitfield={}", std::str::from_utf8(&b64[..k]).unwrap());
        s.write_all(&http_request(info_hash(2_000_000 + i / 1000), i, &extra))
            .unwrap();
        if !read_response(&mut s, &mut buf) {
            panic!("HTTP connection closed");
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kb(pid);
    (after.saturating_sub(before) * 1024) as f64 / f64::from(n)
}

fn main() {
    let o = parse_opts();
    let mut ours = None;
    let (http, udp, pid) = match (o.udp, o.http) {
        (None, None) => {
            let (child, h, u) = start_tracker(
                Some(0),
                &[
                    "--poll-interval",
                    "0",
                    "--max-peers-per-torrent",
                    "10000000",
                    "--max-peers",
                    "100000000",
                    "--max-torrents",
                    "100000000",
                ],
            );
            let pid = child.id();
            ours = Some(child);
            (Some(h), Some(u), pid)
        }
        _ => (
            o.http,
            o.udp,
            o.pid.expect("--pid is needed with --udp/--http"),
        ),
    };
    pin_self(1);
    let skip = |s: &str| o.skip.iter().any(|x| x == s);
    println!(
        "tracker pid {pid}; load generator: one thread; {} s per throughput run",
        o.secs
    );
    if let (Some(u), false) = (udp, skip("udp")) {
        let r = udp_throughput(u, pid, o.secs, 1000, 1000);
        println!("udp announces: {r}  (1,000 torrents x 1,000 peers, numwant 50, 256 in flight)");
    }
    if let (Some(h), false) = (http, skip("http")) {
        let r = http_throughput(h, pid, o.secs, 64, 1000, 1000);
        println!("http announces: {r}  (64 keep-alive connections, 1,000 torrents x 1,000 peers, numwant 50)");
    }
    if let (Some(u), false) = (udp, skip("mem")) {
        let rss0 = rss_kb(pid);
        let b = memory_per_peer_udp(u, pid, o.peers, o.per_torrent.max(1));
        println!(
            "memory per peer, no bitfield: {b:.0} bytes  ({} peers over UDP, {} per torrent; RSS before {} MiB)",
            o.peers,
            o.per_torrent,
            rss0 / 1024
        );
    }
    if let (Some(h), false) = (http, skip("bitfield")) {
        let b = memory_per_peer_bitfield(h, pid, o.bitfield_peers);
        println!(
            "memory per peer, 10,000-piece bitfield: {b:.0} bytes  ({} peers over HTTP)",
            o.bitfield_peers
        );
    }
    println!("tracker RSS at the end: {} MiB", rss_kb(pid) / 1024);
    if let Some(mut c) = ours {
        let _ = c.kill();
        let _ = c.wait();
    }
}
