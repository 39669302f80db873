//! A libtorrent peer (python3-libtorrent, through `lt_client.py`) on its own loopback address.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::proc::Proc;
use super::{free_port, loopback, Torrent};

/// The driver script, shipped beside this module.
const SCRIPT: &str = include_str!("lt_client.py");

/// The Python that has the bindings: `$ENJAMBRE_PYTHON`, else Debian's `/usr/bin/python3`
/// (python3-libtorrent installs there), else `python3`.
pub fn python() -> String {
    if let Ok(p) = std::env::var("ENJAMBRE_PYTHON") {
        return p;
    }
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3".into()
    } else {
        "python3".into()
    }
}

/// What the script last printed about its torrent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub state: String,
    pub pieces: u32,
    pub piece_count: u32,
    /// `all_time_upload`: piece bytes sent since the torrent was added (across pauses).
    pub uploaded: u64,
    /// `all_time_download`: piece bytes received since the torrent was added.
    pub downloaded: u64,
    pub peers: u32,
    pub seeding: bool,
}

impl Status {
    fn parse(line: &str) -> Option<Status> {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 8 || f[0] != "status" {
            return None;
        }
        Some(Status {
            state: f[1].to_string(),
            pieces: f[2].parse().ok()?,
            piece_count: f[3].parse().ok()?,
            uploaded: f[4].parse().ok()?,
            downloaded: f[5].parse().ok()?,
            peers: f[6].parse().ok()?,
            seeding: f[7] == "1",
        })
    }
}

/// Options of a libtorrent peer.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// Peers to connect to at start.
    pub peers: Vec<SocketAddr>,
    /// Torrent download limit, bytes/s (0: none).
    pub download_limit: u64,
    /// Torrent upload limit, bytes/s (0: none).
    pub upload_limit: u64,
    /// `num_want` in announces (`Some(0)`: learn no peers from trackers).
    pub num_want: Option<u32>,
}

/// A running libtorrent peer.
pub struct Libtorrent {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub save: PathBuf,
}

impl Libtorrent {
    /// A seed of `t` whose data is in `save` (`seed_mode`: pieces trusted, checked on request).
    pub fn seed(name: &str, dir: &Path, t: &Torrent, save: &Path, opts: Opts) -> Libtorrent {
        Self::start("seed", name, dir, t, save, opts)
    }

    /// A leech of `t` downloading into `save`.
    pub fn leech(name: &str, dir: &Path, t: &Torrent, save: &Path, opts: Opts) -> Libtorrent {
        Self::start("leech", name, dir, t, save, opts)
    }

    fn start(mode: &str, name: &str, dir: &Path, t: &Torrent, save: &Path, o: Opts) -> Libtorrent {
        let script = dir.join("lt_client.py");
        if !script.exists() {
            std::fs::write(&script, SCRIPT).expect("write lt_client.py");
        }
        let ip: Ipv4Addr = loopback();
        let port = free_port(ip);
        let mut c = Command::new(python());
        c.arg(&script)
            .arg(mode)
            .arg(&t.path)
            .arg(save)
            .arg(format!("{ip}:{port}"))
            .args(["--download-limit", &o.download_limit.to_string()])
            .args(["--upload-limit", &o.upload_limit.to_string()]);
        for p in &o.peers {
            c.args(["--peer", &p.to_string()]);
        }
        if let Some(n) = o.num_want {
            c.args(["--num-want", &n.to_string()]);
        }
        let mut proc = Proc::spawn(name, &mut c, dir, true);
        let ready = proc.wait_line(Duration::from_secs(20), |l| l.starts_with("ready"));
        let bound: u16 = ready
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(port);
        Libtorrent {
            proc,
            addr: SocketAddr::V4(SocketAddrV4::new(ip, bound)),
            save: save.to_path_buf(),
        }
    }

    /// The last status line.
    pub fn status(&self) -> Status {
        self.proc
            .last_line(|l| l.starts_with("status"))
            .and_then(|l| Status::parse(&l))
            .unwrap_or_default()
    }

    /// Every status line with when it was printed.
    pub fn history(&self) -> Vec<(Instant, Status)> {
        self.proc
            .lines()
            .into_iter()
            .filter_map(|(t, l)| Some((t, Status::parse(&l)?)))
            .collect()
    }

    /// Pause the torrent (every connection dropped) or resume it.
    pub fn set_paused(&mut self, paused: bool) {
        self.proc.send_line(if paused { "pause" } else { "resume" });
    }

    /// Wait until a leech has every piece; panics with its log after `limit`.
    pub fn wait_done(&mut self, limit: Duration) {
        self.proc.wait_line(limit, |l| l == "done");
    }
}
