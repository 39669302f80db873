//! A web seed for tests: an HTTP/1.1 server answering `Range` requests from files under a
//! directory, with knobs to reset connections every N bytes, limit its rate, or misbehave, and
//! counters of what it served.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behaviour {
    /// The bytes asked for.
    #[default]
    Honest,
    /// The bytes asked for, with the first byte of every 16 KiB of the file flipped.
    Corrupt,
    /// `200` and the whole file, whatever the range.
    IgnoresRange,
    /// `206` whose `Content-Length` is 100 bytes more than asked.
    WrongLength,
    /// `302` to the URL asked for.
    RedirectLoop,
    /// Bytes that are not HTTP.
    Garbage,
}

/// The knobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Knobs {
    /// Reset (RST) the connection each time this many more body bytes went out; 0: never.
    pub reset_every: u64,
    /// Body bytes per second at most; 0: no limit.
    pub rate: u64,
    /// How it answers.
    pub behaviour: Behaviour,
    /// The first this many requests are answered `503` with `Retry-After: 1`.
    pub busy_first: u64,
}

/// A running server and its counters.
pub struct WebSeed {
    /// Where it listens.
    pub addr: SocketAddr,
    served: Arc<AtomicU64>,
    resets: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

impl WebSeed {
    /// Start serving the files under `root` (never stops; the test process ends it).
    pub fn start(root: &Path, knobs: Knobs) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seed = WebSeed {
            addr,
            served: Arc::default(),
            resets: Arc::default(),
            requests: Arc::default(),
        };
        let shared = Shared {
            root: root.to_path_buf(),
            knobs,
            served: seed.served.clone(),
            resets: seed.resets.clone(),
            requests: seed.requests.clone(),
            since_reset: Arc::default(),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        seed
    }

    /// `http://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// Body bytes written to sockets so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }

    /// Connections reset so far.
    pub fn resets(&self) -> u64 {
        self.resets.load(Ordering::SeqCst)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Shared {
    root: PathBuf,
    knobs: Knobs,
    served: Arc<AtomicU64>,
    resets: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    /// Body bytes since the last reset, over all connections.
    since_reset: Arc<AtomicU64>,
}

impl Shared {
    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut out = stream;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut range = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                if h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    let (a, b) = v.trim().split_once('-').unwrap();
                    range = Some((a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap()));
                }
            }
            let n = self.requests.fetch_add(1, Ordering::SeqCst);
            if n < self.knobs.busy_first {
                let busy = b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n";
                if out.write_all(busy).is_err() {
                    return;
                }
                continue;
            }
            if !self.answer(&mut out, &path, range) {
                return;
            }
        }
    }

    /// Answer one request; false when the connection is over.
    fn answer(&self, out: &mut TcpStream, path: &str, range: Option<(u64, u64)>) -> bool {
        let file = self.root.join(decode(path.trim_start_matches('/')));
        let Ok(mut f) = std::fs::File::open(&file) else {
            let _ = out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            return true;
        };
        let size = f.metadata().unwrap().len();
        let (first, last) = range.unwrap_or((0, size - 1));
        let len = last - first + 1;
        let head = match self.knobs.behaviour {
            Behaviour::Garbage => {
                let _ = out.write_all(b"\x00\x01garbage, not HTTP at all\r\n\r\n");
                return false;
            }
            Behaviour::RedirectLoop => {
                let head = format!("HTTP/1.1 302 Found\r\nLocation: {path}\r\nContent-Length: 0\r\n\r\n");
                return out.write_all(head.as_bytes()).is_ok();
            }
            Behaviour::IgnoresRange => {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n")
            }
            Behaviour::WrongLength => format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{size}\r\nContent-Length: {}\r\n\r\n",
                len + 100
            ),
            Behaviour::Honest | Behaviour::Corrupt => format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{size}\r\nContent-Length: {len}\r\n\r\n"
            ),
        };
        if out.write_all(head.as_bytes()).is_err() {
            return false;
        }
        let (first, len) = if self.knobs.behaviour == Behaviour::IgnoresRange {
            (0, size)
        } else {
            (first, len)
        };
        f.seek(SeekFrom::Start(first)).unwrap();
        let mut at = first;
        let mut left = len;
        let mut buf = vec![0u8; 16 * 1024];
        let started = Instant::now();
        let mut sent_here = 0u64;
        while left > 0 {
            let mut n = (buf.len() as u64).min(left) as usize;
            let every = self.knobs.reset_every;
            let mut reset = false;
            if every > 0 {
                let since = self.since_reset.load(Ordering::SeqCst);
                if since + n as u64 >= every {
                    n = (every - since) as usize;
                    reset = true;
                }
            }
            f.read_exact(&mut buf[..n]).unwrap();
            if self.knobs.behaviour == Behaviour::Corrupt {
                for (i, b) in buf[..n].iter_mut().enumerate() {
                    if (at + i as u64) % (16 * 1024) == 0 {
                        *b ^= 0xff;
                    }
                }
            }
            if out.write_all(&buf[..n]).is_err() {
                return false;
            }
            self.served.fetch_add(n as u64, Ordering::SeqCst);
            self.since_reset.fetch_add(n as u64, Ordering::SeqCst);
            at += n as u64;
            left -= n as u64;
            sent_here += n as u64;
            if reset {
                self.since_reset.store(0, Ordering::SeqCst);
                self.resets.fetch_add(1, Ordering::SeqCst);
                let _ = socket2::SockRef::from(&*out).set_linger(Some(Duration::ZERO));
                return false;
            }
            if self.knobs.rate > 0 {
                let due = Duration::from_secs_f64(sent_here as f64 / self.knobs.rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        true
    }
}

/// Percent-decode a URL path.
fn decode(path: &str) -> String {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
