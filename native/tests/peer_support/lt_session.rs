//! A libtorrent session driven from Python, for the end-to-end tests: a seed, a leech, or a
//! leech from a magnet link, dialling one peer (`-` for none); it prints `ready PORT`, and a
//! leech `done` once it seeds. `settings` (JSON) is merged into the session's settings, e.g.
//! forced encryption.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const SCRIPT: &str = r#"
import sys, time, json, libtorrent as lt
mode, torrent, save, iface, peer, extra = sys.argv[1:7]
settings = {'listen_interfaces': iface, 'enable_dht': False, 'enable_lsd': False,
            'enable_upnp': False, 'enable_natpmp': False, 'allow_multiple_connections_per_ip': True,
            'alert_mask': 0}
settings.update(json.loads(extra))
s = lt.session(settings)
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
    if mode == 'leech' and h.status().is_seeding:
        print('done', flush=True)
        sys.exit(0)
    time.sleep(0.1)
sys.exit(1)
"#;

/// Start the session (`mode`: `seed`, `leech` or `magnet`) listening on `iface`.
pub fn lt_session(
    mode: &str,
    torrent: impl AsRef<OsStr>,
    save: &Path,
    iface: &str,
    peer: &str,
    settings: &str,
) -> Child {
    Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT, mode])
        .arg(torrent)
        .arg(save)
        .args([iface, peer, settings])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3")
}

/// The next line the child printed.
pub fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}
