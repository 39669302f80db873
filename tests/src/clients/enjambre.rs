//! Our own binary as the tests run it: `enjambre create`, `enjambre tracker` (with its swarm
//! API and scrape), and `enjambre get` / `enjambre seed` with `--json` progress lines.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use enjambre_core::bencode::decode;
use serde_json::Value;

use super::proc::Proc;
use super::{free_port, http, poll_until, Torrent};

/// The `enjambre` binary: `$ENJAMBRE_BIN`, else `enjambre` beside the test binary's profile
/// directory (`target/<profile>/deps/..`), which `cargo build [--release] -p enjambre` fills.
pub fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ENJAMBRE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let p = profile_dir.join("enjambre");
    assert!(
        p.is_file(),
        "{} not found: build it first (`cargo build --release -p enjambre`, as tests/run.sh does)",
        p.display()
    );
    p
}

/// `enjambre ARGS…` with plain, uncoloured logs.
pub fn command() -> Command {
    command_in(None)
}

/// `enjambre ARGS…`, inside network namespace `netns` when given.
pub fn command_in(netns: Option<&str>) -> Command {
    let mut c = match netns {
        Some(ns) => super::netns::Pair::exec(ns, &bin()),
        None => Command::new(bin()),
    };
    c.env("NO_COLOR", "1");
    // Off the DHT: the harness's swarms never reach the public routers.
    c.env("ENJAMBRE_NO_DHT", "1");
    c
}

/// `enjambre create SRC -o OUT --force --piece-length N --tracker URL…`, checked and loaded (a
/// fixture made again for the same scenario replaces its torrent).
pub fn create(src: &Path, out: &Path, trackers: &[String], piece_length: u32) -> Torrent {
    let mut c = command();
    c.arg("create")
        .arg(src)
        .arg("-o")
        .arg(out)
        .arg("--force")
        .args(["--piece-length", &piece_length.to_string()]);
    for t in trackers {
        c.args(["--tracker", t]);
    }
    let o = c.output().expect("run enjambre create");
    assert!(
        o.status.success(),
        "enjambre create failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    Torrent::load(out)
}

/// A running `enjambre tracker` on 127.0.0.1 (HTTP and UDP on one free port).
pub struct Tracker {
    pub proc: Proc,
    pub http: SocketAddr,
    netns: Option<String>,
}

/// BEP 48 scrape figures of one torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scrape {
    pub complete: i64,
    pub downloaded: i64,
    pub incomplete: i64,
}

impl Tracker {
    /// Start with `args` added to `tracker --listen 127.0.0.1:0`; logs in `dir`.
    pub fn start(dir: &Path, args: &[&str]) -> Tracker {
        Self::start_in(dir, None, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), args)
    }

    /// The announce URL of a tracker to be started on 127.0.0.1:`port`.
    pub fn url_for(port: u16) -> String {
        format!("http://127.0.0.1:{port}/announce")
    }

    /// Start listening on `listen` (port 0: a free one), inside `netns` when given.
    pub fn start_in(dir: &Path, netns: Option<&str>, listen: SocketAddr, args: &[&str]) -> Tracker {
        let mut c = command_in(netns);
        c.args(["-vv", "tracker", "--listen", &listen.to_string()])
            .args(args);
        let mut proc = Proc::spawn("enjambre-tracker", &mut c, dir, true);
        let line = proc.wait_line(Duration::from_secs(20), |l| l.contains("http="));
        let http = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http="))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no http address in {line:?}"));
        Tracker {
            proc,
            http,
            netns: netns.map(str::to_string),
        }
    }

    /// `http://127.0.0.1:PORT/announce`.
    pub fn announce_url(&self) -> String {
        format!("http://{}/announce", self.http)
    }

    /// `udp://127.0.0.1:PORT/announce` (same port number).
    pub fn udp_url(&self) -> String {
        format!("udp://{}/announce", self.http)
    }

    /// `GET /swarm/<hex>` as JSON, `None` while the tracker does not know the torrent.
    pub fn swarm(&self, t: &Torrent) -> Option<Value> {
        let r = self.get(&format!("/swarm/{}", t.hex())).ok()?;
        (r.status == 200).then(|| r.json().ok()).flatten()
    }

    /// The swarm API's entry of the peer listening on `port`.
    pub fn peer(&self, t: &Torrent, port: u16) -> Option<Value> {
        let s = self.swarm(t)?;
        s["peers"]
            .as_array()?
            .iter()
            .find(|p| port_of(p) == Some(port))
            .cloned()
    }

    /// `GET /scrape?info_hash=…` decoded.
    pub fn scrape(&self, t: &Torrent) -> Scrape {
        let path = format!("/scrape?info_hash={}", http::percent_encode(&t.info_hash.0));
        let r = self.get(&path).expect("scrape");
        scrape_figures(&r.body, t).unwrap_or_else(|e| panic!("scrape: {e}"))
    }

    /// GET `path` from the tracker (from inside its namespace if it runs in one).
    pub fn get(&self, path: &str) -> Result<http::Response, String> {
        http::request_in(self.netns.as_deref(), self.http, "GET", path, &[], &[])
    }

    /// The end of the tracker's log, for failure messages.
    pub fn report(&self) -> String {
        self.proc.report()
    }
}

/// The port of a swarm API peer entry (`"addr": "ip:port"`).
pub fn port_of(peer: &Value) -> Option<u16> {
    peer["addr"]
        .as_str()?
        .parse::<SocketAddr>()
        .ok()
        .map(|a| a.port())
}

/// The figures of `t` in a bencoded BEP 48 scrape response.
pub fn scrape_figures(body: &[u8], t: &Torrent) -> Result<Scrape, String> {
    let v = decode(body).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(body)))?;
    let files = v
        .as_dict()
        .and_then(|d| d.get(b"files"))
        .and_then(|f| f.as_dict());
    let entry = files
        .and_then(|f| f.get(&t.info_hash.0))
        .and_then(|e| e.as_dict())
        .ok_or_else(|| {
            format!(
                "no entry for {} in {}",
                t.hex(),
                String::from_utf8_lossy(body)
            )
        })?;
    let int = |k: &[u8]| entry.get(k).and_then(|v| v.as_int()).unwrap_or(-1);
    Ok(Scrape {
        complete: int(b"complete"),
        downloaded: int(b"downloaded"),
        incomplete: int(b"incomplete"),
    })
}

/// How to run `enjambre get` or `enjambre seed`.
#[derive(Debug, Clone)]
pub struct PeerOpts {
    /// The address to listen on and announce from.
    pub ip: Ipv4Addr,
    /// The TCP port (0: a free one is picked here, so the test knows it).
    pub port: u16,
    /// Peers to dial besides the trackers' (`--peer`).
    pub peers: Vec<SocketAddr>,
    /// Any other arguments.
    pub extra: Vec<String>,
    /// Run inside this network namespace.
    pub netns: Option<String>,
}

impl Default for PeerOpts {
    fn default() -> Self {
        PeerOpts {
            ip: Ipv4Addr::LOCALHOST,
            port: 0,
            peers: Vec::new(),
            extra: Vec::new(),
            netns: None,
        }
    }
}

/// A running `enjambre get` or `enjambre seed` printing `--json` lines.
pub struct Peer {
    pub proc: Proc,
    pub addr: SocketAddr,
    netns: Option<String>,
}

impl Peer {
    /// `enjambre get TORRENT -o OUT --json …` as `name` (logs in `dir`).
    pub fn get(name: &str, dir: &Path, t: &Torrent, out: &Path, opts: PeerOpts) -> Peer {
        let mut c = command_in(opts.netns.as_deref());
        c.arg("get").arg(&t.path).arg("-o").arg(out);
        Self::spawn(name, dir, c, opts)
    }

    /// `enjambre get LINK -o OUT --json …` for a magnet link (or any source given as text).
    pub fn get_link(name: &str, dir: &Path, link: &str, out: &Path, opts: PeerOpts) -> Peer {
        let mut c = command_in(opts.netns.as_deref());
        c.arg("get").arg(link).arg("-o").arg(out);
        Self::spawn(name, dir, c, opts)
    }

    /// `enjambre seed TORRENT --data DATA --json …`; returns once it accepts connections.
    pub fn seed(name: &str, dir: &Path, t: &Torrent, data: &Path, opts: PeerOpts) -> Peer {
        let mut c = command_in(opts.netns.as_deref());
        c.arg("seed").arg(&t.path).arg("--data").arg(data);
        let mut p = Self::spawn(name, dir, c, opts);
        let addr = p.addr;
        if p.netns.is_some() {
            // Not reachable from here: wait for its first progress line instead.
            p.proc
                .wait_line(Duration::from_secs(30), |l| l.contains("\"type\""));
            return p;
        }
        let up = poll_until(Duration::from_secs(30), || {
            p.proc.assert_running();
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        });
        assert!(
            up.is_some(),
            "{name} does not listen on {addr}\n{}",
            p.proc.report()
        );
        p
    }

    fn spawn(name: &str, dir: &Path, mut c: Command, mut opts: PeerOpts) -> Peer {
        if opts.port == 0 {
            // In a namespace of its own every port is free; probe any here.
            let probe = if opts.netns.is_some() {
                Ipv4Addr::LOCALHOST
            } else {
                opts.ip
            };
            opts.port = free_port(probe);
        }
        c.args([
            "--json",
            "--listen",
            &opts.ip.to_string(),
            "--port",
            &opts.port.to_string(),
        ]);
        for p in &opts.peers {
            c.args(["--peer", &p.to_string()]);
        }
        c.args(&opts.extra).env(
            "RUST_LOG",
            std::env::var("ENJAMBRE_TEST_LOG").unwrap_or_else(|_| "info".into()),
        );
        let proc = Proc::spawn(name, &mut c, dir, true);
        Peer {
            proc,
            addr: SocketAddr::V4(SocketAddrV4::new(opts.ip, opts.port)),
            netns: opts.netns,
        }
    }

    /// The last JSON line of `type`.
    pub fn last(&self, kind: &str) -> Option<Value> {
        let tag = format!("\"type\":\"{kind}\"");
        let line = self.proc.last_line(|l| l.contains(&tag))?;
        serde_json::from_str(&line).ok()
    }

    /// Bytes verified so far, from the last progress line (0 before the first).
    pub fn bytes_done(&self) -> u64 {
        self.last("progress")
            .and_then(|v| v["bytes_done"].as_u64())
            .unwrap_or(0)
    }

    /// Wait for a `get` to exit 0 after completing; panics with its log otherwise.
    pub fn wait_complete(&mut self, limit: Duration) {
        let status = self.proc.wait_exit(limit);
        assert!(
            status.success(),
            "{} exited with {status} instead of completing\n{}",
            self.proc.name(),
            self.proc.report()
        );
    }

    /// Wait for the `completed` event of a `get --seed` that keeps running.
    pub fn wait_completed_event(&mut self, limit: Duration) {
        self.proc
            .wait_line(limit, |l| l.contains("\"type\":\"completed\""));
    }
}
