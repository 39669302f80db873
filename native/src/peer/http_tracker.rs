//! The sockets of an HTTP/1.1 tracker announce: one `GET` over a fresh TCP connection. The
//! request's bytes and the response's framing (`Content-Length`, chunked, or until close) are the
//! core's `tracker::client`, shared with the other shells. Plain `http://` only; it never follows
//! redirects and never speaks TLS.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use enjambre_core::tracker::client::{self, Scheme, TrackerUrl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The largest response accepted (head and body): a tracker reply with 10,000 peers fits.
const MAX_RESPONSE: usize = 1 << 20;

/// Why an HTTP announce failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http://host[:port]/path`.
    #[error("bad tracker URL {0:?}")]
    BadUrl(String),
    /// `https://` trackers are not supported.
    #[error("https trackers are not supported ({0})")]
    Https(String),
    /// Name resolution or connection failed.
    #[error("cannot connect to {host}: {source}")]
    Connect {
        /// Host and port.
        host: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading or writing the connection failed.
    #[error("connection to {host} failed: {source}")]
    Io {
        /// Host and port.
        host: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No complete answer in time.
    #[error("{0} did not answer in time")]
    Timeout(String),
    /// The response is not valid HTTP, is too large, or is cut short.
    #[error("malformed HTTP response from {0}")]
    Malformed(String),
    /// A status other than 200.
    #[error("{host} answered HTTP {status}")]
    Status {
        /// Host and port.
        host: String,
        /// The status code.
        status: u16,
    },
}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or address, without brackets.
    pub host: String,
    /// Port (80 when absent).
    pub port: u16,
    /// Path and any query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parse `http://host[:port][/path][?query]`; IPv6 hosts are bracketed.
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let bad = || HttpError::BadUrl(url.to_string());
        let parsed = TrackerUrl::parse(url).map_err(|_| bad())?;
        match parsed.scheme {
            Scheme::Http => {}
            Scheme::Https => return Err(HttpError::Https(url.to_string())),
            Scheme::Udp => return Err(bad()),
        }
        let path = match parsed.path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Ok(HttpUrl {
            host: parsed.host.to_string(),
            port: parsed.port,
            path,
        })
    }

    /// Return `host:port` as written in a `Host` header.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Send `GET url?query` and return the body of a 200 response. With `source`, connect from that
/// address (when of the tracker's family), so the tracker sees the address we listen on.
pub async fn get(
    url: &HttpUrl,
    query: &str,
    timeout: Duration,
    source: Option<IpAddr>,
) -> Result<Vec<u8>, HttpError> {
    let host = url.authority();
    match tokio::time::timeout(timeout, get_inner(url, query, &host, source)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout(host)),
    }
}

async fn get_inner(
    url: &HttpUrl,
    query: &str,
    host: &str,
    source: Option<IpAddr>,
) -> Result<Vec<u8>, HttpError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(|source| HttpError::Connect {
            host: host.to_string(),
            source,
        })?
        .collect();
    let mut last = None;
    let mut stream = None;
    for addr in addrs {
        match connect_from(addr, source).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut stream = stream.ok_or_else(|| HttpError::Connect {
        host: host.to_string(),
        source: last
            .unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address")),
    })?;
    let url_ref = TrackerUrl {
        scheme: Scheme::Http,
        host: &url.host,
        port: url.port,
        path: &url.path,
    };
    let user_agent = concat!("enjambre/", env!("CARGO_PKG_VERSION"));
    let mut request = vec![0u8; 512 + url.path.len() + url.host.len() + query.len()];
    let len = client::write_get(&mut request, &url_ref, query.as_bytes(), user_agent)
        .map_err(|_| HttpError::BadUrl(url.path.clone()))?;
    let io_err = |source| HttpError::Io {
        host: host.to_string(),
        source,
    };
    stream.write_all(&request[..len]).await.map_err(io_err)?;

    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await.map_err(io_err)?;
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(HttpError::Malformed(host.to_string()));
        }
        match client::read_response(&mut buf, n == 0) {
            Ok(Some(reply)) if reply.status == 200 => {
                buf.truncate(reply.body.end);
                buf.drain(..reply.body.start);
                return Ok(buf);
            }
            Ok(Some(reply)) => {
                return Err(HttpError::Status {
                    host: host.to_string(),
                    status: reply.status,
                })
            }
            Ok(None) => {}
            Err(_) => return Err(HttpError::Malformed(host.to_string())),
        }
    }
}

/// Connect to `addr`, from `source` when it is a specific address of the same family.
pub(crate) async fn connect_from(
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = source.filter(|ip| ip.is_ipv4() == addr.is_ipv4() && !ip.is_unspecified()) {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://tracker.example:6969/announce").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("tracker.example", 6969, "/announce")
        );
        let u = HttpUrl::parse("HTTP://[::1]/a?passkey=x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("::1", 80, "/a?passkey=x")
        );
        assert_eq!(u.authority(), "[::1]:80");
        let u = HttpUrl::parse("http://h").unwrap();
        assert_eq!(u.path, "/");
        let u = HttpUrl::parse("http://h?x=1").unwrap();
        assert_eq!(u.path, "/?x=1");
        assert!(matches!(
            HttpUrl::parse("https://h/announce"),
            Err(HttpError::Https(_))
        ));
        for bad in [
            "udp://h:1",
            "http://",
            "http://h:99999/",
            "http://u@h/",
            "http://h:/",
            "http://[::1/",
            "http://h/a b",
        ] {
            assert!(
                matches!(HttpUrl::parse(bad), Err(HttpError::BadUrl(_))),
                "{bad}"
            );
        }
    }
}
