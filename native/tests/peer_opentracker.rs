//! Through a third-party tracker: opentracker (Debian's build serves only whitelisted hashes and
//! drops root privileges to `nobody`). A seed and a leech find each other over HTTP and over
//! UDP (BEP 15). Skipped when opentracker is not installed.

mod peer_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use peer_support::{create, data, enjambre, run, Background};

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
    let port = peer_support::free_tcp_udp_port();
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
    let mut tracker = peer_support::opentracker(dir.path(), port, &[&http, &udp]);

    for (name, torrent) in [("http", &http), ("udp", &udp)] {
        let hex = peer_support::info_hash(torrent);
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
