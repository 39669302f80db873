//! opentracker (Debian's build): serves only the info-hashes in its whitelist, and runs as
//! `nobody`, so the whitelist lives in a directory everyone can read, which is also its chroot.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::proc::Proc;
use super::{free_tcp_udp_port, http, poll_until, Torrent};

/// A running opentracker on 127.0.0.1, HTTP and UDP on one port.
pub struct OpenTracker {
    pub proc: Proc,
    pub port: u16,
}

impl OpenTracker {
    /// Start it with `torrents` whitelisted; its files live in `dir/opentracker`.
    pub fn start(dir: &Path, torrents: &[&Torrent]) -> OpenTracker {
        let home = dir.join("opentracker");
        std::fs::create_dir_all(&home).expect("opentracker dir");
        let list: String = torrents.iter().map(|t| format!("{}\n", t.hex())).collect();
        std::fs::write(home.join("whitelist"), list).expect("whitelist");
        for p in [&home, &home.join("whitelist")] {
            use std::os::unix::fs::PermissionsExt;
            let mode = if p.is_dir() { 0o755 } else { 0o644 };
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        let port = free_tcp_udp_port(Ipv4Addr::LOCALHOST);
        let mut c = Command::new("opentracker");
        c.current_dir(&home)
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-P",
                &port.to_string(),
            ])
            .args(["-w", "whitelist", "-u", "nobody", "-d"])
            .arg(&home);
        let mut ot = OpenTracker {
            proc: Proc::spawn("opentracker", &mut c, dir, false),
            port,
        };
        let addr = (Ipv4Addr::LOCALHOST, port).into();
        let up = poll_until(Duration::from_secs(10), || {
            ot.proc.assert_running();
            http::get(addr, "/scrape").ok()
        });
        assert!(
            up.is_some(),
            "opentracker does not answer\n{}",
            ot.proc.report()
        );
        ot
    }

    /// `http://127.0.0.1:PORT/announce`.
    pub fn announce_url(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    /// Scrape figures of `t`; `None` while no peer has announced it (opentracker then leaves
    /// it out of the answer).
    pub fn scrape(&self, t: &Torrent) -> Option<super::enjambre::Scrape> {
        let path = format!("/scrape?info_hash={}", http::percent_encode(&t.info_hash.0));
        let r = http::get((Ipv4Addr::LOCALHOST, self.port).into(), &path).ok()?;
        super::enjambre::scrape_figures(&r.body, t).ok()
    }
}
