//! aria2 (`aria2c`) as a seed or a leech, watched through its JSON-RPC. DHT, local discovery
//! and peer exchange are off, so it finds peers only through the torrent's (HTTP) trackers.
//! Each aria2 has a loopback address of its own (`--interface`), like a separate host: peers
//! that accept one connection per address (Transmission) then tell it from a polling tracker.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use super::proc::Proc;
use super::{free_port, http, loopback, poll_until, Torrent};

/// The id aria2 gives the one download (`--gid`).
const GID: &str = "e0a1b2c3d4e5f607";

/// Options of an aria2 peer.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// Download limit, bytes/s (0: none).
    pub download_limit: u64,
    /// Upload limit, bytes/s (0: none).
    pub upload_limit: u64,
}

/// A running aria2c.
pub struct Aria2 {
    pub proc: Proc,
    /// Its BitTorrent listening address.
    pub addr: SocketAddr,
    rpc: SocketAddr,
}

/// aria2's view of its download (`aria2.tellStatus`).
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub status: String,
    pub completed: u64,
    pub total: u64,
    pub uploaded: u64,
    /// Pieces it has, from its hex bitfield.
    pub pieces: u32,
    pub connections: u32,
    pub seeder: bool,
}

impl Aria2 {
    /// Seed `t` from the data in `dir_with_data` (checked first, then served forever).
    pub fn seed(name: &str, dir: &Path, t: &Torrent, dir_with_data: &Path, o: Opts) -> Aria2 {
        Self::start(name, dir, t, dir_with_data, &o, &["--check-integrity=true"])
    }

    /// Download `t` into `out`, and keep seeding it afterwards.
    pub fn leech(name: &str, dir: &Path, t: &Torrent, out: &Path, o: Opts) -> Aria2 {
        Self::start(name, dir, t, out, &o, &[])
    }

    fn start(name: &str, dir: &Path, t: &Torrent, data: &Path, o: &Opts, extra: &[&str]) -> Aria2 {
        let ip = loopback();
        let (port, rpc) = (free_port(ip), free_port(Ipv4Addr::LOCALHOST));
        let mut c = Command::new("aria2c");
        c.args([
            "--no-conf",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--disable-ipv6=true",
            "--seed-ratio=0.0",
            "--file-allocation=none",
            "--auto-file-renaming=false",
            "--allow-overwrite=true",
            "--summary-interval=0",
            "--console-log-level=warn",
            "--enable-rpc=true",
            "--rpc-listen-all=false",
        ])
        .arg(format!("--interface={ip}"))
        .arg(format!("--bt-external-ip={ip}"))
        .arg(format!("--listen-port={port}"))
        .arg(format!("--rpc-listen-port={rpc}"))
        .arg(format!("--gid={GID}"))
        .arg(format!("--max-download-limit={}", o.download_limit))
        .arg(format!("--max-upload-limit={}", o.upload_limit))
        .arg(format!("--dir={}", data.display()))
        .arg(format!(
            "--log={}",
            dir.join(format!("{name}.aria2.log")).display()
        ))
        .arg("--log-level=info")
        .args(extra)
        .arg(&t.path);
        let mut a = Aria2 {
            proc: Proc::spawn(name, &mut c, dir, false),
            addr: SocketAddr::from((ip, port)),
            rpc: SocketAddr::from((Ipv4Addr::LOCALHOST, rpc)),
        };
        let up = poll_until(Duration::from_secs(20), || {
            a.proc.assert_running();
            a.try_status()
        });
        assert!(
            up.is_some(),
            "{name}'s RPC does not answer\n{}",
            a.proc.report()
        );
        a
    }

    /// One JSON-RPC call.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": "t", "method": method, "params": params});
        let r = http::request(
            self.rpc,
            "POST",
            "/jsonrpc",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )?;
        let v = r.json()?;
        if let Some(e) = v.get("error") {
            return Err(format!("{method}: {e}"));
        }
        Ok(v["result"].clone())
    }

    /// The download's status, `None` if aria2 does not answer (yet).
    pub fn try_status(&self) -> Option<Status> {
        let keys = json!([
            GID,
            [
                "status",
                "completedLength",
                "totalLength",
                "uploadLength",
                "bitfield",
                "connections",
                "seeder"
            ]
        ]);
        let v = self.call("aria2.tellStatus", keys).ok()?;
        let num = |k: &str| v[k].as_str().and_then(|s| s.parse().ok()).unwrap_or(0u64);
        let pieces = v["bitfield"]
            .as_str()
            .unwrap_or("")
            .chars()
            .filter_map(|c| c.to_digit(16))
            .map(u32::count_ones)
            .sum();
        Some(Status {
            status: v["status"].as_str().unwrap_or("").to_string(),
            completed: num("completedLength"),
            total: num("totalLength"),
            uploaded: num("uploadLength"),
            pieces,
            connections: num("connections") as u32,
            seeder: v["seeder"] == "true",
        })
    }

    /// The status; panics with the log if aria2 stopped answering.
    pub fn status(&mut self) -> Status {
        self.proc.assert_running();
        self.try_status()
            .unwrap_or_else(|| panic!("aria2 RPC does not answer\n{}", self.proc.report()))
    }

    /// Wait until it has every byte, verified (aria2 seeds afterwards).
    pub fn wait_complete(&mut self, limit: Duration) -> Status {
        poll_until(limit, || {
            let s = self.status();
            (s.total > 0 && s.completed == s.total && s.seeder).then_some(s)
        })
        .unwrap_or_else(|| {
            panic!(
                "{} did not complete within {limit:?}: {:?}\n{}",
                self.proc.name(),
                self.try_status(),
                self.proc.report()
            )
        })
    }
}
