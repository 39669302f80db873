//! `poll-bench`: how many peers a tracker node polls per second (R5), against a farm of
//! simulated peers on loopback, with the registry in memory or in Redis over 1–3 nodes.
//!
//! The farm is this process: one listening socket per peer, each on an address of its own in
//! 127.0.0.0/8 (so the poller's spacing per IP address never throttles it), answering a poll's
//! handshake with its own and a bitfield, then waiting for the tracker to close. Each peer
//! announces itself over UDP from its address (to node `i % nodes`), then the trackers poll them
//! every `--interval` seconds; after one interval of warm-up the farm counts polls for `--secs`,
//! per node (told apart by the peer id each node's poller handshakes with) and per peer (a peer
//! polled twice within half an interval counts as a double poll). CPU comes from `/proc`.
//!
//! Run: `cargo run --release -p enjambre --bin poll-bench -- [--peers N] [--interval S]
//! [--secs S] [--concurrency N] [--redis] [--nodes K]`. With `--redis` it starts its own
//! `redis-server` on a free loopback port (no persistence) and K nodes over it.

mod bench_common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench_common::{cpu_secs, start_tracker, udp_connect};
use enjambre_core::tracker::udp::{Request, Response};
use enjambre_core::tracker::AnnounceEvent;
use enjambre_core::wire::{Extensions, Handshake, HANDSHAKE_LEN};
use enjambre_core::{InfoHash, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Pieces per simulated torrent (a 125-byte bitfield).
const PIECES: usize = 1000;

struct Opts {
    peers: u32,
    per_torrent: u32,
    interval: f64,
    secs: u64,
    concurrency: u32,
    redis: bool,
    nodes: u32,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        peers: 10_000,
        per_torrent: 100,
        interval: 5.0,
        secs: 15,
        concurrency: 256,
        redis: false,
        nodes: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--peers" => o.peers = val().parse().expect("--peers N"),
            "--peers-per-torrent" => o.per_torrent = val().parse().expect("--peers-per-torrent N"),
            "--interval" => o.interval = val().parse().expect("--interval SECS"),
            "--secs" => o.secs = val().parse().expect("--secs N"),
            "--concurrency" => o.concurrency = val().parse().expect("--concurrency N"),
            "--redis" => o.redis = true,
            "--nodes" => o.nodes = val().parse().expect("--nodes K"),
            _ => {
                eprintln!("usage: poll-bench [--peers N] [--peers-per-torrent N] [--interval SECS] [--secs N] [--concurrency N] [--redis] [--nodes K]");
                std::process::exit(2);
            }
        }
    }
    assert!(
        o.redis || o.nodes == 1,
        "several nodes share a registry only with --redis"
    );
    o
}

/// Peer `i`'s own loopback address: 127.c.b.a, none of them 0 or 255.
fn addr_of(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        (i / 62_500 + 1) as u8,
        ((i / 250) % 250 + 1) as u8,
        (i % 250 + 1) as u8,
    )
}

fn info_hash(t: u32) -> InfoHash {
    let mut h = [0xa5u8; 20];
    h[..4].copy_from_slice(&t.to_be_bytes());
    InfoHash(h)
}

/// What the farm saw: poll times per peer, polls per poller (its peer id).
#[derive(Default)]
struct Seen {
    at: Vec<Vec<Instant>>,
    by_node: HashMap<[u8; 20], u64>,
}

/// One simulated peer's listener: answer every poll with a handshake and a bitfield.
async fn serve(listener: TcpListener, i: usize, seen: Arc<Mutex<Seen>>, counting: Arc<AtomicBool>) {
    let mut bitfield = vec![0u8; 5 + PIECES / 8];
    bitfield[..4].copy_from_slice(&(1 + PIECES as u32 / 8).to_be_bytes());
    bitfield[4] = 5;
    for (k, b) in bitfield[5..].iter_mut().enumerate() {
        *b = (k as u8).wrapping_mul(37) ^ (i as u8);
    }
    let bitfield: Arc<[u8]> = bitfield.into();
    let mut me = *b"-FM0001-000000000000";
    me[8..12].copy_from_slice(&(i as u32).to_be_bytes());
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        let (seen, counting, bitfield) = (seen.clone(), counting.clone(), bitfield.clone());
        tokio::spawn(async move {
            let mut hs = [0u8; HANDSHAKE_LEN];
            let read = tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut hs)).await;
            if !matches!(read, Ok(Ok(_))) {
                return;
            }
            let theirs = match Handshake::decode(&hs, &[]) {
                Ok(st) => match st.complete() {
                    Some(h) => h,
                    None => return,
                },
                Err(_) => return,
            };
            if counting.load(Relaxed) {
                let mut g = seen.lock().unwrap();
                g.at[i].push(Instant::now());
                *g.by_node.entry(theirs.peer_id.0).or_default() += 1;
            }
            let ours = Handshake::new(theirs.info_hash, PeerId(me), Extensions::default());
            let mut out = Vec::with_capacity(HANDSHAKE_LEN + bitfield.len());
            out.extend_from_slice(&ours.encode());
            out.extend_from_slice(&bitfield);
            if s.write_all(&out).await.is_err() {
                return;
            }
            // The tracker closes once it has read the bitfield.
            let mut sink = [0u8; 64];
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut sink)).await;
        });
    }
}

/// Announce peer `i` (listening on `port`) to `to` from its own address.
fn announce(i: u32, port: u16, to: SocketAddr, per_torrent: u32) {
    let sock = UdpSocket::bind((addr_of(i), 0)).expect("bind the peer's address");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let conn = udp_connect(&sock, to);
    let mut peer_id = *b"-FM0001-000000000000";
    peer_id[8..12].copy_from_slice(&i.to_be_bytes());
    let r = Request::Announce {
        connection_id: conn,
        transaction_id: i,
        info_hash: info_hash(i / per_torrent),
        peer_id: PeerId(peer_id),
        downloaded: 0,
        left: 1 << 20,
        uploaded: 0,
        event: AnnounceEvent::Started,
        ip: 0,
        key: i,
        num_want: 0,
        port,
    };
    let mut out = [0u8; 128];
    let mut buf = [0u8; 2048];
    let n = r.encode(&mut out).unwrap();
    for _ in 0..10 {
        sock.send_to(&out[..n], to).unwrap();
        if let Ok((k, _)) = sock.recv_from(&mut buf) {
            match Response::decode(&buf[..k]) {
                Ok(Response::Announce { .. }) => return,
                Ok(Response::Error { message, .. }) => {
                    panic!("announce refused: {}", String::from_utf8_lossy(message))
                }
                _ => {}
            }
        }
    }
    panic!("no announce reply for peer {i}");
}

/// `redis-server` on a free loopback port, no persistence.
fn start_redis() -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (apt install redis-server)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

fn raise_fd_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = l.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
    }
}

fn main() {
    let o = parse_opts();
    raise_fd_limit();
    let mut redis = None;
    let store = if o.redis {
        let (child, port) = start_redis();
        redis = Some(child);
        Some(format!("redis://127.0.0.1:{port}"))
    } else {
        None
    };
    let interval = format!("{}", o.interval);
    let concurrency = o.concurrency.to_string();
    let mut args = vec![
        "--poll-interval",
        &interval,
        "--poll-grace",
        "0",
        "--poll-concurrency",
        &concurrency,
        "--max-peers-per-torrent",
        "1000000",
        "--max-peers",
        "10000000",
    ];
    if let Some(s) = &store {
        args.extend(["--store", s.as_str()]);
    }
    let nodes: Vec<(Child, SocketAddr)> = (0..o.nodes)
        .map(|_| {
            let (child, _, udp) = start_tracker(None, &args);
            (child, udp)
        })
        .collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Seen {
        at: vec![Vec::new(); o.peers as usize],
        ..Seen::default()
    }));
    let counting = Arc::new(AtomicBool::new(false));
    let ports: Vec<u16> = rt.block_on(async {
        let mut ports = Vec::with_capacity(o.peers as usize);
        for i in 0..o.peers {
            let l = TcpListener::bind((IpAddr::V4(addr_of(i)), 0))
                .await
                .unwrap_or_else(|e| panic!("listen on {}: {e}", addr_of(i)));
            ports.push(l.local_addr().unwrap().port());
            tokio::spawn(serve(l, i as usize, seen.clone(), counting.clone()));
        }
        ports
    });
    let t0 = Instant::now();
    for (i, port) in ports.iter().enumerate() {
        let (_, udp) = &nodes[i % nodes.len()];
        announce(i as u32, *port, *udp, o.per_torrent);
    }
    println!(
        "{} peers announced in {:.1} s to {} node(s) ({}), {} per torrent; polling every {} s, {} polls in flight per node",
        o.peers,
        t0.elapsed().as_secs_f64(),
        o.nodes,
        if o.redis { "registry in Redis" } else { "registry in memory" },
        o.per_torrent,
        o.interval,
        o.concurrency,
    );
    std::thread::sleep(Duration::from_secs_f64(o.interval));
    let pids: Vec<u32> = nodes.iter().map(|(c, _)| c.id()).collect();
    let redis_pid = redis.as_ref().map(Child::id);
    let cpu0: Vec<f64> = pids.iter().map(|&p| cpu_secs(p)).collect();
    let redis0 = redis_pid.map(cpu_secs);
    let farm0 = cpu_secs(std::process::id());
    counting.store(true, Relaxed);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(o.secs));
    counting.store(false, Relaxed);
    let wall = start.elapsed().as_secs_f64();
    let node_cpu: Vec<f64> = pids
        .iter()
        .zip(&cpu0)
        .map(|(&p, c)| cpu_secs(p) - c)
        .collect();
    let redis_cpu = redis_pid.zip(redis0).map(|(p, c)| cpu_secs(p) - c);
    let farm_cpu = cpu_secs(std::process::id()) - farm0;

    let g = seen.lock().unwrap();
    let total: u64 = g.by_node.values().sum();
    let demand = f64::from(o.peers) / o.interval;
    let half = Duration::from_secs_f64(o.interval / 2.0);
    let doubles: usize =
        g.at.iter()
            .map(|t| t.windows(2).filter(|w| w[1] - w[0] < half).count())
            .sum();
    let never = g.at.iter().filter(|t| t.is_empty()).count();
    println!(
        "polls: {total} in {wall:.1} s = {:.0}/s (demand {demand:.0}/s); peers polled twice within half an interval: {doubles}; never polled: {never}",
        total as f64 / wall
    );
    let mut per_node: Vec<u64> = g.by_node.values().copied().collect();
    per_node.sort_unstable();
    for (k, cpu) in node_cpu.iter().enumerate() {
        println!(
            "node {k}: CPU {cpu:.2} s = {:.0}% of a core",
            100.0 * cpu / wall
        );
    }
    let node_total: f64 = node_cpu.iter().sum();
    println!(
        "polls per node: {per_node:?}; tracker CPU per poll {:.0} µs (all nodes), so {:.0} polls per node CPU-second",
        1e6 * node_total / total.max(1) as f64,
        total as f64 / node_total.max(1e-9)
    );
    if let Some(r) = redis_cpu {
        println!(
            "redis: CPU {r:.2} s = {:.0} µs per poll",
            1e6 * r / total.max(1) as f64
        );
    }
    println!(
        "farm (this process): CPU {farm_cpu:.2} s = {:.0} µs per poll",
        1e6 * farm_cpu / total.max(1) as f64
    );
    // On paper: 5,000,000 peers every 30 s.
    let need = 5_000_000.0 / 30.0;
    let node_us = 1e6 * node_total / total.max(1) as f64;
    print!(
        "on paper: 5,000,000 peers every 30 s = {need:.0} polls/s = {:.1} node cores at {node_us:.0} µs per poll",
        need * node_us / 1e6
    );
    match redis_cpu {
        Some(r) => {
            let redis_us = 1e6 * r / total.max(1) as f64;
            println!(
                ", and {:.1} Redis cores at {redis_us:.0} µs (Redis runs one core per process: as many Cluster masters)",
                need * redis_us / 1e6
            );
        }
        None => println!(),
    }
    drop(g);
    for (mut c, _) in nodes {
        let _ = c.kill();
        let _ = c.wait();
    }
    if let Some(mut r) = redis {
        let _ = r.kill();
        let _ = r.wait();
    }
    rt.shutdown_background();
}
