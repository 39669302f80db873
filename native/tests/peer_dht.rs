//! The DHT (BEP 5) on loopback, never the internet: every node is given an explicit bootstrap
//! (`none` for the first), and its saved routing table goes in the test's own state directory.
//!
//! A leech given only `magnet:?xt=urn:btih:…` finds our seeds through our nodes, and a
//! libtorrent seed through libtorrent's node, by the DHT alone; `--no-dht` opens no UDP socket; the routing table saved by one run bootstraps
//! the next; a flood of datagrams leaves the node's memory bounded and the node answering.

mod peer_support;

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peer_support::{
    create, data, enjambre_with_dht, free_tcp_udp_port, info_hash, libtorrent, run, Background,
};

/// A file of `len` bytes and its torrent, which names no tracker.
fn fixture(dir: &Path, len: usize, seed: u64) -> (Vec<u8>, PathBuf, PathBuf) {
    let bytes = data(len, seed);
    let src = dir.join(format!("src{seed}"));
    std::fs::create_dir_all(&src).unwrap();
    let file = src.join("shared.bin");
    std::fs::write(&file, &bytes).unwrap();
    let torrent = create(&file, &dir.join(format!("t{seed}.torrent")), &[], 65536);
    (bytes, file, torrent)
}

/// A loopback address and a port free there for TCP and UDP.
struct Addr {
    ip: &'static str,
    port: u16,
}

impl Addr {
    fn new(ip: &'static str) -> Self {
        Addr {
            ip,
            port: free_tcp_udp_port(),
        }
    }

    fn to_arg(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

/// Our seed on `at` (TCP and DHT on its port), joining the DHT through `bootstrap`.
fn seed(torrent: &Path, file: &Path, at: &Addr, bootstrap: &str, state: &Path) -> Background {
    let s = Background::spawn(
        enjambre_with_dht(state)
            .arg("seed")
            .arg(torrent)
            .arg("--data")
            .arg(file)
            .args(["--listen", at.ip, "--port", &at.port.to_string()])
            .args(["--dht-bootstrap", bootstrap]),
    );
    wait_udp_bound(s.0.as_ref().unwrap().id(), at.port);
    s
}

/// `enjambre get MAGNET` on `at`, with `bootstrap` when given; returns the output.
fn get_magnet(
    magnet: &str,
    out: &Path,
    at: &Addr,
    bootstrap: Option<&str>,
    state: &Path,
) -> std::process::Output {
    let mut cmd = enjambre_with_dht(state);
    cmd.arg("get")
        .arg(magnet)
        .arg("-o")
        .arg(out)
        .args(["--listen", at.ip, "--port", &at.port.to_string()])
        .env("RUST_LOG", "enjambre=info");
    if let Some(b) = bootstrap {
        cmd.args(["--dht-bootstrap", b]);
    }
    run(&mut cmd, Duration::from_secs(60))
}

fn magnet_of(torrent: &Path) -> String {
    format!("magnet:?xt=urn:btih:{}", info_hash(torrent))
}

/// The inodes of the UDP sockets bound to `port` (any address).
fn udp_inodes_on(port: u16) -> Vec<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local_port = cols
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                inodes.push(cols[9].to_string());
            }
        }
    }
    inodes
}

/// The inodes of process `pid`'s sockets.
fn socket_inodes(pid: u32) -> Vec<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect()
}

/// How many UDP sockets process `pid` has open.
fn udp_sockets(pid: u32) -> usize {
    let mut udp = Vec::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        udp.extend(
            text.lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().nth(9).map(str::to_string)),
        );
    }
    socket_inodes(pid)
        .iter()
        .filter(|i| udp.contains(i))
        .count()
}

/// Wait until process `pid` has a UDP socket on `port`.
fn wait_udp_bound(pid: u32, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mine = socket_inodes(pid);
        if udp_inodes_on(port).iter().any(|i| mine.contains(i)) {
            return;
        }
        assert!(Instant::now() < deadline, "no DHT socket on UDP {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Process `pid`'s resident memory in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn assert_complete(o: &std::process::Output, file: &Path, bytes: &[u8]) {
    assert!(
        o.status.success(),
        "the leech failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        std::fs::read(file).unwrap() == bytes,
        "downloaded bytes differ"
    );
}

#[test]
fn a_magnet_link_with_no_tracker_completes_from_three_seeds_found_on_the_dht() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (bytes, file, torrent) = fixture(dir.path(), 3_000_000, 41);
    let (a, b, c) = (
        Addr::new("127.0.0.2"),
        Addr::new("127.0.0.3"),
        Addr::new("127.0.0.4"),
    );
    // A starts the DHT; B and C join through it. All three seed.
    let _a = seed(&torrent, &file, &a, "none", &state.join("a"));
    let _b = seed(&torrent, &file, &b, &a.to_arg(), &state.join("b"));
    let _c = seed(&torrent, &file, &c, &a.to_arg(), &state.join("c"));
    let out = dir.path().join("out");
    let leech = Addr::new("127.0.0.5");
    let started = Instant::now();
    let o = get_magnet(
        &magnet_of(&torrent),
        &out,
        &leech,
        Some(&a.to_arg()),
        &state.join("leech"),
    );
    assert_complete(&o, &out.join("shared.bin"), &bytes);
    eprintln!("magnet to complete, DHT only: {:?}", started.elapsed());
}

#[test]
fn with_no_dht_no_udp_socket_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (_, file, torrent) = fixture(dir.path(), 200_000, 42);
    let on = Addr::new("127.0.0.2");
    let mut with = seed(&torrent, &file, &on, "none", &state);
    let off = Addr::new("127.0.0.3");
    let mut without = Background::spawn(
        enjambre_with_dht(&state)
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args([
                "--listen",
                off.ip,
                "--port",
                &off.port.to_string(),
                "--no-dht",
            ]),
    );
    // As the test suites run it: ENJAMBRE_NO_DHT=1.
    let by_env = Addr::new("127.0.0.4");
    let mut env_off = Background::spawn(
        peer_support::enjambre()
            .env("XDG_STATE_HOME", &state)
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args(["--listen", by_env.ip, "--port", &by_env.port.to_string()]),
    );
    for at in [&off, &by_env] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect((at.ip, at.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "a seed without the DHT never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let (with_pid, without_pid) = (
        with.0.as_ref().unwrap().id(),
        without.0.as_ref().unwrap().id(),
    );
    assert_eq!(udp_sockets(with_pid), 1, "the DHT's one socket");
    assert_eq!(udp_sockets(without_pid), 0, "--no-dht: no UDP socket");
    let env_pid = env_off.0.as_ref().unwrap().id();
    assert_eq!(udp_sockets(env_pid), 0, "ENJAMBRE_NO_DHT=1: no UDP socket");
    env_off.stop();
    without.stop();
    with.stop();
}

#[test]
fn the_routing_table_saved_by_one_run_bootstraps_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (bytes, file, torrent) = fixture(dir.path(), 1_000_000, 43);
    let (a, s) = (Addr::new("127.0.0.2"), Addr::new("127.0.0.3"));
    let _a = seed(&torrent, &file, &a, "none", &state.join("a"));
    let _s = seed(&torrent, &file, &s, &a.to_arg(), &state.join("s"));
    let mine = state.join("leech");
    let first = get_magnet(
        &magnet_of(&torrent),
        &dir.path().join("one"),
        &Addr::new("127.0.0.5"),
        Some(&a.to_arg()),
        &mine,
    );
    assert_complete(&first, &dir.path().join("one").join("shared.bin"), &bytes);
    let saved = std::fs::read_to_string(mine.join("enjambre").join("dht.nodes")).unwrap();
    assert!(saved.contains(&a.to_arg()), "saved nodes: {saved}");
    // No --dht-bootstrap: only the saved table can lead to the seeds (the public routers are
    // unreachable from here, and are not even tried when a table was saved).
    let second = get_magnet(
        &magnet_of(&torrent),
        &dir.path().join("two"),
        &Addr::new("127.0.0.6"),
        None,
        &mine,
    );
    assert_complete(&second, &dir.path().join("two").join("shared.bin"), &bytes);
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(!log.contains("public=true"), "{log}");
}

/// A KRPC query (bencoded), `kind` with `args` already encoded as a dictionary's inside.
fn query(tid: u32, kind: &str, args: &[u8]) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(b"d1:ad");
    q.extend_from_slice(args);
    q.extend_from_slice(format!("e1:q{}:{kind}1:t4:", kind.len()).as_bytes());
    q.extend_from_slice(&tid.to_be_bytes());
    q.extend_from_slice(b"1:y1:qe");
    q
}

fn id_arg(key: &str, id: &[u8; 20]) -> Vec<u8> {
    let mut a = format!("{}:{key}20:", key.len()).into_bytes();
    a.extend_from_slice(id);
    a
}

#[test]
fn a_flood_of_dht_datagrams_leaves_memory_bounded_and_the_node_answering() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (_, file, torrent) = fixture(dir.path(), 200_000, 44);
    let node = Addr::new("127.0.0.2");
    let s = seed(&torrent, &file, &node, "none", &state);
    let pid = s.0.as_ref().unwrap().id();
    let target = (node.ip, node.port);
    let senders: Vec<UdpSocket> = (0..16)
        .map(|i| UdpSocket::bind((format!("127.0.1.{}", i + 1), 0)).unwrap())
        .collect();
    let ping = |sock: &UdpSocket, tid: u32| {
        sock.send_to(&query(tid, "ping", &id_arg("id", &[7; 20])), target)
            .unwrap();
    };
    // It answers before the flood.
    let probe = UdpSocket::bind("127.0.0.9:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    // A ping each second (one may be dropped while the node's socket queue is full) until an
    // answer comes, for 15 s at most.
    let answers = |probe: &UdpSocket| {
        let mut buf = [0u8; 1500];
        (0..15).any(|_| {
            ping(probe, 0xbeef);
            probe
                .recv(&mut buf)
                .is_ok_and(|n| buf[..n].windows(6).any(|w| w == b"1:y1:r"))
        })
    };
    assert!(answers(&probe), "no answer to a ping before the flood");
    let before = rss_kib(pid);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let id = |r: &mut dyn FnMut() -> u64| {
        let mut b = [0u8; 20];
        for chunk in b.chunks_mut(8) {
            chunk.copy_from_slice(&r().to_le_bytes()[..chunk.len()]);
        }
        b
    };
    let started = Instant::now();
    let mut sent = 0u64;
    // Bounded in count and time: at most 200,000 datagrams over at most 10 s.
    while sent < 200_000 && started.elapsed() < Duration::from_secs(10) {
        let sock = &senders[(sent % 16) as usize];
        let tid = sent as u32;
        let who = id(&mut rand);
        let thing = id(&mut rand);
        let datagram = match sent % 5 {
            0 => {
                let n = (rand() % 1400) as usize + 1;
                (0..n).map(|_| rand() as u8).collect()
            }
            1 => query(tid, "ping", &id_arg("id", &who)),
            2 => query(
                tid,
                "find_node",
                &[id_arg("id", &who), id_arg("target", &thing)].concat(),
            ),
            3 => query(
                tid,
                "get_peers",
                &[id_arg("id", &who), id_arg("info_hash", &thing)].concat(),
            ),
            _ => {
                let mut a = id_arg("id", &who);
                a.extend_from_slice(&id_arg("info_hash", &thing));
                a.extend_from_slice(b"4:porti6881e5:token4:abcd");
                query(tid, "announce_peer", &a)
            }
        };
        let _ = sock.send_to(&datagram, target);
        sent += 1;
        if sent % 64 == 0 {
            // Drain the answers so the senders' buffers never fill.
            for s in &senders {
                s.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 1500];
                while s.recv(&mut buf).is_ok() {}
            }
        }
    }
    let after = rss_kib(pid);
    eprintln!(
        "flood: {sent} datagrams in {:?}; RSS {before} KiB before, {after} KiB after",
        started.elapsed()
    );
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    let quiet = Instant::now();
    assert!(answers(&probe), "no answer to a ping after the flood");
    eprintln!("answering again {:?} after the flood", quiet.elapsed());
}

/// Two libtorrent sessions: a DHT node alone (the DHT's first node), and a seed that joins
/// through it and announces every second. (Our node could not be libtorrent's bootstrap:
/// `mainline` 8 drops KRPC messages whose transaction id is not 4 bytes, and libtorrent's are
/// 2; its answers to our queries echo our ids, so we reach libtorrent's nodes.)
const LT_SEED: &str = r#"
import sys, time, libtorrent as lt
torrent, save, node_iface, seed_iface = sys.argv[1:5]
common = {'enable_dht': True, 'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
          'dht_restrict_routing_ips': False, 'dht_restrict_search_ips': False,
          'dht_enforce_node_id': False, 'dht_ignore_dark_internet': False,
          'dht_prefer_verified_node_ids': False, 'allow_multiple_connections_per_ip': True,
          'alert_mask': 0}
node = lt.session(dict(common, listen_interfaces=node_iface, dht_bootstrap_nodes=''))
seed = lt.session(dict(common, listen_interfaces=seed_iface, dht_bootstrap_nodes=node_iface))
h = seed.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save,
                      'flags': lt.torrent_flags.seed_mode})
print('ready', flush=True)
deadline = time.time() + 60
while time.time() < deadline:
    h.force_dht_announce()
    time.sleep(1)
"#;

#[test]
fn a_magnet_link_completes_from_a_libtorrent_seed_found_on_a_libtorrent_dht() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (bytes, file, torrent) = fixture(dir.path(), 3_000_000, 45);
    let (node, lt_at) = (Addr::new("127.0.0.2"), Addr::new("127.0.0.3"));
    let mut lt_seed = Background(Some(
        Command::new("/usr/bin/python3")
            .args(["-c", LT_SEED])
            .arg(&torrent)
            .arg(file.parent().unwrap())
            .arg(node.to_arg())
            .arg(lt_at.to_arg())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3"),
    ));
    let mut line = String::new();
    BufReader::new(lt_seed.0.as_mut().unwrap().stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready"), "{line}");
    let out = dir.path().join("out");
    let started = Instant::now();
    let o = get_magnet(
        &magnet_of(&torrent),
        &out,
        &Addr::new("127.0.0.5"),
        Some(&node.to_arg()),
        &state,
    );
    lt_seed.stop();
    assert_complete(&o, &out.join("shared.bin"), &bytes);
    eprintln!(
        "magnet to complete from libtorrent, DHT only: {:?}",
        started.elapsed()
    );
}

fn installed(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[test]
fn a_magnet_link_completes_from_an_aria2_seed_that_joined_through_our_node() {
    if !installed("aria2c") {
        eprintln!("skipped: aria2c not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (bytes, file, torrent) = fixture(dir.path(), 3_000_000, 47);
    // Our node A starts the DHT (seeding another torrent); aria2 (4-byte transaction ids,
    // unlike libtorrent) joins through it and announces its seed there.
    let (_, other_file, other) = fixture(dir.path(), 100_000, 48);
    let a = Addr::new("127.0.0.2");
    let _a = seed(&other, &other_file, &a, "none", &state.join("a"));
    let (tcp, udp) = (free_tcp_udp_port(), free_tcp_udp_port());
    let mut aria = Background::spawn(
        Command::new("aria2c")
            .arg("-d")
            .arg(file.parent().unwrap())
            .args(["-V", "--seed-ratio=0.0", "--seed-time=60"])
            .arg(format!("--listen-port={tcp}"))
            .args(["--enable-dht=true", &format!("--dht-listen-port={udp}")])
            .arg(format!("--dht-entry-point={}", a.to_arg()))
            .arg(format!(
                "--dht-file-path={}",
                dir.path().join("aria2.dht").display()
            ))
            .args([
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                "--summary-interval=0",
                "--console-log-level=warn",
            ])
            .arg(&torrent),
    );
    peer_support::wait_listening(tcp);
    let out = dir.path().join("out");
    let started = Instant::now();
    let o = get_magnet(
        &magnet_of(&torrent),
        &out,
        &Addr::new("127.0.0.5"),
        Some(&a.to_arg()),
        &state.join("leech"),
    );
    aria.stop();
    assert_complete(&o, &out.join("shared.bin"), &bytes);
    eprintln!(
        "magnet to complete from aria2, DHT only: {:?}",
        started.elapsed()
    );
}
