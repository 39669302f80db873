//! One HTTP/1.1 announce from the client's side, sans-IO: the `GET` request's bytes, and the
//! response's framing (`Content-Length`, `chunked`, or until the server closes).
//!
//! The shell connects (and does TLS for `https`), writes [`write_get`]'s bytes, and appends what
//! it reads to one buffer, calling [`read_response`] after each read until it is complete. A
//! response that does not fit the shell's buffer is the shell's error to report.

use core::fmt;
use core::ops::Range;

use super::url::TrackerUrl;
use crate::BufferTooSmall;

/// Headers read at most; a tracker sends a handful.
const MAX_HEADERS: usize = 32;
/// A chunk-size line longer than this is not one.
const MAX_CHUNK_LINE: usize = 32;

/// Why a response was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HttpError {
    /// Not an HTTP/1.x response head.
    BadHead,
    /// A `Content-Length` that is not a number, or a chunked body that is not chunked.
    BadFraming,
    /// The server closed before the whole response arrived.
    Truncated,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HttpError::BadHead => "not an HTTP response",
            HttpError::BadFraming => "malformed HTTP body framing",
            HttpError::Truncated => "the HTTP response ended early",
        })
    }
}

impl core::error::Error for HttpError {}

/// A whole response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Where the body (de-chunked) sits in the buffer given to [`read_response`].
    pub body: Range<usize>,
}

/// Write `GET <path>?<query> HTTP/1.1` with `Host`, `User-Agent`, `Accept-Encoding: identity`
/// and `Connection: close` into `out`; returns its length.
pub fn write_get(
    out: &mut [u8],
    url: &TrackerUrl<'_>,
    query: &[u8],
    user_agent: &str,
) -> Result<usize, BufferTooSmall> {
    let mut w = Out { buf: out, at: 0 };
    let path = if url.path.is_empty() { "/" } else { url.path };
    w.put(b"GET ");
    if path.starts_with('?') {
        w.put(b"/");
    }
    w.put(path.as_bytes());
    if !query.is_empty() {
        w.put(if path.contains('?') { b"&" } else { b"?" });
        w.put(query);
    }
    w.put(b" HTTP/1.1\r\nHost: ");
    if url.host_is_v6() {
        w.put(b"[");
        w.put(url.host.as_bytes());
        w.put(b"]");
    } else {
        w.put(url.host.as_bytes());
    }
    w.put(b":");
    let mut digits = [0u8; crate::decimal::MAX_DIGITS];
    w.put(crate::decimal::decimal(url.port.into(), &mut digits));
    w.put(b"\r\nUser-Agent: ");
    w.put(user_agent.as_bytes());
    w.put(b"\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n");
    w.finish()
}

/// Read the response in `buf` so far; `eof` says the server closed the connection. `Ok(None)`:
/// more bytes are needed. A complete chunked body is de-chunked in place.
pub fn read_response(buf: &mut [u8], eof: bool) -> Result<Option<Reply>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if eof => return Err(HttpError::Truncated),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HttpError::BadHead),
    };
    let status = head.code.unwrap_or(0);
    let mut content_length = None;
    let mut chunked = false;
    for h in head.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = core::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or(HttpError::BadFraming)?;
            if content_length.is_some_and(|m| m != n) {
                return Err(HttpError::BadFraming);
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"chunked"));
        }
    }
    let body = head_len..buf.len();
    if chunked {
        return match dechunk(&mut buf[head_len..])? {
            Some(len) => Ok(Some(Reply {
                status,
                body: head_len..head_len + len,
            })),
            None if eof => Err(HttpError::Truncated),
            None => Ok(None),
        };
    }
    match content_length {
        Some(n) if body.len() >= n => Ok(Some(Reply {
            status,
            body: head_len..head_len + n,
        })),
        Some(_) if eof => Err(HttpError::Truncated),
        None if eof => Ok(Some(Reply { status, body })),
        _ => Ok(None),
    }
}

/// De-chunk `b` in place once all of it is there: `Some(len)` with the body in `b[..len]`,
/// `None` while incomplete (nothing moved).
fn dechunk(b: &mut [u8]) -> Result<Option<usize>, HttpError> {
    // First pass: check the whole body is there and well formed, without moving anything.
    let mut chunks = Chunks { b, at: 0 };
    loop {
        match chunks.next_chunk()? {
            None => return Ok(None),
            Some(r) if r.is_empty() => break,
            Some(_) => {}
        }
    }
    // Second pass: move each chunk's data down over the framing.
    let mut chunks = Chunks { b, at: 0 };
    let mut len = 0;
    while let Some(r) = chunks.next_chunk()?.filter(|r| !r.is_empty()) {
        let n = r.len();
        chunks.b.copy_within(r, len);
        len += n;
    }
    Ok(Some(len))
}

/// Walks the chunks of a chunked body.
struct Chunks<'a> {
    b: &'a mut [u8],
    at: usize,
}

impl Chunks<'_> {
    /// The next chunk's data range (empty: the last chunk, trailers read); `None` when the bytes
    /// end first.
    fn next_chunk(&mut self) -> Result<Option<Range<usize>>, HttpError> {
        let Some(line) = self.line()? else {
            return Ok(None);
        };
        let size_text = line.split(|&c| c == b';').next().unwrap_or(&[]);
        let size = core::str::from_utf8(size_text)
            .ok()
            .map(str::trim)
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or(HttpError::BadFraming)?;
        if size == 0 {
            // Trailers, up to an empty line.
            loop {
                match self.line()? {
                    None => return Ok(None),
                    Some([]) => return Ok(Some(self.at..self.at)),
                    Some(_) => {}
                }
            }
        }
        let start = self.at;
        let end = start.checked_add(size).ok_or(HttpError::BadFraming)?;
        let Some(crlf) = self.b.get(end..end + 2) else {
            return Ok(None);
        };
        if crlf != b"\r\n" {
            return Err(HttpError::BadFraming);
        }
        self.at = end + 2;
        Ok(Some(start..end))
    }

    /// The next CRLF-terminated line, without its CRLF.
    fn line(&mut self) -> Result<Option<&[u8]>, HttpError> {
        let rest = &self.b[self.at..];
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(eol) if eol <= MAX_CHUNK_LINE * 8 => {
                let start = self.at;
                self.at += eol + 2;
                Ok(Some(&self.b[start..start + eol]))
            }
            Some(_) => Err(HttpError::BadFraming),
            None if rest.len() > MAX_CHUNK_LINE * 8 => Err(HttpError::BadFraming),
            None => Ok(None),
        }
    }
}

/// Appends into a caller-owned slice, remembering whether everything fitted.
struct Out<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.at..end) {
            dst.copy_from_slice(bytes);
        }
        self.at = end;
    }

    fn finish(self) -> Result<usize, BufferTooSmall> {
        if self.at <= self.buf.len() {
            Ok(self.at)
        } else {
            Err(BufferTooSmall { required: self.at })
        }
    }
}
