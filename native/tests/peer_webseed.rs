//! Web seeds (BEP 19), with real processes and a local HTTP server (`webseed_support`): a web
//! seed alone that resets its connections every 3 MiB; a swarm of a web seed and a seed; a
//! leech killed with SIGKILL in the middle that continues where it was; a web seed serving
//! corrupt data, dropped while a seed completes the download; web seeds that answer what was
//! not asked; a busy one (`503`, `Retry-After`); one over `https://`; a multi-file torrent's
//! URLs; a magnet link's `ws=` used once a seed found through its tracker gave the metadata.

mod peer_support;
mod tls_support;
mod webseed_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use peer_support::{data, enjambre, free_port, run, wait_listening, Background};
use webseed_support::{Behaviour, Knobs, WebSeed};

const MIB: u64 = 1 << 20;
const PIECE: u32 = 256 * 1024;

/// `enjambre create` of `path` into `out`, listing `web_seeds`, with no tracker.
fn create(path: &Path, out: &Path, web_seeds: &[String]) -> PathBuf {
    let mut cmd = enjambre();
    cmd.arg("create")
        .arg(path)
        .arg("-o")
        .arg(out)
        .args(["--piece-length", &PIECE.to_string()]);
    for w in web_seeds {
        cmd.args(["--web-seed", w]);
    }
    let o = run(&mut cmd, Duration::from_secs(60));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.to_path_buf()
}

/// `enjambre get torrent -o dir` with these extra arguments.
fn get(torrent: &Path, dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = enjambre();
    cmd.arg("get")
        .arg(torrent)
        .arg("-o")
        .arg(dir)
        .args(["--port", "0", "--quiet"])
        .args(extra);
    cmd
}

/// A file of `len` bytes in `dir/srv/data.bin`, and a torrent of it whose web seed is a server
/// with `knobs` serving `srv/`.
fn shared_file(dir: &Path, len: usize, knobs: Knobs) -> (Vec<u8>, PathBuf, WebSeed) {
    let srv = dir.join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    let content = data(len, 0x5eed);
    std::fs::write(srv.join("data.bin"), &content).unwrap();
    let server = WebSeed::start(&srv, knobs);
    let torrent = create(
        &srv.join("data.bin"),
        &dir.join("t.torrent"),
        &[server.url("data.bin")],
    );
    (content, torrent, server)
}

fn output(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_web_seed_alone_that_resets_every_3_mib_delivers_the_file_and_each_reset_costs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let len = 16 * MIB;
    let knobs = Knobs {
        reset_every: 3 * MIB,
        ..Knobs::default()
    };
    let (content, torrent, server) = shared_file(dir.path(), len as usize, knobs);
    let started = Instant::now();
    let o = run(
        &mut get(&torrent, &dir.path().join("out"), &[]),
        Duration::from_secs(60),
    );
    let took = started.elapsed();
    assert!(o.status.success(), "{}", output(&o));
    assert!(std::fs::read(dir.path().join("out/data.bin")).unwrap() == content);
    let (served, resets) = (server.served(), server.resets());
    println!(
        "served {served} bytes for {len} ({resets} resets, {} requests) in {took:?}",
        server.requests()
    );
    assert!(resets >= 5, "{resets} resets");
    // What a reset can lose is what was in flight on the connection when it was cut.
    assert!(served - len <= 4 * MIB, "served {served} for {len}");
}

#[test]
fn a_swarm_of_a_web_seed_and_a_seed_both_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let len = 16 * MIB;
    let knobs = Knobs {
        rate: 3 * MIB,
        ..Knobs::default()
    };
    let (content, torrent, server) = shared_file(dir.path(), len as usize, knobs);
    let port = free_port();
    let _seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(dir.path().join("srv/data.bin"))
            .args(["--port", &port.to_string(), "--max-upload-rate", "4M"]),
    );
    wait_listening(port);
    let peer = format!("127.0.0.1:{port}");
    let o = run(
        &mut get(&torrent, &dir.path().join("out"), &["--peer", &peer]),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", output(&o));
    assert!(std::fs::read(dir.path().join("out/data.bin")).unwrap() == content);
    let served = server.served();
    println!("the web seed served {served} of {len} bytes");
    assert!(
        served >= u64::from(PIECE),
        "the web seed served {served} bytes"
    );
    assert!(
        served < len,
        "the seed gave nothing: the web seed served {served}"
    );
}

/// Spawn a leech whose stdout and stderr are discarded.
fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_leech_killed_mid_download_continues_from_the_exact_byte() {
    let dir = tempfile::tempdir().unwrap();
    let len = 16 * MIB;
    let knobs = Knobs {
        rate: 8 * MIB,
        ..Knobs::default()
    };
    let (content, torrent, server) = shared_file(dir.path(), len as usize, knobs);
    let out = dir.path().join("out");
    let mut leech = spawn(&mut get(&torrent, &out, &[]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.served() < 7 * MIB {
        assert!(
            Instant::now() < deadline,
            "the web seed served {}",
            server.served()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    leech.kill().unwrap(); // SIGKILL
    leech.wait().unwrap();
    let before = server.served();
    let o = run(&mut get(&torrent, &out, &[]), Duration::from_secs(60));
    assert!(o.status.success(), "{}", output(&o));
    assert!(std::fs::read(out.join("data.bin")).unwrap() == content);
    let served = server.served();
    println!(
        "served {before} bytes before the kill, {served} in all for {len}: {} again",
        served - len
    );
    assert!(served - len <= 2 * MIB, "served {served} for {len}");
}

#[test]
fn a_web_seed_serving_corrupt_data_is_dropped_and_a_seed_completes_the_download() {
    let dir = tempfile::tempdir().unwrap();
    let len = 8 * MIB;
    let knobs = Knobs {
        behaviour: Behaviour::Corrupt,
        ..Knobs::default()
    };
    let (content, torrent, _server) = shared_file(dir.path(), len as usize, knobs);
    let port = free_port();
    let _seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(dir.path().join("srv/data.bin"))
            .args(["--port", &port.to_string(), "--max-upload-rate", "2M"]),
    );
    wait_listening(port);
    let peer = format!("127.0.0.1:{port}");
    let o = run(
        &mut get(&torrent, &dir.path().join("out"), &["--peer", &peer]),
        Duration::from_secs(60),
    );
    let stderr = output(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(std::fs::read(dir.path().join("out/data.bin")).unwrap() == content);
    assert!(
        stderr.contains("web seed dropped: its data failed verification"),
        "{stderr}"
    );
}

#[test]
fn a_web_seed_answering_what_was_not_asked_is_dropped_with_its_reason() {
    let cases = [
        (Behaviour::IgnoresRange, "200 instead of 206"),
        (Behaviour::WrongLength, "Content-Length says"),
        (Behaviour::RedirectLoop, "redirect loop"),
        (Behaviour::Garbage, "not an HTTP response"),
    ];
    for (behaviour, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        let knobs = Knobs {
            behaviour,
            ..Knobs::default()
        };
        let (_, torrent, _server) = shared_file(dir.path(), 2 * MIB as usize, knobs);
        let o = run(
            &mut get(&torrent, &dir.path().join("out"), &[]),
            Duration::from_secs(20),
        );
        let stderr = output(&o);
        println!("{behaviour:?}: {stderr}");
        assert_eq!(o.status.code(), Some(3), "{behaviour:?}: {stderr}");
        assert!(
            stderr.contains("web seed dropped"),
            "{behaviour:?}: {stderr}"
        );
        assert!(stderr.contains(reason), "{behaviour:?}: {stderr}");
        assert!(
            stderr.contains("every web seed failed"),
            "{behaviour:?}: {stderr}"
        );
    }
}

#[test]
fn a_busy_web_seed_is_asked_again_after_its_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let knobs = Knobs {
        busy_first: 2,
        ..Knobs::default()
    };
    let (content, torrent, server) = shared_file(dir.path(), 2 * MIB as usize, knobs);
    let started = Instant::now();
    let o = run(
        &mut get(&torrent, &dir.path().join("out"), &[]),
        Duration::from_secs(20),
    );
    assert!(o.status.success(), "{}", output(&o));
    assert!(std::fs::read(dir.path().join("out/data.bin")).unwrap() == content);
    let took = started.elapsed();
    println!("two 503s with Retry-After: 1, done in {took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "{took:?}: Retry-After not honoured"
    );
    assert!(server.requests() >= 3);
}

#[test]
fn an_https_web_seed_is_fetched_through_tls() {
    let dir = tempfile::tempdir().unwrap();
    let srv = dir.path().join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    let content = data(3 * MIB as usize, 9);
    std::fs::write(srv.join("data.bin"), &content).unwrap();
    let server = WebSeed::start(&srv, Knobs::default());
    let ca_file = dir.path().join("ca.pem");
    let port = tls_support::tls_proxy(tls_support::tls_server(&ca_file), server.addr.to_string());
    let url = format!("https://localhost:{port}/data.bin");
    let torrent = create(&srv.join("data.bin"), &dir.path().join("t.torrent"), &[url]);
    let mut cmd = get(&torrent, &dir.path().join("out"), &[]);
    let o = run(cmd.env("SSL_CERT_FILE", &ca_file), Duration::from_secs(30));
    assert!(o.status.success(), "{}", output(&o));
    assert!(std::fs::read(dir.path().join("out/data.bin")).unwrap() == content);
    assert_eq!(server.served(), 3 * MIB);
}

#[test]
fn a_multi_file_torrent_is_fetched_from_its_directory_on_the_web_seed() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("srv/the set");
    std::fs::create_dir_all(set.join("sub dir")).unwrap();
    // Pieces span files: 300 KiB, 1 byte, 700 KiB with 256 KiB pieces.
    let files = [
        ("a.bin", data(300 * 1024, 1)),
        ("b%.bin", data(1, 2)),
        ("sub dir/c d.bin", data(700 * 1024, 3)),
    ];
    for (name, bytes) in &files {
        std::fs::write(set.join(name), bytes).unwrap();
    }
    let server = WebSeed::start(&dir.path().join("srv"), Knobs::default());
    let torrent = create(&set, &dir.path().join("t.torrent"), &[server.url("")]);
    let info = run(
        enjambre().arg("info").arg(&torrent),
        Duration::from_secs(10),
    );
    let info_text = String::from_utf8_lossy(&info.stdout);
    assert!(
        info_text.contains(&format!("web seeds:\n  {}\n", server.url(""))),
        "{info_text}"
    );
    let o = run(
        &mut get(&torrent, &dir.path().join("out"), &[]),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{}", output(&o));
    for (name, bytes) in &files {
        let got = std::fs::read(dir.path().join("out/the set").join(name)).unwrap();
        assert!(&got == bytes, "{name}");
    }
    assert_eq!(server.served(), 1000 * 1024 + 1);
}

/// `s` percent-encoded for a magnet link's value.
fn encoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_magnet_links_web_seed_delivers_once_a_slow_seed_gave_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let tport = peer_support::free_tcp_udp_port();
    let _tracker = Background::spawn(enjambre().args([
        "tracker",
        "--listen",
        &format!("127.0.0.1:{tport}"),
        "--poll-interval",
        "0",
    ]));
    wait_listening(tport);
    let announce = format!("http://127.0.0.1:{tport}/announce");
    let srv = dir.path().join("srv");
    std::fs::create_dir_all(&srv).unwrap();
    let len = 4 * MIB;
    let content = data(len as usize, 0x3a9);
    std::fs::write(srv.join("data.bin"), &content).unwrap();
    let server = WebSeed::start(&srv, Knobs::default());
    // The torrent lists the tracker and no web seed: the link's `ws=` is the only one.
    let torrent = peer_support::create(
        &srv.join("data.bin"),
        &dir.path().join("t.torrent"),
        &[&announce],
        PIECE,
    );
    // The seed gives the metadata, then 32 KiB/s: alone it would take two minutes.
    let port = free_port();
    let _seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(srv.join("data.bin"))
            .args(["--listen", "127.0.0.1", "--port", &port.to_string()])
            .args(["--max-upload-rate", "32k"]),
    );
    wait_listening(port);
    std::thread::sleep(Duration::from_millis(500));
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&dn=data.bin&tr={}&ws={}",
        peer_support::info_hash(&torrent),
        encoded(&announce),
        encoded(&server.url("data.bin")),
    );
    let out = dir.path().join("out");
    // Any free port: the metadata fetch announces the one the session will listen on (the
    // tracker refuses port 0).
    let o = run(
        enjambre()
            .arg("get")
            .arg(&magnet)
            .arg("-o")
            .arg(&out)
            .args(["--port", "0", "--quiet"]),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", output(&o));
    assert!(std::fs::read(out.join("data.bin")).unwrap() == content);
    let (served, requests) = (server.served(), server.requests());
    println!("the web seed served {served} of {len} bytes in {requests} range requests");
    assert!(
        requests > 0 && served >= len / 2,
        "served {served} in {requests}"
    );
}

#[test]
fn a_magnet_link_with_a_web_seed_and_no_peer_says_the_web_seed_cannot_give_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&ws={}",
        "0123456789abcdef0123456789abcdef01234567",
        encoded("http://127.0.0.1:9/data.bin"),
    );
    let o = run(
        enjambre().arg("get").arg(&magnet).arg("-o").arg(dir.path()),
        Duration::from_secs(30),
    );
    let log = output(&o);
    assert_eq!(o.status.code(), Some(2), "{log}");
    assert!(log.contains("web seeds (`ws=`)"), "{log}");
}
