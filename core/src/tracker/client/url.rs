//! Tracker URLs as announce lists give them: `http://`, `https://` and `udp://`.

use core::fmt;

/// How a tracker is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Scheme {
    /// HTTP announces (BEP 3).
    Http,
    /// HTTP over TLS; the TLS itself is the shell's.
    Https,
    /// UDP announces (BEP 15).
    Udp,
}

/// A tracker URL, borrowed from the text it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TrackerUrl<'a> {
    /// The scheme.
    pub scheme: Scheme,
    /// Host name or address; IPv6 without its brackets.
    pub host: &'a str,
    /// Port (the scheme's default when absent; UDP has none and needs one).
    pub port: u16,
    /// Path and query for HTTP, starting with `/` or `?` (empty: `/`).
    pub path: &'a str,
}

/// Why a tracker URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UrlError {
    /// Not `http://`, `https://` or `udp://`.
    Scheme,
    /// No host, a bad port, user info, or a character a request line cannot carry.
    Malformed,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => "not an http, https or udp tracker URL",
            UrlError::Malformed => "malformed tracker URL",
        })
    }
}

impl core::error::Error for UrlError {}

impl<'a> TrackerUrl<'a> {
    /// Parse `scheme://host[:port][/path][?query]`; IPv6 hosts are bracketed.
    pub fn parse(url: &'a str) -> Result<Self, UrlError> {
        let (scheme, rest) = [
            ("http://", Scheme::Http),
            ("https://", Scheme::Https),
            ("udp://", Scheme::Udp),
        ]
        .into_iter()
        .find_map(|(prefix, scheme)| {
            let head = url.get(..prefix.len())?;
            let rest = url.get(prefix.len()..)?;
            head.eq_ignore_ascii_case(prefix).then_some((scheme, rest))
        })
        .ok_or(UrlError::Scheme)?;
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        // Checked (it cannot fail at a `find`): no str-slicing panic code in the browser's wasm.
        let (authority, path) = rest.split_at_checked(split).ok_or(UrlError::Malformed)?;
        if authority.is_empty() || authority.contains('@') {
            return Err(UrlError::Malformed);
        }
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
            Scheme::Udp => 0,
        };
        let (host, port) = split_host_port(authority, default_port).ok_or(UrlError::Malformed)?;
        let unsafe_char = |c: char| c == '#' || c.is_ascii_whitespace() || c.is_ascii_control();
        if host.is_empty() || port == 0 || path.contains(unsafe_char) {
            return Err(UrlError::Malformed);
        }
        Ok(TrackerUrl {
            scheme,
            host,
            port,
            path,
        })
    }

    /// Whether the host is an IPv6 address (written bracketed in a `Host` header).
    pub fn host_is_v6(&self) -> bool {
        self.host.contains(':')
    }
}

/// Split `host[:port]` or `[v6][:port]`.
pub fn split_host_port(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host, port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            Some((host, port.parse().ok()?))
        }
        Some(_) => None,
        None => Some((authority, default_port)),
    }
}
