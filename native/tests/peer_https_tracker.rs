//! A torrent whose only tracker is `https://`: a seed and a leech meet through it, trusting the
//! tracker's certificate authority only because `SSL_CERT_FILE` names it (without it, `get`
//! gives up naming the certificate). The TLS is a test
//! proxy (tokio-rustls, a certificate for `localhost` from an rcgen CA) in front of
//! `enjambre tracker`.

mod peer_support;
mod tls_support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use peer_support::{create, data, enjambre, run, Background};
use tls_support::{tls_proxy, tls_server};

#[test]
fn a_seed_and_a_leech_meet_through_an_https_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let mut tracker = enjambre()
        .args(["tracker", "--listen", "127.0.0.1:0", "--poll-interval", "0"])
        // A leech that announces before the seed asks again a second later.
        .args(["--interval", "2", "--min-interval", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(tracker.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let http = line
        .split("http=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let mut tracker = Background(Some(tracker));
    let ca_file = dir.path().join("ca.pem");
    let port = tls_proxy(tls_server(&ca_file), http);

    let bytes = data(1_000_000, 77);
    let file = dir.path().join("secure.bin");
    std::fs::write(&file, &bytes).unwrap();
    let torrent = create(
        &file,
        &dir.path().join("secure.torrent"),
        &[&format!("https://localhost:{port}/announce")],
        65536,
    );
    // Every peer reaches the tracker through the proxy, so the tracker lists them at 127.0.0.1:
    // they listen on every address.
    let mut seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args(["--port", "0"])
            .env("SSL_CERT_FILE", &ca_file),
    );
    let out = dir.path().join("out");
    let mut leech = Background(Some(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(&out)
            .args(["--port", "0"])
            .env("SSL_CERT_FILE", &ca_file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let started = Instant::now();
    let status = loop {
        if let Some(s) = leech.0.as_mut().unwrap().try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the leech never got the data through the https tracker: {}",
            leech.stop()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{}", leech.stop());
    assert!(std::fs::read(out.join("secure.bin")).unwrap() == bytes);

    // Without SSL_CERT_FILE the CA is unknown: every announce is refused, and `get` says why.
    let o = run(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(dir.path().join("untrusting"))
            .args(["--port", "0"])
            .env_remove("SSL_CERT_FILE"),
        Duration::from_secs(90),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("invalid peer certificate"), "{err}");
    seed.stop();
    tracker.stop();
}
