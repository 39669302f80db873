//! Who may read the swarm API (`/swarm/…`, `/swarms`, `/stats`, `/metrics`), which shows every
//! peer's address and peer id: everyone (the default), only the networks given with
//! `--api-allow`, or nobody (`--no-api`). Announce and scrape stay open to all.

use std::net::IpAddr;

use ipnet::IpNet;

/// A network given to `--api-allow`: `10.0.0.0/8`, `::1/128`, or a single address.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("not a network or an address: {s:?} (e.g. 192.168.0.0/16)"))
}

/// The API's access policy.
#[derive(Clone, Debug)]
pub enum ApiAccess {
    /// Open to every client.
    Open,
    /// Only clients in these networks.
    Only(Vec<IpNet>),
    /// Turned off.
    Off,
}

/// What the API answers one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// 403: the API exists, this client is not in an allowed network.
    Forbidden,
    /// 404: the API is turned off.
    Off,
}

impl ApiAccess {
    /// From `--no-api` and the `--api-allow` networks.
    pub fn new(off: bool, allow: &[IpNet]) -> ApiAccess {
        match (off, allow.is_empty()) {
            (true, _) => ApiAccess::Off,
            (false, true) => ApiAccess::Open,
            (false, false) => ApiAccess::Only(allow.to_vec()),
        }
    }

    /// The verdict for a client at `ip` (IPv4-mapped IPv6 already made IPv4).
    pub fn check(&self, ip: IpAddr) -> Verdict {
        match self {
            ApiAccess::Open => Verdict::Allowed,
            ApiAccess::Off => Verdict::Off,
            ApiAccess::Only(nets) if nets.iter().any(|n| n.contains(&ip)) => Verdict::Allowed,
            ApiAccess::Only(_) => Verdict::Forbidden,
        }
    }
}

/// Whether `path` is part of the swarm API.
pub fn is_api_path(path: &str) -> bool {
    matches!(path, "/swarms" | "/stats" | "/metrics") || path.starts_with("/swarm/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_single_addresses_are_matched() {
        let allow = [
            parse_net("10.1.0.0/16").unwrap(),
            parse_net("::1").unwrap(),
            parse_net("127.0.0.2").unwrap(),
        ];
        let a = ApiAccess::new(false, &allow);
        for (ip, v) in [
            ("10.1.200.3", Verdict::Allowed),
            ("10.2.0.1", Verdict::Forbidden),
            ("::1", Verdict::Allowed),
            ("127.0.0.2", Verdict::Allowed),
            ("127.0.0.1", Verdict::Forbidden),
        ] {
            assert_eq!(a.check(ip.parse().unwrap()), v, "{ip}");
        }
        assert_eq!(
            ApiAccess::new(true, &allow).check("10.1.0.1".parse().unwrap()),
            Verdict::Off
        );
        assert_eq!(
            ApiAccess::new(false, &[]).check("8.8.8.8".parse().unwrap()),
            Verdict::Allowed
        );
        assert!(parse_net("10.0.0.0/33").is_err() && parse_net("nonsense").is_err());
    }

    #[test]
    fn api_paths() {
        for p in [
            "/swarms",
            "/stats",
            "/metrics",
            "/swarm/ab",
            "/swarm/ab/events",
        ] {
            assert!(is_api_path(p), "{p}");
        }
        for p in ["/announce", "/scrape", "/", "/swarmsx"] {
            assert!(!is_api_path(p), "{p}");
        }
    }
}
