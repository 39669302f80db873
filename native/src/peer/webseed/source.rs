//! A web seed as the session sees it: a peer that has every piece and never chokes. This task
//! stands in for a connection's reader and writer: it reads the session's messages from the
//! peer's outbox (its handshake, then `Request`s and `Cancel`s; everything else is ignored),
//! turns runs of adjacent requests into HTTP range requests, and hands the bytes back as
//! `Piece` messages, streamed as they arrive, exactly as a socket's reads would be.
//!
//! So everything a peer's blocks get, a web seed's get too: the picker decides which pieces it
//! fetches, each byte is written and journaled as it arrives, and the SHA-1 check decides
//! (three bad pieces and the session bans it like any peer). A range cut short is asked for
//! again from the exact byte where it stopped, inside the same `Piece` message; a web seed that
//! keeps failing, or answers what was not asked, is given up, with its reason logged. It never
//! uploads and never parses anything but the session's own messages.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use enjambre_core::session::PeerHandle;
use enjambre_core::wire::{piece_header, Extensions, Handshake, Message, Status, HANDSHAKE_LEN};
use enjambre_core::{InfoHash, PeerId};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Semaphore;

use super::files::WebFiles;
use super::http::{Client, FetchError};
use crate::peer::conn::{ConnEvent, Outbox};
use crate::peer::pool::BufPool;
use crate::peer::rate::RateLimit;

/// Adjacent requests merged into one range request at most.
const MAX_RUN: u64 = 4 << 20;
/// Failures in a row without a byte received before the web seed is given up.
const MAX_FAILURES: u32 = 6;
/// How often an idle web seed sends the session a keep-alive.
const KEEPALIVE: Duration = Duration::from_secs(60);
/// The longest wait between attempts, and the longest `Retry-After` honoured.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What a web seed's task needs.
pub struct Source<T> {
    /// The session's handle for it.
    pub peer: PeerHandle,
    /// The torrent.
    pub info_hash: InfoHash,
    /// Piece length and total length of the torrent, and its piece count.
    pub piece_length: u64,
    /// Torrent length.
    pub total: u64,
    /// Pieces.
    pub piece_count: u32,
    /// Its files' URLs.
    pub files: Arc<WebFiles>,
    /// What the session queued for this peer.
    pub outbox: Arc<Outbox>,
    /// The session loop.
    pub events: UnboundedSender<T>,
    /// Buffers for the bytes handed to the loop.
    pub pool: Arc<BufPool>,
    /// The download rate limit.
    pub limit: Arc<RateLimit>,
}

/// A block the session asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Request {
    index: u32,
    begin: u32,
    length: u32,
}

/// Run the web seed until it is given up or the task is aborted (the session closed it).
pub async fn run<T: From<ConnEvent> + Send + 'static>(s: Source<T>) {
    let mut w = Worker {
        out: Out {
            peer: s.peer,
            buf: s.pool.get(),
            len: 0,
            credit: Arc::new(Semaphore::new(2)),
            pool: s.pool.clone(),
            limit: s.limit.clone(),
            events: s.events.clone(),
        },
        inbox: Vec::new(),
        handshake_seen: false,
        queue: VecDeque::new(),
        client: Client::default(),
        failures: 0,
        s,
    };
    let reason = w.serve().await;
    tracing::warn!(web_seed = %w.s.files.base, "web seed dropped: {reason}");
    w.out.flush().await;
    let _ = w.s.events.send(ConnEvent::Closed { peer: w.s.peer }.into());
}

struct Worker<T> {
    s: Source<T>,
    out: Out<T>,
    /// The session's bytes not parsed yet.
    inbox: Vec<u8>,
    handshake_seen: bool,
    queue: VecDeque<Request>,
    client: Client,
    /// Failures in a row without progress.
    failures: u32,
}

impl<T: From<ConnEvent> + Send + 'static> Worker<T> {
    /// Greet the session, then fetch what it asks for; return why the web seed is given up.
    async fn serve(&mut self) -> String {
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(b"-EJWS01-");
        id[8..].iter_mut().for_each(|b| *b = rand::random());
        let handshake = Handshake::new(self.s.info_hash, PeerId(id), Extensions::default());
        self.out.put(&handshake.encode()).await;
        let bytes = (self.s.piece_count as usize).div_ceil(8);
        self.out.put(&(1 + bytes as u32).to_be_bytes()).await;
        self.out.put(&[5]).await;
        let mut bitfield = vec![0xffu8; bytes];
        if self.s.piece_count % 8 != 0 {
            bitfield[bytes - 1] = 0xff << (8 - self.s.piece_count % 8);
        }
        self.out.put(&bitfield).await;
        self.out.put(&[0, 0, 0, 1, 1]).await; // Unchoke
        self.out.flush().await;
        loop {
            if let Err(e) = self.take_messages() {
                return e;
            }
            let Some(run) = self.next_run() else {
                // Idle, a keep-alive now and then, so the session does not time it out.
                let queued = self.s.outbox.queued();
                if tokio::time::timeout(KEEPALIVE, queued).await.is_err() {
                    self.out.put(&[0, 0, 0, 0]).await;
                    self.out.flush().await;
                }
                continue;
            };
            if let Err(e) = self.fetch(&run).await {
                return e;
            }
        }
    }

    /// Parse what the session sent; note requests and cancels.
    fn take_messages(&mut self) -> Result<(), String> {
        let sent = self.s.outbox.take_bytes(&mut self.inbox);
        if sent > 0 {
            let peer = self.s.peer;
            let _ = self
                .s
                .events
                .send(ConnEvent::Sent { peer, bytes: sent }.into());
        }
        let mut at = 0;
        if !self.handshake_seen {
            if self.inbox.len() < HANDSHAKE_LEN {
                return Ok(());
            }
            self.handshake_seen = true;
            at = HANDSHAKE_LEN;
        }
        loop {
            let decoded = Message::decode(&self.inbox[at..], &[], 1 << 20)
                .map_err(|e| format!("the session sent what we cannot read: {e:?}"))?;
            let Status::Complete((m, n)) = decoded else {
                break;
            };
            at += n;
            match m {
                Message::Request {
                    index,
                    begin,
                    length,
                } => self.queue.push_back(Request {
                    index,
                    begin,
                    length,
                }),
                Message::Cancel {
                    index,
                    begin,
                    length,
                } => {
                    let r = Request {
                        index,
                        begin,
                        length,
                    };
                    self.queue.retain(|q| *q != r);
                }
                _ => {}
            }
        }
        self.inbox.drain(..at);
        Ok(())
    }

    /// The requests at the front of the queue whose bytes follow each other.
    fn next_run(&mut self) -> Option<Vec<Request>> {
        let first = self.queue.pop_front()?;
        let mut end = self.start_of(first) + u64::from(first.length);
        let mut run = vec![first];
        while let Some(&next) = self.queue.front() {
            if self.start_of(next) != end || end - self.start_of(run[0]) >= MAX_RUN {
                break;
            }
            end += u64::from(next.length);
            run.push(next);
            self.queue.pop_front();
        }
        Some(run)
    }

    fn start_of(&self, r: Request) -> u64 {
        u64::from(r.index) * self.s.piece_length + u64::from(r.begin)
    }

    /// Fetch a run of requests, handing each byte over as it arrives.
    async fn fetch(&mut self, run: &[Request]) -> Result<(), String> {
        let start = self.start_of(run[0]);
        let end = run
            .iter()
            .map(|r| self.start_of(*r) + u64::from(r.length))
            .max()
            .unwrap_or(start);
        if end > self.s.total || run.iter().any(|r| r.length == 0) {
            return Err("the session asked for bytes outside the torrent".into());
        }
        let mut cursor = Cursor {
            run,
            piece_length: self.s.piece_length,
            next: 0,
        };
        let mut at = start;
        let mut buf = vec![0u8; 64 * 1024];
        while at < end {
            let span = self
                .s
                .files
                .first_span(at, end)
                .ok_or("no file holds these bytes")?;
            let file = self.s.files.file(span.file).clone();
            let Some(url) = &file.url else {
                // A pad file: zeros, never fetched.
                let zeros = vec![0u8; span.len as usize];
                cursor.emit(&mut self.out, &mut at, &zeros).await;
                continue;
            };
            let span_end = at + span.len;
            let got = self
                .client
                .get_range(url, span.offset, span.len, file.length)
                .await;
            let mut result = got;
            while result.is_ok() && at < span_end {
                match self.client.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => {
                        self.failures = 0;
                        cursor.emit(&mut self.out, &mut at, &buf[..n]).await;
                    }
                    Err(e) => result = Err(e),
                }
                self.take_messages()?;
            }
            self.out.flush().await;
            match result {
                Ok(()) => {}
                Err(FetchError::Fatal(e)) => return Err(format!("{url}: {e}")),
                Err(FetchError::Retry { error, after }) => {
                    self.failures += 1;
                    if self.failures >= MAX_FAILURES {
                        return Err(format!("{url}: {error} ({MAX_FAILURES} failures in a row)"));
                    }
                    let backoff = Duration::from_millis(250 << self.failures.min(8)) / 2;
                    let wait = after.unwrap_or(backoff).min(MAX_BACKOFF);
                    let wait = if self.failures == 1 && after.is_none() {
                        Duration::ZERO
                    } else {
                        wait
                    };
                    tracing::info!(web_seed = %url, error = %error, retry_in = ?wait, at, "web seed range interrupted; continuing from this byte");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Ok(())
    }
}

/// Where the bytes being fetched are in the run: the `Piece` header of each request goes out
/// just before its first byte.
struct Cursor<'r> {
    run: &'r [Request],
    piece_length: u64,
    next: usize,
}

impl Cursor<'_> {
    /// Hand over `data`, the torrent bytes at `*at`, advancing `*at`.
    async fn emit<T: From<ConnEvent>>(&mut self, out: &mut Out<T>, at: &mut u64, mut data: &[u8]) {
        while let Some(&r) = self.run.get(self.next).filter(|_| !data.is_empty()) {
            let start = u64::from(r.index) * self.piece_length + u64::from(r.begin);
            let end = start + u64::from(r.length);
            if *at == start {
                out.put(&piece_header(r.index, r.begin, r.length)).await;
            }
            let n = (data.len() as u64).min(end - *at) as usize;
            out.put(&data[..n]).await;
            *at += n as u64;
            data = &data[n..];
            if *at == end {
                self.next += 1;
            }
        }
    }
}

/// The bytes going to the session loop, in pooled buffers, two at most in flight.
struct Out<T> {
    peer: PeerHandle,
    buf: Vec<u8>,
    len: usize,
    credit: Arc<Semaphore>,
    pool: Arc<BufPool>,
    limit: Arc<RateLimit>,
    events: UnboundedSender<T>,
}

impl<T: From<ConnEvent>> Out<T> {
    /// Queue `bytes`, handing full buffers over.
    async fn put(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = bytes.len().min(self.buf.len() - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
            self.len += n;
            bytes = &bytes[n..];
            if self.len == self.buf.len() {
                self.flush().await;
            }
        }
    }

    /// Hand over what is queued.
    async fn flush(&mut self) {
        if self.len == 0 {
            return;
        }
        let Ok(permit) = self.credit.clone().acquire_owned().await else {
            return;
        };
        let buf = std::mem::replace(&mut self.buf, self.pool.get());
        let len = std::mem::take(&mut self.len);
        let peer = self.peer;
        let data = ConnEvent::Data {
            peer,
            buf,
            len,
            permit,
        };
        if self.events.send(data.into()).is_ok() {
            self.limit.take(len).await;
        }
    }
}
