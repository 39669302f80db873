//! Reading a metadata fetch's input: the handshake, then length-prefixed messages.

use heapless::Vec;

use super::fetch::{MetadataFetch, Phase, Remote};
use super::{FetchError, MetadataAssembler, ReceiveError, Received, SizeError};
use crate::sha1::Sha1;
use crate::wire::{ExtendedHandshake, Handshake, Message, MetadataMessage, Status, HANDSHAKE_LEN};
use crate::Instant;

/// What one step of reading did.
pub(super) enum Step<K, const N: usize> {
    /// Read something; read on.
    Again,
    /// More bytes are needed.
    Wait,
    /// The assembler completed.
    Done,
    /// The peer is at fault.
    Failed(FetchError),
    /// The assembler's whole did not match the info-hash; these peers sent it.
    Mismatch(Vec<K, N>),
}

impl<K: Copy + Eq, const RX: usize> MetadataFetch<K, RX> {
    /// Read one handshake or message from the buffer.
    pub(super) fn step<H: Sha1, const N: usize>(
        &mut self,
        now: Instant,
        asm: &mut MetadataAssembler<'_, H, K, N>,
    ) -> Step<K, N> {
        let bytes = self.rx.get(self.start..self.end).unwrap_or_default();
        if self.skip > 0 {
            let n = self.skip.min(bytes.len() as u64);
            if n == 0 {
                return Step::Wait;
            }
            self.skip -= n;
            self.consume(n as usize);
            return Step::Again;
        }
        if self.phase == Phase::Handshake {
            let hs = match Handshake::decode(bytes, &[]) {
                Ok(Status::Complete(hs)) => hs,
                Ok(Status::Partial) => return Step::Wait,
                Err(e) => return Step::Failed(FetchError::Wire(e)),
            };
            if hs.info_hash != self.info_hash {
                return Step::Failed(FetchError::WrongInfoHash);
            }
            if hs.peer_id == self.config.peer_id {
                return Step::Failed(FetchError::SelfConnection);
            }
            if !hs.extensions().extended {
                return Step::Failed(FetchError::NoExtensionProtocol);
            }
            self.phase = Phase::Messages;
            self.consume(HANDSHAKE_LEN);
            return Step::Again;
        }
        if let Some(len) = self.oversized(bytes) {
            self.skip = len;
            return Step::Again;
        }
        let max_len = u32::try_from(RX.saturating_sub(4)).unwrap_or(u32::MAX);
        let (message, used) = match Message::decode(bytes, &[], max_len) {
            Ok(Status::Complete(m)) => m,
            Ok(Status::Partial) => return Step::Wait,
            Err(e) => return Step::Failed(FetchError::Wire(e)),
        };
        let step = match message {
            Message::Extended { id: 0, payload } => {
                let payload = payload.as_contiguous().unwrap_or_default();
                on_extended_handshake(&mut self.remote, asm, payload)
            }
            Message::Extended { id, payload } if id == self.config.ut_metadata.get() => {
                let payload = payload.as_contiguous().unwrap_or_default();
                on_metadata(&mut self.remote, self.peer, now, asm, payload)
            }
            _ => Step::Again,
        };
        self.consume(used);
        step
    }

    /// The whole length of the message at the start of `bytes`, when it is longer than the
    /// buffer and of a kind we skip: bitfield, piece, or an extended message not for us.
    fn oversized(&self, bytes: &[u8]) -> Option<u64> {
        let prefix = bytes.get(..4)?.try_into().ok()?;
        let total = u64::from(u32::from_be_bytes(prefix)) + 4;
        if total <= RX as u64 {
            return None;
        }
        let ours = [0, self.config.ut_metadata.get()];
        match (bytes.get(4)?, bytes.get(5)) {
            (5 | 7, _) => Some(total),
            (20, Some(ext)) if !ours.contains(ext) => Some(total),
            _ => None,
        }
    }

    /// Drop the `n` oldest buffered bytes.
    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
    }
}

/// The peer's extended handshake: its `ut_metadata` id, and the size it offers.
fn on_extended_handshake<H: Sha1, K: Copy + Eq, const N: usize>(
    r: &mut Remote,
    asm: &mut MetadataAssembler<'_, H, K, N>,
    payload: &[u8],
) -> Step<K, N> {
    let h = match ExtendedHandshake::decode(payload) {
        Ok(h) => h,
        Err(e) => return Step::Failed(FetchError::Wire(e)),
    };
    let Some(id) = h.ut_metadata else {
        return Step::Failed(FetchError::NoUtMetadata);
    };
    r.ut_metadata = Some(id);
    if let Some(size) = h.metadata_size {
        r.size = Some(size);
        match asm.set_size(size) {
            Ok(()) | Err(SizeError::Conflict { .. }) => {}
            Err(e) => return Step::Failed(FetchError::Size(e)),
        }
    }
    Step::Again
}

/// A `ut_metadata` message: refuse a request, hand an answer to the assembler.
fn on_metadata<H: Sha1, K: Copy + Eq, const N: usize>(
    r: &mut Remote,
    peer: K,
    now: Instant,
    asm: &mut MetadataAssembler<'_, H, K, N>,
    payload: &[u8],
) -> Step<K, N> {
    let message = match MetadataMessage::decode(payload) {
        Ok(m) => m,
        Err(e) if e.is_ignorable() => return Step::Again,
        Err(e) => return Step::Failed(FetchError::Metadata(e)),
    };
    if let MetadataMessage::Request { piece } = message {
        r.reject_due = Some(piece);
        return Step::Again;
    }
    // An answer counts only to a request in flight; anything else is dropped.
    let piece = message.piece();
    let Some(slot) = r.in_flight.iter_mut().find(|s| **s == Some(piece)) else {
        return Step::Again;
    };
    *slot = None;
    match message {
        MetadataMessage::Reject { piece } => {
            asm.reject(peer, piece);
            r.paused_until = now + asm.timeout();
        }
        MetadataMessage::Data {
            piece,
            total_size,
            data,
        } => match asm.receive(peer, piece, total_size, data) {
            Ok(Received::Complete(_)) => return Step::Done,
            Ok(_) => {}
            Err(ReceiveError::Fault(f)) => return Step::Failed(FetchError::Piece(f)),
            Err(ReceiveError::HashMismatch { peers }) => return Step::Mismatch(peers),
        },
        MetadataMessage::Request { .. } => {}
    }
    Step::Again
}
