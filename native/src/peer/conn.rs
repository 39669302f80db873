//! One peer socket: a reader task that hands large reads to the session loop, and a writer task
//! that sends what the session queued in the peer's [`Outbox`], reading uploaded blocks from
//! storage straight into its send buffer.
//!
//! The reader holds at most two buffers of the shared pool at a time (a semaphore with two
//! permits travels with each read), so a slow session back-pressures the TCP connection
//! instead of buffering. The writer reports every byte the socket took, and the session hands
//! it no more than its send window beyond that: a slow peer back-pressures the session.
//! Neither task ever parses a byte.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enjambre_core::mse::Rc4;
use enjambre_core::session::PeerHandle;
use tokio::io::AsyncWriteExt;
use tokio::io::Interest;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc::UnboundedSender, Notify, OwnedSemaphorePermit, Semaphore};

use super::encryption::ReadCipher;
use super::pool::BufPool;
use super::rate::RateLimit;
use super::storage::Storage;

/// Send buffers are flushed to the socket once they hold this much.
const SEND_BATCH: usize = 256 * 1024;

/// What a connection's tasks tell the session loop.
pub enum ConnEvent {
    /// Bytes arrived: `buf[..len]`. Drop `permit` when done with the buffer.
    Data {
        /// The peer.
        peer: PeerHandle,
        /// A pooled buffer.
        buf: Vec<u8>,
        /// Bytes in it.
        len: usize,
        /// Returns the reader's credit when dropped.
        permit: OwnedSemaphorePermit,
    },
    /// The socket took `bytes` more of what the outbox held (headers and block data too).
    Sent {
        /// The peer.
        peer: PeerHandle,
        /// How many.
        bytes: usize,
    },
    /// The socket closed or failed (reported once per task; the loop ignores repeats).
    Closed {
        /// The peer.
        peer: PeerHandle,
    },
}

/// A block to upload: the `Piece` header, then data read from storage.
#[derive(Debug, Clone, Copy)]
struct Block {
    header: [u8; 13],
    piece: u32,
    offset: u32,
    len: u32,
}

#[derive(Clone, Copy)]
enum Item {
    /// Queued bytes up to this end offset in `OutState::bytes`.
    Bytes(usize),
    Block(Block),
}

#[derive(Default)]
struct OutState {
    bytes: Vec<u8>,
    items: Vec<Item>,
}

impl Item {
    fn block(self) -> Option<Block> {
        match self {
            Item::Block(b) => Some(b),
            Item::Bytes(_) => None,
        }
    }
}

/// What the session loop has queued for one peer, in order (or messages first: see
/// [`Outbox::let_messages_pass_blocks`]).
#[derive(Default)]
pub struct Outbox {
    state: Mutex<OutState>,
    notify: Notify,
    /// Messages may go ahead of blocks queued before them.
    passing: AtomicBool,
    /// Something was queued since the writer last took the queue.
    news: AtomicBool,
}

impl Outbox {
    /// Queue bytes to send.
    pub fn push_bytes(&self, bytes: &[u8]) {
        let mut s = self.state.lock().expect("outbox poisoned");
        s.bytes.extend_from_slice(bytes);
        let end = s.bytes.len();
        match s.items.last_mut() {
            Some(Item::Bytes(e)) => *e = end,
            _ => s.items.push(Item::Bytes(end)),
        }
        drop(s);
        self.news.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// From now on (`yes`), the writer may send messages queued after blocks before those
    /// blocks: a request or a have then waits for the block being sent, never for seconds of
    /// blocks queued on a slow uplink. Only where the session says so
    /// (`Session::messages_may_pass_blocks`); messages keep their own order either way.
    pub fn let_messages_pass_blocks(&self, yes: bool) {
        self.passing.store(yes, Ordering::Relaxed);
    }

    /// Queue an upload: `header`, then `len` bytes of storage at `piece`/`offset`.
    pub fn push_block(&self, header: [u8; 13], piece: u32, offset: u32, len: u32) {
        let mut s = self.state.lock().expect("outbox poisoned");
        s.items.push(Item::Block(Block {
            header,
            piece,
            offset,
            len,
        }));
        drop(s);
        self.news.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

impl Outbox {
    /// Append the bytes queued so far to `into` and return how many the queue held, uploads'
    /// headers and data included (a peer that never asks for blocks has none): for a task that
    /// stands in for a socket, such as a web seed's.
    pub fn take_bytes(&self, into: &mut Vec<u8>) -> usize {
        let mut s = self.state.lock().expect("outbox poisoned");
        let mut taken = s.bytes.len();
        into.extend_from_slice(&s.bytes);
        for item in s.items.drain(..) {
            if let Item::Block(b) = item {
                taken += b.header.len() + b.len as usize;
            }
        }
        s.bytes.clear();
        taken
    }

    /// Wait until something is queued (at once if something was queued since the last wait).
    pub async fn queued(&self) {
        self.notify.notified().await;
    }
}

/// Read from the socket until it closes, handing each read to the loop, decrypted with
/// `cipher`; `first` (bytes the key exchange read past its end) goes first.
pub async fn reader<T: From<ConnEvent>>(
    peer: PeerHandle,
    stream: OwnedReadHalf,
    mut cipher: ReadCipher,
    first: Vec<u8>,
    pool: Arc<BufPool>,
    limit: Arc<RateLimit>,
    events: UnboundedSender<T>,
) {
    let credit = Arc::new(Semaphore::new(2));
    if !first.is_empty() {
        let Ok(permit) = credit.clone().acquire_owned().await else {
            return;
        };
        let mut buf = pool.get();
        let len = first.len().min(buf.len());
        buf[..len].copy_from_slice(&first[..len]);
        let data = ConnEvent::Data {
            peer,
            buf,
            len,
            permit,
        };
        if events.send(data.into()).is_err() {
            return;
        }
    }
    loop {
        let Ok(permit) = credit.clone().acquire_owned().await else {
            break;
        };
        if stream.readable().await.is_err() {
            break;
        }
        let mut buf = pool.get();
        match stream.try_read(&mut buf) {
            Ok(0) => break,
            Ok(len) => {
                cipher.apply(&mut buf[..len]);
                if events
                    .send(
                        ConnEvent::Data {
                            peer,
                            buf,
                            len,
                            permit,
                        }
                        .into(),
                    )
                    .is_err()
                {
                    return;
                }
                limit.take(len).await;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => pool.put(buf),
            Err(_) => break,
        }
    }
    let _ = events.send(ConnEvent::Closed { peer }.into());
}

/// Send what the outbox holds until the socket fails or the task is aborted.
///
/// Uploaded blocks go out with `sendfile` (the header first, flagged `MSG_MORE` so it leaves
/// with the data): the page cache is never copied through user space. Where `sendfile` is not
/// supported, blocks are read into the send buffer instead, as they are on an encrypted
/// connection (`encrypt`: RC4 applied to every byte just before it is written).
pub async fn writer<T: From<ConnEvent>>(
    peer: PeerHandle,
    mut stream: OwnedWriteHalf,
    mut encrypt: Option<Rc4>,
    outbox: Arc<Outbox>,
    storage: Arc<Storage>,
    limit: Arc<RateLimit>,
    events: UnboundedSender<T>,
) {
    let mut mine = OutState::default();
    let mut batch: Vec<u8> = Vec::with_capacity(SEND_BATCH + 16 * 1024 + 13);
    let mut zero_copy = encrypt.is_none();
    // Bytes the socket took, not yet reported: one report per SEND_BATCH, and one before
    // waiting (for more to send, or for the rate limit), rather than one per write (two per
    // uploaded block). So what a peer got before its connection ended is always counted.
    let mut took = Took::new(&events, peer);
    // This connection's round trips, for the uplink's queue (see `uplink`).
    let conn_id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let _forget = ForgetOnDrop(limit.clone(), conn_id);
    let mut probed: Option<std::time::Instant> = None;
    // Blocks a turn left unsent because messages were queued meanwhile (passing mode only).
    let mut held: VecDeque<Block> = VecDeque::new();
    let mut items: Vec<Item> = Vec::new();
    'run: loop {
        {
            let mut s = outbox.state.lock().expect("outbox poisoned");
            std::mem::swap(&mut *s, &mut mine);
            outbox.news.store(false, Ordering::Release);
        }
        if mine.items.is_empty() && held.is_empty() {
            took.flush();
            outbox.notify.notified().await;
            continue;
        }
        let passing = outbox.passing.load(Ordering::Relaxed);
        // The upload limit may come and go (`uplink`): read once a turn.
        let limited = limit.is_limited();
        items.clear();
        if passing {
            // Every message queued so far (in their order), then the blocks (in theirs).
            if !mine.bytes.is_empty() {
                items.push(Item::Bytes(mine.bytes.len()));
            }
            held.extend(mine.items.drain(..).filter_map(Item::block));
            items.extend(held.drain(..).map(Item::Block));
        } else {
            items.append(&mut mine.items);
        }
        let mut from = 0;
        let mut first_block = true;
        for (k, &item) in items.iter().enumerate() {
            // New messages go before the blocks not started yet (one block a turn at least).
            let block = matches!(item, Item::Block(_));
            if passing && block && !first_block && outbox.news.load(Ordering::Acquire) {
                held.extend(items[k..].iter().copied().filter_map(Item::block));
                break;
            }
            first_block &= !block;
            match item {
                Item::Bytes(end) => {
                    batch.extend_from_slice(&mine.bytes[from..end]);
                    from = end;
                }
                // A block touching a pad file has no file to send from: it is read.
                Item::Block(b) if zero_copy && !storage.touches_pad(b.piece, b.offset, b.len) => {
                    batch.extend_from_slice(&b.header);
                    if limited {
                        took.flush();
                    }
                    limit.take(batch.len() + b.len as usize).await;
                    if send_more(&stream, &batch).await.is_err() {
                        break 'run;
                    }
                    took.add(batch.len());
                    batch.clear();
                    match send_file(&stream, &storage, b).await {
                        Ok(()) => {
                            took.add(b.len as usize);
                            probe(&limit, conn_id, &stream, &mut probed);
                        }
                        Err(SendFile::Unsupported) => {
                            // Nothing of the block was sent: read it instead, from now on.
                            zero_copy = false;
                            let at = batch.len();
                            batch.resize(at + b.len as usize, 0);
                            if let Err(e) = storage.read_piece(b.piece, b.offset, &mut batch[at..])
                            {
                                tracing::warn!(error = %e, "cannot read a block to upload; closing the peer");
                                break 'run;
                            }
                        }
                        Err(SendFile::Failed(e)) => {
                            tracing::debug!(error = %e, "upload failed; closing the peer");
                            break 'run;
                        }
                    }
                }
                Item::Block(b) => {
                    batch.extend_from_slice(&b.header);
                    let at = batch.len();
                    batch.resize(at + b.len as usize, 0);
                    if let Err(e) = storage.read_piece(b.piece, b.offset, &mut batch[at..]) {
                        tracing::warn!(error = %e, "cannot read a block to upload; closing the peer");
                        break 'run;
                    }
                }
            }
            // Under an upload limit each item goes out on its own, and messages at once: charged
            // to the limit, never held back by it (a request that waits with our uploads
            // throttles what we download to the upload limit's pace).
            if batch.len() >= SEND_BATCH || (limited && !batch.is_empty()) {
                if limited {
                    took.flush();
                }
                if limited && matches!(item, Item::Bytes(_)) {
                    limit.charge(batch.len());
                } else {
                    limit.take(batch.len()).await;
                }
                if let Some(rc4) = encrypt.as_mut() {
                    rc4.apply(&mut batch);
                }
                if stream.write_all(&batch).await.is_err() {
                    break 'run;
                }
                took.add(batch.len());
                batch.clear();
                probe(&limit, conn_id, &stream, &mut probed);
            }
        }
        mine.bytes.clear();
        if !batch.is_empty() {
            if limited {
                took.flush();
            }
            limit.take(batch.len()).await;
            if let Some(rc4) = encrypt.as_mut() {
                rc4.apply(&mut batch);
            }
            if stream.write_all(&batch).await.is_err() {
                break 'run;
            }
            took.add(batch.len());
            batch.clear();
            probe(&limit, conn_id, &stream, &mut probed);
        }
    }
    took.flush();
    let _ = events.send(ConnEvent::Closed { peer }.into());
}

/// Drops a connection's round-trip samples when its writer ends, aborted or not.
struct ForgetOnDrop(Arc<RateLimit>, u64);

impl Drop for ForgetOnDrop {
    fn drop(&mut self) {
        self.0.uplink.forget(self.1);
    }
}

/// Connection ids for the uplink's round-trip samples, never reused.
static NEXT_CONN: AtomicU64 = AtomicU64::new(0);

/// Sample the connection's round trip after an uploaded block, at most every 100 ms.
fn probe(
    limit: &RateLimit,
    id: u64,
    stream: &OwnedWriteHalf,
    probed: &mut Option<std::time::Instant>,
) {
    let now = std::time::Instant::now();
    if probed.is_none_or(|t| now.duration_since(t) >= Duration::from_millis(100)) {
        *probed = Some(now);
        limit.uplink.sample(id, stream.as_ref(), now);
    }
}

/// What the socket took, told to the loop in batches: the session counts uploads and opens
/// the peer's send window with each report.
struct Took<'a, T: From<ConnEvent>> {
    events: &'a UnboundedSender<T>,
    peer: PeerHandle,
    bytes: usize,
}

impl<'a, T: From<ConnEvent>> Took<'a, T> {
    fn new(events: &'a UnboundedSender<T>, peer: PeerHandle) -> Self {
        Took {
            events,
            peer,
            bytes: 0,
        }
    }

    fn add(&mut self, bytes: usize) {
        self.bytes += bytes;
        if self.bytes >= SEND_BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.bytes > 0 {
            let (peer, bytes) = (self.peer, std::mem::take(&mut self.bytes));
            let _ = self.events.send(ConnEvent::Sent { peer, bytes }.into());
        }
    }
}

/// Send all of `buf` with `MSG_MORE`: more data follows at once.
async fn send_more(stream: &OwnedWriteHalf, buf: &[u8]) -> std::io::Result<()> {
    let sock: &TcpStream = stream.as_ref();
    let mut sent = 0;
    while sent < buf.len() {
        sock.writable().await?;
        let r = sock.try_io(Interest::WRITABLE, || {
            rustix::net::send(sock, &buf[sent..], rustix::net::SendFlags::MORE)
                .map_err(std::io::Error::from)
        });
        match r {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

enum SendFile {
    /// `sendfile` does not work for this file or socket; nothing was sent.
    Unsupported,
    Failed(std::io::Error),
}

/// Send a block straight from the page cache with `sendfile`, across file boundaries.
async fn send_file(stream: &OwnedWriteHalf, storage: &Storage, b: Block) -> Result<(), SendFile> {
    let sock: &TcpStream = stream.as_ref();
    let segments = storage
        .piece_segments(b.piece, b.offset, b.len)
        .map_err(|e| SendFile::Failed(std::io::Error::other(e.to_string())))?;
    let mut any = false;
    for (file, mut offset, len) in segments {
        let file = file.map_err(|e| SendFile::Failed(std::io::Error::other(e.to_string())))?;
        let mut left = len;
        while left > 0 {
            sock.writable().await.map_err(SendFile::Failed)?;
            let r = sock.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(sock, &file, Some(&mut offset), left)
                    .map_err(std::io::Error::from)
            });
            match r {
                Ok(0) => return Err(SendFile::Failed(std::io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => {
                    left -= n;
                    any = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if !any && matches!(e.raw_os_error(), Some(22) | Some(38) | Some(95)) => {
                    // EINVAL, ENOSYS, EOPNOTSUPP before the first byte.
                    return Err(SendFile::Unsupported);
                }
                Err(e) => return Err(SendFile::Failed(e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
