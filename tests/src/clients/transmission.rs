//! Transmission (`transmission-daemon -f -g CONFIGDIR`) with a settings file written here (no
//! DHT, LPD, uTP, PEX or port mapping), driven through its JSON-RPC: add a torrent, read its
//! progress. It can run inside a network namespace (see [`super::netns`]), where it dials peers
//! that are not on 127.0.0.0/8.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use super::proc::Proc;
use super::{free_port, http, poll_until, Torrent};

/// Options of a Transmission daemon.
#[derive(Debug, Clone)]
pub struct Opts {
    /// The address it listens for peers on (and dials from).
    pub ip: Ipv4Addr,
    /// Run inside this network namespace (`ip netns exec`).
    pub netns: Option<String>,
    /// Download limit in KB/s (0: none).
    pub download_limit_kbps: u32,
    /// Upload limit in KB/s (0: none).
    pub upload_limit_kbps: u32,
    /// `encryption`: 0 prefer plaintext, 1 prefer encrypted (Transmission's default), 2 require.
    pub encryption: u8,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            ip: Ipv4Addr::LOCALHOST,
            netns: None,
            download_limit_kbps: 0,
            upload_limit_kbps: 0,
            encryption: 1,
        }
    }
}

/// A running transmission-daemon.
pub struct Transmission {
    pub proc: Proc,
    /// Its peer listening address.
    pub addr: SocketAddr,
    rpc: SocketAddr,
    netns: Option<String>,
    session: Mutex<String>,
}

/// One torrent as Transmission reports it (`torrent-get`).
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub percent_done: f64,
    /// 0 stopped, 1/2 checking, 3/4 downloading, 5/6 seeding.
    pub status: i64,
    pub uploaded_ever: u64,
    pub have_valid: u64,
    pub peers_connected: u64,
    pub error: String,
}

impl Transmission {
    /// Start a daemon with its config, logs and downloads under `dir/name`.
    pub fn start(name: &str, dir: &Path, o: Opts) -> Transmission {
        let home = dir.join(name);
        std::fs::create_dir_all(home.join("downloads")).expect("transmission dirs");
        // Ports are probed in our namespace; in a fresh namespace every port is free.
        let (peer_port, rpc_port) = (
            free_port(Ipv4Addr::LOCALHOST),
            free_port(Ipv4Addr::LOCALHOST),
        );
        let settings = json!({
            "rpc-enabled": true,
            "rpc-port": rpc_port,
            "rpc-bind-address": "127.0.0.1",
            "rpc-whitelist-enabled": true,
            "rpc-whitelist": "127.*",
            "rpc-host-whitelist-enabled": false,
            "rpc-authentication-required": false,
            "peer-port": peer_port,
            "peer-port-random-on-start": false,
            "bind-address-ipv4": o.ip.to_string(),
            "bind-address-ipv6": "::1",
            "dht-enabled": false,
            "lpd-enabled": false,
            "utp-enabled": false,
            "pex-enabled": false,
            "port-forwarding-enabled": false,
            "blocklist-enabled": false,
            "download-dir": home.join("downloads"),
            "incomplete-dir-enabled": false,
            "rename-partial-files": false,
            "start-added-torrents": true,
            "watch-dir-enabled": false,
            "ratio-limit-enabled": false,
            "idle-seeding-limit-enabled": false,
            "speed-limit-down": o.download_limit_kbps,
            "speed-limit-down-enabled": o.download_limit_kbps > 0,
            "speed-limit-up": o.upload_limit_kbps,
            "speed-limit-up-enabled": o.upload_limit_kbps > 0,
            "encryption": o.encryption,
            "message-level": 2,
        });
        std::fs::write(home.join("settings.json"), settings.to_string()).expect("settings.json");
        let mut c = match &o.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "transmission-daemon"]);
                c
            }
            None => Command::new("transmission-daemon"),
        };
        c.arg("-f")
            .arg("-g")
            .arg(&home)
            .arg("-e")
            .arg(home.join("transmission.log"));
        let mut t = Transmission {
            proc: Proc::spawn(name, &mut c, dir, false),
            addr: SocketAddr::from((o.ip, peer_port)),
            rpc: SocketAddr::from((Ipv4Addr::LOCALHOST, rpc_port)),
            netns: o.netns,
            session: Mutex::new(String::new()),
        };
        let up = poll_until(Duration::from_secs(20), || {
            t.proc.assert_running();
            t.call("session-get", json!({})).ok()
        });
        assert!(
            up.is_some(),
            "transmission-daemon's RPC does not answer\n{}",
            t.report()
        );
        t
    }

    /// One RPC call, doing the `X-Transmission-Session-Id` exchange when asked (409).
    pub fn call(&self, method: &str, arguments: Value) -> Result<Value, String> {
        let body = json!({"method": method, "arguments": arguments}).to_string();
        for _ in 0..3 {
            let sid = self.session.lock().unwrap().clone();
            let r = http::request_in(
                self.netns.as_deref(),
                self.rpc,
                "POST",
                "/transmission/rpc",
                &[("X-Transmission-Session-Id", &sid)],
                body.as_bytes(),
            )?;
            if r.status == 409 {
                let new = r
                    .header("X-Transmission-Session-Id")
                    .unwrap_or("")
                    .to_string();
                *self.session.lock().unwrap() = new;
                continue;
            }
            let v = r.json()?;
            if v["result"] != "success" {
                return Err(format!("{method}: {}", v["result"]));
            }
            return Ok(v["arguments"].clone());
        }
        Err(format!("{method}: no session id accepted"))
    }

    /// Add `t`, its data (present or to be downloaded) in `download_dir`; returns its id.
    pub fn add(&self, t: &Torrent, download_dir: &Path) -> i64 {
        let args = json!({"filename": t.path, "download-dir": download_dir, "paused": false});
        let v = self
            .call("torrent-add", args)
            .unwrap_or_else(|e| panic!("torrent-add: {e}\n{}", self.report()));
        let added = if v["torrent-added"].is_object() {
            &v["torrent-added"]
        } else {
            &v["torrent-duplicate"]
        };
        added["id"].as_i64().expect("torrent id")
    }

    /// Add `t` with its complete data in `data_dir`, verify it and wait until it seeds.
    pub fn add_seed(&mut self, t: &Torrent, data_dir: &Path) -> i64 {
        let id = self.add(t, data_dir);
        self.call("torrent-verify", json!({"ids": [id]}))
            .unwrap_or_else(|e| panic!("torrent-verify: {e}"));
        let seeding = poll_until(Duration::from_secs(30), || {
            self.proc.assert_running();
            let s = self.status(id);
            (s.percent_done >= 1.0 && s.status == 6).then_some(())
        });
        assert!(
            seeding.is_some(),
            "Transmission did not verify the data and seed: {:?}\n{}",
            self.status(id),
            self.report()
        );
        id
    }

    /// The torrent's status.
    pub fn status(&self, id: i64) -> Status {
        let fields = [
            "percentDone",
            "status",
            "uploadedEver",
            "haveValid",
            "peersConnected",
            "errorString",
        ];
        let v = self
            .call("torrent-get", json!({"ids": [id], "fields": fields}))
            .unwrap_or_else(|e| panic!("torrent-get: {e}\n{}", self.report()));
        let t = &v["torrents"][0];
        Status {
            percent_done: t["percentDone"].as_f64().unwrap_or(0.0),
            status: t["status"].as_i64().unwrap_or(-1),
            uploaded_ever: t["uploadedEver"].as_u64().unwrap_or(0),
            have_valid: t["haveValid"].as_u64().unwrap_or(0),
            peers_connected: t["peersConnected"].as_u64().unwrap_or(0),
            error: t["errorString"].as_str().unwrap_or("").to_string(),
        }
    }

    /// Wait until the torrent is complete and verified.
    pub fn wait_complete(&mut self, id: i64, limit: Duration) -> Status {
        poll_until(limit, || {
            self.proc.assert_running();
            let s = self.status(id);
            (s.percent_done >= 1.0).then_some(s)
        })
        .unwrap_or_else(|| {
            panic!(
                "Transmission did not complete within {limit:?}: {:?}\n{}",
                self.status(id),
                self.report()
            )
        })
    }

    /// The ends of the daemon's stderr and of its log file.
    pub fn report(&self) -> String {
        let log_file = self
            .proc
            .log_path()
            .with_file_name(self.proc.name())
            .join("transmission.log");
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!(
            "{}\n--- transmission.log, last lines:\n{}",
            self.proc.report(),
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }
}
