//! What a session asks of its shell: transmits, storage writes, commands and events.

use core::fmt;
use core::net::{IpAddr, SocketAddr};

use crate::tracker::AnnounceEvent;
use crate::{Instant, PeerId, PieceIndex};

/// A peer connection slot, chosen by the session. Stale handles (an older generation) are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PeerHandle {
    /// Slot index.
    pub slot: u16,
    /// Generation of the slot, bumped each time it is reused.
    pub generation: u16,
}

/// Identifies one storage operation, echoed back in `handle_write_done` / `handle_read_done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OpId(pub u32);

/// One output of [`Session::poll_output`](super::Session::poll_output).
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Output<'b> {
    /// Write all of `bytes` to the peer's socket, after what was sent before, and report
    /// them with `handle_sent` as the socket takes them.
    Transmit {
        /// The peer.
        peer: PeerHandle,
        /// The bytes, inside the caller's buffer.
        bytes: &'b [u8],
    },
    /// Store `bytes` at `offset` inside `piece`, then call `handle_write_done(op, …)`.
    ///
    /// `bytes` is always the first `bytes.len()` bytes of the buffer given to `poll_output`:
    /// a shell may hand that whole buffer to storage instead of copying.
    Write {
        /// Echo this back.
        op: OpId,
        /// The piece.
        piece: PieceIndex,
        /// Offset inside the piece.
        offset: u32,
        /// The data, inside the caller's buffer.
        bytes: &'b [u8],
    },
    /// Something for the shell to do.
    Command(Command),
    /// Something that happened, for the user interface.
    Event(Event),
    /// Nothing more to do now: call `handle_timeout` at this instant, or earlier on new input.
    Timeout(Instant),
}

/// An action the shell performs for the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Command {
    /// Open a TCP connection, then call `handle_connected` or `handle_connect_failed`.
    Connect {
        /// The slot reserved for it.
        peer: PeerHandle,
        /// Where to.
        addr: SocketAddr,
    },
    /// Close the peer's socket. The slot is already free; no `handle_closed` is needed.
    Close {
        /// The peer.
        peer: PeerHandle,
        /// Why.
        reason: CloseReason,
    },
    /// Serve an upload: write `header`, then `len` bytes read from storage at `piece`/`offset`,
    /// and report the `13 + len` bytes with `handle_sent` as the socket takes them.
    SendBlock {
        /// The peer.
        peer: PeerHandle,
        /// The `Piece` message header (length prefix, id, index, begin).
        header: [u8; 13],
        /// The piece.
        piece: PieceIndex,
        /// Offset inside the piece.
        offset: u32,
        /// Number of bytes.
        len: u32,
    },
    /// Read bytes back from storage for verification, then call `handle_read_done(op, …)`.
    Read {
        /// Echo this back.
        op: OpId,
        /// The piece.
        piece: PieceIndex,
        /// Offset inside the piece.
        offset: u32,
        /// Number of bytes.
        len: u32,
    },
    /// Announce to the trackers, then call `handle_announce_ok` or `handle_announce_failed`
    /// and give the peers to `handle_peers`.
    Announce {
        /// The announce event.
        event: AnnounceEvent,
        /// Payload bytes uploaded so far.
        uploaded: u64,
        /// Payload bytes downloaded so far.
        downloaded: u64,
        /// Bytes still missing.
        left: u64,
    },
    /// Flush the data files, then write [`encode_resume`](super::Session::encode_resume)'s
    /// bytes atomically. Data first, state second: a crash may lose time, never bytes.
    PersistResume,
    /// A durability fact: `piece` passed its SHA-1 check and is final. Never dropped, and
    /// after every `Write` of the piece; a shell keeping a journal records it in that order.
    PieceVerified {
        /// The piece.
        piece: PieceIndex,
    },
    /// A durability fact: the bytes of `piece` were dropped and will be fetched again; the
    /// resume state no longer claims them. Never dropped, like [`Command::PieceVerified`].
    PieceDiscarded {
        /// The piece.
        piece: PieceIndex,
        /// Why.
        cause: DiscardCause,
    },
}

/// Why a piece's bytes were dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DiscardCause {
    /// The piece failed its SHA-1 check; the peers that sent it were blamed.
    HashMismatch,
    /// Reading the piece back for its check failed.
    Storage(StorageError),
}

/// Something that happened in the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Event {
    /// A TCP connection to or from a peer is up.
    PeerConnected {
        /// The peer.
        peer: PeerHandle,
        /// Its address.
        addr: SocketAddr,
    },
    /// The peer's handshake arrived.
    PeerHandshake {
        /// The peer.
        peer: PeerHandle,
        /// Its id.
        peer_id: PeerId,
    },
    /// The peer is gone.
    PeerClosed {
        /// The peer.
        peer: PeerHandle,
        /// Why.
        reason: CloseReason,
    },
    /// A storage write failed; the affected bytes will be fetched again.
    StorageFailed {
        /// The piece.
        piece: PieceIndex,
        /// What went wrong.
        error: StorageError,
    },
    /// A peer address was banned after repeated bad data.
    PeerBanned {
        /// The address.
        addr: IpAddr,
    },
    /// Every piece is verified.
    Completed,
}

/// Why a peer connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CloseReason {
    /// The socket closed or failed.
    Disconnected,
    /// The connection could not be opened.
    ConnectFailed,
    /// The peer sent bytes that are not the protocol.
    Malformed(crate::wire::WireError),
    /// The peer sent legal bytes at the wrong time.
    Misbehaved(PeerMisbehaved),
    /// The handshake was for another torrent.
    WrongInfoHash,
    /// We connected to ourselves.
    SelfConnection,
    /// Already connected to this peer id.
    Duplicate,
    /// Nothing received for too long.
    Timeout,
    /// Neither side wants anything from the other (both seeds).
    NotUseful,
    /// No block moved for a while, and its slot was wanted for another peer.
    Idle,
    /// The peer is banned.
    Banned,
    /// The session is shutting down.
    Shutdown,
}

/// Legal messages at an illegal moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// A bitfield that was not the first message, or had the wrong length or spare bits.
    BadBitfield,
    /// `Have` for a piece beyond the torrent.
    BadHave,
    /// A request for a block outside the torrent or longer than 16 KiB... or 128 KiB.
    BadRequest,
    /// Too many requests queued at once.
    RequestFlood,
    /// A message that needs an extension the peer did not negotiate.
    NotNegotiated,
    /// A message longer than the configured maximum.
    MessageTooLong,
}

/// A storage failure, as the shell reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StorageError {
    /// The device is full.
    NoSpace,
    /// Any other I/O failure.
    Io,
}

/// Errors returned by the session's constructor and `handle_incoming`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SessionError {
    /// The torrent has more pieces than the bitfield capacity `BYTES * 8`.
    TooManyPieces,
    /// `piece_hashes` is not 20 bytes per piece.
    BadPieceHashes,
    /// The resume state belongs to another torrent or does not fit.
    BadResume,
    /// Every peer slot is taken.
    NoFreeSlot,
    /// The address is banned.
    Banned,
    /// The address had a peer closed as idle a moment ago, and slots are short.
    RecentlyIdle,
    /// The data is incomplete, and this session shape (no picker or no partial pieces) only
    /// seeds; set `Config::upload_only` to serve what there is.
    SeedOnly,
    /// `Config::send_window` is below [`MIN_SEND_WINDOW`](super::MIN_SEND_WINDOW).
    SendWindowTooSmall,
    /// A wanted-pieces bitfield whose length is not the torrent's piece count.
    BadWanted,
}

/// Received payload thrown away, by cause; never counts bytes that were kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Waste {
    /// Bytes we had already: a block written before (an endgame twin, a reply that crossed
    /// its cancel) or a piece verified or no longer being fetched.
    pub duplicate: u64,
    /// Bytes answering no request of ours in flight: asked and then given up on (a stalled
    /// or choking peer's, cancelled) or never asked.
    pub unrequested: u64,
    /// Pieces that failed their SHA-1 check, whole.
    pub corrupt: u64,
}

impl Waste {
    /// Every byte thrown away.
    pub const fn total(&self) -> u64 {
        self.duplicate + self.unrequested + self.corrupt
    }
}

/// One connected peer as the session sees it, for status displays and the laboratory's
/// records; the session never reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStatus {
    /// Where it is, when known.
    pub addr: Option<SocketAddr>,
    /// We dialled it.
    pub outbound: bool,
    /// Pieces it has, as it told us.
    pub pieces: u32,
    /// We choke it.
    pub am_choking: bool,
    /// We want something it has.
    pub am_interested: bool,
    /// It chokes us.
    pub peer_choking: bool,
    /// It wants something we have.
    pub peer_interested: bool,
    /// It holds our optimistic unchoke.
    pub optimistic: bool,
    /// Payload it sends us, bytes per second (its latest sample).
    pub down_rate: u64,
    /// Payload we send it, bytes per second (its latest sample).
    pub up_rate: u64,
    /// Our requests in flight to it.
    pub requests: usize,
    /// How many requests its pipeline allows now.
    pub max_requests: usize,
    /// Its requests we hold, not yet sent.
    pub uploads_queued: usize,
}

/// Counters for progress displays and announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Verified pieces.
    pub pieces_have: u32,
    /// Pieces in the torrent.
    pub piece_count: u32,
    /// Payload bytes received and written (not counting discarded duplicates).
    pub downloaded: u64,
    /// Payload bytes the shell confirmed sent.
    pub uploaded: u64,
    /// Bytes not yet verified.
    pub left: u64,
    /// Bytes of the wanted pieces not yet verified (see `Session::set_wanted`).
    pub wanted_left: u64,
    /// Connected peers (handshake done).
    pub peers: usize,
    /// Bytes received but thrown away (duplicates, unrequested, failed pieces): the sum of
    /// `waste`.
    pub wasted: u64,
    /// `wasted`, by cause.
    pub waste: Waste,
    /// Times a peer owing us blocks sent nothing for its stall time and its blocks were
    /// cancelled and moved to others.
    pub stalls: u32,
    /// Pieces being downloaded now.
    pub in_progress: usize,
    /// Of those, pieces being read back for verification.
    pub verifying: usize,
    /// Of those, pieces with bytes nobody is asked for (and no write or reply covers).
    pub with_holes: usize,
    /// Requests in flight, over every peer.
    pub requests: usize,
    /// Peers that let us download (unchoked us while we want something of theirs).
    pub serving_us: usize,
    /// Peers we let download from us.
    pub unchoked: usize,
}

macro_rules! display_by_debug {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    )*};
}

display_by_debug!(CloseReason, PeerMisbehaved, StorageError, DiscardCause);

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionError::TooManyPieces => "torrent has more pieces than the session's capacity",
            SessionError::BadPieceHashes => "piece hashes are not 20 bytes per piece",
            SessionError::BadResume => "resume state does not belong to this torrent",
            SessionError::NoFreeSlot => "no free peer slot",
            SessionError::Banned => "address is banned",
            SessionError::RecentlyIdle => "address was idle a moment ago and slots are short",
            SessionError::SeedOnly => "data is incomplete and this session can only seed",
            SessionError::SendWindowTooSmall => "send window smaller than one block",
            SessionError::BadWanted => "wanted pieces do not match the torrent's piece count",
        })
    }
}

impl core::error::Error for SessionError {}
impl core::error::Error for StorageError {}
