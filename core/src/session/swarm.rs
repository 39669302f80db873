//! Peer addresses we know of, and when to (re)connect to them.
//!
//! Addresses from trackers and the user come first: one learnt from a peer (PEX) never takes
//! the place of one of theirs, gives its own place to theirs when the list is full, and is
//! dialled after theirs when both are due. Our tracker's lists are piece-aware; PEX is hearsay.

use core::net::SocketAddr;

use heapless::Vec;

use super::output::CloseReason;
use super::peer::Phase;
use super::Session;
use crate::sha1::Sha1;
use crate::{Duration, Instant, PeerId};

/// A peer address learned from a tracker, the user or a peer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Known {
    pub(crate) addr: SocketAddr,
    pub(crate) state: KnownState,
    /// Named by the user: dialled even when we are a seed.
    pub(crate) dial: bool,
    /// Learnt only from peers (PEX), never from a tracker or the user.
    pub(crate) pex: bool,
}

/// Where an address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Tracker,
    /// Named by the user: dialled even when we are a seed.
    User,
    /// A peer's `ut_pex` message.
    Pex,
}

/// Add `addr` to `known`, or note a better source for it. When the list is full, a tracker's
/// or the user's address takes the place of a PEX one not in use (the one failing most), or
/// else of any address that keeps failing; a PEX address only of a PEX one that keeps failing.
pub(crate) fn remember<const KNOWN: usize>(
    known: &mut Vec<Known, KNOWN>,
    now: Instant,
    addr: SocketAddr,
    source: Source,
) {
    if addr.port() == 0 {
        return;
    }
    let (dial, pex) = (source == Source::User, source == Source::Pex);
    if let Some(k) = known.iter_mut().find(|k| k.addr == addr) {
        k.dial |= dial;
        k.pex &= pex;
        return;
    }
    let new = Known {
        addr,
        state: KnownState::Idle {
            retry_at: now,
            failures: 0,
        },
        dial,
        pex,
    };
    let Err(new) = known.push(new) else { return };
    let failures = |k: &Known| match k.state {
        KnownState::Idle { failures, .. } => Some(failures),
        _ => None,
    };
    let idle_pex = (known.iter().enumerate())
        .filter_map(|(n, k)| failures(k).filter(|_| k.pex).map(|f| (n, f)))
        .filter(|&(_, f)| !pex || f >= 3)
        .max_by_key(|&(_, f)| f)
        .map(|(n, _)| n);
    let failing = || (!pex).then(|| known.iter().position(|k| failures(k) >= Some(3)))?;
    if let Some(n) = idle_pex.or_else(failing) {
        known[n] = new;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnownState {
    /// Connect at or after `retry_at`; `failures` in a row so far.
    Idle { retry_at: Instant, failures: u8 },
    /// A slot is connecting or connected to it.
    InUse,
    /// Never again (it is us).
    Never,
}

/// Delay before retrying an address after `failures` failures in a row: 5 s doubling to ~5 min.
fn backoff(failures: u8) -> Duration {
    Duration::from_secs(5u64 << failures.min(6))
}

impl<
        H: Sha1,
        P: AsRef<[u8]>,
        const PEERS: usize,
        const BYTES: usize,
        const PARTIAL: usize,
        const RX: usize,
        const Q: usize,
        const PICK: usize,
        const KNOWN: usize,
        const OPS: usize,
        const EVENTS: usize,
        const HAVES: usize,
        const BANS: usize,
        const PEX: usize,
    > Session<H, P, PEERS, BYTES, PARTIAL, RX, Q, PICK, KNOWN, OPS, EVENTS, HAVES, BANS, PEX>
{
    pub(crate) fn add_known(&mut self, now: Instant, addr: SocketAddr, source: Source) {
        remember(&mut self.known, now, addr, source);
    }

    pub(crate) fn never_connect(&mut self, addr: SocketAddr) {
        if let Some(k) = self.known.iter_mut().find(|k| k.addr == addr) {
            k.state = KnownState::Never;
        }
    }

    pub(crate) fn known_closed(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        outbound: bool,
        reason: CloseReason,
    ) {
        if !outbound {
            return;
        }
        let Some(k) = self.known.iter_mut().find(|k| k.addr == addr) else {
            return;
        };
        if k.state == KnownState::Never {
            return;
        }
        let failures = match (k.state, reason) {
            (
                _,
                CloseReason::ConnectFailed
                | CloseReason::Timeout
                | CloseReason::Malformed(_)
                | CloseReason::NotUseful
                | CloseReason::Idle,
            ) => match k.state {
                KnownState::Idle { failures, .. } => failures.saturating_add(1),
                _ => 1,
            },
            _ => 0,
        };
        k.state = KnownState::Idle {
            retry_at: now + backoff(failures),
            failures,
        };
    }

    /// Reserve slots for known addresses that are due; returns whether any was reserved.
    pub(crate) fn start_connects(&mut self) -> bool {
        let now = self.now;
        // A seed waits for leeches to come to it, but dials the peers the user named.
        let seeding = self.is_complete();
        let mut started = false;
        loop {
            let half_open = self
                .peers
                .iter()
                .filter(|p| matches!(p.phase, Phase::Connecting { .. }))
                .count();
            if half_open >= self.config.max_half_open || self.room() == 0 {
                return started;
            }
            let Some(slot) = self.free_slot() else {
                return started;
            };
            // The first due address, a tracker's or the user's before a PEX one.
            let due = (self.known.iter().enumerate())
                .filter(|(_, k)| {
                    matches!(k.state, KnownState::Idle { retry_at, .. } if retry_at <= now)
                        && (k.dial || !seeding)
                        && !self.bans.contains(&k.addr.ip())
                })
                .min_by_key(|(_, k)| k.pex)
                .map(|(n, _)| n);
            let Some(n) = due else { return started };
            let addr = self.known[n].addr;
            self.known[n].state = KnownState::InUse;
            let count = self.geometry.piece_count();
            self.peers[slot].reset(now, count, Phase::Connecting { emitted: false }, addr, true);
            self.slots_pending = true;
            started = true;
        }
    }

    /// The earliest instant a known address may be retried.
    pub(crate) fn next_retry(&self) -> Option<Instant> {
        let seeding = self.is_complete();
        self.known
            .iter()
            .filter(|k| k.dial || !seeding)
            .filter_map(|k| match k.state {
                KnownState::Idle { retry_at, .. } => Some(retry_at),
                _ => None,
            })
            .min()
    }

    /// Two connections to one peer: `i` just handshaked, `j` is older. Keep the one dialled
    /// by the smaller peer id (the other side decides the same, so two simultaneous dials
    /// keep exactly one, never none); the closed one's listening address moves to the
    /// survivor, so it is not dialled again while the survivor lives. Returns whether `i`
    /// stays.
    pub(crate) fn keep_one_twin(
        &mut self,
        now: Instant,
        i: usize,
        j: usize,
        theirs: PeerId,
    ) -> bool {
        let ours = self.config.peer_id;
        let dialer = |k: usize| if self.peers[k].outbound { ours } else { theirs };
        let (di, dj) = (dialer(i), dialer(j));
        let keep_i = di != dj && di.0 < dj.0;
        let (keep, drop) = if keep_i { (i, j) } else { (j, i) };
        let q = &self.peers[drop];
        let listen = if q.outbound { q.addr } else { q.listen_addr };
        self.close(now, drop, CloseReason::Duplicate);
        if let Some(x) = listen {
            let p = &mut self.peers[keep];
            if !p.outbound && p.listen_addr.is_none() {
                p.listen_addr = Some(x);
            }
            if let Some(k) = self.known.iter_mut().find(|k| k.addr == x) {
                if k.state != KnownState::Never {
                    k.state = KnownState::InUse;
                }
            }
        }
        keep_i
    }

    /// An inbound peer told its listening port (extended handshake `p`): if that address is
    /// one we know and are not using, this connection stands for it (no second dial).
    pub(crate) fn learn_listen_port(&mut self, i: usize, port: u16) {
        let p = &self.peers[i];
        let Some(addr) = p.addr.filter(|_| !p.outbound && p.listen_addr.is_none()) else {
            return;
        };
        let listen = SocketAddr::new(addr.ip(), port);
        let Some(k) = self.known.iter_mut().find(|k| k.addr == listen) else {
            return;
        };
        if matches!(k.state, KnownState::Idle { .. }) {
            k.state = KnownState::InUse;
            self.peers[i].listen_addr = Some(listen);
        }
    }
}
