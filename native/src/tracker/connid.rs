//! BEP 15 connection ids that expire and cannot be forged: a keyed SipHash of the client's IP
//! address and a one-minute time window, under a secret drawn at start.
//!
//! An id is accepted during the window it was issued in and the next one, so between 60 and 120
//! seconds; the client's port is left out so a NAT rebinding does not invalidate it. Nothing is
//! stored per client.

use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip::SipHasher13;

/// Seconds per window.
const WINDOW: u64 = 60;

/// Issues and checks connection ids.
pub struct ConnIds {
    k0: u64,
    k1: u64,
}

impl ConnIds {
    /// A fresh random secret.
    pub fn new() -> Self {
        ConnIds {
            k0: rand::random(),
            k1: rand::random(),
        }
    }

    /// A fixed secret (tests).
    #[cfg(test)]
    pub fn with_key(k0: u64, k1: u64) -> Self {
        ConnIds { k0, k1 }
    }

    fn id(&self, ip: IpAddr, window: u64) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        match ip {
            IpAddr::V4(v4) => h.write(&v4.octets()),
            IpAddr::V6(v6) => h.write(&v6.octets()),
        }
        h.write_u64(window);
        h.finish()
    }

    /// The id for a client at `ip`, `now` being Unix seconds.
    pub fn issue(&self, ip: IpAddr, now: u64) -> u64 {
        self.id(ip, now / WINDOW)
    }

    /// Whether `id` was issued to `ip` within the current or the previous window.
    pub fn check(&self, id: u64, ip: IpAddr, now: u64) -> bool {
        let w = now / WINDOW;
        id == self.id(ip, w) || (w > 0 && id == self.id(ip, w - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_lives_at_least_one_window_and_at_most_two() {
        let c = ConnIds::with_key(1, 2);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let t = 1_700_000_080; // 40 s into a window (windows start at multiples of 60)
        let id = c.issue(ip, t);
        assert!(c.check(id, ip, t));
        assert!(c.check(id, ip, t + 79)); // end of the next window
        assert!(!c.check(id, ip, t + 80));
        assert!(!c.check(id, ip, t - 41)); // never valid before it was issued
    }

    #[test]
    fn an_id_is_bound_to_the_address_and_the_secret() {
        let c = ConnIds::with_key(1, 2);
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let b: IpAddr = "192.0.2.8".parse().unwrap();
        let t = 1_700_000_000;
        let id = c.issue(a, t);
        assert!(!c.check(id, b, t));
        assert!(!ConnIds::with_key(1, 3).check(id, a, t));
        assert!(!c.check(0x41727101980, a, t));
    }
}
