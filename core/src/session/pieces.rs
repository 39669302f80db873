//! Pieces in progress: which bytes are on storage, which are asked for, and verification.

use core::net::IpAddr;

use heapless::Vec;

use super::output::{Command, DiscardCause, Event, OpId, StorageError};
use super::{CloseReason, Session, MAX_RANGES};
use crate::geometry::BLOCK_LEN;
use crate::progress::PieceProgress;
use crate::sha1::Sha1;
use crate::PieceIndex;

/// One piece being downloaded.
pub(crate) struct Partial<H> {
    pub(crate) piece: u32,
    /// Bytes confirmed on storage: the only ranges the resume state ever claims.
    pub(crate) written: PieceProgress<MAX_RANGES>,
    /// Bytes written, being written, or requested from some peer: never requested again
    /// (outside endgame).
    pub(crate) covered: PieceProgress<MAX_RANGES>,
    /// SHA-1 of the piece's first `hashed` bytes, fed as they stream past in order.
    pub(crate) hasher: H,
    pub(crate) hashed: u32,
    pub(crate) pending_writes: u16,
    pub(crate) verify: Verify,
    /// Addresses that sent bytes of this piece: blamed if it fails verification.
    pub(crate) contributors: Vec<IpAddr, 8>,
}

/// Verification of a partial piece whose bytes are all written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Still downloading.
    No,
    /// Reading back from `next` (the hasher has everything before it); `waiting` for a read.
    Reading { next: u32, waiting: bool },
}

/// A piece that left `partials`: verified, or discarded and why. Becomes a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fact {
    pub(crate) piece: PieceIndex,
    /// `None`: verified.
    pub(crate) discarded: Option<DiscardCause>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Write,
    Read,
}

/// What became of a chunk of received payload.
pub(crate) enum Accepted {
    /// To be written by this operation.
    Write(OpId),
    /// Already on storage (an endgame duplicate): skipped, the block goes on.
    AlreadyWritten,
    /// The piece is no longer in progress (verified or discarded): the rest of the block too.
    NotInProgress,
}

/// A storage operation in flight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op {
    pub(crate) id: u32,
    pub(crate) kind: OpKind,
    pub(crate) piece: u32,
    pub(crate) offset: u32,
    pub(crate) len: u32,
}

impl<H: Sha1> Partial<H> {
    pub(crate) fn new(piece: u32, len: u32) -> Self {
        Self::resumed(PieceProgress::new(piece, len))
    }

    pub(crate) fn resumed(written: PieceProgress<MAX_RANGES>) -> Self {
        Partial {
            piece: written.piece(),
            covered: written.clone(),
            written,
            hasher: H::default(),
            hashed: 0,
            pending_writes: 0,
            verify: Verify::No,
            contributors: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> u32 {
        self.written.piece_len()
    }

    /// Return the first byte range nobody has been asked for, at most one aligned block.
    pub(crate) fn next_hole(&self) -> Option<(u32, u32)> {
        if self.verify != Verify::No {
            return None;
        }
        let (start, end) = self.covered.missing().next()?;
        let block_end = (start / BLOCK_LEN + 1).saturating_mul(BLOCK_LEN);
        Some((start, end.min(block_end)))
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
    pub(crate) fn partial_index(&self, piece: u32) -> Option<usize> {
        if !self.in_progress.get(piece) {
            return None;
        }
        self.partials.iter().position(|p| p.piece == piece)
    }

    /// Start downloading `piece`; returns its partial index. None while the pieces in
    /// progress and the facts not yet polled fill `PARTIAL`, so a fact always has room.
    pub(crate) fn begin_piece(&mut self, piece: u32) -> Option<usize> {
        if self.partials.len() + self.facts.len() >= PARTIAL {
            return None;
        }
        let len = self.geometry.piece_len(self.geometry.piece(piece)?);
        self.partials.push(Partial::new(piece, len)).ok()?;
        self.in_progress.set(piece, true);
        Some(self.partials.len() - 1)
    }

    fn end_piece(&mut self, k: usize) -> Partial<H> {
        let partial = self.partials.swap_remove(k);
        self.in_progress.set(partial.piece, false);
        self.partials_changed();
        partial
    }

    pub(crate) fn new_op(
        &mut self,
        kind: OpKind,
        piece: u32,
        offset: u32,
        len: u32,
    ) -> Option<OpId> {
        let id = self.next_op;
        self.ops
            .push(Op {
                id,
                kind,
                piece,
                offset,
                len,
            })
            .ok()?;
        self.next_op = self.next_op.wrapping_add(1);
        Some(OpId(id))
    }

    pub(crate) fn take_op(&mut self, op: OpId, kind: OpKind) -> Option<Op> {
        let k = self
            .ops
            .iter()
            .position(|o| o.id == op.0 && o.kind == kind)?;
        Some(self.ops.swap_remove(k))
    }

    /// Stream received payload for `piece` at `offset` toward storage: hash it if it continues
    /// the in-order prefix, and return the write op, or `None` when the bytes are not wanted.
    pub(crate) fn accept_payload(
        &mut self,
        i: usize,
        piece: u32,
        offset: u32,
        data: &[u8],
    ) -> Accepted {
        let len = data.len() as u32;
        let Some(k) = self.partial_index(piece) else {
            self.waste.duplicate += len as u64;
            return Accepted::NotInProgress;
        };
        if self.partials[k].written.contains(offset, offset + len) {
            self.waste.duplicate += len as u64;
            return Accepted::AlreadyWritten;
        }
        let Some(op) = self.new_op(OpKind::Write, piece, offset, len) else {
            // The caller checks for room first; treat a full table like a duplicate.
            self.waste.duplicate += len as u64;
            return Accepted::AlreadyWritten;
        };
        let ip = self.peers[i].addr.map(|a| a.ip());
        let partial = &mut self.partials[k];
        // Bytes can arrive from a peer we did not ask (endgame duplicate, late reply): the
        // piece's `covered` must include them until the write is confirmed.
        let _ = partial.covered.add(offset, offset + len);
        partial.pending_writes += 1;
        if offset < partial.hashed {
            // These bytes overwrite hashed ones (an endgame duplicate): the hash may no longer
            // match storage, so start over and let verification read the piece back.
            partial.hasher = H::default();
            partial.hashed = 0;
        }
        if offset <= partial.hashed && partial.hashed < offset + len {
            let skip = (partial.hashed - offset) as usize;
            partial.hasher.update(&data[skip..]);
            partial.hashed = offset + len;
        }
        if let Some(ip) = ip {
            if !partial.contributors.contains(&ip) {
                let _ = partial.contributors.push(ip);
            }
        }
        self.peers[i].down_round += len as u64;
        Accepted::Write(op)
    }

    pub(crate) fn write_done(&mut self, op: super::pieces::Op, result: Result<(), StorageError>) {
        let Some(k) = self.partial_index(op.piece) else {
            return;
        };
        let partial = &mut self.partials[k];
        partial.pending_writes = partial.pending_writes.saturating_sub(1);
        match result {
            Ok(()) => {
                let fresh = match partial.written.add(op.offset, op.offset + op.len) {
                    Ok(n) => n,
                    Err(_) => {
                        // Too fragmented to record: forget the bytes, fetch them again.
                        self.rebuild_covered(k);
                        return;
                    }
                };
                self.downloaded += fresh as u64;
                self.persist_dirty = true;
                self.partials_changed();
                let partial = &self.partials[k];
                if partial.written.is_complete() && partial.pending_writes == 0 {
                    self.start_verify(k);
                }
            }
            Err(error) => {
                let piece = self.geometry.piece(op.piece);
                // The hasher may have consumed the lost bytes: start hashing over.
                partial.hasher = H::default();
                partial.hashed = 0;
                self.rebuild_covered(k);
                if let Some(piece) = piece {
                    self.push_event(Event::StorageFailed { piece, error });
                }
            }
        }
    }

    pub(crate) fn start_verify(&mut self, k: usize) {
        let partial = &mut self.partials[k];
        if partial.hashed >= partial.len() {
            self.finish_piece(k);
        } else {
            partial.verify = super::pieces::Verify::Reading {
                next: partial.hashed,
                waiting: false,
            };
        }
    }

    /// Ask for the next read-back of a piece being verified.
    pub(crate) fn poll_verify(&mut self) -> Option<Command> {
        let k = self
            .partials
            .iter()
            .position(|p| matches!(p.verify, Verify::Reading { waiting: false, .. }))?;
        let Verify::Reading { next, .. } = self.partials[k].verify else {
            return None;
        };
        let piece = self.partials[k].piece;
        let len = (self.partials[k].len() - next).min(BLOCK_LEN);
        let op = self.new_op(OpKind::Read, piece, next, len)?;
        self.partials[k].verify = Verify::Reading {
            next,
            waiting: true,
        };
        Some(Command::Read {
            op,
            piece: self.geometry.piece(piece)?,
            offset: next,
            len,
        })
    }

    pub(crate) fn read_done(&mut self, op: Op, result: Result<&[u8], StorageError>) {
        let Some(k) = self.partial_index(op.piece) else {
            return;
        };
        match result {
            Ok(data) if data.len() == op.len as usize => {
                let partial = &mut self.partials[k];
                partial.hasher.update(data);
                partial.hashed = op.offset + op.len;
                partial.verify = Verify::Reading {
                    next: partial.hashed,
                    waiting: false,
                };
                if partial.hashed >= partial.len() {
                    self.finish_piece(k);
                }
            }
            Ok(_) => self.discard_piece(k, StorageError::Io),
            Err(e) => self.discard_piece(k, e),
        }
    }

    /// All bytes hashed: compare with the torrent's hash.
    fn finish_piece(&mut self, k: usize) {
        let partial = self.end_piece(k);
        let piece = partial.piece;
        let len = partial.len();
        let digest = partial.hasher.finish();
        let at = self.hashes_at + piece as usize * 20;
        let expected = (self.hashes.as_ref()).and_then(|h| h.as_ref().get(at..at + 20));
        if expected == Some(&digest[..]) {
            self.piece_verified(piece);
        } else {
            self.piece_failed(piece, &partial.contributors, len);
        }
    }

    fn piece_verified(&mut self, piece: u32) {
        self.parole_over(piece);
        self.have.set(piece, true);
        self.have_count += 1;
        let len = self
            .geometry
            .piece(piece)
            .map_or(0, |p| self.geometry.piece_len(p));
        self.verified_bytes += u64::from(len);
        let done = self.wanted_verified(piece, u64::from(len));
        if self.have_log.is_full() {
            self.have_log.pop_front();
        }
        let _ = self.have_log.push_back(piece);
        self.have_log_end = self.have_log_end.wrapping_add(1);
        self.persist_dirty = true;
        self.cancel_everywhere(piece);
        for i in 0..PEERS {
            if self.peers[i].is_active() && self.peers[i].has.get(piece) {
                self.update_interest(i);
            }
        }
        self.fill_free_slots();
        if let Some(piece) = self.geometry.piece(piece) {
            self.push_fact(piece, None);
        }
        if done {
            self.push_event(Event::Completed);
        }
        if self.is_complete() && !self.complete_at_start {
            self.announce.completed();
        }
    }

    fn piece_failed(&mut self, piece: u32, contributors: &[IpAddr], len: u32) {
        self.waste.corrupt += len as u64;
        self.persist_dirty = true;
        self.cancel_everywhere(piece);
        if let Some(piece) = self.geometry.piece(piece) {
            self.push_fact(piece, Some(DiscardCause::HashMismatch));
        }
        if self.blame(piece, contributors) {
            for &ip in contributors {
                self.strike(ip);
            }
        }
    }

    /// Drop a piece's bytes after a storage failure; it is fetched again from scratch.
    fn discard_piece(&mut self, k: usize, error: StorageError) {
        let partial = self.end_piece(k);
        self.persist_dirty = true;
        self.cancel_everywhere(partial.piece);
        if let Some(piece) = self.geometry.piece(partial.piece) {
            self.push_fact(piece, Some(DiscardCause::Storage(error)));
        }
    }

    /// Queue a durability fact: room is kept for it (see `begin_piece`), so it is never lost.
    fn push_fact(&mut self, piece: PieceIndex, discarded: Option<DiscardCause>) {
        let pushed = self.facts.push(Fact { piece, discarded });
        debug_assert!(pushed.is_ok(), "a fact without room");
    }

    /// The command that tells the shell a fact.
    pub(crate) fn fact_command(&self, fact: Fact) -> Command {
        match fact.discarded {
            None => Command::PieceVerified { piece: fact.piece },
            Some(cause) => Command::PieceDiscarded {
                piece: fact.piece,
                cause,
            },
        }
    }

    /// Withdraw every request for `piece` (it is done or discarded), sending cancels.
    fn cancel_everywhere(&mut self, piece: u32) {
        for i in 0..PEERS {
            let p = &mut self.peers[i];
            let mut j = 0;
            while j < p.requests.len() {
                let r = p.requests[j];
                if r.piece == piece {
                    if r.sent {
                        let c = super::peer::Control::Cancel {
                            piece,
                            begin: r.begin,
                            len: r.len,
                        };
                        let _ = p.control.push_back(c);
                    }
                    p.requests.swap_remove(j);
                } else {
                    j += 1;
                }
            }
        }
    }

    /// Forget every request this peer had; their ranges become free for others.
    pub(crate) fn drop_requests(&mut self, i: usize) {
        let dropped = core::mem::take(&mut self.peers[i].requests);
        for (n, r) in dropped.iter().enumerate() {
            let first = dropped[..n].iter().all(|x| x.piece != r.piece);
            if let Some(k) = self.partial_index(r.piece).filter(|_| first) {
                self.rebuild_covered(k);
            }
        }
    }

    /// Stop keeping the block peer `i` is sending (what still comes of it is discarded): the
    /// bytes it has not sent are free for others, also when no request of ours names them any
    /// more (a late reply).
    pub(crate) fn unwant_inbound(&mut self, i: usize) {
        if let Some(inb) = self.peers[i].inbound.as_mut().filter(|b| b.wanted) {
            inb.wanted = false;
            let piece = inb.piece;
            if let Some(k) = self.partial_index(piece) {
                self.rebuild_covered(k);
            }
        }
    }

    /// Forget the block peer `i` is sending, freeing what it has not sent.
    pub(crate) fn drop_inbound(&mut self, i: usize) {
        self.unwant_inbound(i);
        self.peers[i].inbound = None;
    }

    /// Recompute `covered` = written ∪ pending writes ∪ requests still in flight.
    pub(crate) fn rebuild_covered(&mut self, k: usize) {
        let piece = self.partials[k].piece;
        let mut covered = self.partials[k].written.clone();
        for op in self
            .ops
            .iter()
            .filter(|o| o.kind == OpKind::Write && o.piece == piece)
        {
            let _ = covered.add(op.offset, op.offset + op.len);
        }
        for p in self.peers.iter().filter(|p| p.is_live()) {
            for r in p.requests.iter().filter(|r| r.piece == piece) {
                let _ = covered.add(r.begin, r.begin + r.len);
            }
            if let Some(inb) = p.inbound.filter(|b| b.piece == piece && b.wanted) {
                let _ = covered.add(inb.offset, inb.offset + inb.remaining);
            }
        }
        self.partials[k].covered = covered;
    }

    /// Whether bytes `begin..end` of `piece` are all still to come, for a block arriving from
    /// peer `i` that no request of ours asked for: the piece is being fetched, and none of
    /// those bytes is written, being written, or arriving from another peer.
    pub(crate) fn still_missing(&self, i: usize, piece: u32, begin: u32, end: u32) -> bool {
        let Some(k) = self.partial_index(piece) else {
            return false;
        };
        let overlaps = |b: u32, e: u32| begin < e && b < end;
        let partial = &self.partials[k];
        let written = partial.written.ranges().any(|(b, e)| overlaps(b, e));
        let writing = (self.ops.iter()).any(|o| {
            o.kind == OpKind::Write && o.piece == piece && overlaps(o.offset, o.offset + o.len)
        });
        let arriving = self.peers.iter().enumerate().any(|(j, p)| {
            j != i
                && p.inbound.is_some_and(|b| {
                    b.wanted && b.piece == piece && overlaps(b.offset, b.offset + b.remaining)
                })
        });
        partial.verify == Verify::No && !written && !writing && !arriving
    }

    /// Count a bad piece against `ip`; ban it at the configured threshold.
    fn strike(&mut self, ip: IpAddr) {
        let limit = self.config.ban_after_hash_failures.max(1);
        let count = match self.strikes.iter_mut().find(|(a, _)| *a == ip) {
            Some((_, n)) => {
                *n = n.saturating_add(1);
                *n
            }
            None => {
                if self.strikes.is_full() {
                    self.strikes.remove(0);
                }
                let _ = self.strikes.push((ip, 1));
                1
            }
        };
        if count >= limit {
            self.ban(ip);
        }
    }

    fn ban(&mut self, ip: IpAddr) {
        if !self.bans.contains(&ip) {
            if self.bans.is_full() {
                self.bans.remove(0);
            }
            let _ = self.bans.push(ip);
            self.push_event(Event::PeerBanned { addr: ip });
        }
        let now = self.now;
        for i in 0..PEERS {
            if self.peers[i].is_live() && self.peers[i].addr.map(|a| a.ip()) == Some(ip) {
                self.close(now, i, CloseReason::Banned);
            }
        }
    }

    pub(crate) fn is_banned(&self, ip: IpAddr) -> bool {
        self.bans.contains(&ip)
    }
}
