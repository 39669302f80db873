//! Receiving: the handshake, then messages; `Piece` payload streams to storage as it arrives.

use super::inbound::Payload;
use super::output::{CloseReason, PeerMisbehaved};
use super::partial_ext::{read_held, Held, MAX_PARTIAL_PAYLOAD};
use super::peer::{Control, Phase};
use super::{Event, Produced, Session};
use crate::sha1::Sha1;
use crate::wire::{
    metadata_piece_count, ExtendedHandshake, Handshake, Message, MetadataMessage, Status,
};
use crate::Instant;
use core::net::{IpAddr, SocketAddr};

/// The largest `Piece` payload accepted: 128 KiB, the most any client requests.
pub(super) const MAX_PIECE_PAYLOAD: u32 = 128 * 1024;
/// The largest extended message read (the extended handshake); longer ones are skipped.
const MAX_EXTENDED: usize = 1024;
/// The largest BEP 9 message read: a request is about 30 bytes; data sent to us is skipped.
const MAX_METADATA_REQUEST: usize = 64;
/// The extended id we receive BEP 9 `ut_metadata` messages with (libtorrent's choice too).
pub(crate) const UT_METADATA_ID: u8 = 2;
/// The extended id we receive our `enjambre_partial` messages with.
pub(crate) const ENJAMBRE_PARTIAL_ID: u8 = 3;

/// A decoded message with nothing borrowed from the ring.
enum Msg {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    /// The bitfield was copied into the peer's `has`, or was invalid.
    Bitfield(bool),
    Request {
        index: u32,
        begin: u32,
        len: u32,
    },
    Cancel {
        index: u32,
        begin: u32,
        len: u32,
    },
    Reject {
        index: u32,
        begin: u32,
        len: u32,
    },
    HaveAll,
    HaveNone,
    ExtendedHandshake {
        reqq: Option<u32>,
        listen_port: Option<u16>,
        ut_metadata: Option<u8>,
        ut_pex: Option<u8>,
        enjambre_partial: Option<u8>,
        yourip: Option<IpAddr>,
    },
    /// A BEP 9 request for a piece of our metadata.
    MetadataRequest(u32),
    /// An `enjambre_partial` message: what we keep of it.
    Partial(Held),
    /// Legal and of no use to us: Port, Suggest, AllowedFast, other extended messages.
    Ignored {
        needs_fast: bool,
    },
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
    /// Process the peer's receive ring until it needs more bytes or produces a storage write.
    pub(crate) fn poll_rx(&mut self, now: Instant, i: usize, buf: &mut [u8]) -> Option<Produced> {
        loop {
            if !self.peers[i].is_live() {
                return None;
            }
            if !self.peers[i].handshake_received {
                if !self.read_handshake(now, i) {
                    return None;
                }
                continue;
            }
            if let Some(inbound) = self.peers[i].inbound {
                match self.read_payload(now, i, inbound, buf) {
                    Payload::Produced(p) => return Some(p),
                    Payload::Continue => continue,
                    Payload::Wait => return None,
                }
            }
            if !self.read_message(now, i) {
                return None;
            }
        }
    }

    /// Returns whether progress was made.
    fn read_handshake(&mut self, now: Instant, i: usize) -> bool {
        let p = &mut self.peers[i];
        let (a, b) = p.rx.as_slices();
        // A wrong protocol string is refused as soon as its first wrong byte arrives. An MSE
        // key exchange is the shell's to answer before the session sees the connection
        // (`mse`); one that reaches the session is closed at once, which makes Transmission
        // and aria2 retry in plaintext without delay.
        let hs = match Handshake::decode(a, b) {
            Ok(Status::Complete(hs)) => hs,
            Ok(Status::Partial) => return false,
            Err(e) => {
                self.close(now, i, CloseReason::Malformed(e));
                return false;
            }
        };
        p.rx.consume(crate::wire::HANDSHAKE_LEN);
        if hs.info_hash != self.info_hash {
            self.close(now, i, CloseReason::WrongInfoHash);
            return false;
        }
        if hs.peer_id == self.config.peer_id {
            if let Some(addr) = p.addr {
                self.never_connect(addr);
            }
            self.close(now, i, CloseReason::SelfConnection);
            return false;
        }
        let twin = (0..PEERS)
            .find(|&j| j != i && self.peers[j].is_active() && self.peers[j].peer_id == hs.peer_id);
        if let Some(j) = twin {
            if !self.keep_one_twin(now, i, j, hs.peer_id) {
                return false;
            }
        }
        let ext = hs.extensions();
        let p = &mut self.peers[i];
        p.handshake_received = true;
        p.peer_id = hs.peer_id;
        p.fast = ext.fast && self.config.fast_extension;
        p.extended = ext.extended;
        p.dht_port_due = ext.dht && self.config.dht_port.is_some();
        p.phase = Phase::Active;
        p.request_cap = self.config.pipeline_depth.clamp(1, Q.max(1));
        p.max_requests = self.config.pipeline_floor.clamp(1, p.request_cap);
        let peer = self.handle_of(i);
        self.push_event(Event::PeerHandshake {
            peer,
            peer_id: hs.peer_id,
        });
        if let Some(addr) = self.peers[i].addr.filter(|_| self.peers[i].outbound) {
            self.pex_connected(i, addr);
        }
        true
    }

    /// Decode and handle one message. Returns whether progress was made.
    fn read_message(&mut self, now: Instant, i: usize) -> bool {
        let max = self.config.max_message_len.min(RX.saturating_sub(4) as u32);
        let p = &mut self.peers[i];
        let mut head = [0u8; 13];
        let (a, b) = p.rx.as_slices();
        let have = copy_prefix(a, b, &mut head);
        if have < 4 {
            return false;
        }
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if len == 0 {
            p.rx.consume(4);
            return true;
        }
        if len > max.max(MAX_PIECE_PAYLOAD + 9) {
            // Too long for any message we accept: refuse before the body arrives.
            self.close(
                now,
                i,
                CloseReason::Misbehaved(PeerMisbehaved::MessageTooLong),
            );
            return false;
        }
        if have < 5 {
            return false;
        }
        if head[4] == 6 && !p.am_choking && p.incoming.is_full() {
            // A request we will serve, with our upload queue full: leave it in the ring until
            // uploads drain (clients like aria2 pipeline past the `reqq` we advertise).
            return false;
        }
        if have >= 6 && self.is_pex(&head, len) {
            return self.read_pex(now, i, 4 + len as usize);
        }
        let p = &mut self.peers[i];
        let (a, b) = p.rx.as_slices();
        if head[4] == 7 && len >= 9 {
            // Piece: read the 13-byte header, then let the payload stream.
            if len - 9 > MAX_PIECE_PAYLOAD {
                self.close(
                    now,
                    i,
                    CloseReason::Misbehaved(PeerMisbehaved::MessageTooLong),
                );
                return false;
            }
            if have < 13 {
                return false;
            }
            p.rx.consume(13);
            let index = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
            let begin = u32::from_be_bytes([head[9], head[10], head[11], head[12]]);
            let data_len = len - 9;
            self.start_inbound(now, i, index, begin, data_len);
            return true;
        }
        let (msg, used) = match Message::decode(a, b, max) {
            Ok(Status::Complete(x)) => x,
            Ok(Status::Partial) => return false,
            Err(e) => {
                self.close(now, i, CloseReason::Malformed(e));
                return false;
            }
        };
        let owned = match msg {
            Message::KeepAlive => Msg::KeepAlive,
            Message::Choke => Msg::Choke,
            Message::Unchoke => Msg::Unchoke,
            Message::Interested => Msg::Interested,
            Message::NotInterested => Msg::NotInterested,
            Message::Have(x) => Msg::Have(x),
            Message::Bitfield(bits) => {
                // BEP 3 puts it first, but aria2 also sends one later instead of many Haves:
                // a later bitfield replaces our view of the peer, counted afresh.
                if p.counted {
                    self.picker.remove_bitfield(&p.has);
                    p.counted = false;
                }
                Msg::Bitfield(p.has.copy_from_slices(bits.a, bits.b).is_ok())
            }
            Message::Request {
                index,
                begin,
                length,
            } => Msg::Request {
                index,
                begin,
                len: length,
            },
            Message::Cancel {
                index,
                begin,
                length,
            } => Msg::Cancel {
                index,
                begin,
                len: length,
            },
            Message::Reject {
                index,
                begin,
                length,
            } => Msg::Reject {
                index,
                begin,
                len: length,
            },
            Message::HaveAll | Message::HaveNone => {
                // Usually first, but aria2 sends HaveAll again once it completes: like a later
                // bitfield, it replaces our view of the peer.
                if p.counted {
                    self.picker.remove_bitfield(&p.has);
                    p.counted = false;
                }
                p.has.clear_all();
                if matches!(msg, Message::HaveAll) {
                    Msg::HaveAll
                } else {
                    Msg::HaveNone
                }
            }
            Message::Extended { id: 0, payload } if payload.len() <= MAX_EXTENDED => {
                let mut scratch = [0u8; MAX_EXTENDED];
                let n = payload.len();
                payload.copy_to(&mut scratch[..n]);
                let h = ExtendedHandshake::decode(&scratch[..n]).unwrap_or_default();
                Msg::ExtendedHandshake {
                    reqq: h.reqq,
                    listen_port: h.listen_port,
                    ut_metadata: h.ut_metadata,
                    ut_pex: h.ut_pex,
                    enjambre_partial: h.enjambre_partial,
                    yourip: h.yourip_addr(),
                }
            }
            Message::Extended { id, payload }
                if id == UT_METADATA_ID
                    && Self::SERVES_METADATA
                    && self.metadata_len > 0
                    && payload.len() <= MAX_METADATA_REQUEST =>
            {
                let mut scratch = [0u8; MAX_METADATA_REQUEST];
                let n = payload.len();
                payload.copy_to(&mut scratch[..n]);
                // Only requests mean anything to a session (it never asks); the rest, and what
                // does not decode, is ignored as BEP 9 asks of unknown messages.
                match MetadataMessage::decode(&scratch[..n]) {
                    Ok(MetadataMessage::Request { piece }) => Msg::MetadataRequest(piece),
                    _ => Msg::Ignored { needs_fast: false },
                }
            }
            Message::Extended { id, payload }
                if id == ENJAMBRE_PARTIAL_ID
                    && PARTIAL > 0
                    && self.config.partial_ext
                    && p.enjambre_partial.is_some()
                    && payload.len() <= MAX_PARTIAL_PAYLOAD =>
            {
                let mut scratch = [0u8; MAX_PARTIAL_PAYLOAD];
                let n = payload.len();
                payload.copy_to(&mut scratch[..n]);
                // One that does not decode is ignored, as unknown messages are.
                let have = &self.have;
                match read_held(&scratch[..n], |piece| !have.get(piece)) {
                    Some(held) => Msg::Partial(held),
                    None => Msg::Ignored { needs_fast: false },
                }
            }
            Message::Suggest(_) | Message::AllowedFast(_) => Msg::Ignored { needs_fast: true },
            Message::Piece { .. } | Message::Port(_) | Message::Extended { .. } => {
                Msg::Ignored { needs_fast: false }
            }
        };
        p.rx.consume(used);
        self.on_message(now, i, owned);
        true
    }

    fn on_message(&mut self, now: Instant, i: usize, msg: Msg) {
        let fast = self.peers[i].fast;
        match msg {
            Msg::KeepAlive => {}
            Msg::Choke => {
                self.peers[i].peer_choking = true;
                if !fast {
                    // Without the fast extension a choke silently drops our requests.
                    self.drop_requests(i);
                }
            }
            Msg::Unchoke => self.peers[i].peer_choking = false,
            Msg::Interested => {
                self.peers[i].peer_interested = true;
                self.unchoke_if_room(i);
            }
            Msg::NotInterested => {
                self.peers[i].peer_interested = false;
                // Its upload slot goes to a peer that wants one now, not at the next rechoke.
                self.hand_on_slot(i);
            }
            Msg::Have(index) => {
                if index >= self.geometry.piece_count() {
                    self.close(now, i, CloseReason::Misbehaved(PeerMisbehaved::BadHave));
                    return;
                }
                self.reveal_reported(i, index);
                let p = &mut self.peers[i];
                if !p.has.get(index) {
                    p.has.set(index, true);
                    if !p.counted {
                        // A peer that sent no bitfield starts counting now, from this have.
                        p.counted = true;
                    }
                    self.picker.add_have(index);
                    let wanted = self.wanted.get(index) && !self.have.get(index);
                    if PARTIAL > 0 && wanted && !self.config.upload_only {
                        self.peers[i].am_interested = true;
                    }
                }
                self.close_if_useless(now, i);
            }
            Msg::Bitfield(ok) => {
                if !ok {
                    self.close(now, i, CloseReason::Misbehaved(PeerMisbehaved::BadBitfield));
                    return;
                }
                self.count_bitfield(i);
            }
            Msg::HaveAll | Msg::HaveNone => {
                if !fast {
                    self.close(
                        now,
                        i,
                        CloseReason::Misbehaved(PeerMisbehaved::NotNegotiated),
                    );
                    return;
                }
                if matches!(msg, Msg::HaveAll) {
                    self.peers[i].has.fill();
                }
                self.count_bitfield(i);
            }
            Msg::Request { index, begin, len } => self.on_request(now, i, index, begin, len),
            Msg::Cancel { index, begin, len } => {
                let q = &mut self.peers[i].incoming;
                let kept = q.len();
                for _ in 0..kept {
                    if let Some(b) = q.pop_front() {
                        if !(b.piece.get() == index && b.offset == begin && b.len == len) {
                            let _ = q.push_back(b);
                        }
                    }
                }
            }
            Msg::Reject { index, begin, len } => {
                if !fast {
                    self.close(
                        now,
                        i,
                        CloseReason::Misbehaved(PeerMisbehaved::NotNegotiated),
                    );
                    return;
                }
                let p = &mut self.peers[i];
                if let Some(pos) = p
                    .requests
                    .iter()
                    .position(|r| r.piece == index && r.begin == begin && r.len == len)
                {
                    p.requests.swap_remove(pos);
                    if let Some(k) = self.partial_index(index) {
                        self.rebuild_covered(k);
                    }
                }
            }
            Msg::ExtendedHandshake {
                reqq,
                listen_port,
                ut_metadata,
                ut_pex,
                enjambre_partial,
                yourip,
            } => {
                self.peers[i].ut_metadata = ut_metadata;
                self.peers[i].enjambre_partial = enjambre_partial.filter(|_| self.partial_on());
                self.peers[i].ut_pex = ut_pex.filter(|_| self.pex_on());
                if let Some(ip) = yourip.filter(|_| self.pex_on()) {
                    self.learn_own_ip(ip);
                }
                if let Some(port) = listen_port {
                    self.learn_listen_port(i, port);
                    let p = &self.peers[i];
                    if let Some(ip) = p.addr.filter(|_| !p.outbound).map(|a| a.ip()) {
                        self.pex_connected(i, SocketAddr::new(ip, port));
                    }
                }
                if let Some(reqq) = reqq {
                    let p = &mut self.peers[i];
                    p.request_cap = p.request_cap.min(reqq as usize).max(1);
                    p.max_requests = p.max_requests.min(p.request_cap);
                }
            }
            Msg::Partial(held) => {
                self.take_adverts(i, held);
                self.update_interest(i);
            }
            Msg::MetadataRequest(piece) => {
                let count = metadata_piece_count(self.metadata_len);
                let p = &mut self.peers[i];
                // A peer that floods requests past the queue has the rest ignored: it waits.
                if p.ut_metadata.is_some() {
                    let reject = piece >= count;
                    let _ = p.control.push_back(Control::Metadata { piece, reject });
                }
            }
            Msg::Ignored { needs_fast } => {
                if needs_fast && !fast {
                    self.close(
                        now,
                        i,
                        CloseReason::Misbehaved(PeerMisbehaved::NotNegotiated),
                    );
                }
            }
        }
    }

    /// The peer's first bitfield is in `has`: count it and decide interest.
    fn count_bitfield(&mut self, i: usize) {
        // Whatever was counted before was taken out when the new bitfield arrived.
        self.picker.add_bitfield(&self.peers[i].has);
        self.peers[i].counted = true;
        self.reveals_known(i);
        self.update_interest(i);
        let now = self.peers[i].last_rx;
        self.close_if_useless(now, i);
    }

    /// Both sides complete: nothing to exchange.
    fn close_if_useless(&mut self, now: Instant, i: usize) {
        if self.is_complete() && self.peers[i].has.is_full() {
            self.close(now, i, CloseReason::NotUseful);
        }
    }

    /// Recompute whether the peer has anything we lack (and want).
    pub(crate) fn update_interest(&mut self, i: usize) {
        if PARTIAL == 0 {
            // A shape that never downloads is never interested (and carries none of this).
            self.peers[i].am_interested = false;
            return;
        }
        let wanted = self.peers[i]
            .has
            .any_wanted_not_in(&self.wanted, &self.have)
            || self.advert_wanted(i);
        self.peers[i].am_interested = !self.config.upload_only && wanted;
    }

    /// Return whether `partial_ext` is on and this session downloads at all.
    pub(crate) fn partial_on(&self) -> bool {
        PARTIAL > 0 && self.config.partial_ext
    }
}

/// Copy up to `out.len()` bytes from the front of `a` then `b`; return how many.
fn copy_prefix(a: &[u8], b: &[u8], out: &mut [u8]) -> usize {
    let from_a = a.len().min(out.len());
    out[..from_a].copy_from_slice(&a[..from_a]);
    let from_b = b.len().min(out.len() - from_a);
    out[from_a..from_a + from_b].copy_from_slice(&b[..from_b]);
    from_a + from_b
}
