//! HTTP/1.1 range requests to a web seed: `GET` with `Range: bytes=a-b` over a kept-alive
//! connection (TLS for `https://`), redirects followed up to a limit, and a response accepted
//! only when it is exactly the bytes asked for: a `206` whose `Content-Range` and
//! `Content-Length` match, or a `200` for a request of a whole file. The body is then read in
//! pieces by the caller; it is never buffered whole here.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::peer::http_tracker::{connect_from, HttpUrl};

/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 5;
/// The largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Time allowed to connect, and for each read.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a range request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Worth trying again (a reset, a timeout, a busy server), after `after` when the server said.
    Retry {
        /// What happened.
        error: String,
        /// The server's `Retry-After`.
        after: Option<Duration>,
    },
    /// The server will not serve this torrent's bytes as asked: the web seed is dropped.
    Fatal(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Retry { error, .. } => f.write_str(error),
            FetchError::Fatal(e) => f.write_str(e),
        }
    }
}

fn retry(error: impl Into<String>) -> FetchError {
    FetchError::Retry {
        error: error.into(),
        after: None,
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A connection to one host, and what is left of the body being read on it.
struct Open {
    /// `scheme://host:port` it is connected to.
    origin: String,
    stream: Box<dyn Stream>,
    /// Bytes read past the head, not yet handed out.
    buffered: Vec<u8>,
    /// Body bytes still to come.
    left: u64,
    /// The server keeps the connection open after the body.
    keep_alive: bool,
}

/// A web seed's HTTP client: one connection at a time, reused while the server allows.
#[derive(Default)]
pub struct Client {
    open: Option<Open>,
}

impl Client {
    /// Ask for `len` bytes at `offset` of the file at `url`, whose length is `file_len`; on
    /// success the body is read with [`Client::read`].
    pub async fn get_range(
        &mut self,
        url: &str,
        offset: u64,
        len: u64,
        file_len: u64,
    ) -> Result<(), FetchError> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            match self.get_once(&url, offset, len, file_len).await? {
                None => return Ok(()),
                Some(next) => url = next,
            }
        }
        self.open = None;
        Err(FetchError::Fatal(format!(
            "more than {MAX_REDIRECTS} redirects (a redirect loop?)"
        )))
    }

    /// Read body bytes into `buf`; 0 once the body is whole. An error (the connection reset
    /// or cut short) leaves the client ready for a new request.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, FetchError> {
        let Some(open) = self.open.as_mut() else {
            return Ok(0);
        };
        if open.left == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(open.left) as usize;
        let n = if !open.buffered.is_empty() {
            let n = want.min(open.buffered.len());
            buf[..n].copy_from_slice(&open.buffered[..n]);
            open.buffered.drain(..n);
            n
        } else {
            match tokio::time::timeout(IO_TIMEOUT, open.stream.read(&mut buf[..want])).await {
                Ok(Ok(0)) => {
                    let left = open.left;
                    self.open = None;
                    return Err(retry(format!(
                        "connection closed {left} bytes before the end"
                    )));
                }
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    self.open = None;
                    return Err(retry(format!("connection failed: {e}")));
                }
                Err(_) => {
                    self.open = None;
                    return Err(retry("no data for 20 s"));
                }
            }
        };
        open.left -= n as u64;
        if open.left == 0 && !open.keep_alive {
            self.open = None;
        }
        Ok(n)
    }

    /// One request; `Some(location)` for a redirect.
    async fn get_once(
        &mut self,
        url: &str,
        offset: u64,
        len: u64,
        file_len: u64,
    ) -> Result<Option<String>, FetchError> {
        let parsed = HttpUrl::parse(url).map_err(|e| FetchError::Fatal(e.to_string()))?;
        let origin = format!(
            "{}://{}",
            if parsed.tls { "https" } else { "http" },
            parsed.authority()
        );
        // A connection still in the middle of a body cannot carry a new request.
        let reusable = self
            .open
            .as_ref()
            .is_some_and(|o| o.origin == origin && o.left == 0 && o.buffered.is_empty());
        let mut open = match self.open.take().filter(|_| reusable) {
            Some(open) => open,
            None => Open {
                origin,
                stream: connect(&parsed).await?,
                buffered: Vec::new(),
                left: 0,
                keep_alive: true,
            },
        };
        let last = offset + len - 1;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nRange: bytes={offset}-{last}\r\nUser-Agent: enjambre/{}\r\nAccept-Encoding: identity\r\n\r\n",
            parsed.path,
            parsed.authority(),
            env!("CARGO_PKG_VERSION")
        );
        let sent =
            tokio::time::timeout(IO_TIMEOUT, open.stream.write_all(request.as_bytes())).await;
        if !matches!(sent, Ok(Ok(()))) {
            return Err(retry("cannot send the request"));
        }
        let head = read_head(&mut open).await?;
        let head = check(&head, url, offset, len, file_len)?;
        match head {
            Checked::Redirect(location) => Ok(Some(location)),
            Checked::Body { keep_alive } => {
                open.left = len;
                open.keep_alive = keep_alive;
                self.open = Some(open);
                Ok(None)
            }
        }
    }
}

async fn connect(url: &HttpUrl) -> Result<Box<dyn Stream>, FetchError> {
    let host = url.authority();
    let addrs = tokio::time::timeout(
        IO_TIMEOUT,
        tokio::net::lookup_host((url.host.as_str(), url.port)),
    )
    .await
    .map_err(|_| retry(format!("cannot resolve {host} in time")))?
    .map_err(|e| retry(format!("cannot resolve {host}: {e}")))?;
    let mut last = format!("{host} has no address");
    let mut stream: Option<TcpStream> = None;
    for addr in addrs {
        match tokio::time::timeout(IO_TIMEOUT, connect_from(addr, None)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last = format!("cannot connect to {host}: {e}"),
            Err(_) => last = format!("cannot connect to {host} in time"),
        }
    }
    let stream = stream.ok_or_else(|| retry(last))?;
    let _ = stream.set_nodelay(true);
    if !url.tls {
        return Ok(Box::new(stream));
    }
    let config: Arc<rustls::ClientConfig> =
        crate::peer::tls::client_config().map_err(FetchError::Fatal)?;
    let name = ServerName::try_from(url.host.clone())
        .map_err(|_| FetchError::Fatal(format!("bad host name {}", url.host)))?;
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, stream);
    match tokio::time::timeout(IO_TIMEOUT, tls).await {
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(FetchError::Fatal(format!("TLS with {host} failed: {e}"))),
        Err(_) => Err(retry(format!("TLS with {host} timed out"))),
    }
}

/// A response head, owned.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

/// Read and parse the head; bytes after it stay in `open.buffered`.
async fn read_head(open: &mut Open) -> Result<Head, FetchError> {
    let mut buf = std::mem::take(&mut open.buffered);
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => {
                let head = Head {
                    status: response.code.unwrap_or(0),
                    headers: (response.headers.iter())
                        .map(|h| {
                            let value = String::from_utf8_lossy(h.value).into_owned();
                            (h.name.to_string(), value)
                        })
                        .collect(),
                };
                buf.drain(..n);
                open.buffered = buf;
                return Ok(head);
            }
            Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return Err(FetchError::Fatal("a response head over 16 KiB".into()))
            }
            Err(e) => return Err(FetchError::Fatal(format!("not an HTTP response ({e})"))),
        }
        match tokio::time::timeout(IO_TIMEOUT, open.stream.read(&mut chunk)).await {
            Ok(Ok(0)) if buf.is_empty() => return Err(retry("connection closed before answering")),
            Ok(Ok(0)) => return Err(retry("connection closed in the response head")),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(retry(format!("connection failed: {e}"))),
            Err(_) => return Err(retry("no answer for 20 s")),
        }
    }
}

/// What a valid head leads to.
#[derive(Debug, PartialEq, Eq)]
enum Checked {
    /// Follow this absolute URL.
    Redirect(String),
    /// The body is exactly the bytes asked for.
    Body { keep_alive: bool },
}

/// Whether `head` answers `Range: bytes=offset-(offset+len-1)` of a `file_len`-byte file at `url`.
fn check(
    head: &Head,
    url: &str,
    offset: u64,
    len: u64,
    file_len: u64,
) -> Result<Checked, FetchError> {
    let status = head.status;
    let keep_alive = !head
        .get("connection")
        .is_some_and(|c| c.eq_ignore_ascii_case("close"));
    if head
        .get("transfer-encoding")
        .is_some_and(|t| !t.eq_ignore_ascii_case("identity"))
    {
        return Err(FetchError::Fatal(format!(
            "HTTP {status} with Transfer-Encoding {}: only plain bodies are read",
            head.get("transfer-encoding").unwrap_or_default()
        )));
    }
    let content_length = match head.get("content-length").map(str::parse::<u64>) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(_)) => return Err(FetchError::Fatal("a malformed Content-Length".into())),
    };
    match status {
        206 => {
            let range = head
                .get("content-range")
                .ok_or_else(|| FetchError::Fatal("HTTP 206 without Content-Range".into()))?;
            let (first, last, total) = parse_content_range(range)
                .ok_or_else(|| FetchError::Fatal(format!("a malformed Content-Range {range:?}")))?;
            if first != offset || last != offset + len - 1 {
                return Err(FetchError::Fatal(format!(
                    "asked for bytes {offset}-{}, got {range:?}",
                    offset + len - 1
                )));
            }
            if total.is_some_and(|t| t != file_len) {
                return Err(FetchError::Fatal(format!(
                    "the file is {} bytes on the server, {file_len} in the torrent",
                    total.unwrap_or_default()
                )));
            }
            if content_length.is_some_and(|n| n != len) {
                return Err(FetchError::Fatal(format!(
                    "asked for {len} bytes, Content-Length says {}",
                    content_length.unwrap_or_default()
                )));
            }
            Ok(Checked::Body { keep_alive })
        }
        200 if offset == 0 && len == file_len && content_length == Some(file_len) => {
            Ok(Checked::Body { keep_alive })
        }
        200 => Err(FetchError::Fatal(match content_length {
            Some(n) if n != file_len => {
                format!("HTTP 200 of {n} bytes for a file of {file_len} (the wrong file?)")
            }
            _ => "HTTP 200 instead of 206: the server ignores Range requests".into(),
        })),
        301 | 302 | 303 | 307 | 308 => {
            let location = head
                .get("location")
                .ok_or_else(|| FetchError::Fatal(format!("HTTP {status} without Location")))?;
            Ok(Checked::Redirect(join_location(url, location)))
        }
        408 | 429 | 500..=599 => Err(FetchError::Retry {
            error: format!("HTTP {status}"),
            after: head
                .get("retry-after")
                .and_then(|s| s.parse::<u64>().ok())
                .map(Duration::from_secs),
        }),
        _ => Err(FetchError::Fatal(format!("HTTP {status}"))),
    }
}

/// `bytes first-last/total` (total may be `*`).
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let (first, last) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    (first <= last).then_some((first, last, total))
}

/// The absolute URL a `Location` names, relative to `base`.
fn join_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        format!("{}{location}", &base[..host_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|&i| i >= host_end)
            .map_or(base.len(), |i| i + 1);
        let sep = if dir_end == base.len() && !base.ends_with('/') {
            "/"
        } else {
            ""
        };
        format!("{}{sep}{location}", &base[..dir_end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, headers: &[(&str, &str)]) -> Head {
        Head {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    const URL: &str = "http://ws.test/d/f.bin";

    #[test]
    fn only_the_exact_range_asked_for_is_accepted() {
        let ok = head(
            206,
            &[
                ("Content-Range", "bytes 10-19/100"),
                ("Content-Length", "10"),
            ],
        );
        assert_eq!(
            check(&ok, URL, 10, 10, 100),
            Ok(Checked::Body { keep_alive: true })
        );
        let shifted = head(206, &[("Content-Range", "bytes 0-9/100")]);
        assert!(matches!(
            check(&shifted, URL, 10, 10, 100),
            Err(FetchError::Fatal(_))
        ));
        let other_file = head(206, &[("Content-Range", "bytes 10-19/99")]);
        assert!(matches!(
            check(&other_file, URL, 10, 10, 100),
            Err(FetchError::Fatal(_))
        ));
        let long = head(
            206,
            &[("Content-Range", "bytes 10-19/*"), ("Content-Length", "11")],
        );
        assert!(matches!(
            check(&long, URL, 10, 10, 100),
            Err(FetchError::Fatal(_))
        ));
        let whole = head(200, &[("Content-Length", "100"), ("Connection", "close")]);
        assert_eq!(
            check(&whole, URL, 0, 100, 100),
            Ok(Checked::Body { keep_alive: false })
        );
        let ignored = head(200, &[("Content-Length", "100")]);
        let e = check(&ignored, URL, 10, 10, 100).unwrap_err();
        assert!(e.to_string().contains("ignores Range"), "{e}");
    }

    #[test]
    fn busy_servers_are_retried_after_what_they_ask() {
        let busy = head(503, &[("Retry-After", "7")]);
        assert_eq!(
            check(&busy, URL, 0, 1, 1),
            Err(FetchError::Retry {
                error: "HTTP 503".into(),
                after: Some(Duration::from_secs(7))
            })
        );
        assert!(matches!(
            check(&head(404, &[]), URL, 0, 1, 1),
            Err(FetchError::Fatal(_))
        ));
    }

    #[test]
    fn redirects_resolve_against_the_url() {
        let to = |l: &str| join_location(URL, l);
        assert_eq!(to("http://o.test/x"), "http://o.test/x");
        assert_eq!(to("/a/b"), "http://ws.test/a/b");
        assert_eq!(to("g.bin"), "http://ws.test/d/g.bin");
        let r = head(302, &[("Location", "/e/f.bin")]);
        assert_eq!(
            check(&r, URL, 0, 1, 1),
            Ok(Checked::Redirect("http://ws.test/e/f.bin".into()))
        );
    }
}
