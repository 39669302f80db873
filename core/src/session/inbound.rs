//! A `Piece` message's payload as it arrives: whether its block is kept (it answers a request,
//! or is a late reply still missing), streamed to storage chunk by chunk, and what its end
//! settles (the request retired, twins elsewhere cancelled).

use super::output::{CloseReason, PeerMisbehaved};
use super::peer::{Control, Discard, Inbound, Request};
use super::pieces::Accepted;
use super::pipeline;
use super::{Produced, Session};
use crate::sha1::Sha1;
use crate::Instant;

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
    /// Process the peer's receive ring until it needs more bytes or produces a storage write.
    /// Stream the payload of the `Piece` message in progress.
    pub(super) fn read_payload(
        &mut self,
        now: Instant,
        i: usize,
        mut inb: Inbound,
        buf: &mut [u8],
    ) -> Payload {
        let available = (self.peers[i].rx.len() as u32).min(inb.remaining);
        if available == 0 {
            return Payload::Wait;
        }
        let mut n = available.min(buf.len() as u32);
        let mut produced = None;
        if inb.wanted {
            if self.ops.is_full() {
                return Payload::Wait;
            }
            let (a, b) = self.peers[i].rx.as_slices();
            let from_a = (n as usize).min(a.len());
            buf[..from_a].copy_from_slice(&a[..from_a]);
            buf[from_a..n as usize].copy_from_slice(&b[..n as usize - from_a]);
            match self.accept_payload(i, inb.piece, inb.offset, &buf[..n as usize]) {
                Accepted::Write(op) => {
                    produced = Some(Produced::Write {
                        op,
                        piece: self
                            .geometry
                            .piece(inb.piece)
                            .expect("validated when the header was read"),
                        offset: inb.offset,
                        len: n as usize,
                    })
                }
                Accepted::AlreadyWritten => {}
                Accepted::NotInProgress => inb.wanted = false,
            }
        } else {
            n = available;
            match inb.discard {
                Discard::Duplicate => self.waste.duplicate += n as u64,
                Discard::Unrequested => self.waste.unrequested += n as u64,
            }
        }
        let p = &mut self.peers[i];
        p.rx.consume(n as usize);
        p.last_piece_rx = now;
        if let Some(rate) = p.meter.add(now, n) {
            let c = &self.config;
            p.max_requests =
                pipeline::depth(rate, c.request_queue_time, c.pipeline_floor, p.request_cap);
        }
        if inb.wanted {
            p.last_useful = now;
        }
        inb.offset += n;
        inb.remaining -= n;
        p.inbound = (inb.remaining > 0).then_some(inb);
        // Only a reply whose bytes were kept retires its request; a discarded one leaves it.
        if inb.remaining == 0 && inb.wanted {
            self.block_finished(i, inb);
        }
        match produced {
            Some(p) => Payload::Produced(p),
            None => Payload::Continue,
        }
    }

    /// A `Piece` message ended: its request is fulfilled, here and at every other peer.
    fn block_finished(&mut self, i: usize, inb: Inbound) {
        let p = &mut self.peers[i];
        let (r, late) = match p
            .requests
            .iter()
            .position(|r| r.piece == inb.piece && r.begin + r.len == inb.offset)
        {
            Some(pos) => (p.requests.swap_remove(pos), false),
            // A late reply: whoever was asked for these bytes instead is asked no more.
            None => {
                let len = inb.offset - inb.begin;
                let (piece, begin, sent) = (inb.piece, inb.begin, true);
                (
                    Request {
                        piece,
                        begin,
                        len,
                        sent,
                    },
                    true,
                )
            }
        };
        if !self.duplicates && !late {
            // Outside endgame no block is asked of two peers: nothing to cancel elsewhere.
            return;
        }
        for (j, q) in self.peers.iter_mut().enumerate() {
            if j == i {
                continue;
            }
            // A late reply cancels only what it covers whole; an endgame twin is the same block.
            let twin = |x: &Request| {
                x.overlaps(&r)
                    && (!late || (r.begin <= x.begin && x.begin + x.len <= r.begin + r.len))
            };
            if let Some(pos) = q.requests.iter().position(twin) {
                let x = q.requests.swap_remove(pos);
                if x.sent {
                    let _ = q.control.push_back(Control::Cancel {
                        piece: x.piece,
                        begin: x.begin,
                        len: x.len,
                    });
                }
            }
        }
        if late {
            // What is claimed now comes from what is written, being written and asked.
            if let Some(k) = self.partial_index(r.piece) {
                self.rebuild_covered(k);
            }
        }
    }

    pub(super) fn start_inbound(
        &mut self,
        now: Instant,
        i: usize,
        index: u32,
        begin: u32,
        len: u32,
    ) {
        if self.geometry.block(index, begin, len).is_none() {
            self.close(now, i, CloseReason::Misbehaved(PeerMisbehaved::BadRequest));
            return;
        }
        let p = &mut self.peers[i];
        p.last_piece_rx = now;
        // Wanted when it answers one of our requests, begun at `begin`, ending within it.
        let requested = !self.have.get(index)
            && p.requests
                .iter()
                .any(|r| r.piece == index && r.begin == begin && len <= r.len);
        // Or when it answers one we gave up on (a stall, a choke, a timeout) and no byte of it
        // arrived since: kept rather than fetched again.
        let late = !requested && self.still_missing(i, index, begin, begin + len);
        let discard = if self.have.get(index) || self.partial_index(index).is_some() {
            Discard::Duplicate
        } else {
            Discard::Unrequested
        };
        let wanted = requested || late;
        let p = &mut self.peers[i];
        if requested {
            // The request now ends where this reply ends; the rest is free to ask again.
            let mut shrunk = false;
            if let Some(r) = p
                .requests
                .iter_mut()
                .find(|r| r.piece == index && r.begin == begin)
            {
                shrunk = len < r.len;
                r.len = len;
            }
            if let Some(k) = self.partial_index(index).filter(|_| shrunk) {
                self.rebuild_covered(k);
            }
        }
        let p = &mut self.peers[i];
        p.inbound = Some(Inbound {
            piece: index,
            begin,
            offset: begin,
            remaining: len,
            wanted,
            discard,
        });
    }
}

pub(super) enum Payload {
    Produced(Produced),
    Continue,
    Wait,
}
