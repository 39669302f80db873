//! The other way in, once per dial: a plaintext dial the peer closed before answering a byte
//! (as a peer that requires encryption closes it) is dialled again with the key exchange, and
//! the bytes the session already sent on it (its handshake) are sent again on the new socket,
//! so the session never sees the first one end. The other way round (an exchange a
//! plaintext-only peer refused, dialled again in plaintext) is `encryption::dial_as`'s.
//!
//! What worked with an address is remembered, so its next dial opens that way at once.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use enjambre_core::session::PeerHandle;
use lru::LruCache;

use super::{Driver, Input};
use crate::peer::encryption::{self, Opening, Secured};

/// Addresses whose way in is remembered, at most (the least recently dialled are forgotten).
const REMEMBERED: usize = 1024;
/// Bytes kept to send again, at most: the session sends its handshake alone before the peer
/// answers; a dial that sent more is not dialled again.
const REPLAY_MAX: usize = 16 * 1024;
/// A dial again with the key exchange takes at most this long.
const REDIAL_LIMIT: Duration = Duration::from_secs(20);

/// Which way in worked with each address lately.
pub(super) struct Openings(LruCache<SocketAddr, Opening>);

impl Default for Openings {
    fn default() -> Self {
        let cap = NonZeroUsize::new(REMEMBERED).unwrap_or(NonZeroUsize::MIN);
        Openings(LruCache::new(cap))
    }
}

/// A plaintext connection we dialled that has not heard a byte yet: what it sent so far.
pub(super) struct Probe {
    addr: SocketAddr,
    sent: Vec<u8>,
}

impl Probe {
    /// Keep `bytes` the session handed this connection; false once too much was sent to send
    /// it all again.
    pub(super) fn record(&mut self, bytes: &[u8]) -> bool {
        self.sent.extend_from_slice(bytes);
        self.sent.len() <= REPLAY_MAX
    }
}

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
    /// How to open a dial to `addr`: as it worked last, when the policy allows both ways.
    pub(super) fn opening_for(&mut self, addr: SocketAddr) -> Opening {
        let policy = self.encryption.policy;
        let known = self.openings.0.get(&addr).copied();
        known
            .filter(|_| policy.falls_back())
            .unwrap_or(policy.opening())
    }

    /// A dial opened as `first` is up as `stream` says: remember how, and return the probe to
    /// watch when it is plaintext and may still fall back to the key exchange.
    pub(super) fn dialled(
        &mut self,
        addr: SocketAddr,
        first: Opening,
        stream: &Secured,
    ) -> Option<Probe> {
        if stream.opening == Opening::Mse || first == Opening::Mse {
            // The exchange worked, or failed and plaintext was the one fallback.
            self.openings.0.put(addr, stream.opening);
            return None;
        }
        self.encryption.policy.falls_back().then(|| Probe {
            addr,
            sent: Vec::new(),
        })
    }

    /// The probed connection heard its first byte: plaintext works with this address.
    pub(super) fn answered(&mut self, probe: Probe) {
        self.openings.0.put(probe.addr, Opening::Plaintext);
    }

    /// The probed connection of `peer` ended unanswered: dial its address again with the key
    /// exchange; the outcome comes back as [`Input::Redialled`] or [`Input::RedialFailed`].
    pub(super) fn redial_with_mse(&mut self, peer: PeerHandle, probe: Probe) {
        let addr = probe.addr;
        tracing::debug!(%addr, "plaintext handshake closed unanswered; dialling again with MSE");
        self.connecting.insert(peer);
        self.redials.insert(peer, probe);
        let (tx, bind, info_hash) = (self.tx.clone(), self.bind_ip, self.encryption.info_hash);
        tokio::spawn(async move {
            let dial = encryption::redial_with_mse(addr, bind, info_hash);
            let r = tokio::time::timeout(REDIAL_LIMIT, dial).await;
            let _ = tx.send(match r {
                Ok(Ok(stream)) => Input::Redialled { peer, stream },
                Ok(Err(e)) => {
                    tracing::debug!(%addr, error = %e, "dial with MSE failed");
                    Input::RedialFailed { peer }
                }
                Err(_) => Input::RedialFailed { peer },
            });
        });
    }

    /// The dial again is up: the session's bytes go first, and the address opens with the key
    /// exchange from now on. The writer reports them as sent again, which the session takes
    /// as no more than it sent.
    pub(super) fn redialled(&mut self, peer: PeerHandle, stream: Secured) {
        self.connecting.remove(&peer);
        let probe = self.redials.remove(&peer);
        if self.dead.remove(&peer) {
            return;
        }
        let Some(probe) = probe else { return };
        self.openings.0.put(probe.addr, Opening::Mse);
        self.register(peer, stream, None);
        if let Some(c) = self.conns.get(&peer) {
            c.outbox.push_bytes(&probe.sent);
        }
    }

    /// The dial again failed: the session hears that the peer's connection ended.
    pub(super) fn redial_failed(&mut self, now: enjambre_core::Instant, peer: PeerHandle) {
        self.connecting.remove(&peer);
        self.redials.remove(&peer);
        if !self.dead.remove(&peer) {
            self.session.handle_closed(now, peer);
        }
    }
}
