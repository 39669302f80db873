//! `enjambre demo`: a whole swarm on loopback with no setup. Generates a file, starts
//! `enjambre tracker`, two seeds and a leech (this same binary, as child processes, on
//! 127.0.0.2–127.0.0.4 so they are separate peers), shows the download and where the swarm API
//! is, checks the result byte for byte, and stops everything it started.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use sha1::{Digest, Sha1};

use crate::create::{self, CreateArgs};
use crate::peer::http_tracker::{self, HttpUrl};

/// Arguments of `enjambre demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Size of the generated file, in MiB.
    #[arg(long, default_value_t = 64)]
    pub size_mib: u64,
    /// Download rate limit of the leech, bytes per second (so the progress can be watched).
    #[arg(long, default_value = "24M", value_parser = crate::peer::args::parse_rate)]
    pub rate: u64,
    /// Keep the tracker and the seeds running after the download, until Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,
    /// Work in this directory (kept afterwards) instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Children stopped (SIGTERM, then SIGKILL after a grace period) when dropped.
struct Children(Vec<(String, Child)>);

impl Children {
    fn stop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(child),
                rustix::process::Signal::TERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (name, child) in &mut self.0 {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        eprintln!("demo: {name} did not stop; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        self.0.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Run `enjambre demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let temporary = args.dir.is_none();
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("enjambre-demo-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = demo(&args, &dir);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("demo: files kept in {}", dir.display());
    }
    result
}

fn demo(args: &DemoArgs, dir: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the enjambre binary")?;
    let seed_dir = dir.join("seed");
    let leech_dir = dir.join("leech");
    std::fs::create_dir_all(&seed_dir)?;
    let data = seed_dir.join("demo.bin");
    let size = args.size_mib.max(1) << 20;
    generate(&data, size)?;

    let port = free_port()?;
    let tracker_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let announce = format!("http://{tracker_addr}/announce");
    let torrent = dir.join("demo.torrent");
    let built = create::build(&CreateArgs {
        path: data.clone(),
        trackers: vec![announce.clone()],
        piece_length: Some(256 * 1024),
        output: None,
        private: false,
        comment: Some("enjambre demo".into()),
        force: false,
        flash_image: None,
        web_seeds: Vec::new(),
    })?;
    std::fs::write(&torrent, &built.bytes)?;
    let hex = built.info_hash.to_string();
    println!(
        "demo: {} MiB file, {} pieces, info-hash {hex}",
        args.size_mib, built.pieces
    );

    let mut children = Children(Vec::new());
    let mut tracker = Command::new(&exe)
        .args([
            "tracker",
            "--listen",
            &tracker_addr.to_string(),
            "--poll-interval",
            "2",
            "--interval",
            "5",
        ])
        .arg("--min-interval")
        .arg("2")
        .arg("--torrent")
        .arg(&torrent)
        // A page that joins the demo swarm is reachable through one of these (taken ones are
        // skipped).
        .arg("--bridge-ports")
        .arg(match port.checked_add(16) {
            Some(last) => format!("{}-{last}", port + 1),
            None => String::new(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting `enjambre tracker`")?;
    let stdout = tracker.stdout.take();
    children.0.push(("tracker".into(), tracker));
    wait_for_tracker(stdout, tracker_addr)?;
    let api = format!("http://{tracker_addr}/swarm/{hex}");
    println!("demo: tracker on {tracker_addr}");
    println!("demo: swarm API   {api}");
    println!("demo: live feed   {api}/events");
    println!("demo: the page    http://{tracker_addr}/?watch={hex} (open it to watch the swarm, or to join it from the browser with --keep-running)");

    for (i, ip) in ["127.0.0.2", "127.0.0.3"].iter().enumerate() {
        let log = std::fs::File::create(dir.join(format!("seed{}.log", i + 1)))?;
        let child = Command::new(&exe)
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&data)
            .args(["--listen", ip, "--port", "0", "--no-dht"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting a seed")?;
        children.0.push((format!("seed {ip}"), child));
    }
    // Let the seeds check the data and announce before the leech asks for peers.
    wait_for_seeds(&api, 2, Duration::from_secs(30))?;
    println!(
        "demo: two seeds are in the swarm; starting the leech (limited to {}/s)",
        human(args.rate)
    );

    let started = Instant::now();
    let status = Command::new(&exe)
        .arg("get")
        .arg(&torrent)
        .arg("-o")
        .arg(&leech_dir)
        .args([
            "--listen",
            "127.0.0.4",
            "--port",
            "0",
            "--max-download-rate",
            &args.rate.to_string(),
            "--no-dht",
        ])
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .context("running the leech")?;
    if !status.success() {
        bail!("the leech failed ({status})");
    }
    let secs = started.elapsed().as_secs_f64();
    let want = file_sha1(&data)?;
    let got = file_sha1(&leech_dir.join("demo.bin"))?;
    if want != got {
        bail!("the downloaded file differs from the original");
    }
    println!(
        "demo: downloaded and verified in {secs:.1} s: byte-identical (SHA-1 {})",
        hex20(&want)
    );
    // Give the tracker a moment to hear the leech's `completed` and `stopped`.
    std::thread::sleep(Duration::from_millis(500));
    print_swarm(&api);
    if args.keep_running {
        println!("demo: tracker and seeds keep running; press Ctrl-C to stop");
        wait_for_ctrl_c();
    }
    children.stop();
    println!("demo: stopped the tracker and the seeds");
    Ok(())
}

/// Write `size` bytes of deterministic pseudo-random data (xorshift64*).
fn generate(path: &Path, size: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_exact_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            chunk.copy_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

/// A port free for both TCP and UDP on 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    for _ in 0..20 {
        let tcp = TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port on 127.0.0.1")
}

/// Wait for the tracker's "listening" line on its stdout.
fn wait_for_tracker(
    stdout: Option<std::process::ChildStdout>,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    let Some(stdout) = stdout else {
        bail!("no output from the tracker")
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        // Keep reading so the tracker never blocks on a full pipe.
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .context("the tracker did not start (is `enjambre tracker` built in?)")?;
    if !line.contains(&addr.to_string()) {
        bail!("unexpected tracker output: {line}");
    }
    Ok(())
}

fn fetch(url: &str) -> Option<serde_json::Value> {
    let url = HttpUrl::parse(url).ok()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let body = rt
        .block_on(http_tracker::get(&url, "", Duration::from_secs(3), None))
        .ok()?;
    serde_json::from_slice(&body).ok()
}

fn wait_for_seeds(api: &str, count: usize, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let seeds = fetch(api)
            .and_then(|v| v.get("seeders").and_then(serde_json::Value::as_u64))
            .unwrap_or(0);
        if seeds as usize >= count {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("the seeds did not announce within {} s", limit.as_secs())
}

/// Show what the tracker knows about each peer's pieces.
fn print_swarm(api: &str) {
    let Some(v) = fetch(api) else {
        println!("demo: (the swarm API did not answer)");
        return;
    };
    let peers = v
        .get("peers")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    println!(
        "demo: the tracker's view of the swarm ({} peers):",
        peers.len()
    );
    for p in peers {
        let addr = p
            .get("addr")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?");
        let progress = p.get("progress").and_then(serde_json::Value::as_f64);
        let source = p
            .get("source")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("unknown");
        let event = p
            .get("event")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let shown = progress.map_or_else(
            || "pieces unknown".to_string(),
            |f| format!("{:5.1}% of pieces", f * 100.0),
        );
        println!("demo:   {addr:<22} {shown} (learned by {source}; last event {event})");
    }
}

fn wait_for_ctrl_c() {
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        let _ = rt.block_on(tokio::signal::ctrl_c());
    }
}

fn file_sha1(path: &Path) -> anyhow::Result<[u8; 20]> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

fn hex20(b: &[u8; 20]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn human(bytes: u64) -> String {
    crate::peer::progress::human(bytes)
}
