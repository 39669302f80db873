//! Open HTTP connections per client address, so that one address alone reaches its cap
//! (`--max-connections-per-ip`) long before the tracker-wide `--max-connections`.
//!
//! IPv4 addresses (and IPv4-mapped IPv6) count one by one; IPv6 addresses by their /64, the
//! block one subscriber usually holds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The key one client's connections are counted under.
pub fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !0u128 << 64).into()),
        v4 => v4,
    }
}

/// Connection counts per client; 0 as the cap means no cap.
pub struct PerIp {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; dropping it gives the slot back.
pub struct Slot {
    owner: Arc<PerIp>,
    key: IpAddr,
}

impl PerIp {
    /// Counts with `cap` connections per client (0: unlimited).
    pub fn new(cap: usize) -> Arc<PerIp> {
        Arc::new(PerIp {
            cap,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Take a slot for a connection from `ip`, or `None` when that client is at its cap.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let key = key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if self.cap != 0 && *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            owner: self.clone(),
            key,
        })
    }

    /// Connections open from `ip`'s client.
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_reaches_its_own_cap_and_slots_come_back() {
        let per = PerIp::new(2);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.1".parse().unwrap();
        let s1 = per.take(a).expect("first");
        let _s2 = per.take(a).expect("second");
        assert!(per.take(a).is_none(), "third from the same address");
        assert!(per.take(b).is_some(), "another address is not affected");
        drop(s1);
        assert_eq!(per.open(a), 1);
        assert!(per.take(a).is_some());
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_ipv4_as_ipv4() {
        let per = PerIp::new(1);
        let _x = per.take("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(per.take("2001:db8:1:2::ffff".parse().unwrap()).is_none());
        assert!(per.take("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _v4 = per.take("10.0.0.1".parse().unwrap()).unwrap();
        assert!(per.take("::ffff:10.0.0.1".parse().unwrap()).is_none());
    }
}
