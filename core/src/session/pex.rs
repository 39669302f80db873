//! Peer exchange (BEP 11 `ut_pex`): learning addresses from peers, and telling each peer,
//! about once a minute, which peers we connected to and lost since our last message to it.
//!
//! Receiving is bounded: a peer's message counts only 45 s after its last one, at most
//! [`MAX_PEX_PEERS`] of its addresses are taken, and a payload over [`MAX_PEX_PAYLOAD`] is
//! skipped. What is learnt joins the known addresses below what trackers and the user give
//! (see `swarm`). Sending costs O(1) memory per peer: connects and disconnects go into one
//! session-wide log of `PEX` events, each peer keeps a cursor into it, and a peer whose cursor
//! fell off the log (or that never heard from us) gets a snapshot of the peers connected now.
//! Nothing is offered, sent or taken when [`Config::pex`](super::Config::pex) is off, nor in a
//! session whose `PEX` log holds nothing: with `PEX = 0` this code is compiled out.

use core::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use heapless::Vec;

use super::peer::Phase;
use super::swarm::{remember, KnownState, Source};
use super::tx::Writer;
use super::Session;
use crate::sha1::Sha1;
use crate::wire::{PexFlags, PexMessage, PexUpdate};
use crate::{Duration, Instant};

/// The extended id we receive `ut_pex` messages with (libtorrent's choice too).
pub(crate) const UT_PEX_ID: u8 = 1;
/// Peers added, and peers dropped, in one message at most, either way.
pub(crate) const MAX_PEX_PEERS: usize = 50;
/// The largest `ut_pex` payload read; longer ones are skipped. Room for a flood of 1000 IPv4
/// peers with their flags (of which 50 are taken), and twice libtorrent's largest honest
/// message (100 IPv6 peers added with flags, 100 dropped: about 3.7 KiB).
pub(crate) const MAX_PEX_PAYLOAD: usize = 8 * 1024;
/// Our messages to one peer are at least this far apart (BEP 11: at most one a minute).
pub(crate) const PEX_INTERVAL: Duration = Duration::from_secs(60);
/// A peer's messages closer than this to the last one we took are ignored.
pub(crate) const PEX_MIN_GAP: Duration = Duration::from_secs(45);
/// The longest message we send: 50 IPv6 peers added with flags, 50 dropped, and the keys.
const MAX_PEX_LEN: usize = 2048;

/// A peer we connected to (its listening address) or lost, in the order it happened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PexEvent {
    addr: SocketAddr,
    added: bool,
    flags: PexFlags,
}

/// The last `N` connects and disconnects, numbered: event `seq` is kept while
/// `end - seq <= N` (wrapping), so a cursor that fell behind is noticed.
pub(crate) struct PexLog<const N: usize> {
    events: [PexEvent; N],
    /// The number the next event gets.
    end: u32,
    len: usize,
}

impl<const N: usize> PexLog<N> {
    const NONE: PexEvent = PexEvent {
        addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
        added: false,
        flags: PexFlags(0),
    };

    pub(crate) const fn new() -> Self {
        PexLog {
            events: [Self::NONE; N],
            end: 0,
            len: 0,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.end = 0;
        self.len = 0;
    }

    fn push(&mut self, e: PexEvent) {
        let Some(slot) = self.events.get_mut(self.end as usize % N.max(1)) else {
            return;
        };
        *slot = e;
        self.end = self.end.wrapping_add(1);
        self.len = (self.len + 1).min(N);
    }

    /// The event numbered `seq`, while kept.
    fn get(&self, seq: u32) -> Option<&PexEvent> {
        let behind = self.end.wrapping_sub(seq) as usize;
        if behind == 0 || behind > self.len {
            return None;
        }
        self.events.get(seq as usize % N.max(1))
    }

    /// Whether every event from `seq` on is still kept.
    fn holds(&self, seq: u32) -> bool {
        self.end.wrapping_sub(seq) as usize <= self.len
    }
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
    /// Whether we exchange peers: `PEX` (a constant: 0 compiles all of this out) and the config.
    pub(crate) fn pex_on(&self) -> bool {
        PEX > 0 && self.config.pex
    }

    // ---- receiving ---------------------------------------------------------------------------

    /// Whether the message of `len` bytes (after the length prefix) whose head is `head` is a
    /// `ut_pex` message to read here (whole in the ring, so never longer than it).
    pub(crate) fn is_pex(&self, head: &[u8; 13], len: u32) -> bool {
        let len = len as usize;
        self.pex_on()
            && head[4] == 20
            && head[5] == UT_PEX_ID
            && (2..=MAX_PEX_PAYLOAD + 2).contains(&len)
            && len + 4 <= RX
    }

    /// Read the `ut_pex` message of `total` bytes (prefix included) at the front of peer `i`'s
    /// ring, once all of it arrived. Returns whether progress was made.
    pub(crate) fn read_pex(&mut self, now: Instant, i: usize, total: usize) -> bool {
        let p = &mut self.peers[i];
        if p.rx.len() < total {
            return false;
        }
        p.rx.make_contiguous();
        let fresh = p.pex_heard.is_none_or(|t| now >= t + PEX_MIN_GAP);
        let mut heard = false;
        let mut taken = 0;
        let (bytes, _) = self.peers[i].rx.as_slices();
        let payload = bytes.get(6..total).unwrap_or_default();
        if let Some(m) = fresh.then(|| PexMessage::decode(payload).ok()).flatten() {
            heard = true;
            for (addr, _) in m.added() {
                if taken == MAX_PEX_PEERS {
                    break;
                }
                if self.is_us(addr) || self.is_connected(addr) {
                    continue;
                }
                remember(&mut self.known, now, addr, Source::Pex);
                taken += 1;
            }
        }
        let p = &mut self.peers[i];
        p.rx.consume(total);
        if heard {
            p.pex_heard = Some(now);
        }
        if taken > 0 {
            self.want_connect = true;
        }
        true
    }

    /// Whether `addr` is our own listening address, as far as we know it: one a peer told us
    /// (`yourip`) with our port, or one we once connected to and found ourselves.
    fn is_us(&self, addr: SocketAddr) -> bool {
        let ours = addr.port() == self.config.listen_port && self.own_ips.contains(&addr.ip());
        ours || (self.known.iter()).any(|k| k.addr == addr && k.state == KnownState::Never)
    }

    /// Whether a slot is connecting or connected to `addr` (an inbound one by its listening
    /// address).
    fn is_connected(&self, addr: SocketAddr) -> bool {
        self.peers.iter().any(|p| {
            !matches!(p.phase, Phase::Free | Phase::Closing(_))
                && ((p.outbound && p.addr == Some(addr))
                    || p.pex_addr == Some(addr)
                    || p.listen_addr == Some(addr))
        })
    }

    /// A peer told us our address as it sees it (`yourip`).
    pub(crate) fn learn_own_ip(&mut self, ip: IpAddr) {
        if self.own_ips.contains(&ip) {
            return;
        }
        if self.own_ips.is_full() {
            self.own_ips.remove(0);
        }
        let _ = self.own_ips.push(ip);
    }

    // ---- the log -----------------------------------------------------------------------------

    /// Peer `i` can be told to others as `addr` (outbound: the address we dialled, once it
    /// handshaked; inbound: its IP and the port its extended handshake names).
    pub(crate) fn pex_connected(&mut self, i: usize, addr: SocketAddr) {
        if !self.pex_on() || self.peers[i].pex_addr.is_some() {
            return;
        }
        self.peers[i].pex_addr = Some(addr);
        if self.listed_by_other(i, addr).is_some() {
            return;
        }
        let flags = flags_of(self.peers[i].outbound);
        self.peers[i].pex_logged = true;
        let added = true;
        self.pex_log.push(PexEvent { addr, added, flags });
    }

    /// Peer `i` is going: log it as dropped, unless another connection stands for the same
    /// address (a twin), which then carries it.
    pub(crate) fn pex_gone(&mut self, i: usize) {
        let p = &mut self.peers[i];
        let (addr, logged) = (p.pex_addr.take(), core::mem::take(&mut p.pex_logged));
        let Some(addr) = addr.filter(|_| logged) else {
            return;
        };
        if let Some(j) = self.listed_by_other(i, addr) {
            self.peers[j].pex_logged = true;
            return;
        }
        let (added, flags) = (false, PexFlags::default());
        self.pex_log.push(PexEvent { addr, added, flags });
    }

    /// Another live peer than `i` that stands for `addr`.
    fn listed_by_other(&self, i: usize, addr: SocketAddr) -> Option<usize> {
        (0..PEERS)
            .find(|&j| j != i && self.peers[j].is_live() && self.peers[j].pex_addr == Some(addr))
    }

    // ---- sending -----------------------------------------------------------------------------

    /// Whether we owe peer `i` a message: it takes them, and it never heard from us or events
    /// happened since.
    fn pex_pending(&self, i: usize) -> bool {
        let p = &self.peers[i];
        self.pex_on()
            && p.ut_pex.is_some()
            && p.is_active()
            && p.bitfield_sent
            && (!p.pex_synced || p.pex_cursor != self.pex_log.end)
    }

    /// When peer `i`'s next message is due, if one is owed and its send window has room.
    pub(crate) fn pex_deadline(&self, i: usize) -> Option<Instant> {
        let due = self.pex_pending(i) && self.send_room(i) >= MAX_PEX_LEN;
        due.then_some(self.peers[i].pex_due)
    }

    /// Write peer `i`'s message if one is due: a snapshot of the peers connected now when it
    /// never heard from us or fell off the log, else what the log holds since its cursor (for
    /// each address, its last event). A message with nothing in it is not sent. Left for the
    /// next poll when it does not fit.
    pub(crate) fn compose_pex(&mut self, i: usize, w: &mut Writer<'_>) {
        let now = self.now;
        if !self.pex_pending(i) || now < self.peers[i].pex_due {
            return;
        }
        let p = &self.peers[i];
        let id = p.ut_pex.unwrap_or(UT_PEX_ID);
        let me = p.pex_addr;
        if !p.pex_synced || !self.pex_log.holds(p.pex_cursor) {
            let added = (self.peers.iter().enumerate())
                .filter(|&(j, q)| j != i && q.is_active() && q.pex_logged)
                .filter_map(|(_, q)| q.pex_addr.map(|a| (a, q)))
                .filter(|&(a, _)| Some(a) != me)
                .map(|(a, q)| (a, flags_of(q.outbound)))
                .take(MAX_PEX_PEERS);
            let update = PexUpdate {
                added,
                dropped: core::iter::empty(),
            };
            let empty = update.added.clone().next().is_none();
            if !empty && !w.encoded(|buf| update.encode(id, buf)) {
                return;
            }
            self.pex_sent(i, self.pex_log.end, !empty);
            return;
        }
        // Each address once, as its last event says; stop where a list would overflow.
        let mut adds: Vec<u32, MAX_PEX_PEERS> = Vec::new();
        let mut drops: Vec<u32, MAX_PEX_PEERS> = Vec::new();
        let mut seq = p.pex_cursor;
        while let Some(e) = self.pex_log.get(seq) {
            if Some(e.addr) != me {
                let log = &self.pex_log;
                let other = |s: &u32| log.get(*s).is_some_and(|x| x.addr != e.addr);
                adds.retain(other);
                drops.retain(other);
                let list = if e.added { &mut adds } else { &mut drops };
                if list.push(seq).is_err() {
                    break;
                }
            }
            seq = seq.wrapping_add(1);
        }
        let log = &self.pex_log;
        let update = PexUpdate {
            added: (adds.iter().filter_map(|&s| log.get(s))).map(|e| (e.addr, e.flags)),
            dropped: (drops.iter().filter_map(|&s| log.get(s))).map(|e| e.addr),
        };
        let empty = adds.is_empty() && drops.is_empty();
        if !empty && !w.encoded(|buf| update.encode(id, buf)) {
            return;
        }
        self.pex_sent(i, seq, !empty);
    }

    /// Peer `i` was told everything before `cursor`; with a message sent, the next waits.
    fn pex_sent(&mut self, i: usize, cursor: u32, sent: bool) {
        let p = &mut self.peers[i];
        p.pex_synced = true;
        p.pex_cursor = cursor;
        if sent {
            p.pex_due = self.now + PEX_INTERVAL;
        }
    }
}

/// The flags we send with a peer: one we dialled is reachable.
fn flags_of(outbound: bool) -> PexFlags {
    if outbound {
        PexFlags::REACHABLE
    } else {
        PexFlags::default()
    }
}
