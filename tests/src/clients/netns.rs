//! Two network namespaces joined by a veth pair, for clients that will not dial loopback peers
//! (Transmission ignores 127.0.0.0/8 addresses learned from a tracker). Addresses exist only
//! inside the namespaces; both are deleted (with the pair) on drop.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Namespaces `a` (10.77.N.1) and `b` (10.77.N.2), joined by a veth pair, loopback up in each.
pub struct Pair {
    pub a: String,
    pub b: String,
    pub ip_a: Ipv4Addr,
    pub ip_b: Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

impl Pair {
    /// Create the pair, or say why it cannot be done here (not root, no netns support).
    pub fn new() -> Result<Pair, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let subnet = ((std::process::id() + n) % 200 + 10) as u8;
        let pair = Pair {
            a: format!("enjA{tag}"),
            b: format!("enjB{tag}"),
            ip_a: Ipv4Addr::new(10, 77, subnet, 1),
            ip_b: Ipv4Addr::new(10, 77, subnet, 2),
        };
        // On an early return `pair` is dropped, which deletes whatever was created.
        ip(&["netns", "add", &pair.a])?;
        ip(&["netns", "add", &pair.b])?;
        let (va, vb) = (format!("va{tag}"), format!("vb{tag}"));
        let setup = || -> Result<(), String> {
            ip(&[
                "link", "add", &va, "netns", &pair.a, "type", "veth", "peer", "name", &vb, "netns",
                &pair.b,
            ])?;
            for (ns, dev, addr) in [(&pair.a, &va, pair.ip_a), (&pair.b, &vb, pair.ip_b)] {
                ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
                ip(&["-n", ns, "link", "set", dev, "up"])?;
                ip(&["-n", ns, "link", "set", "lo", "up"])?;
            }
            Ok(())
        };
        setup()?;
        Ok(pair)
    }

    /// `ip netns exec NS PROGRAM`, to which the caller adds arguments.
    pub fn exec(ns: &str, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}
