//! Sending: our handshake, bitfield, state changes, haves, requests, and uploads.

use super::output::Command;
use super::peer::{Control, Request};
use super::pex::UT_PEX_ID;
use super::pipeline;
use super::rx::{ENJAMBRE_PARTIAL_ID, UT_METADATA_ID};
use super::Session;
use crate::sha1::Sha1;
use crate::wire::{
    metadata_piece, piece_header, ExtendedHandshake, Extensions, Handshake, Message,
    MetadataMessage, HANDSHAKE_LEN,
};
use crate::Instant;

/// In endgame, a peer is given blocks already asked of others only while it has fewer
/// requests than this in flight: duplicates fill an idle pipeline, never a deep one.
const ENDGAME_DEPTH: usize = 2;

/// Writes whole messages into a buffer until one does not fit.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
    pub(crate) full: bool,
}

impl Writer<'_> {
    pub(crate) fn message(&mut self, m: &Message<'_>) -> bool {
        if self.full {
            return false;
        }
        match m.encode(&mut self.buf[self.len..]) {
            Ok(n) => {
                self.len += n;
                true
            }
            Err(_) => {
                self.full = true;
                false
            }
        }
    }

    /// Continue a `Bitfield` message of `bits` from byte `*at` of it, as far as it fits: a
    /// bitfield larger than the buffer is streamed over several buffers. True once complete.
    fn bitfield(&mut self, bits: &[u8], at: &mut u32) -> bool {
        if self.full {
            return false;
        }
        let mut header = [0u8; 5];
        header[..4].copy_from_slice(&(bits.len() as u32 + 1).to_be_bytes());
        header[4] = crate::wire::BITFIELD_ID;
        let total = header.len() + bits.len();
        let mut from = *at as usize;
        while from < total {
            let (part, start) = if from < header.len() {
                (&header[..], from)
            } else {
                (bits, from - header.len())
            };
            let room = self.buf.len() - self.len;
            let n = (part.len() - start).min(room);
            if n == 0 {
                self.full = true;
                break;
            }
            self.buf[self.len..self.len + n].copy_from_slice(&part[start..start + n]);
            self.len += n;
            from += n;
        }
        *at = from as u32;
        from == total
    }

    fn metadata(&mut self, m: &MetadataMessage<'_>, ext_id: u8) -> bool {
        if self.full {
            return false;
        }
        match m.encode(ext_id, &mut self.buf[self.len..]) {
            Ok(n) => {
                self.len += n;
                true
            }
            Err(_) => {
                self.full = true;
                false
            }
        }
    }

    /// Append what `encode` writes into the room left, when it fits.
    pub(crate) fn encoded(
        &mut self,
        encode: impl FnOnce(&mut [u8]) -> Result<usize, crate::BufferTooSmall>,
    ) -> bool {
        if self.full {
            return false;
        }
        match encode(&mut self.buf[self.len..]) {
            Ok(n) => {
                self.len += n;
                true
            }
            Err(_) => {
                self.full = true;
                false
            }
        }
    }

    fn raw(&mut self, bytes: &[u8]) -> bool {
        if self.full || self.buf.len() - self.len < bytes.len() {
            self.full = true;
            return false;
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        true
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
    /// Write everything pending for peer `i` into `buf`; returns the length, if any.
    pub(crate) fn compose_tx(&mut self, now: Instant, i: usize, buf: &mut [u8]) -> Option<usize> {
        let mut w = Writer {
            buf,
            len: 0,
            full: false,
        };
        let ext = Extensions {
            fast: self.config.fast_extension,
            extended: true,
            dht: self.config.dht_port.is_some(),
        };
        let p = &mut self.peers[i];
        // The dialler speaks first. Accepting, we answer only a valid handshake for our torrent:
        // our info-hash and peer id are never shown to whoever merely connects.
        if !p.handshake_sent && (p.outbound || p.handshake_received) {
            let hs = Handshake::new(self.info_hash, self.config.peer_id, ext).encode();
            if w.raw(&hs[..HANDSHAKE_LEN]) {
                p.handshake_sent = true;
            }
        }
        if p.is_active() && p.handshake_sent {
            self.compose_active(i, &mut w);
        }
        let p = &mut self.peers[i];
        if w.len == 0 && p.is_active() && now >= p.last_tx + self.config.keepalive {
            w.message(&Message::KeepAlive);
        }
        if w.len == 0 {
            return None;
        }
        self.peers[i].last_tx = now;
        Some(w.len)
    }

    fn compose_active(&mut self, i: usize, w: &mut Writer<'_>) {
        let complete = self.is_complete();
        let partial_ext = self.partial_on();
        let super_seeding = self.super_seeding();
        let p = &mut self.peers[i];
        if !p.bitfield_sent {
            if !p.first_done {
                if p.first_at == 0 {
                    // Pieces verified from now on are sent as `Have`s after the bitfield.
                    p.have_cursor = self.have_log_end;
                }
                let count = self.have_count;
                if p.first_at == 0 && super_seeding {
                    p.super_seeded = true;
                }
                let done = if p.super_seeded {
                    !p.fast || w.message(&Message::HaveNone)
                } else if p.fast && count == 0 {
                    w.message(&Message::HaveNone)
                } else if p.fast && complete {
                    w.message(&Message::HaveAll)
                } else if count > 0 {
                    w.bitfield(self.have.as_bytes(), &mut p.first_at)
                } else {
                    true
                };
                if !done {
                    return;
                }
                p.first_done = true;
            }
            if p.extended {
                let mut scratch = [0u8; 192];
                let serving = Self::SERVES_METADATA && self.metadata_len > 0;
                let hs = ExtendedHandshake {
                    ut_metadata: serving.then_some(UT_METADATA_ID),
                    ut_pex: (PEX > 0 && self.config.pex).then_some(UT_PEX_ID),
                    enjambre_partial: partial_ext.then_some(ENJAMBRE_PARTIAL_ID),
                    client: Some(self.config.client_name),
                    listen_port: Some(self.config.listen_port),
                    reqq: Some(Self::ADVERTISED_REQQ),
                    metadata_size: serving.then_some(self.metadata_len),
                    yourip: None,
                };
                if let Ok(n) = hs.encode(&mut scratch) {
                    let payload = crate::wire::Split {
                        a: &scratch[..n],
                        b: &[],
                    };
                    if !w.message(&Message::Extended { id: 0, payload }) {
                        return;
                    }
                }
            }
            p.bitfield_sent = true;
        }
        if p.dht_port_due {
            if let Some(port) = self.config.dht_port {
                if !w.message(&Message::Port(port)) {
                    return;
                }
            }
            p.dht_port_due = false;
        }
        // Haves for pieces verified since.
        let behind = self.have_log_end.wrapping_sub(p.have_cursor) as usize;
        let skip = self.have_log.len().saturating_sub(behind);
        // Not to a seed; to a partial peer even when it has the piece: a super-seeding peer
        // (BEP 16) shows only some of its pieces and learns from our `Have` when to show more.
        // Counted only when there is a `Have` to send: this runs at every poll of every peer.
        let seed = skip < self.have_log.len() && p.has.is_full();
        for &piece in self.have_log.iter().skip(skip) {
            if !seed && !w.message(&Message::Have(piece)) {
                return;
            }
            p.have_cursor = p.have_cursor.wrapping_add(1);
        }
        p.have_cursor = self.have_log_end;
        self.reveal(i, w);
        if w.full {
            return;
        }
        let p = &mut self.peers[i];
        while let Some(c) = p.control.front().copied() {
            let m = match c {
                Control::Metadata { .. } if !Self::SERVES_METADATA => {
                    p.control.pop_front();
                    continue;
                }
                Control::Metadata { piece, reject } => {
                    let info = self.hashes.as_ref().map_or(&[][..], |h| h.as_ref());
                    let data = metadata_piece(info, piece).filter(|_| !reject);
                    let m = match data {
                        Some(data) => MetadataMessage::Data {
                            piece,
                            total_size: self.metadata_len,
                            data,
                        },
                        None => MetadataMessage::Reject { piece },
                    };
                    // Asked only of a peer that told its id (see `rx`).
                    let id = p.ut_metadata.unwrap_or(0);
                    if !w.metadata(&m, id) {
                        return;
                    }
                    p.control.pop_front();
                    continue;
                }
                Control::Cancel { piece, begin, len } => Message::Cancel {
                    index: piece,
                    begin,
                    length: len,
                },
                Control::Reject { piece, begin, len } => Message::Reject {
                    index: piece,
                    begin,
                    length: len,
                },
            };
            if !w.message(&m) {
                return;
            }
            p.control.pop_front();
        }
        if p.am_choking != p.sent_choking {
            let m = if p.am_choking {
                Message::Choke
            } else {
                Message::Unchoke
            };
            if !w.message(&m) {
                return;
            }
            p.sent_choking = p.am_choking;
        }
        if p.am_interested != p.sent_interested {
            let m = if p.am_interested {
                Message::Interested
            } else {
                Message::NotInterested
            };
            if !w.message(&m) {
                return;
            }
            p.sent_interested = p.am_interested;
        }
        self.fill_requests(i);
        let now = self.now;
        let p = &mut self.peers[i];
        // A peer owing nothing starts owing now: its stall clock starts with this request,
        // not with the last block it sent, maybe long ago (before a choke).
        let owed = p.requests.iter().any(|r| r.sent);
        for r in p.requests.iter_mut().filter(|r| !r.sent) {
            let m = Message::Request {
                index: r.piece,
                begin: r.begin,
                length: r.len,
            };
            if !w.message(&m) {
                break;
            }
            r.sent = true;
        }
        if !owed && p.requests.iter().any(|r| r.sent) {
            p.last_piece_rx = now;
        }
        if w.full {
            return;
        }
        self.compose_pex(i, w);
        self.compose_partial(i, w);
    }

    /// Queue requests up to the peer's pipeline depth.
    fn fill_requests(&mut self, i: usize) {
        let p = &self.peers[i];
        if p.peer_choking || !p.am_interested || self.is_done() {
            return;
        }
        // Top a deep pipeline up a quarter at a time: fewer, fuller request messages, so the
        // peer is woken once per batch rather than once per block.
        if p.requests.len() + p.max_requests / 4 > p.max_requests {
            return;
        }
        while self.peers[i].requests.len() < self.peers[i].max_requests {
            let Some(r) = self.next_block_for(i) else {
                break;
            };
            if self.peers[i].requests.push(r).is_err() {
                break;
            }
        }
    }

    /// Choose the next block to ask peer `i` for: holes of pieces in progress first, then a
    /// new rarest piece, then (endgame) blocks already asked of others.
    fn next_block_for(&mut self, i: usize) -> Option<Request> {
        for k in 0..self.partials.len() {
            let piece = self.partials[k].piece;
            let allowed = self.parole_allows(i, piece);
            if !self.peers[i].has.get(piece) || !self.wanted.get(piece) || !allowed {
                continue;
            }
            if let Some((begin, end)) = self.partials[k].next_hole() {
                let _ = self.partials[k].covered.add(begin, end);
                return Some(Request {
                    piece,
                    begin,
                    len: end - begin,
                    sent: false,
                });
            }
        }
        if let Some(r) = self.advert_block(i) {
            return Some(r);
        }
        if !self.partials.is_full() {
            let in_progress = &self.in_progress;
            let picked = self.picker.pick(
                &self.peers[i].has,
                &self.have,
                &self.wanted,
                self.peers[i].counted,
                |p| in_progress.get(p),
            );
            if let Some(piece) = picked {
                let k = self.begin_piece(piece)?;
                let (begin, end) = self.partials[k].next_hole()?;
                let _ = self.partials[k].covered.add(begin, end);
                return Some(Request {
                    piece,
                    begin,
                    len: end - begin,
                    sent: false,
                });
            }
        }
        self.endgame_block(i)
    }

    /// Endgame (every missing piece is in progress): a peer whose own requests ran down below
    /// [`ENDGAME_DEPTH`] is given the rest of a block already asked of another peer: the
    /// slowest one's (a stalled peer counts as rate 0), from the back of its queue (what it
    /// would send last), never a block two peers hold already, and only the bytes not yet
    /// written (a cut block continues from its exact byte).
    fn endgame_block(&mut self, i: usize) -> Option<Request> {
        let wanted = &self.wanted;
        let started = self.partials.iter().filter(|p| wanted.get(p.piece)).count();
        if self.wanted_missing as usize != started {
            return None;
        }
        let me = &self.peers[i];
        if me.requests.len() >= ENDGAME_DEPTH {
            return None;
        }
        let mut best: Option<(u64, Request)> = None;
        for (j, other) in self.peers.iter().enumerate() {
            if j == i || !other.is_live() || other.requests.is_empty() {
                continue;
            }
            let rate = self.delivering_rate(j);
            if best.is_some_and(|(b, _)| b <= rate) {
                continue;
            }
            let found = other
                .requests
                .iter()
                .rev()
                .filter(|r| me.has.get(r.piece) && !self.requested_by_other(r, j))
                .filter(|r| self.parole_allows(i, r.piece))
                .find_map(|r| self.unwritten_part(r));
            if let Some(r) = found {
                best = Some((rate, r));
            }
        }
        let (_, r) = best?;
        self.duplicates = true;
        Some(r)
    }

    /// Whether a peer other than `j` was asked for bytes of `r`'s range.
    fn requested_by_other(&self, r: &Request, j: usize) -> bool {
        let others = self.peers.iter().enumerate().filter(|&(k, _)| k != j);
        others
            .flat_map(|(_, p)| p.requests.iter())
            .any(|x| x.overlaps(r))
    }

    /// The first unwritten stretch of `r`, as a new request.
    fn unwritten_part(&self, r: &Request) -> Option<Request> {
        let k = self.partial_index(r.piece)?;
        let (b, e) = (r.begin, r.begin + r.len);
        let (hb, he) = self.partials[k]
            .written
            .missing()
            .map(|(hb, he)| (hb.max(b), he.min(e)))
            .find(|(hb, he)| hb < he)?;
        Some(Request {
            piece: r.piece,
            begin: hb,
            len: he - hb,
            sent: false,
        })
    }

    /// Emit the next upload for peer `i`, if it is unchoked and asked for something.
    pub(crate) fn poll_upload(&mut self, i: usize) -> Option<Command> {
        let p = &mut self.peers[i];
        // Uploads share the stream: never inside our first messages (a streamed bitfield).
        if p.am_choking || !p.is_active() || !p.bitfield_sent {
            return None;
        }
        let block = *p.incoming.front()?;
        let unconfirmed = p.tx_emitted - p.tx_confirmed;
        let size = 13 + block.len as u64;
        let window = pipeline::upload_window(p.up_meter.rate(), self.config.send_window);
        if unconfirmed + size > window || p.uploads.is_full() {
            return None;
        }
        p.incoming.pop_front();
        p.tx_emitted += size;
        // Counted as uploaded when the shell confirms it sent (`handle_sent`).
        let _ = p.uploads.push_back((p.tx_emitted, block.len));
        p.last_useful = self.now;
        Some(Command::SendBlock {
            peer: self.handle_of(i),
            header: piece_header(block.piece.get(), block.offset, block.len),
            piece: block.piece,
            offset: block.offset,
            len: block.len,
        })
    }
}
