//! The browser peer's engine: the core session and the store, and the answer to each of the
//! session's outputs, as the shell contract (core crate docs) says. Sockets and announces are
//! the caller's ([`Net`], [`Engine::take_announce`]); what the page should hear comes out as
//! [`Note`]s. No JavaScript here, so every rule is tested on the host.

use crate::prelude::*;
use core::net::SocketAddr;

use crate::staged::Staged;
use enjambre_core::journal::Entry;
use enjambre_core::session::{
    preset, CloseReason, Command, Config, Event, Output, PeerHandle, StorageError, MIN_OUTPUT_BUF,
};
use enjambre_core::sha1::Sha1Smol;
use enjambre_core::tracker::client::Announce;
use enjambre_core::{Duration, Instant, PeerId};

use crate::feed::{feed, Fed, Inbox, Sink};
use crate::file::File;
use crate::store::{BrowserResume, Store};
use crate::text;
use crate::torrent::Torrent;

/// The session shape of a browser tab.
pub type BrowserSession = preset::Browser<Sha1Smol, Vec<u8>>;

/// Facts other than writes (a verified or discarded piece) wait at most this long for a record.
/// Writes never wait: a turn of the loop that stored bytes ends with their record, so a reload
/// or a crash loses no stored byte (only bytes still on the wire).
pub const JOURNAL_EVERY: Duration = Duration::from_millis(200);

/// How many of the latest writes the engine remembers (for the failover report).
const RECENT: usize = 64;

/// What the engine asks of the connections.
pub trait Net {
    /// Open a connection to `addr` for `peer`; report it with `Engine::connected` or
    /// `Engine::connect_failed`.
    fn connect(&mut self, peer: PeerHandle, addr: SocketAddr);
    /// Queue `bytes` on `peer`'s connection; confirm them with `Engine::sent` as it takes them.
    fn send(&mut self, peer: PeerHandle, bytes: &[u8]);
    /// Close `peer`'s connection; nothing is reported back.
    fn close(&mut self, peer: PeerHandle, reason: CloseReason);
}

/// Something for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A peer connected.
    Connected(SocketAddr),
    /// A peer left, and why.
    Closed(SocketAddr, String),
    /// `addr` sent this block (the first bytes of a write).
    Block {
        /// The sender: the peer whose bytes were being taken.
        addr: SocketAddr,
        /// The piece.
        piece: u32,
        /// Offset in the piece.
        offset: u32,
        /// Bytes.
        len: u32,
    },
    /// The stored bytes of a piece changed.
    Piece(u32),
    /// A line for the event log.
    Log(String),
    /// Storage failed.
    Error(String),
    /// Every piece is verified.
    Completed,
}

/// One torrent's download in a tab.
pub struct Engine<F: File> {
    session: Box<BrowserSession>,
    store: Store<F>,
    buf: Vec<u8>,
    inboxes: Vec<Option<(PeerHandle, Inbox)>>,
    addrs: Vec<Option<(PeerHandle, SocketAddr)>>,
    /// Whose bytes are being taken now.
    feeding: Option<PeerHandle>,
    /// Pieces whose sender left mid-piece: where its bytes stopped (`None`: at the piece's
    /// end, so wherever the piece goes on), and the address that left.
    orphans: Vec<(u32, Option<u32>, SocketAddr)>,
    /// The last piece each slot was sending, and where its last bytes ended.
    sending: Vec<Option<(u32, u32)>>,
    /// The latest writes, `(piece, start, end, from)`, oldest first (at most [`RECENT`]): a
    /// departed peer's cut that another peer had already written (an endgame duplicate, or a
    /// block given to both) is reported at once, from them.
    recent: Vec<(u32, u32, u32, SocketAddr)>,
    announce: Option<Announce>,
    notes: Vec<Note>,
    last_journal: Instant,
    /// The last turn flushed stored bytes and journaled them.
    flushed: bool,
    /// Blocks received and not yet written: written together, then confirmed.
    staged: Staged,
    now: Instant,
}

impl<F: File> Engine<F> {
    /// Start the session of `torrent` in place, from `resume` when given.
    pub fn new(
        now: Instant,
        torrent: &Torrent,
        store: Store<F>,
        resume: Option<&BrowserResume>,
        peer_id: PeerId,
        seed: u64,
    ) -> Result<Self, String> {
        let mut config = Config::new(peer_id, 6881);
        config.max_peers = BrowserSession::SLOTS;
        config.seed = seed;
        config.send_window = 1024 * 1024;
        // 512 blocks (8 MiB) in flight per peer at most (the preset's `Q`): through the bridge
        // 256 gave one enjambre seed 129-137 MB/s and a libtorrent seed 98-124, 512 gave
        // 131-138 and 123-124, 1024 no more (`tests/web/bench.mjs`, 2026-12-07).
        config.pipeline_depth = 512;
        let mut session = Box::new(BrowserSession::empty());
        // The whole info dictionary: a peer reaching us with only a magnet link gets it.
        session
            .start_serving_metadata(
                now,
                config,
                torrent.info_hash,
                torrent.geometry,
                torrent.info.clone(),
                torrent.hashes_at,
                resume,
            )
            .map_err(|e| format!("cannot start the download: {e}"))?;
        let slots = BrowserSession::SLOTS;
        Ok(Engine {
            session,
            store,
            buf: vec![0; MIN_OUTPUT_BUF],
            inboxes: vec![None; slots],
            addrs: vec![None; slots],
            feeding: None,
            orphans: Vec::new(),
            sending: vec![None; slots],
            recent: Vec::new(),
            announce: None,
            notes: Vec::new(),
            last_journal: now,
            flushed: false,
            staged: Staged::default(),
            now,
        })
    }

    /// The session, for queries and the inputs that need no engine bookkeeping
    /// (`handle_sent`, `handle_peers`, `handle_announce_ok`, `handle_timeout`, …).
    pub fn session(&mut self) -> &mut BrowserSession {
        &mut self.session
    }

    /// The store (the page's save reads the data file).
    pub fn store(&mut self) -> &mut Store<F> {
        &mut self.store
    }

    /// The announce the session asked for, if any, for the caller to run.
    pub fn take_announce(&mut self) -> Option<Announce> {
        self.announce.take()
    }

    /// Whether the last [`Engine::pump`] stored bytes, so flushed the data file: the run loop
    /// then rests a little before the next turn (see `peer::FLUSH_GAP_MS`).
    pub fn flushed(&self) -> bool {
        self.flushed
    }

    /// What the page should hear since the last call.
    pub fn take_notes(&mut self) -> Vec<Note> {
        core::mem::take(&mut self.notes)
    }

    /// The address of a connected or connecting peer.
    pub fn addr(&self, peer: PeerHandle) -> Option<SocketAddr> {
        match self.addrs.get(usize::from(peer.slot))? {
            Some((h, a)) if *h == peer => Some(*a),
            _ => None,
        }
    }

    /// A peer dialled us (through the bridge port) from `addr`: the handle for its connection,
    /// or why the session turned it away.
    pub fn incoming(&mut self, now: Instant, addr: SocketAddr) -> Result<PeerHandle, String> {
        let peer = (self.session.handle_incoming(now, addr)).map_err(|e| e.to_string())?;
        self.addrs[usize::from(peer.slot)] = Some((peer, addr));
        Ok(peer)
    }

    /// `peer`'s connection opened.
    pub fn connected(&mut self, now: Instant, peer: PeerHandle) {
        self.session.handle_connected(now, peer);
    }

    /// `peer`'s connection could not be opened.
    pub fn connect_failed(&mut self, now: Instant, peer: PeerHandle) {
        self.session.handle_connect_failed(now, peer);
    }

    /// Bytes arrived on `peer`'s connection (any split); taken at the next [`Engine::pump`].
    pub fn received(&mut self, peer: PeerHandle, bytes: &[u8]) {
        self.inbox(peer).push(bytes);
    }

    /// `peer`'s connection ended, after the bytes given so far.
    pub fn ended(&mut self, peer: PeerHandle) {
        self.inbox(peer).end();
    }

    fn inbox(&mut self, peer: PeerHandle) -> &mut Inbox {
        let slot = &mut self.inboxes[usize::from(peer.slot)];
        if slot.as_ref().is_none_or(|(h, _)| *h != peer) {
            *slot = Some((peer, Inbox::default()));
        }
        &mut slot.as_mut().expect("just set").1
    }

    /// Offer every queued byte, answer every output; returns when to pump again at the latest.
    pub fn pump(&mut self, now: Instant, net: &mut impl Net) -> Instant {
        self.now = now;
        self.drain(net);
        let mut waiting = false;
        for i in 0..self.inboxes.len() {
            let Some((peer, mut inbox)) = self.inboxes[i].take() else {
                continue;
            };
            self.feeding = Some(peer);
            let fed = feed(&mut Fill { engine: self, net }, peer, &mut inbox);
            self.feeding = None;
            match fed {
                Fed::Closed => {}
                Fed::Waiting => {
                    waiting = true;
                    self.inboxes[i] = Some((peer, inbox));
                }
                Fed::Empty => self.inboxes[i] = Some((peer, inbox)),
            }
        }
        // What is gathered is written before the data file is flushed and journaled.
        let mut deadline = self.drain(net);
        while !self.staged.ops.is_empty() {
            self.commit();
            deadline = self.drain(net);
        }
        self.flushed = self.store.wrote();
        if self.flushed || now.saturating_since(self.last_journal) >= JOURNAL_EVERY {
            self.journal();
        }
        let soon = if waiting {
            now + Duration::from_millis(10)
        } else {
            self.last_journal + JOURNAL_EVERY
        };
        deadline.min(soon.max(now))
    }

    fn journal(&mut self) {
        self.last_journal = self.now;
        if let Err(e) = self.store.journal() {
            self.notes.push(Note::Error(format!("journal: {}", e.0)));
        }
    }

    /// Drain the session's output until `Timeout`, answering each.
    fn drain(&mut self, net: &mut impl Net) -> Instant {
        loop {
            let now = self.now;
            match self.session.poll_output(now, &mut self.buf) {
                Output::Timeout(_) if self.staged.full() => self.commit(),
                Output::Timeout(at) => return at,
                Output::Transmit { peer, bytes } => net.send(peer, bytes),
                Output::Write {
                    op,
                    piece,
                    offset,
                    bytes,
                } => {
                    let len = bytes.len() as u32;
                    let at = self.session.geometry().piece_offset(piece) + u64::from(offset);
                    if !self.staged.takes(at, bytes.len()) {
                        let (session, store) = (&mut self.session, &mut self.store);
                        commit(session, store, &mut self.staged, &mut self.notes, now);
                    }
                    self.staged.push(at, op, piece, offset, bytes);
                    self.wrote(piece.get(), offset, len);
                }
                Output::Command(c) => self.command(c, net),
                Output::Event(e) => self.event(e),
            }
        }
    }

    /// Write the gathered blocks in one call, then confirm each to the session.
    fn commit(&mut self) {
        let (session, store) = (&mut self.session, &mut self.store);
        commit(session, store, &mut self.staged, &mut self.notes, self.now);
    }

    fn wrote(&mut self, piece: u32, offset: u32, len: u32) {
        self.notes.push(Note::Piece(piece));
        let Some(addr) = self.feeding.and_then(|p| self.addr(p)) else {
            return;
        };
        if let Some(peer) = self.feeding {
            self.sending[usize::from(peer.slot)] = Some((piece, offset + len));
        }
        if self.recent.len() == RECENT {
            self.recent.remove(0);
        }
        self.recent.push((piece, offset, offset + len, addr));
        // The orphan continues where this write covers its cut (or anywhere, if none).
        let continues = |cut: Option<u32>| match cut {
            Some(cut) => offset <= cut && cut < offset + len,
            None => true,
        };
        let found = self
            .orphans
            .iter()
            .position(|&(p, cut, _)| p == piece && continues(cut));
        if let Some(k) = found {
            let (_, cut, left) = self.orphans.swap_remove(k);
            self.notes.push(Note::Log(format!(
                "peer {} left; piece {piece} continues at byte {} from {}",
                text::addr(left),
                thousands(cut.unwrap_or(offset)),
                text::addr(addr)
            )));
        }
        self.notes.push(Note::Block {
            addr,
            piece,
            offset,
            len,
        });
    }

    fn command(&mut self, c: Command, net: &mut impl Net) {
        let now = self.now;
        match c {
            Command::Connect { peer, addr } => {
                self.addrs[usize::from(peer.slot)] = Some((peer, addr));
                net.connect(peer, addr);
            }
            Command::Close { peer, reason } => {
                self.inboxes[usize::from(peer.slot)] = None;
                net.close(peer, reason);
            }
            Command::SendBlock {
                peer,
                header,
                piece,
                offset,
                len,
            } => {
                let mut block = vec![0u8; 13 + len as usize];
                block[..13].copy_from_slice(&header);
                match self.store.read(piece, offset, &mut block[13..]) {
                    Ok(()) => net.send(peer, &block),
                    Err(e) => {
                        self.notes.push(Note::Error(format!("storage: {}", e.0)));
                        net.close(peer, CloseReason::Shutdown);
                        self.session.handle_closed(now, peer);
                    }
                }
            }
            Command::Read {
                op,
                piece,
                offset,
                len,
            } => {
                let mut block = vec![0u8; len as usize];
                let result = self.store.read(piece, offset, &mut block);
                let result = result
                    .as_ref()
                    .map(|_| &block[..])
                    .map_err(|_| StorageError::Io);
                self.session.handle_read_done(now, op, result);
            }
            Command::Announce {
                event,
                uploaded,
                downloaded,
                left,
            } => {
                self.announce = Some(Announce {
                    event,
                    uploaded,
                    downloaded,
                    left,
                })
            }
            Command::PersistResume => self.persist(),
            Command::PieceVerified { piece } => {
                self.store.note(Entry::Verified(piece.get()));
                self.notes.push(Note::Piece(piece.get()));
            }
            Command::PieceDiscarded { piece, cause } => {
                self.store.note(Entry::Discard(piece.get()));
                self.notes.push(Note::Piece(piece.get()));
                self.notes.push(Note::Log(format!(
                    "piece {} discarded ({cause}); fetching it again",
                    piece.get()
                )));
            }
        }
    }

    /// Save the resume state now (also what `stop` does last).
    pub fn persist(&mut self) {
        let mut out = vec![0u8; BrowserResume::max_encoded_len()];
        let saved = match self.session.encode_resume(&mut out) {
            Ok(core) => self.store.save(core).map_err(|e| e.0),
            Err(e) => Err(e.to_string()),
        };
        self.last_journal = self.now;
        if let Err(e) = saved {
            self.notes
                .push(Note::Error(format!("saving the resume state: {e}")));
        }
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::PeerConnected { peer, addr } => {
                self.addrs[usize::from(peer.slot)] = Some((peer, addr));
                self.notes.push(Note::Connected(addr));
            }
            Event::PeerClosed { peer, reason } => {
                let slot = usize::from(peer.slot);
                if let Some(addr) = self.addr(peer) {
                    if let Some((piece, end)) = self.sending[slot].take() {
                        let geometry = self.session.geometry();
                        let piece_len = geometry.piece(piece).map_or(0, |p| geometry.piece_len(p));
                        let cut = (end < piece_len).then_some(end);
                        // Another peer may have written the cut already (an endgame duplicate,
                        // or a block given to both): the piece continued from them.
                        let covered = cut.and_then(|cut| {
                            let by = self.recent.iter().rev().find(|&&(p, s, e, from)| {
                                p == piece && from != addr && s <= cut && cut < e
                            });
                            by.map(|&(.., from)| (cut, from))
                        });
                        self.orphans.retain(|(p, _, _)| *p != piece);
                        if let Some((cut, from)) = covered {
                            self.notes.push(Note::Log(format!(
                                "peer {} left; piece {piece} continues at byte {} from {}",
                                text::addr(addr),
                                thousands(cut),
                                text::addr(from)
                            )));
                        } else if !self.session.have().get(piece) {
                            self.orphans.push((piece, cut, addr));
                        }
                    }
                    self.notes.push(Note::Closed(addr, reason.to_string()));
                }
                self.addrs[slot] = None;
            }
            Event::Completed => self.notes.push(Note::Completed),
            Event::StorageFailed { piece, error } => self.notes.push(Note::Error(format!(
                "storage failed for piece {}: {error}",
                piece.get()
            ))),
            Event::PeerBanned { addr } => self.notes.push(Note::Log(format!(
                "peer {} banned after bad data",
                text::ip(addr)
            ))),
            Event::PeerHandshake { .. } => {}
        }
    }
}

/// The engine as the feed's sink, for one pass.
/// Write `staged` in one call, then confirm each of its operations to `session`.
fn commit<F: File>(
    session: &mut BrowserSession,
    store: &mut Store<F>,
    staged: &mut Staged,
    notes: &mut Vec<Note>,
    now: Instant,
) {
    if staged.ops.is_empty() {
        return;
    }
    let parts = staged
        .ops
        .iter()
        .map(|&(_, piece, offset, len)| (piece, offset, len));
    let result = store.write_run(staged.at(), &staged.bytes, parts);
    let result = result.map_err(|e| {
        notes.push(Note::Error(format!("storage: {}", e.0)));
        StorageError::Io
    });
    for &(op, ..) in &staged.ops {
        session.handle_write_done(now, op, result);
    }
    staged.clear();
}

struct Fill<'a, F: File, N: Net> {
    engine: &'a mut Engine<F>,
    net: &'a mut N,
}

impl<F: File, N: Net> Sink for Fill<'_, F, N> {
    fn offer(&mut self, peer: PeerHandle, bytes: &[u8]) -> usize {
        let now = self.engine.now;
        self.engine.session.handle_input(now, peer, bytes)
    }

    fn drain(&mut self) {
        self.engine.drain(self.net);
    }

    fn closed(&mut self, peer: PeerHandle) {
        let now = self.engine.now;
        self.engine.session.handle_closed(now, peer);
        self.engine.drain(self.net);
    }
}

/// `5000` as `5,000`.
pub fn thousands(n: u32) -> String {
    let mut digits = String::new();
    text::push_u64(&mut digits, n.into());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl<F: File> Engine<F> {
    /// Stop without a goodbye (a killed tab, in tests): give the store back.
    pub fn into_store(self) -> Store<F> {
        self.store
    }
}
