//! The sockets of an HTTP/1.1 tracker announce: one `GET` over a fresh TCP connection, through
//! TLS for `https://`. The request's bytes and the response's framing (`Content-Length`,
//! chunked, or until close) are the core's `tracker::client`, shared with the other shells; what
//! the status and body mean is the core's `Announcer`. It never follows redirects.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use enjambre_core::tracker::client::{self, Failure, Scheme, TrackerUrl};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The largest response accepted (head and body): a tracker reply with 10,000 peers fits.
const MAX_RESPONSE: usize = 1 << 20;

/// Why an HTTP announce failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http[s]://host[:port]/path`.
    #[error("bad tracker URL {0:?}")]
    BadUrl(String),
    /// No TLS configuration (an unreadable `SSL_CERT_FILE`).
    #[error("cannot use TLS: {0}")]
    TlsConfig(String),
    /// Name resolution or connection failed.
    #[error("cannot connect to {host}: {source}")]
    Connect {
        /// Host and port.
        host: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS handshake failed (a certificate for another name, an unknown issuer, ...).
    #[error("TLS with {host} failed: {source}")]
    Tls {
        /// Host and port.
        host: String,
        /// rustls's reason.
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
    /// Every address the host resolves to is one the caller may not reach.
    #[error("refusing to announce to {0}: not an allowed address")]
    Forbidden(String),
    /// A status other than 200 (from [`get`]).
    #[error("{host} answered HTTP {status}")]
    Status {
        /// Host and port.
        host: String,
        /// The status code.
        status: u16,
    },
}

impl HttpError {
    /// The core's name for this failure.
    pub fn failure(&self) -> Failure {
        match self {
            HttpError::BadUrl(_) => Failure::BadUrl,
            HttpError::TlsConfig(_) | HttpError::Tls { .. } => Failure::Tls,
            HttpError::Connect { .. } | HttpError::Io { .. } | HttpError::Forbidden(_) => {
                Failure::Unreachable
            }
            HttpError::Timeout(_) => Failure::TimedOut,
            HttpError::Malformed(_) => Failure::Malformed,
            HttpError::Status { status, .. } => Failure::Status(*status),
        }
    }
}

/// A whole response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Whether it is `https://`.
    pub tls: bool,
    /// Host name or address, without brackets.
    pub host: String,
    /// Port (80, or 443 for https, when absent).
    pub port: u16,
    /// Path and any query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parse `http[s]://host[:port][/path][?query]`; IPv6 hosts are bracketed.
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let parsed = TrackerUrl::parse(url).map_err(|_| HttpError::BadUrl(url.to_string()))?;
        Self::from_tracker(&parsed).ok_or_else(|| HttpError::BadUrl(url.to_string()))
    }

    /// Own a tracker URL the core parsed; `None` for `udp://`.
    pub fn from_tracker(url: &TrackerUrl<'_>) -> Option<Self> {
        let tls = match url.scheme {
            Scheme::Http => false,
            Scheme::Https => true,
            Scheme::Udp => return None,
        };
        let path = match url.path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        Some(HttpUrl {
            tls,
            host: url.host.to_string(),
            port: url.port,
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
    let tls = if url.tls {
        Some(super::tls::client_config().map_err(HttpError::TlsConfig)?)
    } else {
        None
    };
    let response = request(url, query.as_bytes(), timeout, source, tls, None).await?;
    if response.status != 200 {
        return Err(HttpError::Status {
            host: url.authority(),
            status: response.status,
        });
    }
    Ok(response.body)
}

/// Which addresses a request may connect to; `None` allows any.
pub type Allow<'a> = Option<&'a (dyn Fn(SocketAddr) -> bool + Send + Sync)>;

/// Send `GET url?query` and return the response, whatever its status; `tls` is the client
/// configuration for an `https://` URL (required for one). Only addresses `allow` accepts are
/// connected to, among those the host resolves to.
pub async fn request(
    url: &HttpUrl,
    query: &[u8],
    timeout: Duration,
    source: Option<IpAddr>,
    tls: Option<Arc<rustls::ClientConfig>>,
    allow: Allow<'_>,
) -> Result<Response, HttpError> {
    let host = url.authority();
    let inner = request_inner(url, query, &host, source, tls, allow);
    match tokio::time::timeout(timeout, inner).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout(host)),
    }
}

async fn request_inner(
    url: &HttpUrl,
    query: &[u8],
    host: &str,
    source: Option<IpAddr>,
    tls: Option<Arc<rustls::ClientConfig>>,
    allow: Allow<'_>,
) -> Result<Response, HttpError> {
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(|source| HttpError::Connect {
            host: host.to_string(),
            source,
        })?
        .collect();
    if let Some(allow) = allow {
        let resolved = addrs.len();
        addrs.retain(|a| allow(*a));
        if addrs.is_empty() && resolved > 0 {
            return Err(HttpError::Forbidden(host.to_string()));
        }
    }
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
    let stream = stream.ok_or_else(|| HttpError::Connect {
        host: host.to_string(),
        source: last
            .unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address")),
    })?;
    if !url.tls {
        return exchange(stream, url, query, host).await;
    }
    let config = tls.ok_or_else(|| HttpError::TlsConfig("no TLS configuration".into()))?;
    let name =
        ServerName::try_from(url.host.clone()).map_err(|_| HttpError::BadUrl(url.host.clone()))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|source| HttpError::Tls {
            host: host.to_string(),
            source,
        })?;
    exchange(stream, url, query, host).await
}

/// Write the request and read the whole response over a connected `stream`.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    url: &HttpUrl,
    query: &[u8],
    host: &str,
) -> Result<Response, HttpError> {
    let scheme = if url.tls { Scheme::Https } else { Scheme::Http };
    let url_ref = TrackerUrl {
        scheme,
        host: &url.host,
        port: url.port,
        path: &url.path,
    };
    let user_agent = concat!("enjambre/", env!("CARGO_PKG_VERSION"));
    let mut request = vec![0u8; 512 + url.path.len() + url.host.len() + query.len()];
    let len = client::write_get(&mut request, &url_ref, query, user_agent)
        .map_err(|_| HttpError::BadUrl(url.path.clone()))?;
    let io_err = |source| HttpError::Io {
        host: host.to_string(),
        source,
    };
    stream.write_all(&request[..len]).await.map_err(io_err)?;
    stream.flush().await.map_err(io_err)?;

    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A server that closes without TLS's close_notify: the framing says whether the
            // response is whole.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(io_err(e)),
        };
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(HttpError::Malformed(host.to_string()));
        }
        match client::read_response(&mut buf, n == 0) {
            Ok(Some(reply)) => {
                buf.truncate(reply.body.end);
                buf.drain(..reply.body.start);
                return Ok(Response {
                    status: reply.status,
                    body: buf,
                });
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
        assert_eq!((u.path.as_str(), u.tls), ("/?x=1", false));
        let u = HttpUrl::parse("https://h/announce").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("h", 443, true));
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
