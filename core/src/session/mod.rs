//! The peer session: one torrent's swarm, driven by `handle_*` inputs and drained with
//! [`Session::poll_output`].
//!
//! Method families, as in quinn-proto:
//! - **inputs** `handle_*(now, …)`: bytes from a peer, a socket event, a storage completion, an
//!   announce result, a timeout. They never fail because of what a peer sent: a misbehaving peer
//!   becomes a `Close` command plus an event.
//! - **output** [`Session::poll_output`]: call after every input until it returns
//!   [`Output::Timeout`]; then wait for the next input or that instant.
//! - **queries**: [`Session::stats`], [`Session::have`], [`Session::is_done`],
//!   [`Session::encode_resume`].
//! - **setting** [`Session::set_wanted`]: download only some pieces (a selection of files).
//!
//! The session never blocks, allocates, reads a clock or touches a socket or a file.
//! Its size is about `PEERS * (RX + BYTES + 32 * Q) + 18 * PICK` bytes: keep it in a `static`
//! ([`Session::EMPTY`]) or on the heap ([`Session::empty`]) and [`Session::start`] it in place.
//! The crate docs hold the shell contract: which input answers which output.
//!
//! Keeping every byte: payload is streamed to storage as it arrives (a peer dropping in the
//! middle of a block loses nothing already received), the bytes confirmed written are tracked
//! per piece as exact byte ranges, and what is still missing is requested from the exact byte,
//! from any peer that has the piece. [`Session::encode_resume`] only claims confirmed bytes.

mod announce;
#[cfg(test)]
mod bitfield_tests;
mod choke;
mod config;
mod inbound;
mod output;
mod parole;
mod partial_ext;
mod peer;
mod pex;
mod pieces;
mod pipeline;
pub mod preset;
mod query;
mod requests;
mod room;
mod rx;
mod start;
mod super_seed;
mod swarm;
#[cfg(test)]
mod tests;
mod tx;
mod wanted;

use core::net::{IpAddr, SocketAddr};

use heapless::{Deque, Vec};

pub use config::Config;
pub use output::{
    CloseReason, Command, DiscardCause, Event, OpId, Output, PeerHandle, PeerMisbehaved,
    PeerStatus, SessionError, Stats, StorageError, Waste,
};

use announce::Announce;
use peer::{Peer, Phase};
use pex::PexLog;
use pieces::{Fact, Op, OpKind, Partial};
use swarm::{Known, Source};

use crate::bitfield::Bitfield;
use crate::picker::Picker;
use crate::resume::ResumeState;
use crate::sha1::Sha1;
use crate::{Geometry, InfoHash, Instant, PieceIndex};

/// The smallest buffer [`Session::poll_output`] works with: one block plus headers. Messages
/// to a peer are a byte stream: a `Bitfield` larger than the buffer goes out over several
/// [`Output::Transmit`]s, so any bitfield size works with a buffer of this size.
pub const MIN_OUTPUT_BUF: usize = 16 * 1024 + 64;
/// The smallest [`Config::send_window`]: one uploaded block with its header, plus room for the
/// small messages that travel with it.
pub const MIN_SEND_WINDOW: u32 = 16 * 1024 + 13 + 256;
/// How long a connected peer has to complete the handshake.
const HANDSHAKE_TIMEOUT: crate::Duration = crate::Duration::from_secs(30);

/// Byte ranges tracked per partial piece; more fragmented pieces wait for holes to fill.
pub const MAX_RANGES: usize = 32;

/// The resume state a session of this shape reads and writes.
pub type Resume<const BYTES: usize, const PARTIAL: usize> = ResumeState<BYTES, PARTIAL, MAX_RANGES>;

/// One torrent's swarm, in memory the caller places.
///
/// `H` hashes pieces; `P` holds the torrent's piece hashes (20 bytes per piece), owned
/// (`Vec<u8>`, `Box<[u8]>`) or borrowed (`&'static [u8]`, flash). Every capacity is a const
/// parameter, so a session is one fixed-size value that fits in a `static`
/// ([`Session::EMPTY`], then [`Session::start`]); [`preset`] names the usual shapes.
///
/// | parameter | what it bounds |
/// |---|---|
/// | `PEERS` | connection slots |
/// | `BYTES` | bitfield bytes: `8 * BYTES` pieces at most |
/// | `PARTIAL` | pieces downloading at once (0: never downloads) |
/// | `RX` | receive ring per peer: the longest non-`Piece` message it can take |
/// | `Q` | requests in flight to each peer, and queued from each peer |
/// | `PICK` | bitfield bytes the piece picker counts (0: a seed, no picker) |
/// | `KNOWN` | peer addresses remembered for dialling |
/// | `OPS` | storage operations in flight |
/// | `EVENTS` | events queued for display (the newest are dropped beyond it); at least 1 |
/// | `HAVES` | verified pieces remembered for `Have` messages to peers; at least 1 |
/// | `BANS` | banned, struck and cooling-down addresses, each |
/// | `PEX` | connects and disconnects remembered for PEX messages to peers (a peer that falls further behind is sent the peers connected now); 0: no peer exchange at all |
pub struct Session<
    H: Sha1,
    P: AsRef<[u8]>,
    const PEERS: usize,
    const BYTES: usize,
    const PARTIAL: usize,
    const RX: usize,
    const Q: usize,
    const PICK: usize = BYTES,
    const KNOWN: usize = 128,
    const OPS: usize = 256,
    const EVENTS: usize = 64,
    const HAVES: usize = 256,
    const BANS: usize = 32,
    const PEX: usize = 64,
> {
    config: Config,
    info_hash: InfoHash,
    geometry: Geometry,
    /// The piece hashes, or the info dictionary holding them at `hashes_at`; `None` until
    /// started.
    hashes: Option<P>,
    hashes_at: usize,
    /// The info dictionary's length when `hashes` is the whole dictionary, served to peers
    /// that ask (BEP 9); 0 when not serving.
    metadata_len: u32,
    have: Bitfield<BYTES>,
    /// `have.count_ones()`, kept up to date.
    have_count: u32,
    /// Total length of the verified pieces.
    verified_bytes: u64,
    in_progress: Bitfield<BYTES>,
    /// The pieces to download (see [`Session::set_wanted`]); all unless the shell narrows it.
    wanted: Bitfield<BYTES>,
    /// Wanted pieces not yet verified, and their total length.
    wanted_missing: u32,
    wanted_left: u64,
    picker: Picker<PICK>,
    /// Pieces shown to some super-seeded peer (see [`super_seed`]).
    revealed: Bitfield<PICK>,
    /// Pieces some peer reported having, as a super-seed saw them.
    reported: Bitfield<PICK>,
    partials: Vec<Partial<H>, PARTIAL>,
    /// Pieces verified or discarded whose command the shell has not polled yet. A piece
    /// leaves `partials` for here, and no piece begins while both together are full, so
    /// these facts are never dropped.
    facts: Vec<Fact, PARTIAL>,
    peers: [Peer<BYTES, RX, Q>; PEERS],
    known: Vec<Known, KNOWN>,
    want_connect: bool,
    /// Some slot may be `Closing` or `Connecting` not yet emitted.
    slots_pending: bool,
    bans: Vec<IpAddr, BANS>,
    /// Addresses whose peer was closed as idle, and until when they wait while slots are short.
    cooling: Vec<(IpAddr, Instant), BANS>,
    /// Peers evicted for a newcomer: their slot is already reused, their `Close` not yet emitted.
    evicted: Deque<PeerHandle, 8>,
    strikes: Vec<(IpAddr, u8), BANS>,
    /// Pieces that failed with bytes from several addresses: fetched from one alone (`parole`).
    parole: Vec<u32, PARTIAL>,
    ops: Vec<Op, OPS>,
    next_op: u32,
    have_log: Deque<u32, HAVES>,
    have_log_end: u32,
    /// Peers connected and lost, for PEX messages to peers.
    pex_log: PexLog<PEX>,
    /// Bumped whenever our partial pieces or their written bytes change: a peer told an older
    /// value is owed an `enjambre_partial` message.
    partial_gen: u32,
    /// Pieces peers hold partly, as their `enjambre_partial` messages said.
    adverts: Vec<partial_ext::Advert, PARTIAL>,
    /// Our own IP addresses, as peers told them (`yourip`): never dialled from PEX.
    own_ips: Vec<IpAddr, 2>,
    events: Deque<Event, EVENTS>,
    cursor: usize,
    announce: Announce,
    next_rechoke: Instant,
    rechoke_round: u32,
    persist_dirty: bool,
    next_persist: Instant,
    uploaded: u64,
    downloaded: u64,
    waste: Waste,
    /// Some block was asked of two peers (endgame): a finished block cancels its twins.
    duplicates: bool,
    /// Times a peer owing blocks was found stalled (see `Stats::stalls`).
    stalls: u32,
    rng: u64,
    complete_at_start: bool,
    /// The `now` of the latest input or poll.
    now: Instant,
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
    // ---- inputs ----------------------------------------------------------------------------

    /// Learn peer addresses (from trackers, or given by the user).
    pub fn handle_peers(&mut self, now: Instant, addrs: impl IntoIterator<Item = SocketAddr>) {
        self.now = now;
        for addr in addrs {
            self.add_known(now, addr, Source::Tracker);
        }
        self.want_connect = true;
    }

    /// Learn peer addresses the user named: dialled even when we are a seed (a seed otherwise
    /// waits for leeches to connect to it).
    pub fn handle_dial(&mut self, now: Instant, addrs: impl IntoIterator<Item = SocketAddr>) {
        self.now = now;
        for addr in addrs {
            self.add_known(now, addr, Source::User);
        }
        self.want_connect = true;
    }

    /// A peer connected to us; returns the handle to use for its socket. When every slot is
    /// taken, the most idle peer's slot is given to it (that peer's `Close` follows).
    pub fn handle_incoming(
        &mut self,
        now: Instant,
        addr: SocketAddr,
    ) -> Result<PeerHandle, SessionError> {
        self.now = now;
        if self.is_banned(addr.ip()) {
            return Err(SessionError::Banned);
        }
        if self.cooling_down(now, addr.ip()) {
            return Err(SessionError::RecentlyIdle);
        }
        if self.room() == 0 && !self.evict_for_newcomer(now) {
            return Err(SessionError::NoFreeSlot);
        }
        let slot = self.free_slot().ok_or(SessionError::NoFreeSlot)?;
        let count = self.geometry.piece_count();
        self.peers[slot].reset(now, count, Phase::Handshaking, addr, false);
        let handle = self.handle_of(slot);
        self.push_event(Event::PeerConnected { peer: handle, addr });
        Ok(handle)
    }

    /// The connection asked for by `Command::Connect` is up.
    pub fn handle_connected(&mut self, now: Instant, peer: PeerHandle) {
        self.now = now;
        let Some(i) = self.slot(peer) else { return };
        if let (Phase::Connecting { .. }, Some(addr)) = (self.peers[i].phase, self.peers[i].addr) {
            let p = &mut self.peers[i];
            p.phase = Phase::Handshaking;
            p.last_rx = now;
            p.last_tx = now;
            self.push_event(Event::PeerConnected { peer, addr });
        }
    }

    /// The connection asked for by `Command::Connect` could not be opened.
    pub fn handle_connect_failed(&mut self, now: Instant, peer: PeerHandle) {
        self.now = now;
        let Some(i) = self.slot(peer) else { return };
        self.release(now, i, CloseReason::ConnectFailed);
    }

    /// Bytes arrived from a peer. Returns how many were taken; drain [`Self::poll_output`] and
    /// offer the rest again. Bytes for a closed or unknown peer are all taken and dropped.
    pub fn handle_input(&mut self, now: Instant, peer: PeerHandle, bytes: &[u8]) -> usize {
        self.now = now;
        let Some(i) = self.slot(peer) else {
            return bytes.len();
        };
        let p = &mut self.peers[i];
        if !p.is_live() {
            return bytes.len();
        }
        let n = p.rx.write(bytes);
        if n > 0 {
            p.last_rx = now;
        }
        n
    }

    /// The peer's socket took `bytes` more of what `Transmit` and `SendBlock` gave it (in
    /// order: a `SendBlock` counts its 13-byte header and its data). Uploads are counted
    /// here, and the peer's send window opens again.
    pub fn handle_sent(&mut self, now: Instant, peer: PeerHandle, bytes: usize) {
        self.now = now;
        let Some(i) = self.slot(peer) else { return };
        let p = &mut self.peers[i];
        p.tx_confirmed = (p.tx_confirmed + bytes as u64).min(p.tx_emitted);
        while let Some(&(end, len)) = p.uploads.front() {
            if end > p.tx_confirmed {
                break;
            }
            p.uploads.pop_front();
            p.up_round += len as u64;
            p.up_meter.add(now, len);
            self.uploaded += len as u64;
        }
    }

    /// The peer's socket closed or failed. Offer every byte read from it before the end
    /// first: the bytes are all taken, and none is lost.
    pub fn handle_closed(&mut self, now: Instant, peer: PeerHandle) {
        self.now = now;
        let Some(i) = self.slot(peer) else { return };
        self.release(now, i, CloseReason::Disconnected);
    }

    /// A `Write` finished.
    pub fn handle_write_done(&mut self, now: Instant, op: OpId, result: Result<(), StorageError>) {
        self.now = now;
        let Some(op) = self.take_op(op, OpKind::Write) else {
            return;
        };
        self.write_done(op, result);
    }

    /// A `Read` finished, with the bytes read.
    pub fn handle_read_done(
        &mut self,
        now: Instant,
        op: OpId,
        result: Result<&[u8], StorageError>,
    ) {
        self.now = now;
        let Some(op) = self.take_op(op, OpKind::Read) else {
            return;
        };
        self.read_done(op, result);
    }

    /// The announce asked for succeeded; the next one is due after `interval`.
    pub fn handle_announce_ok(
        &mut self,
        now: Instant,
        interval: crate::Duration,
        min_interval: Option<crate::Duration>,
    ) {
        self.now = now;
        let peerless = self.config.peerless_announce;
        self.announce.ok(now, interval, min_interval, peerless);
    }

    /// The announce asked for failed on every tracker; it is retried with backoff.
    pub fn handle_announce_failed(&mut self, now: Instant) {
        self.now = now;
        let retry = self.config.announce_retry;
        self.announce.failed(now, retry);
    }

    /// Time passed: run timers (rechoke, timeouts, keep-alives, announces, reconnects).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if now >= self.next_rechoke {
            self.next_rechoke = now + self.config.rechoke_interval;
            self.rechoke(now);
        }
        self.check_timeouts(now);
        let peerless = self.peerless();
        self.announce.tick(now, peerless);
        self.want_connect = true;
    }

    /// Stop: announce `stopped`, close every peer, persist the resume state.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.now = now;
        for i in 0..PEERS {
            if !matches!(self.peers[i].phase, Phase::Free | Phase::Closing(_)) {
                self.close(now, i, CloseReason::Shutdown);
            }
        }
        self.known.clear();
        self.announce.stop();
        self.persist_dirty = true;
        self.next_persist = now;
    }

    // ---- output ----------------------------------------------------------------------------

    /// Return the next thing for the shell to do. Call after every input until it returns
    /// [`Output::Timeout`]. `buf` must hold at least [`MIN_OUTPUT_BUF`] bytes (a session that
    /// never downloads: [`preset::MCU_OUTPUT_BUF`]).
    pub fn poll_output<'b>(&mut self, now: Instant, buf: &'b mut [u8]) -> Output<'b> {
        self.now = now;
        if !self.facts.is_empty() {
            let fact = self.facts.remove(0);
            return Output::Command(self.fact_command(fact));
        }
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        if let Some(cmd) = self.poll_slots() {
            return Output::Command(cmd);
        }
        for k in 0..PEERS {
            let i = (self.cursor + k) % PEERS;
            if let Some(out) = self.poll_peer(now, i, buf) {
                self.cursor = i;
                return match out {
                    Produced::Transmit { len } => Output::Transmit {
                        peer: self.handle_of(i),
                        bytes: &buf[..len],
                    },
                    Produced::Write {
                        op,
                        piece,
                        offset,
                        len,
                    } => Output::Write {
                        op,
                        piece,
                        offset,
                        bytes: &buf[..len],
                    },
                    Produced::Command(c) => Output::Command(c),
                };
            }
            // A peer may have closed while polled: report it before moving on.
            if let Some(event) = self.events.pop_front() {
                return Output::Event(event);
            }
            if let Some(cmd) = self.poll_slots() {
                return Output::Command(cmd);
            }
        }
        if let Some(cmd) = self.poll_verify() {
            return Output::Command(cmd);
        }
        if let Some(cmd) = self
            .announce
            .poll(self.uploaded, self.downloaded, self.left())
        {
            return Output::Command(cmd);
        }
        if self.persist_dirty && now >= self.next_persist {
            self.persist_dirty = false;
            self.next_persist = now + self.config.persist_interval;
            return Output::Command(Command::PersistResume);
        }
        Output::Timeout(self.next_deadline(now))
    }

    /// Emit pending `Close` and `Connect` commands.
    fn poll_slots(&mut self) -> Option<Command> {
        if let Some(peer) = self.evicted.pop_front() {
            return Some(Command::Close {
                peer,
                reason: CloseReason::Idle,
            });
        }
        for i in 0..if self.slots_pending { PEERS } else { 0 } {
            match self.peers[i].phase {
                Phase::Closing(reason) => {
                    let peer = self.handle_of(i);
                    self.peers[i].phase = Phase::Free;
                    self.push_event(Event::PeerClosed { peer, reason });
                    return Some(Command::Close { peer, reason });
                }
                Phase::Connecting { emitted: false } => {
                    self.peers[i].phase = Phase::Connecting { emitted: true };
                    let addr = self.peers[i].addr?;
                    return Some(Command::Connect {
                        peer: self.handle_of(i),
                        addr,
                    });
                }
                _ => {}
            }
        }
        self.slots_pending = false;
        if self.want_connect {
            self.want_connect = false;
            if self.start_connects() {
                return self.poll_slots();
            }
        }
        None
    }

    /// Receive, then transmit, then serve, for one peer; sending stays within its window.
    fn poll_peer(&mut self, now: Instant, i: usize, buf: &mut [u8]) -> Option<Produced> {
        if !self.peers[i].is_live() {
            return None;
        }
        if let Some(out) = self.poll_rx(now, i, buf) {
            return Some(out);
        }
        if !self.peers[i].is_live() {
            return None;
        }
        let room = self.send_room(i).min(buf.len());
        if let Some(len) = self.compose_tx(now, i, &mut buf[..room]) {
            self.peers[i].tx_emitted += len as u64;
            return Some(Produced::Transmit { len });
        }
        self.poll_upload(i).map(Produced::Command)
    }

    /// Bytes the session may still hand the shell for peer `i` before it confirms some.
    pub(crate) fn send_room(&self, i: usize) -> usize {
        let p = &self.peers[i];
        let unconfirmed = p.tx_emitted - p.tx_confirmed;
        (self.config.send_window as u64).saturating_sub(unconfirmed) as usize
    }

    fn next_deadline(&self, now: Instant) -> Instant {
        let mut t = self.next_rechoke;
        let mut consider = |x: Instant| {
            if x < t {
                t = x;
            }
        };
        if let Some(a) = self.announce.deadline(self.peerless()) {
            consider(a);
        }
        if self.persist_dirty {
            consider(self.next_persist);
        }
        for p in self.peers.iter() {
            if p.is_live() {
                consider(p.last_rx + self.peer_timeout(p));
                if p.is_active() {
                    consider(p.last_tx + self.config.keepalive);
                }
                // Owing us blocks (a stall), or resting after one (its probation).
                if p.max_requests == 0 || p.requests.iter().any(|r| r.sent) {
                    consider(p.last_piece_rx + self.stall_after(p));
                }
            }
        }
        for i in 0..PEERS {
            if let Some(due) = self.pex_deadline(i) {
                consider(due);
            }
            if let Some(due) = self.partial_deadline(i) {
                consider(due);
            }
        }
        if let Some(idle) = self.next_idle() {
            consider(idle);
        }
        if self.room() > 0 {
            if let Some(r) = self.next_retry() {
                consider(r);
            }
        }
        if t < now {
            now
        } else {
            t
        }
    }

    // ---- helpers ---------------------------------------------------------------------------

    fn left(&self) -> u64 {
        self.geometry.total_length() - self.verified_bytes
    }

    fn peer_timeout(&self, p: &Peer<BYTES, RX, Q>) -> crate::Duration {
        if p.is_active() {
            self.config.peer_timeout
        } else {
            self.config.peer_timeout.min(HANDSHAKE_TIMEOUT)
        }
    }

    fn slot(&self, h: PeerHandle) -> Option<usize> {
        let i = h.slot as usize;
        let p = self.peers.get(i)?;
        (p.generation == h.generation && p.phase != Phase::Free).then_some(i)
    }

    fn handle_of(&self, i: usize) -> PeerHandle {
        PeerHandle {
            slot: i as u16,
            generation: self.peers[i].generation,
        }
    }

    fn free_slot(&self) -> Option<usize> {
        self.peers.iter().position(|p| p.phase == Phase::Free)
    }

    fn live_peers(&self) -> usize {
        self.peers
            .iter()
            .filter(|p| !matches!(p.phase, Phase::Free | Phase::Closing(_)))
            .count()
    }

    fn push_event(&mut self, e: Event) {
        // Events are for display; when the shell falls 64 behind, the newest are dropped.
        let _ = self.events.push_back(e);
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Drop the connection's state now, and emit `Close` + `PeerClosed` on the next poll.
    fn close(&mut self, now: Instant, i: usize, reason: CloseReason) {
        self.forget_peer(now, i, reason);
        self.peers[i].phase = Phase::Closing(reason);
        self.slots_pending = true;
    }

    /// Drop the connection's state now; the shell already knows the socket is gone.
    fn release(&mut self, now: Instant, i: usize, reason: CloseReason) {
        self.forget_peer(now, i, reason);
        let peer = self.handle_of(i);
        self.peers[i].phase = Phase::Free;
        self.push_event(Event::PeerClosed { peer, reason });
    }

    fn forget_peer(&mut self, now: Instant, i: usize, reason: CloseReason) {
        let p = &mut self.peers[i];
        if p.counted {
            self.picker.remove_bitfield(&p.has);
            p.counted = false;
        }
        let (outbound, addr, listen) = (p.outbound, p.addr, p.listen_addr);
        self.forget_reveals(i);
        self.pex_gone(i);
        self.forget_adverts(i);
        // Its block in progress is no longer coming: bytes received are written, the rest free.
        self.drop_inbound(i);
        self.drop_requests(i);
        if let Some(addr) = addr {
            self.known_closed(now, addr, outbound, reason);
        }
        if let Some(listen) = listen {
            self.known_closed(now, listen, true, reason);
        }
        self.want_connect = true;
    }
}

/// What `poll_peer` produced, with lengths instead of borrows of the output buffer.
pub(crate) enum Produced {
    Transmit {
        len: usize,
    },
    Write {
        op: OpId,
        piece: PieceIndex,
        offset: u32,
        len: usize,
    },
    Command(Command),
}
