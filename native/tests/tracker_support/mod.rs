//! Shared helpers of the tracker integration tests: start the built `enjambre tracker` on a
//! loopback port, talk HTTP and UDP to it, decode its replies with the core codecs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enjambre_core::bencode::{decode_with, DecodeOptions, Value};
use enjambre_core::tracker::udp::{Request, Response};
use enjambre_core::tracker::{compact_peers, AnnounceEvent, COMPACT_V4_LEN};
use enjambre_core::{InfoHash, PeerId};

/// A running tracker process, killed on drop.
pub struct Tracker {
    pub child: Child,
    pub http: SocketAddr,
    pub udp: SocketAddr,
    pub stderr: PathBuf,
}

/// A fresh scratch directory under the target dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "enjambre-tracker-test-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

impl Tracker {
    /// Start on 127.0.0.1 with `args` added.
    pub fn start(args: &[&str]) -> Tracker {
        Self::start_on("127.0.0.1:0", args)
    }

    /// Start listening on `listen` with `args` added.
    pub fn start_on(listen: &str, args: &[&str]) -> Tracker {
        let log = std::env::temp_dir().join(format!(
            "enjambre-tracker-{}-{}.log",
            std::process::id(),
            rand_u32()
        ));
        let mut child = Command::new(enjambre_bin())
            .arg("-vv")
            .arg("tracker")
            .arg("--listen")
            .arg(listen)
            .args(args)
            .env("RUST_LOG", "debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn enjambre");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read listen line");
        let find = |key: &str| -> SocketAddr {
            let start = line
                .find(key)
                .unwrap_or_else(|| {
                    panic!(
                        "tracker did not start (no {key} in {line:?}); is {} another checkout's build? log:\n{}",
                        enjambre_bin(),
                        std::fs::read_to_string(&log).unwrap_or_default()
                    )
                })
                + key.len();
            line[start..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let (http, udp) = (find("http="), find("udp="));
        Tracker {
            child,
            http,
            udp,
            stderr: log,
        }
    }

    /// The tracker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Send SIGTERM and wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "tracker did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }

    /// GET `path`; returns (status, head, body).
    pub fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        raw_http(
            self.http,
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    }

    /// GET a JSON document.
    pub fn json(&self, path: &str) -> serde_json::Value {
        let (status, _, body) = self.get(path);
        assert_eq!(
            status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).expect("json")
    }

    /// An HTTP announce; `extra` is appended to the query.
    pub fn announce(
        &self,
        ih: &InfoHash,
        peer_id: &[u8; 20],
        port: u16,
        left: u64,
        extra: &str,
    ) -> Vec<u8> {
        let (status, _, body) = self.get(&format!(
            "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}{extra}",
            pct(&ih.0),
            pct(peer_id)
        ));
        assert_eq!(status, 200);
        body
    }

    /// Wait until `f` holds on the swarm JSON, or panic after `timeout`.
    pub fn wait_swarm(
        &self,
        ih: &InfoHash,
        timeout: Duration,
        f: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, _, body) = self.get(&format!("/swarm/{ih}"));
            if status == 200 {
                let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
                if f(&v) {
                    return v;
                }
                if Instant::now() > deadline {
                    panic!("condition not met; swarm: {v:#}\nlog:\n{}", self.log());
                }
            } else if Instant::now() > deadline {
                panic!("swarm not found\nlog:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// The `enjambre` binary under test: `ENJAMBRE_BIN` when set (to run a scenario against
/// another build, such as the one before a fix), else the one cargo built.
pub fn enjambre_bin() -> String {
    std::env::var("ENJAMBRE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_enjambre").to_owned())
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish() as u32
}

/// Percent-encode every byte.
pub fn pct(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// Send raw bytes, read until close; returns (status, head, body). Status 0 when nothing came back.
pub fn raw_http(addr: SocketAddr, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    split_response(&buf)
}

/// Split one HTTP response into (status, head, body).
pub fn split_response(buf: &[u8]) -> (u16, String, Vec<u8>) {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, String::new(), Vec::new());
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, buf[end + 4..].to_vec())
}

/// Decode a bencoded body (keys need not be sorted, to check what we get, not to judge it).
pub fn bdecode(body: &[u8]) -> Value<'_> {
    decode_with(
        body,
        DecodeOptions {
            require_sorted_keys: true,
        },
    )
    .unwrap_or_else(|e| panic!("bad bencode {e}: {}", String::from_utf8_lossy(body)))
}

/// An integer field of a bencoded dict.
pub fn bint(v: &Value<'_>, key: &str) -> i64 {
    v.as_dict()
        .and_then(|d| d.get(key.as_bytes()))
        .and_then(|x| x.as_int())
        .unwrap_or_else(|| panic!("no int {key}"))
}

/// A byte-string field of a bencoded dict.
pub fn bbytes<'a>(v: &Value<'a>, key: &str) -> Option<&'a [u8]> {
    v.as_dict()
        .and_then(|d| d.get(key.as_bytes()))
        .and_then(|x| x.as_bytes())
}

/// Compact IPv4 peers as ports (all tests run on 127.0.0.1).
pub fn compact_ports(peers: &[u8]) -> Vec<u16> {
    assert_eq!(peers.len() % COMPACT_V4_LEN, 0);
    compact_peers(peers, false)
        .map(|a| {
            assert_eq!(a.ip(), std::net::Ipv4Addr::LOCALHOST);
            a.port()
        })
        .collect()
}

/// A peer id with a recognisable prefix and `n` in it.
pub fn peer_id(n: u32) -> [u8; 20] {
    let mut id = *b"-TT0001-000000000000";
    id[8..12].copy_from_slice(&n.to_be_bytes());
    id
}

/// A bencoded single-file torrent with `pieces` pieces of 16 KiB; returns (bytes, info-hash).
pub fn make_torrent(name: &str, pieces: u32) -> (Vec<u8>, InfoHash) {
    let piece_len = 16384u64;
    let length = piece_len * u64::from(pieces) - 100;
    let mut info = Vec::new();
    info.extend_from_slice(
        format!(
            "d6:lengthi{length}e4:name{}:{name}12:piece lengthi{piece_len}e6:pieces{}:",
            name.len(),
            pieces * 20
        )
        .as_bytes(),
    );
    for i in 0..pieces * 20 {
        info.push((i % 251) as u8);
    }
    info.push(b'e');
    let ih = InfoHash(enjambre_core::sha1::digest::<enjambre_core::sha1::Sha1Smol>(&info));
    let mut t = b"d8:announce22:http://127.0.0.1/annce4:info".to_vec();
    t.extend_from_slice(&info);
    t.push(b'e');
    (t, ih)
}

/// Write a torrent file into `dir`.
pub fn write_torrent(dir: &Path, name: &str, pieces: u32) -> (PathBuf, InfoHash) {
    let (bytes, ih) = make_torrent(name, pieces);
    let p = dir.join(format!("{name}.torrent"));
    std::fs::write(&p, bytes).unwrap();
    (p, ih)
}

/// A UDP client of BEP 15.
pub struct UdpClient {
    pub sock: UdpSocket,
    pub tracker: SocketAddr,
    pub conn: u64,
}

impl UdpClient {
    /// Bind on loopback and connect to the tracker.
    pub fn connect(tracker: SocketAddr) -> UdpClient {
        let sock = UdpSocket::bind((tracker.ip(), 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut c = UdpClient {
            sock,
            tracker,
            conn: 0,
        };
        let mut buf = [0u8; 2048];
        let n = c
            .request(&Request::Connect { transaction_id: 7 }, &mut buf)
            .expect("connect reply");
        match Response::decode(&buf[..n]).expect("decode") {
            Response::Connect {
                transaction_id: 7,
                connection_id,
            } => c.conn = connection_id,
            other => panic!("unexpected {other:?}"),
        }
        c
    }

    /// Send a request and wait for its reply, the datagram carrying its transaction id (None on
    /// timeout); replies to earlier raw packets still on their way are skipped.
    pub fn request(&self, r: &Request<'_>, buf: &mut [u8]) -> Option<usize> {
        let mut out = [0u8; 2048];
        let n = r.encode(&mut out).unwrap();
        self.send_raw(&out[..n]);
        let id = r.transaction_id().to_be_bytes();
        loop {
            let got = self.recv(buf)?;
            if buf[..got].get(4..8) == Some(&id[..]) {
                return Some(got);
            }
        }
    }

    /// Send raw bytes.
    pub fn send_raw(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.tracker).unwrap();
    }

    /// Receive one datagram (None on timeout).
    pub fn recv(&self, buf: &mut [u8]) -> Option<usize> {
        self.sock.recv_from(buf).ok().map(|(n, _)| n)
    }

    /// An announce with the client's connection id.
    #[allow(clippy::too_many_arguments)]
    pub fn announce(
        &self,
        ih: InfoHash,
        id: [u8; 20],
        port: u16,
        left: u64,
        event: AnnounceEvent,
        num_want: i32,
        buf: &mut [u8],
    ) -> usize {
        self.request(&self.announce_req(ih, id, port, left, event, num_want), buf)
            .expect("announce reply")
    }

    /// The announce request itself.
    pub fn announce_req(
        &self,
        ih: InfoHash,
        id: [u8; 20],
        port: u16,
        left: u64,
        event: AnnounceEvent,
        num_want: i32,
    ) -> Request<'static> {
        Request::Announce {
            connection_id: self.conn,
            transaction_id: 99,
            info_hash: ih,
            peer_id: PeerId(id),
            downloaded: 0,
            left,
            uploaded: 0,
            event,
            ip: 0,
            key: 1,
            num_want,
            port,
        }
    }
}
