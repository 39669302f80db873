//! Peer addresses we know of, and when to (re)connect to them.

use core::net::SocketAddr;

use super::output::CloseReason;
use super::peer::Phase;
use super::Session;
use crate::sha1::Sha1;
use crate::{Duration, Instant};

/// A peer address learned from a tracker or the user.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Known {
    pub(crate) addr: SocketAddr,
    pub(crate) state: KnownState,
    /// Named by the user: dialled even when we are a seed.
    pub(crate) dial: bool,
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
    > Session<H, P, PEERS, BYTES, PARTIAL, RX, Q, PICK, KNOWN, OPS, EVENTS, HAVES, BANS>
{
    pub(crate) fn add_known(&mut self, now: Instant, addr: SocketAddr, dial: bool) {
        if addr.port() == 0 {
            return;
        }
        if let Some(k) = self.known.iter_mut().find(|k| k.addr == addr) {
            k.dial |= dial;
            return;
        }
        let known = Known {
            addr,
            state: KnownState::Idle {
                retry_at: now,
                failures: 0,
            },
            dial,
        };
        if self.known.push(known).is_err() {
            // Full: replace an address that keeps failing.
            let worst = self.known.iter().position(
                |k| matches!(k.state, KnownState::Idle { failures, .. } if failures >= 3),
            );
            if let Some(w) = worst {
                self.known[w] = known;
            }
        }
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
            let due = self.known.iter().position(|k| {
                matches!(k.state, KnownState::Idle { retry_at, .. } if retry_at <= now)
                    && (k.dial || !seeding)
                    && !self.bans.contains(&k.addr.ip())
            });
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
}
