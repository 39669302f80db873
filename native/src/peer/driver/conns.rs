//! The peers' sockets: dialling, accepting, registering a connection's reader and writer tasks,
//! and offering the bytes read to the session.
//!
//! The closing rule (the core's shell contract): every byte read from a socket before it ended
//! is offered to the session before `handle_closed`. Bytes the session cannot take yet wait in
//! `pending`; a peer whose socket ended meanwhile waits in `closing` until they are in. Bytes
//! are never dropped here except when the session itself closed the peer.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use enjambre_core::session::PeerHandle;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use super::fallback::Probe;
use super::{Driver, Input};
use crate::peer::conn::{self, Outbox};
use crate::peer::encryption::{self, Encryption, Opening, Secured};

/// Socket read size.
pub(super) const READ_BUF: usize = 128 * 1024;

/// One open connection: its writer's queue and the two tasks that own its socket halves.
pub(super) struct Conn {
    /// The peer's address, IPv4-mapped addresses as IPv4.
    ip: Option<IpAddr>,
    pub(super) outbox: Arc<Outbox>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    /// A plaintext dial that has not heard a byte yet, and falls back to the key exchange if
    /// it ends so (`fallback`).
    probe: Option<Probe>,
}

impl Conn {
    /// Queue bytes the session sent, kept too while the connection may be dialled again.
    pub(super) fn send(&mut self, bytes: &[u8]) {
        self.outbox.push_bytes(bytes);
        if self.probe.as_mut().is_some_and(|p| !p.record(bytes)) {
            self.probe = None;
        }
    }

    /// Queue an upload; a connection that uploaded is never dialled again.
    pub(super) fn send_block(&mut self, header: [u8; 13], piece: u32, offset: u32, len: u32) {
        self.outbox.push_block(header, piece, offset, len);
        self.probe = None;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// Socket bytes the session could not take yet.
pub(super) struct Pending {
    buf: Vec<u8>,
    from: usize,
    len: usize,
    _permit: OwnedSemaphorePermit,
}

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
    /// Queue bytes a reader task read, and offer them when nothing is queued before them.
    pub(super) fn received(
        &mut self,
        peer: PeerHandle,
        buf: Vec<u8>,
        len: usize,
        permit: OwnedSemaphorePermit,
    ) {
        let Some(conn) = self.conns.get_mut(&peer) else {
            self.read_pool.put(buf);
            return;
        };
        if let Some(probe) = conn.probe.take() {
            self.answered(probe);
        }
        let queue = self.pending.entry(peer).or_default();
        queue.push_back(Pending {
            buf,
            from: 0,
            len,
            _permit: permit,
        });
        if queue.len() == 1 {
            self.feed(peer);
        }
    }

    /// A peer's socket ended: tell the session now, or once its queued bytes are in.
    pub(super) fn socket_closed(&mut self, now: enjambre_core::Instant, peer: PeerHandle) {
        let probe = self.conns.get_mut(&peer).and_then(|c| c.probe.take());
        if let Some(probe) = probe.filter(|_| self.shutdown_at.is_none()) {
            // Not a byte came back: the session hears nothing, the address is dialled again.
            self.conns.remove(&peer);
            self.redial_with_mse(peer, probe);
            return;
        }
        if self.conns.remove(&peer).is_some() {
            if self.pending.get(&peer).is_some_and(|q| !q.is_empty()) {
                // Bytes that arrived before the close are still to be taken: every byte
                // received is kept. The session hears of the close once they are in.
                self.closing.insert(peer);
            } else {
                self.session.handle_closed(now, peer);
            }
        }
    }

    /// Dial `addr` for `peer` (at most 10 s; 20 s when it opens with the key exchange), the
    /// way that worked with it last (`fallback`); the outcome comes back as an [`Input`].
    pub(super) fn dial(&mut self, peer: PeerHandle, addr: SocketAddr) {
        self.connecting.insert(peer);
        let tx = self.tx.clone();
        let bind = self.bind_ip;
        let enc = self.encryption;
        let first = self.opening_for(addr);
        // The key exchange (and a plaintext redial after it) gets 10 s more.
        let limit = Duration::from_secs(if first == Opening::Mse { 20 } else { 10 });
        tokio::spawn(async move {
            let r = tokio::time::timeout(limit, encryption::dial_as(addr, bind, enc, first)).await;
            let _ = tx.send(match r {
                Ok(Ok(stream)) => Input::Connected {
                    peer,
                    addr,
                    first,
                    stream,
                },
                Ok(Err(e)) => {
                    tracing::debug!(%addr, error = %e, "dial failed");
                    Input::ConnectFailed { peer }
                }
                Err(_) => Input::ConnectFailed { peer },
            });
        });
    }

    /// An outbound connection is up, unless the session closed the peer meanwhile.
    pub(super) fn connected(
        &mut self,
        now: enjambre_core::Instant,
        peer: PeerHandle,
        (addr, first): (SocketAddr, Opening),
        stream: Secured,
    ) {
        self.connecting.remove(&peer);
        if self.dead.remove(&peer) {
            return;
        }
        let probe = self.dialled(addr, first, &stream);
        self.session.handle_connected(now, peer);
        self.register(peer, stream, probe);
    }

    /// An outbound connection failed; the session hears of it unless it closed the peer.
    pub(super) fn connect_failed(&mut self, now: enjambre_core::Instant, peer: PeerHandle) {
        self.connecting.remove(&peer);
        if !self.dead.remove(&peer) {
            self.session.handle_connect_failed(now, peer);
        }
    }

    /// Someone connected: refused while stopping or when its address holds its share already.
    pub(super) fn accepted(
        &mut self,
        now: enjambre_core::Instant,
        stream: Secured,
        addr: SocketAddr,
    ) {
        if self.shutdown_at.is_some() {
            return;
        }
        let ip = addr.ip().to_canonical();
        let limit = per_ip_limit(self.session.config().max_peers);
        let same = self.conns.values().filter(|c| c.ip == Some(ip)).count();
        if same >= limit {
            tracing::debug!(%addr, limit, "refused: too many connections from this address");
            return;
        }
        match self.session.handle_incoming(now, addr) {
            Ok(peer) => self.register(peer, stream, None),
            Err(e) => tracing::debug!(%addr, error = %e, "refused"),
        }
    }

    /// The session closed `peer`: drop its socket (or the dial under way) and its queued bytes.
    pub(super) fn close(&mut self, peer: PeerHandle) {
        if self.conns.remove(&peer).is_none() && self.connecting.contains(&peer) {
            self.dead.insert(peer);
        }
        self.drop_pending(peer);
    }

    /// Offer the peer's queued bytes to the session, draining between offers.
    fn feed(&mut self, peer: PeerHandle) -> bool {
        let mut progressed = false;
        loop {
            let Some(front) = self.pending.get_mut(&peer).and_then(|q| q.front_mut()) else {
                return progressed;
            };
            let now = enjambre_core::Instant::from_millis(self.epoch.elapsed().as_millis() as u64);
            let n = self
                .session
                .handle_input(now, peer, &front.buf[front.from..front.len]);
            front.from += n;
            let done = front.from == front.len;
            if done {
                let p = self
                    .pending
                    .get_mut(&peer)
                    .and_then(VecDeque::pop_front)
                    .expect("front exists");
                self.read_pool.put(p.buf);
            }
            progressed |= n > 0;
            // Let the session consume its ring before offering more.
            self.drain_once();
            if n == 0 && !done {
                // The ring is still full after draining: wait for another input.
                let stuck = self
                    .pending
                    .get(&peer)
                    .and_then(|q| q.front())
                    .is_some_and(|f| f.from < f.len);
                if stuck {
                    return progressed;
                }
            }
        }
    }

    /// Offer every stalled peer's bytes again; true when anything was taken.
    pub(super) fn retry_pending(&mut self) -> bool {
        let peers: Vec<PeerHandle> = self
            .pending
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(p, _)| *p)
            .collect();
        let mut any = false;
        for peer in peers {
            any |= self.feed(peer);
        }
        self.pending.retain(|_, q| !q.is_empty());
        let drained: Vec<PeerHandle> = self
            .closing
            .iter()
            .filter(|p| !self.pending.contains_key(p))
            .copied()
            .collect();
        for peer in drained {
            self.closing.remove(&peer);
            let now = self.now();
            self.session.handle_closed(now, peer);
            any = true;
        }
        any
    }

    fn drop_pending(&mut self, peer: PeerHandle) {
        self.closing.remove(&peer);
        if let Some(q) = self.pending.remove(&peer) {
            for p in q {
                self.read_pool.put(p.buf);
            }
        }
    }

    pub(super) fn register(&mut self, peer: PeerHandle, secured: Secured, probe: Option<Probe>) {
        let Secured {
            stream,
            read,
            write,
            first,
            encrypted,
            ..
        } = secured;
        let _ = stream.set_nodelay(true);
        let ip = stream.peer_addr().ok().map(|a| a.ip().to_canonical());
        tracing::debug!(?ip, encrypted, "peer connected");
        let (r, w) = stream.into_split();
        let outbox = Arc::new(Outbox::default());
        let reader = tokio::spawn(conn::reader(
            peer,
            r,
            read,
            first,
            self.read_pool.clone(),
            self.down_limit.clone(),
            self.tx.clone(),
        ));
        let writer = tokio::spawn(conn::writer(
            peer,
            w,
            write,
            outbox.clone(),
            self.storage.clone(),
            self.up_limit.clone(),
            self.tx.clone(),
        ));
        self.conns.insert(
            peer,
            Conn {
                ip,
                outbox,
                reader,
                writer,
                probe,
            },
        );
    }
}

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
    /// Register a task that stands in for a peer's socket (a web seed): it reads the outbox
    /// and reports like a reader and a writer would.
    pub(super) fn register_stand_in(
        &mut self,
        peer: PeerHandle,
        ip: IpAddr,
        outbox: Arc<Outbox>,
        task: JoinHandle<()>,
    ) {
        let conn = Conn {
            ip: Some(ip),
            outbox,
            reader: task,
            writer: tokio::spawn(async {}),
            probe: None,
        };
        self.conns.insert(peer, conn);
    }
}

/// Connections at most from one address: a quarter of the peer slots, between 2 and 8, so no
/// single host fills them.
fn per_ip_limit(max_peers: usize) -> usize {
    max_peers.div_ceil(4).clamp(2, 8)
}

/// Connections at most whose first bytes or key exchange are still awaited (each for 10 s at
/// most): more are closed at once.
const PENDING_ACCEPTS: usize = 64;

/// Hand every accepted connection to the loop once its first bytes say plaintext or its key
/// exchange is done (each in a task of its own); never ends on its own (aborted at shutdown).
pub(super) async fn accept_loop(
    listener: TcpListener,
    enc: Encryption,
    tx: UnboundedSender<Input>,
) {
    let pending = Arc::new(tokio::sync::Semaphore::new(PENDING_ACCEPTS));
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                if tx.is_closed() {
                    return;
                }
                let Ok(permit) = pending.clone().try_acquire_owned() else {
                    tracing::debug!(%addr, "refused: too many connections still handshaking");
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match encryption::accept(stream, enc).await {
                        Ok(stream) => {
                            let _ = tx.send(Input::Accepted { stream, addr });
                        }
                        Err(e) => tracing::debug!(%addr, error = %e, "refused"),
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
