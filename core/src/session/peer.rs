//! One peer connection slot: its receive ring, what it has, what we asked of it and it of us.

use core::net::SocketAddr;

use heapless::{Deque, Vec};

use super::output::CloseReason;
use super::pipeline::RateMeter;
use crate::bitfield::Bitfield;
use crate::ring::RingBuffer;
use crate::{BlockRef, Instant, PeerId};

/// Where a slot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Unused.
    Free,
    /// `Connect` to be emitted (false) or emitted and awaiting the shell (true).
    Connecting { emitted: bool },
    /// TCP is up; handshakes are being exchanged.
    Handshaking,
    /// Both handshakes done.
    Active,
    /// To be closed: `Close` is emitted on the next poll, then the slot is freed.
    Closing(CloseReason),
}

/// A block we asked this peer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) piece: u32,
    pub(crate) begin: u32,
    pub(crate) len: u32,
    /// Whether the `Request` message has been transmitted.
    pub(crate) sent: bool,
}

impl Request {
    /// Whether the two ask for some of the same bytes.
    pub(crate) fn overlaps(&self, other: &Request) -> bool {
        self.piece == other.piece
            && self.begin < other.begin + other.len
            && other.begin < self.begin + self.len
    }
}

/// A `Piece` message whose payload is arriving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Inbound {
    pub(crate) piece: u32,
    /// Offset of the block's first byte inside the piece.
    pub(crate) begin: u32,
    /// Offset of the next payload byte inside the piece.
    pub(crate) offset: u32,
    /// Payload bytes still to come.
    pub(crate) remaining: u32,
    /// Whether its bytes are kept: it answers a request of ours, or answers one we gave up on
    /// with bytes still missing (a late reply). Else they are discarded as `discard`.
    pub(crate) wanted: bool,
    /// Why the bytes of a block not wanted are thrown away.
    pub(crate) discard: Discard,
}

/// Why an arriving block's bytes are thrown away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discard {
    /// We have them, or they are being written or arriving from another peer.
    Duplicate,
    /// Of a piece we are not fetching.
    Unrequested,
}

/// Small messages waiting to be sent, other than requests and haves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Control {
    Cancel {
        piece: u32,
        begin: u32,
        len: u32,
    },
    Reject {
        piece: u32,
        begin: u32,
        len: u32,
    },
    /// A BEP 9 metadata piece asked of us: its data, or a reject when we have no such piece.
    Metadata {
        piece: u32,
        reject: bool,
    },
}

/// All the state of one peer slot.
pub(crate) struct Peer<const BYTES: usize, const RX: usize, const Q: usize> {
    pub(crate) generation: u16,
    pub(crate) phase: Phase,
    pub(crate) addr: Option<SocketAddr>,
    pub(crate) outbound: bool,
    /// The known (listening) address an inbound connection stands for, once learned: not
    /// dialled while this connection lives.
    pub(crate) listen_addr: Option<SocketAddr>,
    pub(crate) rx: RingBuffer<RX>,
    pub(crate) peer_id: PeerId,
    pub(crate) fast: bool,
    pub(crate) extended: bool,
    /// The id they receive BEP 9 `ut_metadata` messages with (their extended handshake).
    pub(crate) ut_metadata: Option<u8>,
    /// The id they receive BEP 11 `ut_pex` messages with; `None` while PEX is off.
    pub(crate) ut_pex: Option<u8>,
    /// The id they receive `enjambre_partial` messages with; `None` while ours is off. Only a
    /// peer that offered it may request bytes of a piece we have not verified.
    pub(crate) enjambre_partial: Option<u8>,
    /// Our `enjambre_partial` messages to it: the `partial_gen` it was last told (`None`:
    /// never), and when the next may go.
    pub(crate) partial_told: Option<u32>,
    pub(crate) partial_due: Instant,
    /// The address other peers are told this one is at (see [`pex`](super::pex)), once known,
    /// and whether the PEX log carries it (a twin's may instead).
    pub(crate) pex_addr: Option<SocketAddr>,
    pub(crate) pex_logged: bool,
    /// Our messages to it: whether one was composed yet, the PEX log event the next one starts
    /// at, and the earliest it may go.
    pub(crate) pex_synced: bool,
    pub(crate) pex_cursor: u32,
    pub(crate) pex_due: Instant,
    /// When we last took one of its messages.
    pub(crate) pex_heard: Option<Instant>,
    /// Their pieces; counted in the picker's availability while `counted`.
    pub(crate) has: Bitfield<BYTES>,
    pub(crate) counted: bool,
    pub(crate) handshake_sent: bool,
    pub(crate) handshake_received: bool,
    /// Our first message and extended handshake are out; nothing else is sent before.
    pub(crate) bitfield_sent: bool,
    /// Our DHT port is owed to it (a `Port` message): it offered the DHT, and so do we.
    pub(crate) dht_port_due: bool,
    /// Bytes of our first message (`Bitfield`, `HaveAll`, `HaveNone`) already written, and
    /// whether it is complete: a bitfield larger than the output buffer goes out in parts.
    pub(crate) first_at: u32,
    pub(crate) first_done: bool,
    pub(crate) am_choking: bool,
    pub(crate) am_interested: bool,
    pub(crate) peer_choking: bool,
    pub(crate) peer_interested: bool,
    /// Choke/interest state last transmitted, to send only changes.
    pub(crate) sent_choking: bool,
    pub(crate) sent_interested: bool,
    /// Index into the session's log of verified pieces: haves before it were sent.
    pub(crate) have_cursor: u32,
    /// Super-seeded ([`super_seed`](super::super_seed)): shown no pieces but `reveals`.
    pub(crate) super_seeded: bool,
    /// Pieces shown to a super-seeded peer and not yet reported back by it.
    pub(crate) reveals: [u32; super::super_seed::REVEALS],
    pub(crate) requests: Vec<Request, Q>,
    /// Requests to keep in flight now ([`pipeline`](super::pipeline)), and the most ever:
    /// the least of `Q`, `pipeline_depth` and the peer's `reqq`.
    pub(crate) max_requests: usize,
    pub(crate) request_cap: usize,
    /// Payload received from this peer, as a rate: sets `max_requests`.
    pub(crate) meter: RateMeter,
    /// Payload its socket took from us, as a rate: how much upload is handed out ahead.
    pub(crate) up_meter: RateMeter,
    pub(crate) incoming: Deque<BlockRef, Q>,
    pub(crate) control: Deque<Control, 16>,
    pub(crate) inbound: Option<Inbound>,
    pub(crate) last_rx: Instant,
    pub(crate) last_tx: Instant,
    pub(crate) last_piece_rx: Instant,
    /// When a block last moved, either way (asked of us, sent, or received), or when the
    /// connection began.
    pub(crate) last_useful: Instant,
    /// Payload bytes this rechoke round, and in the previous one (the rate used to rank).
    pub(crate) down_round: u64,
    pub(crate) up_round: u64,
    pub(crate) down_rate: u64,
    pub(crate) up_rate: u64,
    /// The last rechoke round it ended unchoked (0: never); a seed's slots go to the peers
    /// that waited longest.
    pub(crate) served_round: u32,
    pub(crate) optimistic: bool,
    /// Stream position (bytes handed to the shell for this peer, ever) and how much of it the
    /// shell confirmed sent: their difference never exceeds the send window.
    pub(crate) tx_emitted: u64,
    pub(crate) tx_confirmed: u64,
    /// Uploaded blocks not yet confirmed sent: the stream position where each ends, and its
    /// payload length. Counted as uploaded once confirmed.
    pub(crate) uploads: Deque<(u64, u32), Q>,
}

impl<const BYTES: usize, const RX: usize, const Q: usize> Peer<BYTES, RX, Q> {
    pub(crate) const fn new() -> Self {
        Peer {
            generation: 0,
            phase: Phase::Free,
            addr: None,
            outbound: false,
            listen_addr: None,
            rx: RingBuffer::new(),
            peer_id: PeerId([0; 20]),
            fast: false,
            extended: false,
            ut_metadata: None,
            ut_pex: None,
            enjambre_partial: None,
            partial_told: None,
            partial_due: Instant::ZERO,
            pex_addr: None,
            pex_logged: false,
            pex_synced: false,
            pex_cursor: 0,
            pex_due: Instant::ZERO,
            pex_heard: None,
            has: Bitfield::empty(),
            counted: false,
            handshake_sent: false,
            handshake_received: false,
            bitfield_sent: false,
            dht_port_due: false,
            first_at: 0,
            first_done: false,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            sent_choking: true,
            sent_interested: false,
            have_cursor: 0,
            super_seeded: false,
            reveals: [super::super_seed::NONE; super::super_seed::REVEALS],
            requests: Vec::new(),
            max_requests: 1,
            request_cap: 1,
            meter: RateMeter::new(),
            up_meter: RateMeter::new(),
            incoming: Deque::new(),
            control: Deque::new(),
            inbound: None,
            last_rx: Instant::ZERO,
            last_tx: Instant::ZERO,
            last_piece_rx: Instant::ZERO,
            last_useful: Instant::ZERO,
            down_round: 0,
            up_round: 0,
            down_rate: 0,
            up_rate: 0,
            served_round: 0,
            optimistic: false,
            tx_emitted: 0,
            tx_confirmed: 0,
            uploads: Deque::new(),
        }
    }

    /// Forget the connection, in place (the receive ring is not rebuilt on the stack).
    pub(crate) fn clear(&mut self) {
        self.phase = Phase::Free;
        self.addr = None;
        self.outbound = false;
        self.listen_addr = None;
        self.rx.clear();
        self.peer_id = PeerId([0; 20]);
        self.fast = false;
        self.extended = false;
        self.ut_metadata = None;
        self.ut_pex = None;
        self.enjambre_partial = None;
        self.partial_told = None;
        self.partial_due = Instant::ZERO;
        self.pex_addr = None;
        self.pex_logged = false;
        self.pex_synced = false;
        self.pex_cursor = 0;
        self.pex_due = Instant::ZERO;
        self.pex_heard = None;
        let _ = self.has.reset(0);
        self.counted = false;
        self.handshake_sent = false;
        self.handshake_received = false;
        self.bitfield_sent = false;
        self.dht_port_due = false;
        self.first_at = 0;
        self.first_done = false;
        self.am_choking = true;
        self.am_interested = false;
        self.peer_choking = true;
        self.peer_interested = false;
        self.sent_choking = true;
        self.sent_interested = false;
        self.have_cursor = 0;
        self.requests.clear();
        self.max_requests = 1;
        self.request_cap = 1;
        self.meter = RateMeter::new();
        self.up_meter = RateMeter::new();
        self.incoming.clear();
        self.control.clear();
        self.inbound = None;
        self.last_rx = Instant::ZERO;
        self.last_tx = Instant::ZERO;
        self.last_piece_rx = Instant::ZERO;
        self.last_useful = Instant::ZERO;
        self.down_round = 0;
        self.up_round = 0;
        self.down_rate = 0;
        self.up_rate = 0;
        self.served_round = 0;
        self.optimistic = false;
        self.tx_emitted = 0;
        self.tx_confirmed = 0;
        self.uploads.clear();
    }

    /// Reset the slot for a new connection, keeping and bumping the generation.
    pub(crate) fn reset(
        &mut self,
        now: Instant,
        piece_count: u32,
        phase: Phase,
        addr: SocketAddr,
        outbound: bool,
    ) {
        self.clear();
        self.generation = self.generation.wrapping_add(1);
        self.phase = phase;
        self.addr = Some(addr);
        self.outbound = outbound;
        // Capacity was checked against piece_count when the session was started.
        let _ = self.has.reset(piece_count);
        self.last_rx = now;
        self.last_tx = now;
        self.last_piece_rx = now;
        self.last_useful = now;
    }

    pub(crate) fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Handshaking | Phase::Active)
    }

    pub(crate) fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }
}
