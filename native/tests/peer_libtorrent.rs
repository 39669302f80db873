//! Interoperability with libtorrent (python3-libtorrent): enjambre downloads from a libtorrent
//! seed, and a libtorrent leech downloads from an enjambre seed. Byte-identical both ways.
//! Skipped when the bindings are not installed.

mod peer_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use peer_support::{
    create, data, enjambre, free_port, info_hash, libtorrent, run, wait_listening, Background,
};

const SCRIPT: &str = r#"
import sys, time, libtorrent as lt
mode, torrent, save, iface, peer = sys.argv[1:6]
s = lt.session({'listen_interfaces': iface, 'enable_dht': False, 'enable_lsd': False,
                'enable_upnp': False, 'enable_natpmp': False, 'allow_multiple_connections_per_ip': True,
                'alert_mask': 0})
if mode == 'magnet':
    p = lt.parse_magnet_uri(torrent)
    p.save_path = save
    mode = 'leech'
else:
    p = {'ti': lt.torrent_info(torrent), 'save_path': save}
if mode == 'seed':
    p['flags'] = lt.torrent_flags.seed_mode
h = s.add_torrent(p)
if peer != '-':
    host, port = peer.rsplit(':', 1)
    h.connect_peer((host, int(port)))
print('ready', s.listen_port(), flush=True)
deadline = time.time() + 90
while time.time() < deadline:
    st = h.status()
    if mode == 'leech' and st.is_seeding:
        print('done', flush=True)
        sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
"#;

fn python(
    mode: &str,
    torrent: impl AsRef<std::ffi::OsStr>,
    save: &Path,
    iface: &str,
    peer: &str,
) -> Child {
    Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT, mode])
        .arg(torrent)
        .arg(save)
        .args([iface, peer])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3")
}

fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

fn fixture(dir: &Path) -> (Vec<u8>, std::path::PathBuf, std::path::PathBuf) {
    fixture_of(dir, 5_000_000, 65536)
}

fn fixture_of(
    dir: &Path,
    len: usize,
    piece_length: u32,
) -> (Vec<u8>, std::path::PathBuf, std::path::PathBuf) {
    let bytes = data(len, 21);
    let src = dir.join("src");
    std::fs::create_dir(&src).unwrap();
    let file = src.join("shared.bin");
    std::fs::write(&file, &bytes).unwrap();
    let torrent = create(&file, &dir.join("shared.torrent"), &[], piece_length);
    (bytes, file, torrent)
}

#[test]
fn enjambre_downloads_from_a_libtorrent_seed() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bytes, file, torrent) = fixture(dir.path());
    let port = free_port();
    let mut lt_seed = python(
        "seed",
        &torrent,
        file.parent().unwrap(),
        &format!("127.0.0.2:{port}"),
        "-",
    );
    assert!(first_line(&mut lt_seed).starts_with("ready"));
    let out = dir.path().join("out");
    let o = run(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(&out)
            .args([
                "--listen",
                "127.0.0.3",
                "--port",
                &free_port().to_string(),
                "--peer",
                &format!("127.0.0.2:{port}"),
            ]),
        Duration::from_secs(90),
    );
    let _ = lt_seed.kill();
    let _ = lt_seed.wait();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read(out.join("shared.bin")).unwrap() == bytes,
        "downloaded bytes differ"
    );
}

#[test]
fn a_libtorrent_leech_downloads_from_enjambre() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (bytes, file, torrent) = fixture(dir.path());
    let port = free_port();
    let mut seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args(["--listen", "127.0.0.1", "--port", &port.to_string()]),
    );
    wait_listening(port);
    let out = dir.path().join("lt");
    std::fs::create_dir(&out).unwrap();
    let mut leech = python(
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
        "libtorrent did not finish; seed log:\n{log}"
    );
    assert!(
        std::fs::read(out.join("shared.bin")).unwrap() == bytes,
        "libtorrent's copy differs"
    );
}

#[test]
fn a_libtorrent_leech_with_only_a_magnet_link_gets_the_metadata_and_the_data_from_enjambre() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 1,221 pieces of 16 KiB: an info dictionary of about 24 KiB, two metadata pieces.
    let (bytes, file, torrent) = fixture_of(dir.path(), 20_000_000, 16384);
    let magnet = format!("magnet:?xt=urn:btih:{}&dn=shared.bin", info_hash(&torrent));
    let port = free_port();
    let mut seed = Background::spawn(
        enjambre()
            .arg("seed")
            .arg(&torrent)
            .arg("--data")
            .arg(&file)
            .args(["--listen", "127.0.0.1", "--port", &port.to_string()]),
    );
    wait_listening(port);
    let out = dir.path().join("lt");
    std::fs::create_dir(&out).unwrap();
    let mut leech = python(
        "magnet",
        &magnet,
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
        "libtorrent did not finish from the magnet link; seed log:\n{log}"
    );
    assert!(
        std::fs::read(out.join("shared.bin")).unwrap() == bytes,
        "libtorrent's copy differs"
    );
}
