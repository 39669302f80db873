//! Through a third-party tracker: opentracker (Debian's build serves only whitelisted hashes and
//! drops root privileges to `nobody`). A seed and a leech find each other over HTTP and over
//! UDP (BEP 15). Skipped when opentracker is not installed.

mod peer_support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use peer_support::{create, data, enjambre, run, Background};

fn info_hash(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .rsplit("info-hash ")
        .next()
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn seed_and_leech_meet_through_opentracker_over_http_and_udp() {
    if Command::new("opentracker")
        .arg("-h")
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("skipped: opentracker not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let port = {
        // A port free for both TCP and UDP.
        loop {
            let p = peer_support::free_port();
            if std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok() {
                break p;
            }
        }
    };
    let original = data(2_000_000, 17);
    let file = dir.path().join("ot.bin");
    std::fs::write(&file, &original).unwrap();
    let http = create(
        &file,
        &dir.path().join("http.torrent"),
        &[&format!("http://127.0.0.1:{port}/announce")],
        32768,
    );
    let udp = create(
        &file,
        &dir.path().join("udp.torrent"),
        &[&format!("udp://127.0.0.1:{port}")],
        65536,
    );
    let mut hashes = String::new();
    for t in [&http, &udp] {
        let o = run(
            enjambre()
                .arg("create")
                .arg(&file)
                .arg("-o")
                .arg("/dev/null")
                .args(["--piece-length", if t == &http { "32768" } else { "65536" }]),
            Duration::from_secs(20),
        );
        hashes.push_str(&info_hash(&o.stdout));
        hashes.push('\n');
    }
    std::fs::write(dir.path().join("wl"), hashes).unwrap();
    std::fs::set_permissions(
        dir.path().join("wl"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let mut tracker = Background::spawn(
        Command::new("opentracker")
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-P",
                &port.to_string(),
                "-u",
                "nobody",
                "-w",
            ])
            .arg(dir.path().join("wl"))
            .current_dir(dir.path()),
    );
    peer_support::wait_listening(port);

    let hex: Vec<String> = std::fs::read_to_string(dir.path().join("wl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    for ((name, torrent), hex) in [("http", &http), ("udp", &udp)].into_iter().zip(hex) {
        let mut seed = Background::spawn(
            enjambre()
                .arg("seed")
                .arg(torrent)
                .arg("--data")
                .arg(&file)
                .args(["--listen", "127.0.0.2", "--port", "0"]),
        );
        wait_for_seed(port, &hex);
        let out = dir.path().join(format!("out-{name}"));
        let o = run(
            enjambre()
                .arg("get")
                .arg(torrent)
                .arg("-o")
                .arg(&out)
                .args(["--listen", "127.0.0.3", "--port", "0"]),
            Duration::from_secs(60),
        );
        seed.stop();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            std::fs::read(out.join("ot.bin")).unwrap() == original,
            "{name}: bytes differ"
        );
    }
    tracker.stop();
}

/// Wait until opentracker's scrape counts one seed for `hex` (the leech must not announce
/// first: it would only ask again after opentracker's half-hour interval).
fn wait_for_seed(port: u16, hex: &str) {
    use std::io::{Read, Write};
    let escaped: String = hex
        .as_bytes()
        .chunks(2)
        .map(|c| format!("%{}", std::str::from_utf8(c).unwrap()))
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the seed never announced"
        );
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let req = format!("GET /scrape?info_hash={escaped} HTTP/1.0\r\n\r\n");
            let mut body = Vec::new();
            let answered = s.write_all(req.as_bytes()).is_ok() && s.read_to_end(&mut body).is_ok();
            if answered && body.windows(11).any(|w| w == b"completei1e") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
