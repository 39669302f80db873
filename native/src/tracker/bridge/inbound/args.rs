//! Command-line flags of the bridge's inbound side: a TCP port per browser peer.

use std::net::IpAddr;

/// The ports the bridge opens for browser peers, and their caps.
#[derive(clap::Args, Debug, Clone)]
pub struct InboundArgs {
    /// TCP ports the bridge may open for browser peers, `FIRST-LAST` (one port per page that
    /// listens; empty = none, the default: pages can then only dial out).
    #[arg(long, default_value = "", value_name = "FIRST-LAST", value_parser = parse_range)]
    pub bridge_ports: PortRange,
    /// The address announced for a browser peer's port (what other peers dial). Default: the
    /// tracker's own address as the page reached it.
    #[arg(long, value_name = "IP")]
    pub bridge_public_ip: Option<IpAddr>,
    /// Cap on ports held by pages from one client address (an IPv6 /64 counts as one).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub bridge_max_ports_per_ip: usize,
    /// Cap on inbound connections open at once on one browser peer's port.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub bridge_max_inbound_per_port: usize,
    /// Close an inbound connection the page has not claimed after this many seconds.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub bridge_accept_timeout: f64,
}

/// An inclusive range of port numbers; `first > last` is the empty range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    /// How many ports it holds.
    pub fn len(self) -> usize {
        if self.first > self.last {
            0
        } else {
            usize::from(self.last - self.first) + 1
        }
    }
}

fn parse_range(s: &str) -> Result<PortRange, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(PortRange { first: 1, last: 0 });
    }
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let port = |t: &str| {
        t.trim()
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| {
                format!("not a port number: {t:?} (expected FIRST-LAST, e.g. 20000-20099)")
            })
    };
    let (first, last) = (port(a)?, port(b)?);
    if first > last {
        return Err(format!("{first} is above {last}"));
    }
    Ok(PortRange { first, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read() {
        assert_eq!(parse_range("").unwrap().len(), 0);
        assert_eq!(parse_range("20000-20099").unwrap().len(), 100);
        assert_eq!(parse_range("7000").unwrap().len(), 1);
        assert!(parse_range("9-3").is_err());
        assert!(parse_range("0-3").is_err());
        assert!(parse_range("a-b").is_err());
    }
}
