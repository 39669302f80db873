//! Shared helpers of the tests of tracker nodes over Redis (`tracker_redis.rs`,
//! `tracker_redis_cluster.rs`): reading announce replies and `/metrics`, and a fake peer on its
//! own loopback address that counts the tracker's polls; a `redis-server` of the test's own.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use enjambre_core::InfoHash;

use crate::tracker_support::{self, bbytes, bdecode, compact_ports, peer_id, Tracker};

pub mod kill;

/// The peers' ports of an announce reply, sorted; panics on a failure reason.
pub fn ports_of(body: &[u8]) -> Vec<u16> {
    let v = bdecode(body);
    assert!(
        bbytes(&v, "failure reason").is_none(),
        "unexpected failure: {}",
        String::from_utf8_lossy(body)
    );
    let mut p = compact_ports(bbytes(&v, "peers").expect("peers"));
    p.sort_unstable();
    p
}

/// A counter or gauge of the tracker's `/metrics`.
pub fn metric(t: &Tracker, name: &str) -> u64 {
    let (_, _, body) = t.get("/metrics");
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// A peer on its own loopback address that answers the tracker's poll: handshake back, then a
/// bitfield of pieces 0 and 2 (of 8); it notes the time of every connection.
pub struct FakePeer {
    pub ip: String,
    pub port: u16,
    polls: std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
}

impl FakePeer {
    pub fn start(ip: String) -> FakePeer {
        let l = TcpListener::bind((ip.as_str(), 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let polls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = polls.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                seen.lock().unwrap().push(Instant::now());
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut hs = [0u8; 68];
                    if s.read_exact(&mut hs).is_err() {
                        return;
                    }
                    hs[48..68].copy_from_slice(b"-FK0001-000000000000");
                    let _ = s.write_all(&hs);
                    let _ = s.write_all(&[0, 0, 0, 2, 5, 0b1010_0000]);
                    let mut sink = [0u8; 256];
                    while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
                });
            }
        });
        FakePeer { ip, port, polls }
    }

    /// Announce to `t` from the peer's own address (the tracker stores the connection's).
    pub fn announce(&self, t: &Tracker, ih: &InfoHash, n: u32) {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let from: std::net::SocketAddr = format!("{}:0", self.ip).parse().unwrap();
        s.bind(&from.into()).unwrap();
        s.connect(&t.http.into()).unwrap();
        let mut s: TcpStream = s.into();
        write!(
            s,
            "GET /announce?info_hash={}&peer_id={}&port={}&uploaded=0&downloaded=0&left=100 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            tracker_support::pct(&ih.0),
            tracker_support::pct(&peer_id(n)),
            self.port
        )
        .unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.contains("8:interval"), "{reply}");
    }

    /// Times of the polls from `from` on.
    pub fn polls_since(&self, from: Instant) -> Vec<Instant> {
        let v = self.polls.lock().unwrap();
        v.iter().copied().filter(|t| *t >= from).collect()
    }
}

/// Wait up to 15 s for a `/metrics` value.
pub fn wait_metric(t: &Tracker, name: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while metric(t, name) != want {
        assert!(
            Instant::now() < deadline,
            "{name} never {want}:\n{}",
            t.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A free loopback TCP port.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of the test's own, on a free loopback port.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    aof: bool,
}

impl Redis {
    /// Start one on a free port; `aof`: append-only file on, fsync'd at every write.
    pub fn start(aof: bool) -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!("skipped: redis-server not installed");
            return None;
        }
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            aof,
        };
        r.spawn();
        Some(r)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.aof {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        self.child = Some(cmd.spawn().expect("spawn redis-server"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill it at once (SIGKILL: only what it had acknowledged and written survives).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Run one command with the `redis` crate and return its reply as text (`INFO`'s lines,
    /// a score, …).
    pub fn query(&self, args: &[&str]) -> String {
        let client = redis::Client::open(self.url()).unwrap();
        let mut c = client.get_connection().unwrap();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let v: Option<String> = cmd.query(&mut c).unwrap();
        v.unwrap_or_default()
    }

    /// How many times Redis ran `command` since its statistics were last reset.
    pub fn calls(&self, command: &str) -> u64 {
        let info = self.query(&["INFO", "commandstats"]);
        let head = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(&head))
            .and_then(|l| l.split(',').next()?.parse().ok())
            .unwrap_or(0)
    }

    /// A tracker node on this store, not polling.
    pub fn node(&self, extra: &[&str]) -> Tracker {
        let url = self.url();
        let mut args = vec!["--store", &url, "--poll-interval", "0"];
        args.extend_from_slice(extra);
        Tracker::start(&args)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An announce to `t` that succeeded, retried for up to 10 s while the store is not ready.
pub fn announce_ok(
    t: &Tracker,
    ih: &InfoHash,
    n: u32,
    port: u16,
    left: u64,
    extra: &str,
) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = t.announce(ih, &peer_id(n), port, left, extra);
        if bbytes(&bdecode(&body), "failure reason").is_none() {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{}\n{}",
            String::from_utf8_lossy(&body),
            t.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
