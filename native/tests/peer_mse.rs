//! Message stream encryption against the clients that insist on it: libtorrent with forced
//! encryption (RC4 only) and aria2 with `--bt-require-crypto`, each as a seed enjambre downloads
//! from and as a leech that downloads from enjambre, with `--encryption require` on our side.
//! Byte-identical every way; and the default policy, whose plaintext dial such a seed closes,
//! dialling it again with MSE (for the data, and for a magnet link's metadata); each
//! preference's other way against our own seeds that refuse its first. Plus the refusals:
//! `plaintext` answers no key exchange, `require` no plaintext handshake. A client that is not
//! installed is skipped.

mod peer_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use enjambre_core::mse::{Initiator, Methods};
use peer_support::lt_session::{first_line, lt_session};
use peer_support::{
    create, data, enjambre, free_port, libtorrent, run, wait_listening, Background,
};

fn libtorrent_forced(mode: &str, torrent: &Path, save: &Path, iface: &str, peer: &str) -> Child {
    libtorrent_mse(mode, torrent, save, iface, peer, 2)
}

/// A libtorrent seed of `file` forcing encryption on 127.0.0.2, ready; and its port.
fn forced_seed(torrent: &Path, file: &Path) -> (Child, u16) {
    let port = free_port();
    let iface = format!("127.0.0.2:{port}");
    let mut seed = libtorrent_forced("seed", torrent, file.parent().unwrap(), &iface, "-");
    assert!(first_line(&mut seed).starts_with("ready"));
    (seed, port)
}

/// A libtorrent session that accepts and dials only MSE connections, with payload methods
/// `level` (2: RC4 only; 3: RC4 or plaintext).
fn libtorrent_mse(
    mode: &str,
    torrent: &Path,
    save: &Path,
    iface: &str,
    peer: &str,
    level: u8,
) -> Child {
    let settings = format!(
        r#"{{"out_enc_policy": 0, "in_enc_policy": 0, "allowed_enc_level": {level}, "prefer_rc4": {}}}"#,
        level == 2
    );
    lt_session(mode, torrent, save, iface, peer, &settings)
}

fn installed(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// `len` bytes in `dir/src/NAME` and its torrent (64 KiB pieces, `trackers`).
fn fixture(dir: &Path, name: &str, len: usize, trackers: &[&str]) -> (Vec<u8>, PathBuf, PathBuf) {
    let bytes = data(len, 57);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let file = src.join(name);
    std::fs::write(&file, &bytes).unwrap();
    let torrent = create(&file, &dir.join(format!("{name}.torrent")), trackers, 65536);
    (bytes, file, torrent)
}

/// Our seed with `--encryption require`, logging its connections.
fn require_seed(torrent: &Path, file: &Path, ip: &str, port: u16) -> Background {
    Background::spawn(
        enjambre()
            .env("RUST_LOG", "enjambre::peer::driver::conns=debug")
            .arg("seed")
            .arg(torrent)
            .arg("--data")
            .arg(file)
            .args(["--listen", ip, "--port", &port.to_string()])
            .args(["--encryption", "require"]),
    )
}

/// `get` with `--encryption require` from `peer`; returns its stderr once it succeeded.
fn require_get(torrent: impl AsRef<std::ffi::OsStr>, out: &Path, peer: &str) -> String {
    let o = run(
        enjambre()
            .env("RUST_LOG", "enjambre::peer::driver::conns=debug")
            .arg("get")
            .arg(torrent)
            .arg("-o")
            .arg(out)
            .args(["--listen", "127.0.0.3", "--port", "0", "--peer", peer])
            .args(["--encryption", "require"]),
        Duration::from_secs(90),
    );
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{log}");
    log
}

#[test]
fn enjambre_downloads_from_a_libtorrent_seed_that_forces_encryption() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bytes, file, torrent) = fixture(dir.path(), "lt.bin", 5_000_000, &[]);
    let (mut seed, port) = forced_seed(&torrent, &file);
    let log = require_get(
        &torrent,
        &dir.path().join("out"),
        &format!("127.0.0.2:{port}"),
    );
    let _ = seed.kill();
    let _ = seed.wait();
    assert!(log.contains("encrypted=true"), "{log}");
    assert!(std::fs::read(dir.path().join("out/lt.bin")).unwrap() == bytes);
}

#[test]
fn a_magnet_link_is_resolved_and_downloaded_from_a_libtorrent_seed_that_forces_encryption() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bytes, file, torrent) = fixture(dir.path(), "mag.bin", 3_000_000, &[]);
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&dn=mag.bin",
        peer_support::info_hash(&torrent)
    );
    let (mut seed, port) = forced_seed(&torrent, &file);
    let out = dir.path().join("out");
    let log = require_get(&magnet, &out, &format!("127.0.0.2:{port}"));
    let _ = seed.kill();
    let _ = seed.wait();
    assert!(log.contains("encrypted=true"), "{log}");
    assert!(std::fs::read(out.join("mag.bin")).unwrap() == bytes);
}

#[test]
fn a_default_get_dials_a_libtorrent_seed_that_forces_encryption_again_with_mse() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bytes, file, torrent) = fixture(dir.path(), "fb.bin", 3_000_000, &[]);
    let (mut seed, port) = forced_seed(&torrent, &file);
    // No --encryption: prefer-plaintext dials in plaintext, which the seed closes unanswered.
    let out = dir.path().join("out");
    let o = run(
        enjambre()
            .env(
                "RUST_LOG",
                "enjambre::peer::driver::conns=debug,enjambre::peer::driver::fallback=debug",
            )
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(&out)
            .args(["--listen", "127.0.0.3", "--port", "0"])
            .args(["--peer", &format!("127.0.0.2:{port}")]),
        Duration::from_secs(60),
    );
    let _ = seed.kill();
    let _ = seed.wait();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("dialling again with MSE"), "{log}");
    assert!(log.contains("encrypted=true"), "{log}");
    assert!(std::fs::read(out.join("fb.bin")).unwrap() == bytes);
}

#[test]
fn a_default_get_of_a_magnet_link_fetches_the_metadata_from_a_seed_that_forces_encryption() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bytes, file, torrent) = fixture(dir.path(), "fbm.bin", 2_000_000, &[]);
    let magnet = format!(
        "magnet:?xt=urn:btih:{}&dn=fbm.bin",
        peer_support::info_hash(&torrent)
    );
    let (mut seed, port) = forced_seed(&torrent, &file);
    // No --encryption: the metadata fetch's plaintext dial is closed too, and made again.
    let out = dir.path().join("out");
    let o = run(
        enjambre()
            .env("RUST_LOG", "enjambre::peer::magnet=debug")
            .arg("get")
            .arg(&magnet)
            .arg("-o")
            .arg(&out)
            .args(["--listen", "127.0.0.3", "--port", "0"])
            .args(["--peer", &format!("127.0.0.2:{port}")]),
        Duration::from_secs(60),
    );
    let _ = seed.kill();
    let _ = seed.wait();
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    assert!(log.contains("dialling again with MSE"), "{log}");
    assert!(std::fs::read(out.join("fbm.bin")).unwrap() == bytes);
}

/// `get` from our seed at `port` with `policy` (`None`: the default), logging its dials; returns
/// its stderr once it succeeded.
fn get_with(torrent: &Path, out: &Path, port: u16, policy: Option<&str>) -> String {
    let mut cmd = enjambre();
    cmd.env("RUST_LOG", "enjambre::peer=debug")
        .arg("get")
        .arg(torrent)
        .arg("-o")
        .arg(out)
        .args(["--listen", "127.0.0.3", "--port", "0"])
        .args(["--peer", &format!("127.0.0.1:{port}")]);
    if let Some(p) = policy {
        cmd.args(["--encryption", p]);
    }
    let o = run(&mut cmd, Duration::from_secs(60));
    let log = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{log}");
    log
}

#[test]
fn each_preference_dials_again_the_other_way_a_seed_that_refuses_its_first() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, file, torrent) = fixture(dir.path(), "w.bin", 1_000_000, &[]);
    // Our seed requiring encryption closes the default plaintext dial: MSE next.
    let port = free_port();
    let mut seed = require_seed(&torrent, &file, "127.0.0.1", port);
    wait_listening(port);
    let out = dir.path().join("to-require");
    let log = get_with(&torrent, &out, port, None);
    seed.stop();
    assert!(log.contains("dialling again with MSE"), "{log}");
    assert!(log.contains("encrypted=true"), "{log}");
    assert!(std::fs::read(out.join("w.bin")).unwrap() == bytes);
    // Our seed refusing encryption closes the prefer-encrypted key exchange: plaintext next.
    let port = free_port();
    let mut seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args(["--listen", "127.0.0.1", "--port", &port.to_string()])
            .args(["--encryption", "plaintext"]),
    );
    wait_listening(port);
    let out = dir.path().join("to-plaintext");
    let log = get_with(&torrent, &out, port, Some("prefer-encrypted"));
    seed.stop();
    assert!(log.contains("dialling again in plaintext"), "{log}");
    assert!(log.contains("encrypted=false"), "{log}");
    assert!(std::fs::read(out.join("w.bin")).unwrap() == bytes);
}

#[test]
fn a_libtorrent_leech_that_forces_encryption_downloads_from_enjambre() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bytes, file, torrent) = fixture(dir.path(), "lt.bin", 5_000_000, &[]);
    let port = free_port();
    let mut seed = require_seed(&torrent, &file, "127.0.0.1", port);
    wait_listening(port);
    let out = dir.path().join("lt");
    std::fs::create_dir(&out).unwrap();
    let mut leech = libtorrent_forced(
        "leech",
        &torrent,
        &out,
        &format!("127.0.0.4:{}", free_port()),
        &format!("127.0.0.1:{port}"),
    );
    assert!(first_line(&mut leech).starts_with("ready"));
    let done = first_line(&mut leech);
    let status = leech.wait().unwrap();
    let log = seed.stop();
    assert!(
        status.success() && done.starts_with("done"),
        "seed log:\n{log}"
    );
    assert!(log.contains("encrypted=true"), "{log}");
    assert!(std::fs::read(out.join("lt.bin")).unwrap() == bytes);
}

#[test]
fn a_default_seed_answers_a_key_exchange_offering_both_with_plaintext() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bytes, file, torrent) = fixture(dir.path(), "both.bin", 2_000_000, &[]);
    let port = free_port();
    // No --encryption: prefer-plaintext selects plaintext after libtorrent's key exchange.
    let mut seed = Background::spawn(
        enjambre()
            .env("RUST_LOG", "enjambre::peer::driver::conns=debug")
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args(["--listen", "127.0.0.1", "--port", &port.to_string()]),
    );
    wait_listening(port);
    let out = dir.path().join("lt");
    std::fs::create_dir(&out).unwrap();
    let mut leech = libtorrent_mse(
        "leech",
        &torrent,
        &out,
        &format!("127.0.0.4:{}", free_port()),
        &format!("127.0.0.1:{port}"),
        3,
    );
    assert!(first_line(&mut leech).starts_with("ready"));
    let done = first_line(&mut leech);
    let status = leech.wait().unwrap();
    let log = seed.stop();
    assert!(
        status.success() && done.starts_with("done"),
        "seed log:\n{log}"
    );
    assert!(log.contains("encrypted=false"), "{log}");
    assert!(std::fs::read(out.join("both.bin")).unwrap() == bytes);
}

const ARIA2_REQUIRE: [&str; 7] = [
    "--enable-dht=false",
    "--bt-enable-lpd=false",
    "--enable-peer-exchange=false",
    "--summary-interval=0",
    "--console-log-level=warn",
    "--bt-require-crypto=true",
    "--bt-min-crypto-level=arc4",
];

/// An aria2 seed of `file` requiring encryption, listening; and its port. A port picked free can
/// be taken by a parallel test before aria2 binds it: then another is tried.
fn aria2_seed(file: &Path, torrent: &Path) -> (Background, u16) {
    for _ in 0..3 {
        let port = free_port();
        let aria = Background::spawn(
            Command::new("aria2c")
                .arg("-d")
                .arg(file.parent().unwrap())
                .args(["-V", "--seed-time=5", &format!("--listen-port={port}")])
                .args(ARIA2_REQUIRE)
                .arg(torrent),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (aria, port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("aria2 listened on none of three ports");
}

#[test]
fn enjambre_downloads_from_an_aria2_seed_that_requires_encryption() {
    if !installed("aria2c") {
        eprintln!("skipped: aria2c not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bytes, file, torrent) = fixture(dir.path(), "a2.bin", 4_000_000, &[]);
    let (mut aria, port) = aria2_seed(&file, &torrent);
    let log = require_get(
        &torrent,
        &dir.path().join("out"),
        &format!("127.0.0.1:{port}"),
    );
    aria.stop();
    assert!(log.contains("encrypted=true"), "{log}");
    assert!(std::fs::read(dir.path().join("out/a2.bin")).unwrap() == bytes);
}

#[test]
fn an_aria2_leech_that_requires_encryption_downloads_from_enjambre() {
    if !installed("aria2c") || Command::new("opentracker").arg("-h").output().is_err() {
        eprintln!("skipped: aria2c or opentracker not installed");
        return;
    }
    // aria2 cannot be given a peer: it finds our seed through opentracker.
    let dir = tempfile::tempdir().unwrap();
    let tracker_port = peer_support::free_tcp_udp_port();
    let announce = format!("http://127.0.0.1:{tracker_port}/announce");
    let (bytes, file, torrent) = fixture(dir.path(), "a2.bin", 4_000_000, &[&announce]);
    let mut tracker = peer_support::opentracker(dir.path(), tracker_port, &[&torrent]);
    let port = free_port();
    let mut seed = require_seed(&torrent, &file, "127.0.0.2", port);
    std::thread::sleep(Duration::from_millis(1500));
    let out = dir.path().join("aria");
    std::fs::create_dir(&out).unwrap();
    let o = run(
        Command::new("aria2c")
            .arg("-d")
            .arg(&out)
            .args(["--seed-time=0", &format!("--listen-port={}", free_port())])
            .args(ARIA2_REQUIRE)
            .arg(&torrent),
        Duration::from_secs(60),
    );
    let log = seed.stop();
    tracker.stop();
    assert!(
        o.status.success(),
        "aria2: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(log.contains("encrypted=true"), "{log}");
    assert!(std::fs::read(out.join("a2.bin")).unwrap() == bytes);
}

/// Write `bytes`, then read until the peer closes; returns what it sent back.
fn answer_to(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(bytes).unwrap();
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    back
}

/// A plaintext BitTorrent handshake for `torrent`'s info-hash.
fn plaintext_handshake(info_hash: [u8; 20]) -> Vec<u8> {
    let mut hs = b"\x13BitTorrent protocol".to_vec();
    hs.extend_from_slice(&[0; 8]);
    hs.extend_from_slice(&info_hash);
    hs.extend_from_slice(b"-XX0001-000000000000");
    hs
}

fn info_hash_bytes(torrent: &Path) -> [u8; 20] {
    let hex = peer_support::info_hash(torrent);
    let mut out = [0u8; 20];
    for (k, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * k..2 * k + 2], 16).unwrap();
    }
    out
}

#[test]
fn plaintext_refuses_a_key_exchange_and_require_refuses_a_plaintext_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let (_, file, torrent) = fixture(dir.path(), "r.bin", 300_000, &[]);
    let ih = info_hash_bytes(&torrent);
    let ya = Initiator::new(ih, [7; 20], 100, Methods::BOTH)
        .transmit()
        .to_vec();

    let port = free_port();
    let mut plain = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args(["--listen", "127.0.0.1", "--port", &port.to_string()])
            .args(["--encryption", "plaintext"]),
    );
    wait_listening(port);
    assert!(
        answer_to(port, &ya).is_empty(),
        "plaintext answered a key exchange"
    );
    let back = answer_to(port, &plaintext_handshake(ih));
    assert!(
        back.starts_with(b"\x13BitTorrent protocol"),
        "plaintext refused plaintext"
    );
    plain.stop();

    let port = free_port();
    let mut require = require_seed(&torrent, &file, "127.0.0.1", port);
    wait_listening(port);
    assert!(
        answer_to(port, &plaintext_handshake(ih)).is_empty(),
        "require answered a plaintext handshake"
    );
    // The key exchange itself is answered: Yb and PadB come back (then the exchange times
    // out, as this initiator goes no further).
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&ya).unwrap();
    let mut yb = [0u8; 96];
    s.read_exact(&mut yb).unwrap();
    require.stop();
}
