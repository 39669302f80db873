//! A tiny HTTP/1.1 client for tracker announces: one `GET` over a fresh TCP connection, the
//! response head parsed with `httparse`, the body read by `Content-Length`, chunked encoding or
//! until close. Plain `http://` only; it never follows redirects and never speaks TLS.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

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
        let lower = url.get(..8).unwrap_or("").to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(HttpError::Https(url.to_string()));
        }
        if !lower.starts_with("http://") {
            return Err(bad());
        }
        let rest = &url[7..];
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') || authority.is_empty() {
            return Err(bad());
        }
        let (host, port) = split_host_port(authority, 80).ok_or_else(bad)?;
        if path.contains(['#', ' ', '\r', '\n']) {
            return Err(bad());
        }
        Ok(HttpUrl { host, port, path })
    }

    /// Return `host:port` as written in a `Host` header.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Return the request target with `query` appended (`?` or `&` as needed).
    pub fn target_with_query(&self, query: &str) -> String {
        if query.is_empty() {
            self.path.clone()
        } else if self.path.contains('?') {
            format!("{}&{query}", self.path)
        } else {
            format!("{}?{query}", self.path)
        }
    }
}

/// Split `host[:port]` or `[v6][:port]`.
pub(crate) fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            Some((host.to_string(), port.parse().ok()?))
        }
        Some(_) => None,
        None => Some((authority.to_string(), default_port)),
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
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: enjambre/{}\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
        url.target_with_query(query),
        env!("CARGO_PKG_VERSION"),
    );
    let io_err = |source| HttpError::Io {
        host: host.to_string(),
        source,
    };
    stream.write_all(request.as_bytes()).await.map_err(io_err)?;

    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await.map_err(io_err)?;
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(HttpError::Malformed(host.to_string()));
        }
        match parse_response(&buf, n == 0) {
            Parse::Done { status: 200, body } => return Ok(body),
            Parse::Done { status, .. } => {
                return Err(HttpError::Status {
                    host: host.to_string(),
                    status,
                })
            }
            Parse::More if n == 0 => return Err(HttpError::Malformed(host.to_string())),
            Parse::More => {}
            Parse::Bad => return Err(HttpError::Malformed(host.to_string())),
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

/// The state of a response read so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parse {
    /// Complete: status and decoded body.
    Done { status: u16, body: Vec<u8> },
    /// Need more bytes.
    More,
    /// Not HTTP, or inconsistent framing.
    Bad,
}

/// Parse a whole response from `buf`; `eof` says the peer closed the connection.
pub(crate) fn parse_response(buf: &[u8], eof: bool) -> Parse {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if eof => return Parse::Bad,
        Ok(httparse::Status::Partial) => return Parse::More,
        Err(_) => return Parse::Bad,
    };
    let status = resp.code.unwrap_or(0);
    let mut content_length = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
            {
                Some(n) => content_length = Some(n),
                None => return Parse::Bad,
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = std::str::from_utf8(h.value)
                .is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"));
        }
    }
    let body = &buf[head_len..];
    if chunked {
        return match dechunk(body) {
            Some(Some(b)) => Parse::Done { status, body: b },
            Some(None) if eof => Parse::Bad,
            Some(None) => Parse::More,
            None => Parse::Bad,
        };
    }
    match content_length {
        Some(n) if body.len() >= n => Parse::Done {
            status,
            body: body[..n].to_vec(),
        },
        Some(_) if eof => Parse::Bad,
        Some(_) => Parse::More,
        None if eof => Parse::Done {
            status,
            body: body.to_vec(),
        },
        None => Parse::More,
    }
}

/// Decode a chunked body: `Some(Some(body))` complete, `Some(None)` incomplete, `None` malformed.
fn dechunk(mut b: &[u8]) -> Option<Option<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return if b.len() > 32 { None } else { Some(None) };
        };
        let line = std::str::from_utf8(&b[..eol]).ok()?;
        let size_text = line.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            // Trailers are ignored; the final CRLF may still be on its way.
            return Some(Some(out));
        }
        if b.len() < size + 2 {
            return Some(None);
        }
        if &b[size..size + 2] != b"\r\n" {
            return None;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
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
        assert_eq!(
            u.target_with_query("info_hash=1"),
            "/a?passkey=x&info_hash=1"
        );
        let u = HttpUrl::parse("http://h").unwrap();
        assert_eq!(u.target_with_query("q=1"), "/?q=1");
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

    #[test]
    fn content_length_body_at_every_split() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nd1:ae";
        for cut in 0..resp.len() {
            assert_eq!(
                parse_response(&resp[..cut], false),
                Parse::More,
                "cut {cut}"
            );
            assert_eq!(
                parse_response(&resp[..cut], true),
                Parse::Bad,
                "cut {cut} then closed"
            );
        }
        assert_eq!(
            parse_response(resp, false),
            Parse::Done {
                status: 200,
                body: b"d1:ae".to_vec()
            }
        );
    }

    #[test]
    fn chunked_and_close_delimited_bodies() {
        let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nd1:\r\n2\r\nae\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(resp, false),
            Parse::Done {
                status: 200,
                body: b"d1:ae".to_vec()
            }
        );
        assert_eq!(parse_response(&resp[..resp.len() - 9], false), Parse::More);
        assert_eq!(parse_response(&resp[..resp.len() - 9], true), Parse::Bad);
        let close = b"HTTP/1.0 200 OK\r\n\r\nd1:ae";
        assert_eq!(parse_response(close, false), Parse::More);
        assert_eq!(
            parse_response(close, true),
            Parse::Done {
                status: 200,
                body: b"d1:ae".to_vec()
            }
        );
        let bad_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(parse_response(bad_chunk, false), Parse::Bad);
        assert_eq!(parse_response(b"SSH-2.0-x\r\n\r\n", false), Parse::Bad);
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            parse_response(not_found, false),
            Parse::Done {
                status: 404,
                body: vec![]
            }
        );
    }
}
