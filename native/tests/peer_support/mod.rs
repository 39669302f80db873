//! Shared helpers for the peer's end-to-end tests: run the `enjambre` binary, make data and
//! torrents, find free ports, and stop what a test started.
#![allow(dead_code)]

pub mod lt_session;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test, with the DHT off: a test never reaches the public DHT routers (the
/// DHT's own tests turn it back on with [`enjambre_with_dht`]).
pub fn enjambre() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_enjambre"));
    c.env("ENJAMBRE_NO_DHT", "1");
    c
}

/// The binary under test with the DHT on; its saved routing table goes in `state` (as
/// `$XDG_STATE_HOME`), never the user's.
pub fn enjambre_with_dht(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_enjambre"));
    c.env_remove("ENJAMBRE_NO_DHT").env("XDG_STATE_HOME", state);
    c
}

/// Run to completion with a time limit; panics on timeout.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn enjambre");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "timed out after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process stopped with SIGTERM (then SIGKILL) when dropped.
pub struct Background(pub Option<Child>);

impl Background {
    pub fn spawn(cmd: &mut Command) -> Self {
        Background(Some(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn"),
        ))
    }

    /// Stop it with SIGTERM and return its stderr.
    pub fn stop(&mut self) -> String {
        let Some(mut child) = self.0.take() else {
            return String::new();
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A free TCP port on 127.0.0.1 (racy, good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `enjambre create PATH -o OUT` with trackers; returns the torrent path.
pub fn create(path: &Path, out: &Path, trackers: &[&str], piece_length: u32) -> PathBuf {
    let mut cmd = enjambre();
    cmd.arg("create")
        .arg(path)
        .arg("-o")
        .arg(out)
        .args(["--piece-length", &piece_length.to_string()]);
    for t in trackers {
        cmd.args(["--tracker", t]);
    }
    let o = run(&mut cmd, Duration::from_secs(60));
    assert!(
        o.status.success(),
        "create failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.to_path_buf()
}

/// Whether python3 with the libtorrent bindings is available.
pub fn libtorrent() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Wait until `port` on 127.0.0.1 accepts connections.
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A port on 127.0.0.1 free for both TCP and UDP (a tracker serving both on one port).
pub fn free_tcp_udp_port() -> u16 {
    loop {
        let p = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// The info-hash of a `.torrent` file, in lowercase hex.
pub fn info_hash(torrent: &Path) -> String {
    let bytes = std::fs::read(torrent).expect("reading the torrent");
    let meta = enjambre_core::metainfo::Metainfo::parse(&bytes).expect("a valid torrent");
    meta.info_hash.to_string()
}

/// Debian's opentracker on 127.0.0.1:`port` (TCP and UDP), serving only `torrents` (it runs as
/// `nobody`, so `dir` must be readable by everyone); returns once it accepts connections.
pub fn opentracker(dir: &Path, port: u16, torrents: &[&Path]) -> Background {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let list = dir.join("wl");
    let hashes: String = torrents.iter().map(|t| info_hash(t) + "\n").collect();
    std::fs::write(&list, hashes).unwrap();
    std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o644)).unwrap();
    let port = port.to_string();
    let tracker = Background::spawn(
        Command::new("opentracker")
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port,
                "-P",
                &port,
                "-u",
                "nobody",
                "-w",
            ])
            .arg(&list)
            .current_dir(dir),
    );
    wait_listening(port.parse().unwrap());
    tracker
}

/// Read a `get --json` leech's stdout until `n` `piece_verified` lines came (or it ended);
/// returns how many came. Takes the child's stdout.
pub fn wait_verified(child: &mut std::process::Child, n: usize) -> usize {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout piped");
    let mut seen = 0;
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line.contains("\"piece_verified\"") {
            seen += 1;
            if seen == n {
                break;
            }
        }
    }
    seen
}
