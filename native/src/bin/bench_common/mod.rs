//! What the tracker benchmarks share: starting `enjambre tracker` pinned to a CPU, reading a
//! process's CPU time and resident memory from `/proc`, and a UDP tracker connect.

#![allow(dead_code)] // each benchmark uses its own part

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use enjambre_core::tracker::udp::{Request, Response};

/// The `enjambre` binary next to this one (ENJAMBRE_BIN overrides: a shared target directory
/// may hold another branch's build).
pub fn enjambre_exe() -> PathBuf {
    std::env::var_os("ENJAMBRE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::current_exe()
                .expect("current exe")
                .with_file_name("enjambre")
        })
}

/// `enjambre tracker ARGS --listen 127.0.0.1:0`, pinned to `cpu` when `taskset` exists; returns
/// it with its HTTP and UDP addresses, read from its first line.
pub fn start_tracker(cpu: Option<u32>, args: &[&str]) -> (Child, SocketAddr, SocketAddr) {
    let exe = enjambre_exe();
    let mut cmd = match cpu {
        Some(c) if Command::new("taskset").arg("-V").output().is_ok() => {
            let mut t = Command::new("taskset");
            t.args(["-c", &c.to_string()]).arg(&exe);
            t
        }
        _ => Command::new(&exe),
    };
    let mut child = cmd
        .args(["tracker", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (build it with cargo build --release -p enjambre)",
                exe.display()
            )
        });
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("listen line");
    let find = |k: &str| -> SocketAddr {
        let s = line.find(k).unwrap_or_else(|| panic!("no {k} in {line:?}")) + k.len();
        line[s..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (h, u) = (find("http="), find("udp="));
    (child, h, u)
}

/// Pin this process to `cpu` (best effort).
pub fn pin_self(cpu: u32) {
    let pid = std::process::id().to_string();
    let _ = Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), &pid])
        .stdout(Stdio::null())
        .status();
}

/// Resident memory of `pid`, in KiB.
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) the process has used so far.
pub fn cpu_secs(pid: u32) -> f64 {
    let tck: f64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name: state is field 3; utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / tck
}

/// A UDP tracker connection id from `to` (BEP 15), retried up to ten times.
pub fn udp_connect(sock: &UdpSocket, to: SocketAddr) -> u64 {
    let mut out = [0u8; 64];
    let mut buf = [0u8; 2048];
    for _ in 0..10 {
        let n = Request::Connect { transaction_id: 1 }
            .encode(&mut out)
            .unwrap();
        sock.send_to(&out[..n], to).unwrap();
        if let Ok((k, _)) = sock.recv_from(&mut buf) {
            if let Ok(Response::Connect { connection_id, .. }) = Response::decode(&buf[..k]) {
                return connection_id;
            }
        }
    }
    panic!("no connect reply from {to}");
}
