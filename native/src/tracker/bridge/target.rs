//! The address a bridge request names: `/bridge/<info-hash hex>/<ip>:<port>`.

use std::net::{IpAddr, SocketAddr};

use enjambre_core::InfoHash;

/// A torrent and the peer address the client wants bytes relayed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub info_hash: InfoHash,
    /// IPv4-mapped IPv6 is given as IPv4, as the registry stores it.
    pub addr: SocketAddr,
}

/// Parse what follows `/bridge/`; `Err` says what is wrong, for the 400 answer.
pub fn parse(rest: &str) -> Result<Target, &'static str> {
    let (hex, addr) = rest
        .split_once('/')
        .ok_or("expected /bridge/<info-hash hex>/<ip>:<port>")?;
    let info_hash = InfoHash::from_hex(hex).ok_or("info-hash must be 40 hex digits")?;
    let addr = addr
        .replace("%5B", "[")
        .replace("%5D", "]")
        .replace("%5b", "[")
        .replace("%5d", "]");
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| "address must be <ip>:<port> or [<ipv6>]:<port>")?;
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr.ip()),
        ip => ip,
    };
    if addr.port() == 0 || ip.is_unspecified() || ip.is_multicast() || is_broadcast(ip) {
        return Err("not a peer address");
    }
    Ok(Target {
        info_hash,
        addr: SocketAddr::new(ip, addr.port()),
    })
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

#[cfg(test)]
mod tests {
    use super::*;

    const IH: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn ipv4_ipv6_and_mapped_addresses_are_read() {
        let t = parse(&format!("{IH}/10.0.0.5:6881")).unwrap();
        assert_eq!(t.addr, "10.0.0.5:6881".parse().unwrap());
        let t = parse(&format!("{IH}/[2001:db8::1]:51413")).unwrap();
        assert_eq!(t.addr, "[2001:db8::1]:51413".parse().unwrap());
        let t = parse(&format!("{IH}/%5B::ffff:10.0.0.5%5D:6881")).unwrap();
        assert_eq!(t.addr, "10.0.0.5:6881".parse().unwrap());
    }

    #[test]
    fn nonsense_and_non_peer_addresses_are_refused() {
        assert!(parse(IH).is_err());
        assert!(parse(&format!("{IH}/10.0.0.5")).is_err());
        assert!(parse("zz/10.0.0.5:1").is_err());
        for bad in [
            "0.0.0.0:6881",
            "10.0.0.5:0",
            "224.0.0.1:6881",
            "255.255.255.255:1",
            "[::]:1",
        ] {
            assert!(parse(&format!("{IH}/{bad}")).is_err(), "{bad}");
        }
    }
}
