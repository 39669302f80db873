//! Web seeds in the loop: each joins the session as an inbound peer at an address of its own
//! in the discard-only prefix `100::/64` (RFC 6666), so the session's strikes and bans count
//! against it alone, never against a peer on the same host; its task stands in for the
//! socket (`webseed::source`). One the session closed comes back after a pause, unless the
//! session banned it (its data failed verification) or it gave up (its errors are logged).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use enjambre_core::session::{CloseReason, PeerHandle};
use enjambre_core::InfoHash;
use tokio::time::Instant;

use super::{DriveError, Driver};
use crate::peer::conn::Outbox;
use crate::peer::webseed::source::{self, Source};
use crate::peer::webseed::WebFiles;

/// The pause before a web seed the session closed is added again.
const REJOIN_AFTER: Duration = Duration::from_secs(5);

/// One web seed of the torrent.
pub struct WebSeed {
    files: Arc<WebFiles>,
    info_hash: InfoHash,
    /// The address the session knows it by.
    addr: SocketAddr,
    /// Its handle while it is in the session.
    peer: Option<PeerHandle>,
    /// Not before this instant.
    rejoin_at: Option<Instant>,
    /// Banned or given up: never added again.
    gone: bool,
}

impl WebSeed {
    /// The `n`th web seed (from 0), serving `files`.
    pub fn new(n: usize, files: WebFiles, info_hash: InfoHash) -> Self {
        let ip = Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, n as u16 + 1);
        WebSeed {
            files: Arc::new(files),
            info_hash,
            addr: SocketAddr::new(IpAddr::V6(ip), 80),
            peer: None,
            rejoin_at: None,
            gone: false,
        }
    }
}

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
    /// Add the web seeds that are out of the session and due, while something is missing.
    pub(super) fn start_web_seeds(&mut self) {
        if self.session.is_done() || self.shutdown_at.is_some() {
            return;
        }
        let now = Instant::now();
        for k in 0..self.web_seeds.len() {
            let w = &self.web_seeds[k];
            if w.gone || w.peer.is_some() || w.rejoin_at.is_some_and(|t| t > now) {
                continue;
            }
            let addr = w.addr;
            let core_now = self.now();
            let peer = match self.session.handle_incoming(core_now, addr) {
                Ok(peer) => peer,
                Err(e) => {
                    tracing::debug!(web_seed = %self.web_seeds[k].files.base, error = %e, "web seed not added yet");
                    self.web_seeds[k].rejoin_at = Some(now + REJOIN_AFTER);
                    continue;
                }
            };
            let geometry = *self.session.geometry();
            let outbox = Arc::new(Outbox::default());
            let w = &mut self.web_seeds[k];
            w.peer = Some(peer);
            tracing::info!(web_seed = %w.files.base, as_peer = %addr, "web seed added");
            let task = tokio::spawn(source::run(Source {
                peer,
                info_hash: w.info_hash,
                piece_length: u64::from(geometry.piece_length()),
                total: geometry.total_length(),
                piece_count: geometry.piece_count(),
                files: w.files.clone(),
                outbox: outbox.clone(),
                events: self.tx.clone(),
                pool: self.read_pool.clone(),
                limit: self.down_limit.clone(),
            }));
            self.register_stand_in(peer, addr.ip(), outbox, task);
        }
    }

    /// A web seed left the session: closed by it for `reason`, or given up by its task (`None`).
    pub(super) fn web_seed_left(&mut self, peer: PeerHandle, reason: Option<CloseReason>) {
        let Some(w) = self.web_seeds.iter_mut().find(|w| w.peer == Some(peer)) else {
            return;
        };
        w.peer = None;
        match reason {
            None => w.gone = true,
            Some(CloseReason::Shutdown) => {}
            Some(CloseReason::Banned) => {
                w.gone = true;
                tracing::warn!(web_seed = %w.files.base, "web seed dropped: its data failed verification");
            }
            Some(reason) => {
                tracing::debug!(web_seed = %w.files.base, ?reason, "web seed closed; it rejoins later");
                w.rejoin_at = Some(Instant::now() + REJOIN_AFTER);
            }
        }
        let no_source = !self.has_trackers && self.extra_peers.is_empty();
        if no_source && self.web_seeds.iter().all(|w| w.gone) && !self.session.is_done() {
            let msg = "every web seed failed, and there is no tracker or peer to turn to";
            self.fail(DriveError::TrackerUnreachable(msg.into()));
        }
    }
}
