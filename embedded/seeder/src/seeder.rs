//! The seeder: the core session in its `McuSeeder` shape, served over embassy-net sockets.
//!
//! One task runs it all. `SOCKETS` TCP sockets (one per session slot, plus one) listen on the
//! peer port; a connection that lands when the session has no free slot is closed politely
//! (FIN, never RST), so the peer comes back later. Each socket keeps an [`Outbox`] of what its
//! peer's socket has not taken yet: small messages, and blocks as a place in the file, read
//! straight into the socket's transmit buffer as it frees up. [`Session::handle_sent`] follows
//! the socket, so the session never hands out more than one block's worth per peer.
//!
//! The loop: service socket states (listen, accept, notice closes), offer received bytes, drain
//! [`Session::poll_output`], send what fits; then sleep until a socket is ready, the session's
//! deadline, or an announce ends. Announces run beside it (see [`crate::announce`]).

use core::future::{poll_fn, Future};
use core::net::{IpAddr, SocketAddr};
use core::pin::pin;
use core::task::Poll;

use embassy_futures::join::join;
use embassy_futures::poll_once;
use embassy_futures::select::{select3, Either3};
use embassy_net::tcp::{State, TcpSocket};
use embassy_net::Stack;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::Timer;
use enjambre_core::rng::Rng;
use enjambre_core::session::{
    preset, CloseReason, Command, Config, Event, Output, PeerHandle, Resume, SessionError,
    StorageError, MIN_SEND_WINDOW,
};
use enjambre_core::sha1::Sha1Smol;
use enjambre_core::tracker::client::{Announce, Announcer, Identity, Retransmit, Tiers};
use enjambre_core::{Duration, Geometry, InfoHash, Instant, PeerId};
use heapless::Vec;

use crate::announce::{self, AnnounceBuffers, Outcome};
use crate::outbox::Outbox;
use crate::source::BlockSource;
use crate::time;

/// The session: the core's MCU seeder shape, piece hashes in flash, with 4 peer slots (the
/// budget's), or 1, 8 or 16 with feature `slots-1`, `slots-8` or `slots-16` (the largest wins).
pub type Session = preset::McuSeederWith<Sha1Smol, &'static [u8], PEER_SLOTS>;
/// Peer slots chosen by the features.
const PEER_SLOTS: usize = if cfg!(feature = "slots-16") {
    16
} else if cfg!(feature = "slots-8") {
    8
} else if cfg!(feature = "slots-1") {
    1
} else {
    4
};
/// Peer slots of the session.
pub const SLOTS: usize = Session::SLOTS;
/// Listening sockets: one per slot, and one to turn the next peer away politely.
pub const SOCKETS: usize = SLOTS + 1;
/// The buffer the session is polled with. A seeder transmits only small messages (handshakes,
/// `HaveAll`, rejects; a bitfield streams over several transmits), never block payload.
pub const OUTPUT_BUF: usize = preset::MCU_OUTPUT_BUF;
/// Message bytes queued per peer behind a socket that is full; past it the peer is closed.
const OUTBOX_BYTES: usize = 512;
/// Messages and blocks queued per peer.
const OUTBOX_ITEMS: usize = 16;
/// A socket closing politely is reset after this long.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Trackers a torrent may list.
const TRACKERS: usize = 4;

/// What the board seeds.
#[derive(Clone, Copy)]
pub struct Torrent {
    /// The info-hash.
    pub info_hash: InfoHash,
    /// Piece length and total length.
    pub geometry: Geometry,
    /// SHA-1 of every piece, concatenated.
    pub piece_hashes: &'static [u8],
    /// Announce URLs (`http://` only on a board), all in one tier.
    pub trackers: &'static [&'static str],
}

/// How the board presents itself.
#[derive(Clone, Copy)]
pub struct Settings {
    /// The TCP port peers connect to.
    pub port: u16,
    /// Our peer id.
    pub peer_id: PeerId,
    /// Seed of the session's random choices and the tracker key.
    pub seed: u64,
}

/// Caller-owned memory for the sockets: `RX` and `TX` bytes per socket, [`SOCKETS`] sockets,
/// the announce buffers, each socket's outbox and the buffer the session is polled with.
/// Place it in a `static`: what lives here is neither in the task's future nor copied
/// through the stack when the task starts.
pub struct Buffers<const RX: usize, const TX: usize> {
    rx: [[u8; RX]; SOCKETS],
    tx: [[u8; TX]; SOCKETS],
    announce: AnnounceBuffers,
    slots: [Slot; SOCKETS],
    out: [u8; OUTPUT_BUF],
}

impl<const RX: usize, const TX: usize> Buffers<RX, TX> {
    /// Zeroed buffers, for a `static`.
    pub const fn new() -> Self {
        Buffers {
            rx: [[0; RX]; SOCKETS],
            tx: [[0; TX]; SOCKETS],
            announce: AnnounceBuffers::new(),
            slots: [const { Slot::new() }; SOCKETS],
            out: [0; OUTPUT_BUF],
        }
    }
}

impl<const RX: usize, const TX: usize> Default for Buffers<RX, TX> {
    fn default() -> Self {
        Self::new()
    }
}

/// Start `session` in place for `torrent`, every piece held (the file is trusted: its hashes
/// were computed by the build, or checked at boot).
// Not inlined: its temporaries (a resume state, the config) would otherwise stay in the
// frame of the task that calls it for as long as the task runs.
#[inline(never)]
pub fn start(
    session: &mut Session,
    torrent: &Torrent,
    settings: &Settings,
) -> Result<(), SessionError> {
    let mut config = Config::new(settings.peer_id, settings.port);
    config.max_peers = SLOTS;
    config.unchoke_slots = SLOTS;
    config.send_window = MIN_SEND_WINDOW;
    config.seed = settings.seed;
    config.client_name = "Enjambre board 0.1";
    let count = torrent.geometry.piece_count();
    let mut all = Resume::<{ preset::MCU_BITFIELD_BYTES }, 0>::new(torrent.info_hash, count)
        .map_err(|_| SessionError::TooManyPieces)?;
    all.have.fill();
    session.start(
        time::now(),
        config,
        torrent.info_hash,
        torrent.geometry,
        torrent.piece_hashes,
        Some(&all),
    )
}

/// Serve the started `session` on `stack` forever: peers on `settings.port`, blocks read from
/// `file`, announces to `torrent.trackers`.
pub async fn run<S: BlockSource, const RX: usize, const TX: usize>(
    stack: Stack<'_>,
    session: &mut Session,
    torrent: &Torrent,
    settings: &Settings,
    file: S,
    buffers: &mut Buffers<RX, TX>,
) -> ! {
    let Buffers {
        rx,
        tx,
        announce,
        slots,
        out,
    } = buffers;
    for slot in slots.iter_mut() {
        slot.phase = Phase::Free;
        slot.outbox.clear();
        slot.stalled = false;
    }
    let mut sockets: Vec<TcpSocket<'_>, SOCKETS> = Vec::new();
    for (rx, tx) in rx.iter_mut().zip(tx.iter_mut()) {
        let mut socket = TcpSocket::new(stack, rx, tx);
        // Blocks leave in segments as the buffer frees; Nagle would hold each tail for an ACK.
        socket.set_nagle_enabled(false);
        let _ = sockets.push(socket);
    }
    let requests = Signal::<NoopRawMutex, Announce>::new();
    let results = Signal::<NoopRawMutex, Outcome>::new();
    let mut rng = Rng::new(settings.seed ^ 0xa11_0c8);
    let identity = Identity {
        info_hash: torrent.info_hash,
        peer_id: settings.peer_id,
        port: settings.port,
        key: rng.next_u32(),
        numwant: 0,
    };
    let urls = torrent.trackers;
    let tiers =
        Tiers::<TRACKERS>::new(urls.iter().map(|u| (0u16, *u)), &mut rng).unwrap_or_else(|_| {
            warn!("more than {} trackers: none is used", TRACKERS);
            Tiers::new(core::iter::empty(), &mut rng).unwrap_or_else(|_| unreachable!())
        });
    let mut announcer = Announcer::new(identity, tiers, Retransmit::BEP15, rng.next_u64());
    let announcing = async {
        loop {
            let a = requests.wait().await;
            debug!("announcing {:?}", a.event);
            let outcome = announce::round(stack, &mut announcer, urls, a, announce).await;
            results.signal(outcome);
        }
    };
    let mut seeder = Seeder {
        session,
        sockets,
        slots,
        file,
        port: settings.port,
        out,
        deadline: Instant::ZERO,
        requests: &requests,
    };
    info!(
        "seeding {} pieces ({} bytes) on port {}",
        torrent.geometry.piece_count(),
        torrent.geometry.total_length(),
        settings.port
    );
    join(seeder.serve(&results), announcing).await;
    unreachable!()
}

/// Where one socket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Closed: listen at the next turn.
    Free,
    /// Waiting for a peer.
    Listening,
    /// Carrying this session peer.
    Peer(PeerHandle),
    /// Closing since then; reset after [`CLOSE_GRACE`].
    Closing(Instant),
}

/// One socket's state beside the socket itself.
struct Slot {
    phase: Phase,
    outbox: Outbox<OUTBOX_BYTES, OUTBOX_ITEMS>,
    /// The session took none of the bytes offered last: wait for something else first.
    stalled: bool,
}

impl Slot {
    const fn new() -> Self {
        Slot {
            phase: Phase::Free,
            outbox: Outbox::new(),
            stalled: false,
        }
    }
}

struct Seeder<'s, 'n, S> {
    session: &'s mut Session,
    sockets: Vec<TcpSocket<'n>, SOCKETS>,
    slots: &'s mut [Slot; SOCKETS],
    file: S,
    port: u16,
    out: &'s mut [u8; OUTPUT_BUF],
    deadline: Instant,
    requests: &'s Signal<NoopRawMutex, Announce>,
}

impl<S: BlockSource> Seeder<'_, '_, S> {
    async fn serve(&mut self, results: &Signal<NoopRawMutex, Outcome>) -> ! {
        loop {
            self.work();
            let grace_ends = self.slots.iter().filter_map(|s| match s.phase {
                Phase::Closing(since) => Some(since + CLOSE_GRACE),
                _ => None,
            });
            let wake = time::to_embassy(grace_ends.fold(self.deadline, |a, b| a.min(b)));
            let ready = self.ready();
            match select3(ready, Timer::at(wake), results.wait()).await {
                Either3::Third(Outcome::Answered {
                    interval,
                    min_interval,
                }) => {
                    (self.session).handle_announce_ok(time::now(), interval, min_interval);
                }
                Either3::Third(Outcome::GaveUp) => {
                    warn!("no tracker answered; retrying later");
                    self.session.handle_announce_failed(time::now());
                }
                Either3::First(()) | Either3::Second(()) => {}
            }
            let now = time::now();
            if now >= self.deadline {
                self.session.handle_timeout(now);
            }
        }
    }

    /// Everything that can be done without waiting.
    // Not inlined into the task's poll, whose frame would then hold this one's temporaries
    // beside those of the announce code (about 2.5 KiB more stack).
    #[inline(never)]
    fn work(&mut self) {
        loop {
            for k in 0..SOCKETS {
                // A socket that just closed listens again at once.
                let before = self.slots[k].phase;
                self.service(k);
                if before != self.slots[k].phase {
                    self.service(k);
                }
            }
            self.drain();
            let mut progress = false;
            for k in 0..SOCKETS {
                progress |= self.read(k);
                progress |= self.write(k);
            }
            if !progress {
                self.drain();
                return;
            }
        }
    }

    /// Move socket `k` along its life: listen, take a new peer, notice the end of one.
    fn service(&mut self, k: usize) {
        let now = time::now();
        let sock = &mut self.sockets[k];
        let slot = &mut self.slots[k];
        match slot.phase {
            Phase::Free => {
                if sock.state() == State::Closed {
                    match poll_once(sock.accept(self.port)) {
                        Poll::Ready(Err(e)) => warn!("socket {}: cannot listen: {:?}", k, e),
                        _ => slot.phase = Phase::Listening,
                    }
                }
            }
            Phase::Listening => match sock.state() {
                State::Listen | State::SynReceived => {}
                State::Closed => slot.phase = Phase::Free,
                _ => {
                    let Some(remote) = sock.remote_endpoint() else {
                        sock.abort();
                        slot.phase = Phase::Closing(now);
                        return;
                    };
                    let addr = SocketAddr::new(IpAddr::from(remote.addr), remote.port);
                    match self.session.handle_incoming(now, addr) {
                        Ok(peer) => {
                            info!("peer {:?} from {:?} in slot {}", peer.slot, addr, k);
                            slot.phase = Phase::Peer(peer);
                            slot.stalled = false;
                            slot.outbox.clear();
                        }
                        Err(e) => {
                            info!("refused {:?}: {:?}; closing politely", addr, e);
                            sock.close();
                            slot.phase = Phase::Closing(now);
                        }
                    }
                }
            },
            Phase::Peer(peer) => {
                if !sock.may_recv() {
                    debug!("peer {:?} closed its connection", peer.slot);
                    self.session.handle_closed(now, peer);
                    slot.outbox.clear();
                    if sock.state() == State::CloseWait {
                        sock.close();
                    } else {
                        sock.abort();
                    }
                    slot.phase = Phase::Closing(now);
                }
            }
            Phase::Closing(since) => {
                // Whatever still arrives is dropped.
                if sock.can_recv() {
                    let _ = poll_once(sock.read_with(|b| (b.len(), ())));
                }
                match sock.state() {
                    State::Closed => slot.phase = Phase::Free,
                    State::TimeWait => sock.abort(),
                    _ if now.saturating_since(since) >= CLOSE_GRACE => sock.abort(),
                    _ => {}
                }
            }
        }
    }

    /// Offer socket `k`'s received bytes to the session; whether any were taken.
    fn read(&mut self, k: usize) -> bool {
        let Phase::Peer(peer) = self.slots[k].phase else {
            return false;
        };
        let mut progress = false;
        while self.sockets[k].can_recv() {
            let now = time::now();
            let session = &mut *self.session;
            let taken = match poll_once(self.sockets[k].read_with(|b| {
                let n = session.handle_input(now, peer, b);
                (n, n)
            })) {
                Poll::Ready(Ok(n)) => n,
                _ => 0,
            };
            self.drain();
            self.slots[k].stalled = taken == 0;
            if taken == 0 {
                break;
            }
            progress = true;
        }
        progress
    }

    /// Send what socket `k` has room for; whether anything was sent.
    fn write(&mut self, k: usize) -> bool {
        let Phase::Peer(peer) = self.slots[k].phase else {
            return false;
        };
        let mut progress = false;
        while !self.slots[k].outbox.is_empty() && self.sockets[k].can_send() {
            let outbox = &mut self.slots[k].outbox;
            let file = &mut self.file;
            let sent = poll_once(self.sockets[k].write_with(|b| match outbox.fill(file, b) {
                Ok(n) => (n, Ok(n)),
                Err(e) => (0, Err(e)),
            }));
            match sent {
                Poll::Ready(Ok(Ok(n))) if n > 0 => {
                    self.session.handle_sent(time::now(), peer, n);
                    self.slots[k].stalled = false;
                    progress = true;
                }
                Poll::Ready(Ok(Err(_))) => {
                    warn!("slot {}: reading the file failed; closing the peer", k);
                    self.drop_peer(k, peer);
                    break;
                }
                _ => break,
            }
        }
        if progress {
            self.drain();
        }
        progress
    }

    /// Close socket `k` at once and tell the session its peer is gone.
    fn drop_peer(&mut self, k: usize, peer: PeerHandle) {
        self.session.handle_closed(time::now(), peer);
        self.slots[k].outbox.clear();
        self.slots[k].phase = Phase::Closing(time::now());
        self.sockets[k].abort();
    }

    /// Do everything the session asks until it gives its next deadline.
    fn drain(&mut self) {
        let now = time::now();
        loop {
            let mut overflow = None;
            match self.session.poll_output(now, self.out) {
                Output::Timeout(at) => {
                    self.deadline = at;
                    return;
                }
                Output::Transmit { peer, bytes } => {
                    if let Some(k) = find(&self.slots[..], peer) {
                        if self.slots[k].outbox.push_bytes(bytes).is_err() {
                            overflow = Some((k, peer));
                        }
                    }
                }
                Output::Command(Command::SendBlock {
                    peer,
                    header,
                    piece,
                    offset,
                    len,
                }) => {
                    let start = self.session.geometry().piece_offset(piece) + u64::from(offset);
                    if let Some(k) = find(&self.slots[..], peer) {
                        if self.slots[k].outbox.push_block(header, start, len).is_err() {
                            overflow = Some((k, peer));
                        }
                    }
                }
                Output::Command(Command::Close { peer, reason }) => {
                    if let Some(k) = find(&self.slots[..], peer) {
                        info!("closing peer {:?} in slot {}: {:?}", peer.slot, k, reason);
                        let slot = &mut self.slots[k];
                        slot.outbox.clear();
                        slot.phase = Phase::Closing(now);
                        if polite(reason) {
                            self.sockets[k].close();
                        } else {
                            self.sockets[k].abort();
                        }
                    }
                }
                Output::Command(Command::Announce {
                    event,
                    uploaded,
                    downloaded,
                    left,
                }) => self.requests.signal(Announce {
                    event,
                    uploaded,
                    downloaded,
                    left,
                }),
                Output::Command(Command::Connect { peer, .. }) => {
                    self.session.handle_connect_failed(now, peer);
                }
                Output::Command(Command::Read { op, .. }) => {
                    (self.session).handle_read_done(now, op, Err(StorageError::Io));
                }
                Output::Write { op, .. } => {
                    (self.session).handle_write_done(now, op, Err(StorageError::Io));
                }
                Output::Command(_) => {}
                Output::Event(event) => log_event(&event),
            }
            if let Some((k, peer)) = overflow {
                warn!(
                    "peer {:?} in slot {} reads too slowly: closed",
                    peer.slot, k
                );
                self.drop_peer(k, peer);
            }
        }
    }

    /// Ready when a socket has something for us: bytes, room for our bytes, a new state.
    async fn ready(&self) {
        poll_fn(|cx| {
            for (sock, slot) in self.sockets.iter().zip(self.slots.iter()) {
                let read = match slot.phase {
                    Phase::Peer(_) => !slot.stalled,
                    Phase::Listening | Phase::Closing(_) => true,
                    Phase::Free => false,
                };
                if read && pin!(sock.wait_read_ready()).poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                let write = matches!(slot.phase, Phase::Peer(_)) && !slot.outbox.is_empty();
                if write && pin!(sock.wait_write_ready()).poll(cx).is_ready() {
                    return Poll::Ready(());
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// The socket carrying session peer `peer`.
fn find(slots: &[Slot], peer: PeerHandle) -> Option<usize> {
    slots.iter().position(|s| s.phase == Phase::Peer(peer))
}

/// Whether a peer closed for `reason` gets a FIN (it did nothing wrong) or a reset.
fn polite(reason: CloseReason) -> bool {
    !matches!(
        reason,
        CloseReason::Malformed(_)
            | CloseReason::Misbehaved(_)
            | CloseReason::WrongInfoHash
            | CloseReason::Banned
            | CloseReason::SelfConnection
    )
}

fn log_event(event: &Event) {
    match event {
        Event::PeerHandshake { peer, .. } => info!("peer {:?}: handshake", peer.slot),
        Event::PeerClosed { peer, reason } => info!("peer {:?} closed: {:?}", peer.slot, reason),
        _ => debug!("{:?}", event),
    }
}
