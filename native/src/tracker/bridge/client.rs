//! The page's socket as tungstenite sees it. Reads come from the socket. Writes (control and
//! close frames, a port's text messages) go to the socket, except while the relay's frame writer
//! holds its write half: then they wait in a short queue that the writer sends between its own
//! frames. A write is queued whole or refused whole, so frames never interleave.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Bytes tungstenite may queue while the frame writer holds the socket (control frames are at
/// most 131 bytes; a client that pings without reading finds its pongs refused, as tungstenite
/// finds a full socket).
const QUEUE_CAP: usize = 4096;

/// The socket under the WebSocket: its read half, and its write half unless lent out.
pub(super) struct Client {
    rd: OwnedReadHalf,
    wr: Option<OwnedWriteHalf>,
    /// Bytes to send before any new write: what was unsent when the write half came back.
    backlog: Vec<u8>,
    queue: Arc<Queue>,
}

/// Whole frames tungstenite wrote while the write half was lent out.
#[derive(Default)]
pub(super) struct Queue {
    inner: Mutex<Queued>,
    /// Told when bytes arrive.
    pub ready: Notify,
}

#[derive(Default)]
struct Queued {
    bytes: Vec<u8>,
    /// Tungstenite's task, waiting for room.
    waiting: Option<Waker>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Queued> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take every queued byte (whole frames), making room for more.
    pub fn take(&self) -> Vec<u8> {
        let mut q = self.lock();
        let bytes = std::mem::take(&mut q.bytes);
        if let Some(w) = q.waiting.take() {
            w.wake();
        }
        bytes
    }
}

impl Client {
    pub fn new(sock: TcpStream) -> Client {
        let (rd, wr) = sock.into_split();
        Client {
            rd,
            wr: Some(wr),
            backlog: Vec::new(),
            queue: Arc::default(),
        }
    }

    /// Lend the write half to the frame writer; tungstenite's writes queue meanwhile. `None` if
    /// it is lent already.
    pub fn lend(&mut self) -> Option<(OwnedWriteHalf, Arc<Queue>)> {
        debug_assert!(self.backlog.is_empty());
        Some((self.wr.take()?, self.queue.clone()))
    }

    /// The write half back, with `unsent` (whole or partly written frames, then the queue's)
    /// to go out before anything else.
    pub fn give_back(&mut self, wr: OwnedWriteHalf, unsent: Vec<u8>) {
        let mut backlog = unsent;
        backlog.extend(self.queue.take());
        self.backlog = backlog;
        self.wr = Some(wr);
    }

    /// The socket again, if the write half is here.
    pub fn into_inner(self) -> Option<TcpStream> {
        self.rd.reunite(self.wr?).ok()
    }

    /// Send the backlog; ready when it is all out.
    fn poll_backlog(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut OwnedWriteHalf>> {
        let Some(wr) = self.wr.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        while !self.backlog.is_empty() {
            let n = ready!(Pin::new(&mut *wr).poll_write(cx, &self.backlog))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            // Only at the close: the backlog is at most one frame and the queue.
            self.backlog.drain(..n);
        }
        Poll::Ready(Ok(wr))
    }
}

impl AsyncRead for Client {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.rd).poll_read(cx, buf)
    }
}

impl AsyncWrite for Client {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.wr.is_none() {
            let mut q = self.queue.lock();
            if !q.bytes.is_empty() && q.bytes.len() + buf.len() > QUEUE_CAP {
                q.waiting = Some(cx.waker().clone());
                return Poll::Pending;
            }
            q.bytes.extend_from_slice(buf);
            drop(q);
            self.queue.ready.notify_one();
            return Poll::Ready(Ok(buf.len()));
        }
        let wr = ready!(self.poll_backlog(cx))?;
        Pin::new(wr).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.wr.is_none() {
            // The frame writer sends the queue.
            return Poll::Ready(Ok(()));
        }
        let wr = ready!(self.poll_backlog(cx))?;
        Pin::new(wr).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.wr.is_none() {
            return Poll::Ready(Ok(()));
        }
        let wr = ready!(self.poll_backlog(cx))?;
        Pin::new(wr).poll_shutdown(cx)
    }
}
