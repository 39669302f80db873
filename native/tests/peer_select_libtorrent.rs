//! File selection against a real client: enjambre takes some files of a multi-file torrent
//! from a libtorrent seed, then more. Skipped when the python3 libtorrent bindings are absent.

mod peer_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use peer_support::{create, data, enjambre, free_port, libtorrent, run, Background};

const SEED: &str = r#"
import sys, time, libtorrent as lt
torrent, save, iface = sys.argv[1:4]
s = lt.session({'listen_interfaces': iface, 'enable_dht': False, 'enable_lsd': False,
                'enable_upnp': False, 'enable_natpmp': False, 'alert_mask': 0})
h = s.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save,
                   'flags': lt.torrent_flags.seed_mode})
print('ready', flush=True)
time.sleep(120)
"#;

/// Odd sizes, so pieces of 16 KiB straddle the files.
const FILES: &[(&str, usize)] = &[("a.bin", 40_001), ("b/c.bin", 25_555), ("d.bin", 70_003)];

fn get(torrent: &Path, out: &Path, seed: &str, select: &[&str]) -> std::process::Output {
    run(
        enjambre()
            .arg("get")
            .arg(torrent)
            .arg("-o")
            .arg(out)
            .args(["--listen", "127.0.0.3", "--port", &free_port().to_string()])
            .args(["--peer", seed])
            .args(select),
        Duration::from_secs(90),
    )
}

#[test]
fn some_files_then_more_from_a_libtorrent_seed() {
    if !libtorrent() {
        eprintln!("skipped: python3-libtorrent not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for (i, (name, len)) in FILES.iter().enumerate() {
        let path = src.join("album").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data(*len, 70 + i as u64)).unwrap();
    }
    let torrent = create(
        &src.join("album"),
        &dir.path().join("album.torrent"),
        &[],
        16384,
    );
    let port = free_port();
    let mut lt = Command::new("/usr/bin/python3")
        .args(["-c", SEED])
        .arg(&torrent)
        .arg(&src)
        .arg(format!("127.0.0.2:{port}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(lt.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready"), "{line}");
    let _lt = Background(Some(lt)); // killed when the test ends, however it ends
    let seed = format!("127.0.0.2:{port}");
    let out = dir.path().join("out");
    let check = |present: &[&str]| {
        for (i, (name, len)) in FILES.iter().enumerate() {
            let path = out.join("album").join(name);
            if present.contains(name) {
                assert!(
                    std::fs::read(&path).unwrap() == data(*len, 70 + i as u64),
                    "{name}"
                );
            } else {
                assert!(!path.exists(), "{name} skipped but present");
            }
        }
    };
    let first = get(&torrent, &out, &seed, &["--only", "c.bin"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    check(&["b/c.bin"]);
    let second = get(
        &torrent,
        &out,
        &seed,
        &["--files", "0-2", "--skip", "d.bin"],
    );
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    check(&["a.bin", "b/c.bin"]);
}
