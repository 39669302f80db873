//! Real BitTorrent clients as children of a test, on loopback: our `enjambre` binary (tracker,
//! seed, leech), Transmission, aria2, libtorrent (a Python script) and opentracker. Each wrapper
//! kills its process when dropped, so a failing test leaves nothing running.
//!
//! Also the small things every scenario needs: a scratch directory, free ports, distinct
//! loopback addresses, deterministic data, and a bounded wait.

pub mod aria2;
pub mod enjambre;
pub mod fixture;
pub mod http;
pub mod libtorrent;
pub mod netns;
pub mod opentracker;
pub mod proc;
pub mod swarm;
pub mod transmission;

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use enjambre_core::metainfo::Metainfo;
use enjambre_core::InfoHash;

/// A scratch directory removed on drop (kept when `ENJAMBRE_KEEP_TEST_DIRS` is set), readable
/// by every user (opentracker drops to `nobody`).
pub struct Scratch {
    dir: Option<tempfile::TempDir>,
}

impl Scratch {
    /// A new directory named after the scenario.
    pub fn new(scenario: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("enjambre-{scenario}-"))
            .tempdir()
            .expect("create scratch dir");
        set_mode(dir.path(), 0o755);
        Scratch { dir: Some(dir) }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("scratch dir").path()
    }

    /// A subdirectory, created.
    pub fn sub(&self, name: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::create_dir_all(&p).expect("create subdir");
        set_mode(&p, 0o755);
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("ENJAMBRE_KEEP_TEST_DIRS").is_some() {
            if let Some(d) = self.dir.take() {
                eprintln!("kept {}", d.keep().display());
            }
        }
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
}

/// A distinct loopback address per call (127.0.0.2 … 127.0.0.254, then around again), so that
/// peers that insist on one connection per IP (libtorrent) see separate hosts.
pub fn loopback() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) + std::process::id() * 7;
    Ipv4Addr::new(127, 0, 0, 2 + (n % 253) as u8)
}

/// A port free for TCP on `ip`, found by binding port 0.
pub fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .expect("bind port 0")
        .port()
}

/// A port free for both TCP and UDP on `ip` (trackers serve both on one number).
pub fn free_tcp_udp_port(ip: Ipv4Addr) -> u16 {
    loop {
        let port = free_port(ip);
        if UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
}

/// `len` deterministic bytes, none of them zero, so that bytes written to a sparse file can be
/// told from holes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            1 + ((x >> 32) % 255) as u8
        })
        .collect()
}

/// Hex SHA-1 of `bytes`.
pub fn sha1_hex(bytes: &[u8]) -> String {
    sha1_smol::Sha1::from(bytes).digest().to_string()
}

/// Panic with a clear message unless `path` holds exactly `expected`.
pub fn assert_same_file(path: &Path, expected: &[u8], who: &str) {
    let got = std::fs::read(path).unwrap_or_else(|e| panic!("{who}: cannot read {path:?}: {e}"));
    assert!(
        got.len() == expected.len() && got == expected,
        "{who}: {path:?} differs from the original: {} bytes, sha1 {} (expected {} bytes, sha1 {})",
        got.len(),
        sha1_hex(&got),
        expected.len(),
        sha1_hex(expected)
    );
}

/// Poll `f` every 100 ms until it gives `Some`; `None` once `limit` has passed (the caller
/// then panics saying what it waited for, with the logs that explain why).
pub fn poll_until<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the tests need to know about a `.torrent`.
#[derive(Debug, Clone)]
pub struct Torrent {
    pub path: PathBuf,
    pub info_hash: InfoHash,
    pub name: String,
    pub piece_count: u32,
    pub piece_length: u32,
    pub length: u64,
}

impl Torrent {
    /// Parse `path` with the core's metainfo parser.
    pub fn load(path: &Path) -> Torrent {
        let bytes = std::fs::read(path).expect("read .torrent");
        let m = Metainfo::parse(&bytes).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let g = m.geometry();
        Torrent {
            path: path.to_path_buf(),
            info_hash: m.info_hash,
            name: m.name.to_string(),
            piece_count: g.piece_count(),
            piece_length: g.piece_length(),
            length: g.total_length(),
        }
    }

    /// The info-hash as 40 lowercase hex digits.
    pub fn hex(&self) -> String {
        self.info_hash.to_string()
    }
}

/// Whether `program` runs (`program ARG` exits, whatever its status).
fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether the real client `name` is installed. When it is not: under CI (`CI` set) this
/// panics, because the test command installs every client; elsewhere it prints why the test is
/// skipped and returns false.
pub fn have(name: &str) -> bool {
    let ok = match name {
        "transmission" => {
            runs("transmission-daemon", "--version") && runs("transmission-remote", "--version")
        }
        "aria2" => runs("aria2c", "--version"),
        "opentracker" => Command::new("sh")
            .args(["-c", "command -v opentracker"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "libtorrent" => Command::new(libtorrent::python())
            .args(["-c", "import libtorrent"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        other => panic!("unknown client {other}"),
    };
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed (tests/run.sh installs it)"
        );
        eprintln!("skipped: {name} is not installed (tests/run.sh installs it)");
    }
    ok
}
