//! One connection of a magnet download: both handshakes, then `ut_metadata` requests.

use core::num::NonZeroU8;

use heapless::Vec;

use super::fetch_rx::Step;
use super::{FetchError, MetadataAssembler};
use crate::sha1::Sha1;
use crate::wire::{
    ExtendedHandshake, Extensions, Handshake, MetadataMessage, HANDSHAKE_LEN, METADATA_PIECE_LEN,
};
use crate::{InfoHash, Instant, PeerId};

/// Requests in flight to one peer, at most.
pub const MAX_IN_FLIGHT: usize = 2;

/// A receive buffer that holds any data message with a dictionary of up to 122 bytes (the
/// usual one is under 60).
pub const FETCH_RX_LEN: usize = METADATA_PIECE_LEN + 128;

/// The smallest buffer [`MetadataFetch::poll_output`] accepts: our two handshakes, with a
/// client name of up to 100 bytes.
pub const MIN_FETCH_OUTPUT: usize = 256;

/// The longest request or reject we send (both numbers at their widest).
const MAX_SMALL_MESSAGE: usize = 40;

/// What we tell the peer about ourselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchConfig {
    /// Our peer id, sent in the handshake.
    pub peer_id: PeerId,
    /// The extended id the peer must send `ut_metadata` messages to us with.
    pub ut_metadata: NonZeroU8,
    /// The TCP port we accept peers on (`p`), if any.
    pub listen_port: Option<u16>,
    /// Our client name for the extended handshake's `v`.
    pub client_name: &'static str,
}

impl FetchConfig {
    /// Defaults for a peer with id `peer_id`: `ut_metadata` is 1, no listen port.
    pub const fn new(peer_id: PeerId) -> Self {
        FetchConfig {
            peer_id,
            ut_metadata: NonZeroU8::MIN,
            listen_port: None,
            client_name: "Enjambre 0.1",
        }
    }
}

/// One output of [`MetadataFetch::poll_output`].
#[derive(Debug, PartialEq, Eq)]
pub enum FetchOutput<'b, K, const N: usize> {
    /// Write all of `bytes` to the peer's socket, after what was sent before.
    Transmit(&'b [u8]),
    /// The metadata was complete but wrong and is being fetched again: ban these peers
    /// (this one may be among them).
    Mismatch(Vec<K, N>),
    /// The assembler holds the verified info dictionary. Returned from now on.
    Done,
    /// Close (and ban) this peer. Returned from now on.
    Failed(FetchError),
    /// Nothing to do until more bytes arrive, or until this instant.
    Timeout(Option<Instant>),
}

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Handshake,
    Messages,
    Failed(FetchError),
}

/// What we know of the peer and asked of it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Remote {
    /// Its extended id for `ut_metadata`.
    pub(super) ut_metadata: Option<u8>,
    /// Its `metadata_size`.
    pub(super) size: Option<u32>,
    /// Pieces asked of it, not yet answered.
    pub(super) in_flight: [Option<u32>; MAX_IN_FLIGHT],
    /// A piece it asked us for, to reject: we have no metadata to serve.
    pub(super) reject_due: Option<u32>,
    /// No new requests before this (it rejected one).
    pub(super) paused_until: Instant,
}

/// A sans-IO state machine for one connection of a magnet download, before the info
/// dictionary is known.
///
/// It writes our handshake and extended handshake (offering `ut_metadata`), reads the peer's
/// (which must support BEP 10 and `ut_metadata`), then asks it for pieces the shared
/// [`MetadataAssembler`] picks, [`MAX_IN_FLIGHT`] at a time, and hands the answers to it. Other
/// messages are skipped, even when longer than the buffer; requests for our metadata are
/// rejected. It never holds the socket: the shell offers bytes with
/// [`handle_input`](Self::handle_input) and drains [`poll_output`](Self::poll_output) until it
/// returns [`FetchOutput::Timeout`]. Input is read in `RX` bytes of inline storage
/// ([`FETCH_RX_LEN`] fits every data message); a longer `ut_metadata` message fails the peer.
pub struct MetadataFetch<K, const RX: usize> {
    pub(super) peer: K,
    pub(super) info_hash: InfoHash,
    pub(super) config: FetchConfig,
    pub(super) phase: Phase,
    /// Our handshake is out; our extended handshake too (sent only once the peer's handshake
    /// came: aria2 drops a peer whose extended handshake arrives with its handshake).
    pub(super) hello_sent: bool,
    pub(super) extended_sent: bool,
    pub(super) remote: Remote,
    /// Bytes received and not yet read: `rx[start..end]`.
    pub(super) rx: [u8; RX],
    pub(super) start: usize,
    pub(super) end: usize,
    /// Bytes of a message too long to buffer still to drop.
    pub(super) skip: u64,
}

impl<K: Copy + Eq, const RX: usize> MetadataFetch<K, RX> {
    /// Start a connection to `peer` (the caller's key for it, given to the assembler) for the
    /// torrent `info_hash`.
    pub fn new(peer: K, info_hash: InfoHash, config: FetchConfig) -> Self {
        MetadataFetch {
            peer,
            info_hash,
            config,
            phase: Phase::Handshake,
            hello_sent: false,
            extended_sent: false,
            remote: Remote {
                ut_metadata: None,
                size: None,
                in_flight: [None; MAX_IN_FLIGHT],
                reject_due: None,
                paused_until: Instant::ZERO,
            },
            rx: [0; RX],
            start: 0,
            end: 0,
            skip: 0,
        }
    }

    /// Return the peer's key.
    pub fn peer(&self) -> K {
        self.peer
    }

    /// Bytes arrived from the peer. Returns how many were taken; drain
    /// [`poll_output`](Self::poll_output), then offer the rest again. After `Failed`, all
    /// bytes are taken and dropped.
    pub fn handle_input(&mut self, bytes: &[u8]) -> usize {
        if matches!(self.phase, Phase::Failed(_)) {
            return bytes.len();
        }
        if RX - self.end < bytes.len() && self.start > 0 {
            self.rx.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = bytes.len().min(RX - self.end);
        self.rx[self.end..self.end + n].copy_from_slice(&bytes[..n]);
        self.end += n;
        n
    }

    /// Return the next thing to do. Call after every input until it returns
    /// [`FetchOutput::Timeout`], and at that instant. `out` must hold at least
    /// [`MIN_FETCH_OUTPUT`] bytes.
    pub fn poll_output<'b, H: Sha1, const N: usize>(
        &mut self,
        now: Instant,
        asm: &mut MetadataAssembler<'_, H, K, N>,
        out: &'b mut [u8],
    ) -> FetchOutput<'b, K, N> {
        loop {
            if let Phase::Failed(e) = self.phase {
                return FetchOutput::Failed(e);
            }
            if asm.info().is_some() {
                return FetchOutput::Done;
            }
            match self.transmit(now, asm, out) {
                Ok(0) => {}
                Ok(n) => return FetchOutput::Transmit(out.get(..n).unwrap_or_default()),
                Err(e) => {
                    self.phase = Phase::Failed(e);
                    continue;
                }
            }
            match self.step(now, asm) {
                Step::Again => {}
                Step::Wait => return FetchOutput::Timeout(self.deadline(now, asm)),
                Step::Done => return FetchOutput::Done,
                Step::Failed(e) => self.phase = Phase::Failed(e),
                Step::Mismatch(peers) => return FetchOutput::Mismatch(peers),
            }
        }
    }

    /// Write what is due into `out`: our handshakes, a reject, new requests.
    fn transmit<H: Sha1, const N: usize>(
        &mut self,
        now: Instant,
        asm: &mut MetadataAssembler<'_, H, K, N>,
        out: &mut [u8],
    ) -> Result<usize, FetchError> {
        if out.len() < MIN_FETCH_OUTPUT {
            return Err(FetchError::OutputTooSmall);
        }
        let mut n = 0;
        if !self.hello_sent {
            n = self.hello(out).ok_or(FetchError::OutputTooSmall)?;
            self.hello_sent = true;
        }
        if !self.extended_sent && self.phase == Phase::Messages {
            let room = out.get_mut(n..).unwrap_or_default();
            n += self.extended(room).ok_or(FetchError::OutputTooSmall)?;
            self.extended_sent = true;
        }
        let r = &mut self.remote;
        let Some(ext_id) = r.ut_metadata else {
            return Ok(n);
        };
        if let Some(piece) = r.reject_due {
            let reject = MetadataMessage::Reject { piece };
            if let Ok(len) = reject.encode(ext_id, out.get_mut(n..).unwrap_or_default()) {
                n += len;
                r.reject_due = None;
            }
        }
        let size_agrees = r.size.is_none_or(|s| asm.set_size(s).is_ok());
        if !size_agrees || now < r.paused_until {
            return Ok(n);
        }
        for slot in r.in_flight.iter_mut().filter(|s| s.is_none()) {
            let room = out.get_mut(n..).filter(|o| o.len() >= MAX_SMALL_MESSAGE);
            let Some(room) = room else { break };
            let Some(piece) = asm.next_request(self.peer, now) else {
                break;
            };
            *slot = Some(piece);
            n += MetadataMessage::Request { piece }
                .encode(ext_id, room)
                .unwrap_or(0);
        }
        Ok(n)
    }

    /// Write our handshake; return its length.
    fn hello(&self, out: &mut [u8]) -> Option<usize> {
        let ext = Extensions {
            extended: true,
            ..Extensions::default()
        };
        let hs = Handshake::new(self.info_hash, self.config.peer_id, ext).encode();
        out.get_mut(..HANDSHAKE_LEN)?.copy_from_slice(&hs);
        Some(HANDSHAKE_LEN)
    }

    /// Write our extended handshake (offering `ut_metadata`); return its length.
    fn extended(&self, out: &mut [u8]) -> Option<usize> {
        let ours = ExtendedHandshake {
            ut_metadata: Some(self.config.ut_metadata.get()),
            client: Some(self.config.client_name),
            listen_port: self.config.listen_port,
            ..ExtendedHandshake::default()
        };
        ours.encode_message(out).ok()
    }

    /// When to poll again without input: when a request to another peer times out, or our
    /// pause ends, if this peer could take a request then.
    fn deadline<H: Sha1, const N: usize>(
        &self,
        now: Instant,
        asm: &MetadataAssembler<'_, H, K, N>,
    ) -> Option<Instant> {
        let r = &self.remote;
        let ready = self.phase == Phase::Messages
            && r.ut_metadata.is_some()
            && r.in_flight.contains(&None)
            && (r.size.is_none() || r.size == asm.size());
        if !ready {
            return None;
        }
        if now < r.paused_until {
            return Some(r.paused_until);
        }
        asm.next_timeout(self.peer).filter(|&t| t > now)
    }
}
