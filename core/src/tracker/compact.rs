//! Compact peer entries: 6 bytes per IPv4 peer (BEP 23), 18 per IPv6 peer (BEP 7), address and
//! port in network byte order. Shared by the HTTP `peers`/`peers6` strings and UDP (BEP 15).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use core::slice::ChunksExact;

use super::out::Out;

/// Bytes per compact IPv4 peer.
pub const COMPACT_V4_LEN: usize = 6;
/// Bytes per compact IPv6 peer.
pub const COMPACT_V6_LEN: usize = 18;

/// The peers of a compact list, in order. A trailing partial entry is never yielded.
#[derive(Clone, Debug)]
pub struct CompactPeers<'a> {
    chunks: ChunksExact<'a, u8>,
    v6: bool,
}

/// Iterate a compact list of IPv4 (`ipv6 == false`) or IPv6 (`ipv6 == true`) peers.
///
/// For UDP (BEP 15) the address family of the tracker's socket decides which one it is.
pub fn compact_peers(bytes: &[u8], ipv6: bool) -> CompactPeers<'_> {
    let stride = if ipv6 { COMPACT_V6_LEN } else { COMPACT_V4_LEN };
    CompactPeers {
        chunks: bytes.chunks_exact(stride),
        v6: ipv6,
    }
}

impl Iterator for CompactPeers<'_> {
    type Item = SocketAddr;

    fn next(&mut self) -> Option<SocketAddr> {
        let chunk = self.chunks.next()?;
        if self.v6 {
            let (ip, port) = chunk.split_first_chunk::<16>()?;
            let port = u16::from_be_bytes(port.try_into().ok()?);
            Some(SocketAddrV6::new(Ipv6Addr::from(*ip), port, 0, 0).into())
        } else {
            let (ip, port) = chunk.split_first_chunk::<4>()?;
            let port = u16::from_be_bytes(port.try_into().ok()?);
            Some(SocketAddrV4::new(Ipv4Addr::from(*ip), port).into())
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for CompactPeers<'_> {}

/// The compact form of `addr` and its length: 6 bytes for IPv4 (IPv4-mapped IPv6 included,
/// see [`IpAddr::to_canonical`]), 18 for IPv6.
pub(crate) fn entry(addr: &SocketAddr) -> ([u8; COMPACT_V6_LEN], usize) {
    let mut bytes = [0u8; COMPACT_V6_LEN];
    let mut w = Out::new(&mut bytes);
    match addr.ip().to_canonical() {
        IpAddr::V4(ip) => w.put(&ip.octets()),
        IpAddr::V6(ip) => w.put(&ip.octets()),
    }
    w.put_u16(addr.port());
    let len = w.finish().unwrap_or_default();
    (bytes, len)
}

/// Append the compact form of `addr` (6 or 18 bytes, as [`entry`]).
pub(crate) fn put(w: &mut Out<'_>, addr: &SocketAddr) {
    let (bytes, len) = entry(addr);
    w.put(bytes.get(..len).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn bep23_entry() {
        // 10.0.0.1:6881 is 0a 00 00 01 1a e1.
        let bytes = [10, 0, 0, 1, 0x1a, 0xe1, 192, 168, 1, 2, 0xc8, 0xd5];
        let peers: Vec<_> = compact_peers(&bytes, false).collect();
        assert_eq!(
            peers,
            [
                "10.0.0.1:6881".parse::<SocketAddr>().unwrap(),
                "192.168.1.2:51413".parse().unwrap()
            ]
        );
    }

    #[test]
    fn bep7_entry() {
        let addr: SocketAddr = "[2001::53aa:64c:0:7f83:bc43:dec9]:6882".parse().unwrap();
        let mut buf = [0u8; 18];
        let mut w = Out::new(&mut buf);
        put(&mut w, &addr);
        assert_eq!(w.finish(), Ok(18));
        assert_eq!(
            buf,
            [
                0x20, 0x01, 0, 0, 0x53, 0xaa, 0x06, 0x4c, 0, 0, 0x7f, 0x83, 0xbc, 0x43, 0xde, 0xc9,
                0x1a, 0xe2
            ]
        );
        assert_eq!(compact_peers(&buf, true).collect::<Vec<_>>(), [addr]);
    }

    #[test]
    fn partial_entry_is_not_yielded() {
        assert_eq!(compact_peers(&[1, 2, 3, 4, 5], false).count(), 0);
        assert_eq!(compact_peers(&[0; 17], true).count(), 0);
    }

    #[test]
    fn mapped_v4_is_written_as_v4() {
        let addr: SocketAddr = "[::ffff:1.2.3.4]:80".parse().unwrap();
        let mut buf = [0u8; 6];
        let mut w = Out::new(&mut buf);
        put(&mut w, &addr);
        assert_eq!(w.finish(), Ok(6));
        assert_eq!(buf, [1, 2, 3, 4, 0, 80]);
    }
}
