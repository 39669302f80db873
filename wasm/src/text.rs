//! Addresses and numbers as text, written byte by byte: the same text as their `Display`, without
//! `core::net`'s formatting code in the wasm.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use enjambre_core::decimal;

use crate::prelude::*;

/// `n` in decimal.
pub fn push_u64(out: &mut String, n: u64) {
    let mut digits = [0u8; decimal::MAX_DIGITS];
    for &d in decimal::decimal(n, &mut digits) {
        out.push(char::from(d));
    }
}

/// `n` in lowercase hex, without leading zeros.
fn push_hex(out: &mut String, n: u16) {
    let mut started = false;
    for shift in [12, 8, 4, 0] {
        let nibble = (n >> shift) & 0xf;
        if nibble != 0 || started || shift == 0 {
            started = true;
            out.push(char::from(b"0123456789abcdef"[usize::from(nibble)]));
        }
    }
}

/// Bytes as lowercase hex, two digits each.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    out
}

fn push_v4(out: &mut String, ip: Ipv4Addr) {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_u64(out, octet.into());
    }
}

/// As `Ipv6Addr`'s `Display` (RFC 5952): the first longest run of two or more zero groups is
/// `::`, and an IPv4-mapped address ends in dotted decimal.
fn push_v6(out: &mut String, ip: Ipv6Addr) {
    if let Some(v4) = ip.to_ipv4_mapped() {
        out.push_str("::ffff:");
        push_v4(out, v4);
        return;
    }
    let groups = ip.segments();
    let (mut best, mut best_len, mut run, mut run_len) = (0, 0, 0, 0);
    for (i, &g) in groups.iter().enumerate() {
        if g == 0 {
            if run_len == 0 {
                run = i;
            }
            run_len += 1;
            if run_len > best_len {
                (best, best_len) = (run, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    let push_all = |out: &mut String, part: &[u16]| {
        for (i, &g) in part.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            push_hex(out, g);
        }
    };
    if best_len > 1 {
        push_all(out, &groups[..best]);
        out.push_str("::");
        push_all(out, &groups[best + best_len..]);
    } else {
        push_all(out, &groups);
    }
}

/// An IP address, as its `Display` writes it.
pub fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(ip) => push_v4(out, ip),
        IpAddr::V6(ip) => push_v6(out, ip),
    }
}

/// An IP address as text, as its `Display` writes it.
pub fn ip(ip: IpAddr) -> String {
    let mut out = String::new();
    push_ip(&mut out, ip);
    out
}

/// A socket address, as its `Display` writes it: `ip:port`, `[ip]:port` or `[ip%scope]:port`.
pub fn addr(a: SocketAddr) -> String {
    let mut out = String::new();
    match a {
        SocketAddr::V4(a) => push_v4(&mut out, *a.ip()),
        SocketAddr::V6(a) => {
            out.push('[');
            push_v6(&mut out, *a.ip());
            if a.scope_id() != 0 {
                out.push('%');
                push_u64(&mut out, a.scope_id().into());
            }
            out.push(']');
        }
    }
    out.push(':');
    push_u64(&mut out, a.port().into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::SocketAddrV6;

    #[test]
    fn addresses_read_as_their_display() {
        let v6 = [
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "2001:db8:0:0:1:0:0:1",
            "2001:0:0:1:0:0:0:1",
            "2001:db8:0:1:1:1:1:1",
            "fe80::abcd:ef01:2:3",
            "::ffff:1.2.3.4",
            "::1.2.3.4",
            "64:ff9b::102:304",
            "1:2:3:4:5:6:7:8",
            "0:1:0:1:0:1:0:1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ];
        for text in v6 {
            let ip: Ipv6Addr = text.parse().unwrap();
            for port in [0, 80, 6881, 65535] {
                for scope in [0, 7] {
                    let a = SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope));
                    assert_eq!(addr(a), a.to_string(), "{text}");
                }
            }
        }
        for text in [
            "0.0.0.0:0",
            "10.0.0.5:6881",
            "255.255.255.255:65535",
            "1.20.3.40:9",
        ] {
            let a: SocketAddr = text.parse().unwrap();
            assert_eq!(addr(a), a.to_string());
        }
        for n in [0, 7, 10, 99, 100, 5000, u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        assert_eq!(hex(&[0, 0x0f, 0xa0, 0xff]), "000fa0ff");
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(ip(v4), v4.to_string());
    }
}
