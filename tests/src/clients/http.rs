//! A minimal HTTP/1.1 client for the tests (one request per connection): enough for trackers'
//! announce/scrape/API and the JSON-RPC of Transmission and aria2.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A response: status code, raw head, body.
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }
}

/// One request; `Connection: close`, the body read to the end of the stream.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let io = |e: std::io::Error| format!("{method} http://{addr}{path}: {e}");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(io)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).map_err(io)?;
    s.write_all(body).map_err(io)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(io)?;
    parse(&buf).map_err(|e| format!("{method} {path}: {e}"))
}

/// A raw response: head, blank line, body (possibly chunked).
fn parse(buf: &[u8]) -> Result<Response, String> {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no response head in {} bytes", buf.len()))?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let mut body = buf[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok(Response { status, head, body })
}

/// GET `path`.
pub fn get(addr: SocketAddr, path: &str) -> Result<Response, String> {
    request(addr, "GET", path, &[], &[])
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}

/// Percent-encode every byte (what an info-hash needs in a query).
pub fn percent_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// Python that makes one HTTP request and writes the raw response (head and body) to stdout.
const PY_REQUEST: &str = r#"
import socket, sys
host, port, method, path, nh = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
heads = sys.argv[6:6 + 2 * nh]
body = sys.stdin.buffer.read()
req = "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\nContent-Length: %d\r\n" % (method, path, host, port, len(body))
for i in range(nh):
    req += "%s: %s\r\n" % (heads[2 * i], heads[2 * i + 1])
s = socket.create_connection((host, port), timeout=10)
s.sendall(req.encode() + b"\r\n" + body)
while True:
    b = s.recv(65536)
    if not b:
        break
    sys.stdout.buffer.write(b)
"#;

/// Like [`request`], but from inside network namespace `netns` when one is given (through
/// `ip netns exec NETNS python3`), for daemons that only listen there.
pub fn request_in(
    netns: Option<&str>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, String> {
    let Some(ns) = netns else {
        return request(addr, method, path, headers, body);
    };
    let mut c = std::process::Command::new("ip");
    c.args([
        "netns",
        "exec",
        ns,
        &super::libtorrent::python(),
        "-c",
        PY_REQUEST,
    ])
    .arg(addr.ip().to_string())
    .arg(addr.port().to_string())
    .args([method, path, &headers.len().to_string()]);
    for (k, v) in headers {
        c.args([k, v]);
    }
    let mut child = c
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("ip netns exec {ns}: {e}"))?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .map_err(|e| format!("ip netns exec {ns}: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("ip netns exec {ns}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{method} http://{addr}{path} in {ns}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    parse(&out.stdout).map_err(|e| format!("{method} {path} in {ns}: {e}"))
}
