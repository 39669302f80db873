//! Transcript tests: one session, bytes in at virtual times, every output checked exactly.
//!
//! The harness plays the shell: it drains [`Session::poll_output`] into owned [`Out`] values,
//! keeps what was written in a `disk` so read-backs answer with real bytes, and builds peer
//! messages with the crate's own wire encoders. The handshake and the extended handshake we
//! send are spelled out as literal bytes, so the encoders are not checked against themselves.

mod contract;
mod metadata;
mod parole;
mod partial;
mod pex;
mod super_seed;
mod wanted;

use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::{
    CloseReason, Command, Config, DiscardCause, Event, OpId, Output, PeerHandle, PeerMisbehaved,
    Resume, Session, SessionError, StorageError, Waste, MIN_OUTPUT_BUF,
};
use crate::sha1::{Sha1 as _, Sha1Smol};
use crate::tracker::AnnounceEvent;
use crate::wire::{Extensions, Handshake, Message, Split, WireError};
use crate::{Duration, Geometry, InfoHash, Instant, PeerId, PieceIndex};

const PEERS: usize = 4;
const BYTES: usize = 8;
const PARTIAL: usize = 4;
/// One block plus a Piece header fits: a 16 KiB block can arrive in one `handle_input`.
const RX: usize = 16 * 1024 + 64;
const Q: usize = 8;

type S = Session<Sha1Smol, &'static [u8], PEERS, BYTES, PARTIAL, RX, Q>;
type State = Resume<BYTES, PARTIAL>;

const OUR_ID: PeerId = PeerId(*b"-EJ0001-ourselfabcde");
const K16: u32 = 16 * 1024;

// ---- fixture ---------------------------------------------------------------------------------

/// Content, hashes and shape of a test torrent.
struct Torrent {
    data: Vec<u8>,
    hashes: &'static [u8],
    geometry: Geometry,
    info_hash: InfoHash,
}

fn torrent(len: usize, piece_len: u32) -> Torrent {
    let mut x = 0x2545_f491u64 ^ len as u64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut hashes = Vec::new();
    for piece in data.chunks(piece_len as usize) {
        let mut h = Sha1Smol::default();
        h.update(piece);
        hashes.extend_from_slice(&h.finish());
    }
    Torrent {
        data,
        hashes: Box::leak(hashes.into_boxed_slice()),
        geometry: Geometry::new(piece_len, len as u64).unwrap(),
        info_hash: InfoHash(*b"info-hash-of-a-test!"),
    }
}

/// Four pieces of 32 KiB (two blocks each), the last one 20000 bytes (16384 + 3616).
fn four_pieces() -> Torrent {
    torrent(3 * 32768 + 20000, 32768)
}

/// One piece of 20000 bytes.
fn one_piece() -> Torrent {
    torrent(20000, 32768)
}

fn config() -> Config {
    let mut c = Config::new(OUR_ID, 6881);
    c.pipeline_depth = 4;
    c
}

fn addr(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), 6881)
}

fn pid(n: u8) -> PeerId {
    let mut id = *b"-TT0001-000000000000";
    id[19] = n;
    PeerId(id)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A piece index for expected outputs (any geometry large enough will do to build one).
fn piece(i: u32) -> PieceIndex {
    Geometry::new(1, 1 << 20).unwrap().piece(i).unwrap()
}

// ---- owned outputs and the drain -----------------------------------------------------------

/// An [`Output`] with its bytes copied out of the buffer.
#[derive(Clone, PartialEq, Eq)]
enum Out {
    Tx(PeerHandle, Vec<u8>),
    Write(u32, u32, u32, Vec<u8>),
    Cmd(Command),
    Ev(Event),
}

/// Short enough to read in a failed assertion: long byte strings are cut.
impl core::fmt::Debug for Out {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let short = |b: &[u8]| {
            let head = &b[..b.len().min(48)];
            std::format!("{} bytes {head:02x?}", b.len())
        };
        match self {
            Out::Tx(p, b) => write!(f, "Tx(slot {} gen {}, {})", p.slot, p.generation, short(b)),
            Out::Write(op, piece, offset, b) => {
                write!(
                    f,
                    "Write(op {op}, piece {piece}, offset {offset}, {})",
                    short(b)
                )
            }
            Out::Cmd(c) => write!(f, "{c:?}"),
            Out::Ev(e) => write!(f, "{e:?}"),
        }
    }
}

/// Poll until `Timeout`; return the outputs and the deadline. Panics past 10 000 outputs: the
/// session must never produce output forever. With `sent`, every transmit and upload is
/// confirmed sent at once (a socket that never fills), as most tests want.
fn drain(s: &mut S, now: Instant, buf: &mut [u8], sent: bool) -> (Vec<Out>, Instant) {
    let mut outs = Vec::new();
    for _ in 0..10_000 {
        let out = match s.poll_output(now, buf) {
            Output::Timeout(at) => return (outs, at),
            Output::Transmit { peer, bytes } => Out::Tx(peer, bytes.to_vec()),
            Output::Write {
                op,
                piece,
                offset,
                bytes,
            } => Out::Write(op.0, piece.get(), offset, bytes.to_vec()),
            Output::Command(c) => Out::Cmd(c),
            Output::Event(e) => Out::Ev(e),
        };
        if sent {
            match &out {
                Out::Tx(peer, bytes) => s.handle_sent(now, *peer, bytes.len()),
                Out::Cmd(Command::SendBlock { peer, len, .. }) => {
                    s.handle_sent(now, *peer, 13 + *len as usize)
                }
                _ => {}
            }
        }
        outs.push(out);
    }
    panic!(
        "poll_output never returned Timeout: {:?}",
        &outs[outs.len() - 5..]
    );
}

/// The shell around one session.
struct H {
    s: Box<S>,
    now: Instant,
    deadline: Instant,
    data: Vec<u8>,
    disk: Vec<u8>,
    geometry: Geometry,
    info_hash: InfoHash,
    buf: Vec<u8>,
    /// Confirm every transmit and upload sent at once (see `drain`).
    auto_sent: bool,
}

impl H {
    /// A session at t = 1 s, nothing drained yet.
    fn fresh(t: &Torrent, config: Config, resume: Option<&State>) -> H {
        let now = Instant::from_millis(1000);
        let s = S::new(now, config, t.info_hash, t.geometry, t.hashes, resume).unwrap();
        H {
            s: Box::new(s),
            now,
            deadline: now,
            data: t.data.clone(),
            disk: vec![0; t.data.len()],
            geometry: t.geometry,
            info_hash: t.info_hash,
            buf: vec![0; MIN_OUTPUT_BUF],
            auto_sent: true,
        }
    }

    /// A session whose `started` announce went out and succeeded (next one in 30 min).
    fn started(t: &Torrent, config: Config, resume: Option<&State>) -> H {
        let mut h = H::fresh(t, config, resume);
        let out = h.drain();
        let left = t.data.len() as u64 - resume.map_or(0, |r| have_bytes(t, r));
        let (up, down) = resume.map_or((0, 0), |r| (r.uploaded, r.downloaded));
        assert_eq!(out, [announce(AnnounceEvent::Started, up, down, left)]);
        h.s.handle_announce_ok(h.now, secs(1800), None);
        assert_eq!(h.drain(), []);
        h
    }

    /// Move the clock to `ms` milliseconds.
    fn at(&mut self, ms: u64) -> &mut Self {
        self.now = Instant::from_millis(ms);
        self
    }

    fn drain(&mut self) -> Vec<Out> {
        let (outs, deadline) = drain(&mut self.s, self.now, &mut self.buf, self.auto_sent);
        self.deadline = deadline;
        for o in &outs {
            if let Out::Write(_, piece, offset, bytes) = o {
                let at = self
                    .geometry
                    .piece_offset(self.geometry.piece(*piece).unwrap())
                    as usize
                    + *offset as usize;
                self.disk[at..at + bytes.len()].copy_from_slice(bytes);
            }
        }
        outs
    }

    /// Offer `bytes`, draining between offers as a shell does; return every output.
    fn input(&mut self, peer: PeerHandle, bytes: &[u8]) -> Vec<Out> {
        let mut outs = Vec::new();
        let mut rest = bytes;
        loop {
            let n = self.s.handle_input(self.now, peer, rest);
            rest = &rest[n..];
            let more = self.drain();
            let stuck = n == 0 && more.is_empty();
            outs.extend(more);
            if rest.is_empty() {
                return outs;
            }
            assert!(
                !stuck,
                "the session takes no more bytes and has nothing to do"
            );
        }
    }

    fn write_done(&mut self, op: u32) -> Vec<Out> {
        self.s.handle_write_done(self.now, OpId(op), Ok(()));
        self.drain()
    }

    /// Answer a `Read` command from the disk.
    fn read_back(&mut self, cmd: &Out) -> Vec<Out> {
        let Out::Cmd(Command::Read {
            op,
            piece,
            offset,
            len,
        }) = *cmd
        else {
            panic!("not a read: {cmd:?}");
        };
        let at = self.geometry.piece_offset(piece) as usize + offset as usize;
        let bytes = self.disk[at..at + len as usize].to_vec();
        self.s.handle_read_done(self.now, op, Ok(&bytes));
        self.drain()
    }

    fn timeout(&mut self) -> Vec<Out> {
        self.s.handle_timeout(self.now);
        self.drain()
    }

    /// Learn peer `n`'s address, connect to it; checks our handshake goes out first.
    fn connect(&mut self, n: u8) -> PeerHandle {
        self.s.handle_peers(self.now, [addr(n)]);
        let out = self.drain();
        let [Out::Cmd(Command::Connect { peer, addr: a })] = out[..] else {
            panic!("expected one Connect: {out:?}");
        };
        assert_eq!(a, addr(n));
        self.s.handle_connected(self.now, peer);
        let out = self.drain();
        assert_eq!(
            out,
            [
                Out::Ev(Event::PeerConnected { peer, addr: a }),
                Out::Tx(peer, our_handshake(self.info_hash)),
            ]
        );
        peer
    }

    /// Accept peer `n`'s connection; we say nothing until its handshake arrives.
    fn accept(&mut self, n: u8) -> PeerHandle {
        let peer = self.s.handle_incoming(self.now, addr(n)).unwrap();
        let out = self.drain();
        assert_eq!(
            out,
            [Out::Ev(Event::PeerConnected {
                peer,
                addr: addr(n)
            })]
        );
        peer
    }

    /// Peer `n`'s handshake, for our torrent.
    fn their_handshake(&self, n: u8, fast: bool, extended: bool) -> Vec<u8> {
        handshake(self.info_hash, pid(n), fast, extended)
    }

    /// A connected peer `n` (fast, not extended) past the handshakes, whose first message
    /// `first` was sent; returns the outputs of that message.
    fn peer_with(&mut self, n: u8, first: &[u8]) -> (PeerHandle, Vec<u8>, Vec<Out>) {
        let peer = self.connect(n);
        let out = self.input(peer, &self.their_handshake(n, true, false));
        let [Out::Tx(_, ref ours), Out::Ev(Event::PeerHandshake { .. })] = out[..] else {
            panic!("unexpected handshake reply {out:?}");
        };
        let ours = ours.clone();
        let out = self.input(peer, first);
        (peer, ours, out)
    }

    /// A Piece message with the torrent's real bytes.
    fn block(&self, index: u32, begin: u32, len: u32) -> Vec<u8> {
        let at = self
            .geometry
            .piece_offset(self.geometry.piece(index).unwrap()) as usize
            + begin as usize;
        piece_msg(index, begin, &self.data[at..at + len as usize])
    }

    /// The torrent's bytes of `piece` at `begin`.
    fn bytes(&self, index: u32, begin: u32, len: u32) -> Vec<u8> {
        let at = self
            .geometry
            .piece_offset(self.geometry.piece(index).unwrap()) as usize
            + begin as usize;
        self.data[at..at + len as usize].to_vec()
    }
}

fn have_bytes(t: &Torrent, r: &State) -> u64 {
    r.have
        .iter_ones()
        .map(|p| t.geometry.piece_len(t.geometry.piece(p).unwrap()) as u64)
        .sum()
}

// ---- message builders ----------------------------------------------------------------------

fn msg(m: Message<'_>) -> Vec<u8> {
    let mut out = vec![0; m.encoded_len()];
    assert_eq!(m.encode(&mut out), Ok(out.len()));
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn handshake(info_hash: InfoHash, peer_id: PeerId, fast: bool, extended: bool) -> Vec<u8> {
    let ext = Extensions {
        fast,
        extended,
        dht: false,
    };
    Handshake::new(info_hash, peer_id, ext).encode().to_vec()
}

/// Our 68-byte handshake, spelled out: reserved bits extended (byte 5, 0x10) and fast
/// (byte 7, 0x04).
fn our_handshake(info_hash: InfoHash) -> Vec<u8> {
    cat(&[
        b"\x13BitTorrent protocol",
        &[0, 0, 0, 0, 0, 0x10, 0, 0x04],
        &info_hash.0,
        &OUR_ID.0,
    ])
}

/// Our extended handshake, spelled out: PEX (`ut_pex`, our id 1), our port, our queue depth,
/// our name.
fn our_extended_handshake() -> Vec<u8> {
    let dict = b"d1:md16:enjambre_partiali3e6:ut_pexi1ee1:pi6881e4:reqqi975e1:v12:Enjambre 0.1e";
    let mut out = ((dict.len() + 2) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&[20, 0]);
    out.extend_from_slice(dict);
    out
}

fn their_extended_handshake(reqq: u32) -> Vec<u8> {
    let dict = std::format!("d1:mde4:reqqi{reqq}ee");
    let mut out = ((dict.len() + 2) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&[20, 0]);
    out.extend_from_slice(dict.as_bytes());
    out
}

fn have(i: u32) -> Vec<u8> {
    msg(Message::Have(i))
}

fn bitfield(bits: &[u8]) -> Vec<u8> {
    msg(Message::Bitfield(Split::contiguous(bits)))
}

fn request(index: u32, begin: u32, length: u32) -> Vec<u8> {
    msg(Message::Request {
        index,
        begin,
        length,
    })
}

fn cancel(index: u32, begin: u32, length: u32) -> Vec<u8> {
    msg(Message::Cancel {
        index,
        begin,
        length,
    })
}

fn reject(index: u32, begin: u32, length: u32) -> Vec<u8> {
    msg(Message::Reject {
        index,
        begin,
        length,
    })
}

fn piece_msg(index: u32, begin: u32, data: &[u8]) -> Vec<u8> {
    msg(Message::Piece {
        index,
        begin,
        data: Split::contiguous(data),
    })
}

const KEEPALIVE: [u8; 4] = [0, 0, 0, 0];
const CHOKE: [u8; 5] = [0, 0, 0, 1, 0];
const UNCHOKE: [u8; 5] = [0, 0, 0, 1, 1];
const INTERESTED: [u8; 5] = [0, 0, 0, 1, 2];
const NOT_INTERESTED: [u8; 5] = [0, 0, 0, 1, 3];
const HAVE_ALL: [u8; 5] = [0, 0, 0, 1, 0x0e];
const HAVE_NONE: [u8; 5] = [0, 0, 0, 1, 0x0f];

fn announce(event: AnnounceEvent, uploaded: u64, downloaded: u64, left: u64) -> Out {
    Out::Cmd(Command::Announce {
        event,
        uploaded,
        downloaded,
        left,
    })
}

fn close(peer: PeerHandle, reason: CloseReason) -> [Out; 2] {
    [
        Out::Cmd(Command::Close { peer, reason }),
        Out::Ev(Event::PeerClosed { peer, reason }),
    ]
}

fn write(op: u32, piece: u32, offset: u32, bytes: Vec<u8>) -> Out {
    Out::Write(op, piece, offset, bytes)
}

fn tx(peer: PeerHandle, bytes: Vec<u8>) -> Out {
    Out::Tx(peer, bytes)
}

/// A resume state holding `pieces` verified.
fn state_with(t: &Torrent, pieces: &[u32]) -> State {
    let mut s = State::new(t.info_hash, t.geometry.piece_count()).unwrap();
    for &p in pieces {
        s.have.set(p, true);
    }
    s
}

// ---- connecting and requesting -------------------------------------------------------------

#[test]
fn outbound_connect_handshakes_then_asks_for_what_the_peer_shows() {
    let t = four_pieces();
    let mut config = config();
    config.pipeline_depth = 3;
    let mut h = H::started(&t, config, None);
    // Connect, then our handshake as soon as the socket is up (checked inside).
    let a = h.connect(1);
    // Their handshake (fast + extended): we have nothing, so HaveNone, then our extended
    // handshake; the handshake event follows.
    let out = h.input(a, &h.their_handshake(1, true, true));
    assert_eq!(
        out,
        [
            tx(a, cat(&[&HAVE_NONE, &our_extended_handshake()])),
            Out::Ev(Event::PeerHandshake {
                peer: a,
                peer_id: pid(1)
            }),
        ]
    );
    // They show piece 2 only: we become interested, and ask nothing while choked.
    assert_eq!(
        h.input(a, &bitfield(&[0b0010_0000])),
        [tx(a, INTERESTED.to_vec())]
    );
    // Their extended handshake allows 250 requests in flight; our depth (3) still binds.
    assert_eq!(h.input(a, &their_extended_handshake(250)), []);
    // Unchoked: both blocks of piece 2, block-aligned, 16 KiB each.
    assert_eq!(
        h.input(a, &UNCHOKE),
        [tx(a, cat(&[&request(2, 0, K16), &request(2, K16, K16)]))]
    );
    // They get piece 3: its first block fills the pipeline (3); the short tail waits.
    assert_eq!(h.input(a, &have(3)), [tx(a, request(3, 0, K16))]);
    assert_eq!(h.input(a, &have(0)), []);
    // A block arrives: one slot frees, the short last block of piece 3 is asked for.
    let out = h.input(a, &h.block(2, 0, K16));
    assert_eq!(
        out,
        [
            write(0, 2, 0, h.bytes(2, 0, K16)),
            tx(a, request(3, K16, 3616)),
        ]
    );
}

#[test]
fn first_message_is_have_none_bitfield_or_have_all() {
    let t = four_pieces();
    let cases: [(&[u32], bool, Vec<u8>); 5] = [
        // Nothing, fast: HaveNone. Nothing, not fast: nothing at all.
        (&[], true, HAVE_NONE.to_vec()),
        (&[], false, vec![]),
        // Some pieces: a bitfield either way.
        (&[0, 3], true, bitfield(&[0b1001_0000])),
        // Everything: HaveAll when fast, else a full bitfield (spare bits clear).
        (&[0, 1, 2, 3], true, HAVE_ALL.to_vec()),
        (&[0, 1, 2, 3], false, bitfield(&[0b1111_0000])),
    ];
    for (pieces, fast, expected) in cases {
        let state = state_with(&t, pieces);
        let mut h = H::started(&t, config(), Some(&state));
        let a = h.accept(1);
        let out = h.input(a, &h.their_handshake(1, fast, false));
        let want = [
            tx(a, cat(&[&our_handshake(t.info_hash), &expected])),
            Out::Ev(Event::PeerHandshake {
                peer: a,
                peer_id: pid(1),
            }),
        ];
        assert_eq!(out, want, "have {pieces:?}, fast {fast}");
    }
}

// ---- receiving, storing, verifying ---------------------------------------------------------

#[test]
fn a_block_in_three_chunks_is_written_at_exact_offsets_and_hashed_in_order() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0010_0000]));
    // A second peer that has nothing: it must hear about the piece when it is verified.
    let (b, _, out) = h.peer_with(2, &HAVE_NONE);
    assert_eq!(out, []);
    assert_eq!(
        h.input(a, &UNCHOKE),
        [tx(a, cat(&[&request(2, 0, K16), &request(2, K16, K16)]))]
    );
    let block = h.block(2, 0, K16);
    // Header + 5000 bytes, then 6000, then the last 5384.
    assert_eq!(
        h.input(a, &block[..13 + 5000]),
        [write(0, 2, 0, h.bytes(2, 0, 5000))]
    );
    assert_eq!(
        h.input(a, &block[13 + 5000..13 + 11000]),
        [write(1, 2, 5000, h.bytes(2, 5000, 6000))]
    );
    assert_eq!(
        h.input(a, &block[13 + 11000..]),
        [write(2, 2, 11000, h.bytes(2, 11000, 5384))]
    );
    assert_eq!(
        h.input(a, &h.block(2, K16, K16)),
        [write(3, 2, K16, h.bytes(2, K16, K16))]
    );
    // Confirmations: the first one makes the resume state worth persisting.
    assert_eq!(h.write_done(0), [Out::Cmd(Command::PersistResume)]);
    assert_eq!(h.write_done(2), []);
    assert_eq!(h.write_done(1), []);
    assert_eq!(h.s.stats().downloaded, 16384);
    // The last confirmation completes the piece; it was hashed as it streamed, so no Read.
    let out = h.write_done(3);
    assert_eq!(
        out,
        [
            Out::Cmd(Command::PieceVerified { piece: piece(2) }),
            // A redundant `Have`: the peer has the piece, but is not a seed.
            tx(a, cat(&[&have(2), &NOT_INTERESTED])),
            tx(b, have(2)),
        ]
    );
    assert!(h.s.have().get(2));
    assert_eq!(h.s.stats().left, 118304 - 32768);
    assert_eq!(h.disk, {
        let mut d = vec![0; t.data.len()];
        d[65536..98304].copy_from_slice(&t.data[65536..98304]);
        d
    });
}

#[test]
fn blocks_out_of_order_are_verified_by_reading_back_the_unhashed_tail() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0100_0000]));
    assert_eq!(
        h.input(a, &UNCHOKE),
        [tx(a, cat(&[&request(1, 0, K16), &request(1, K16, K16)]))]
    );
    // The second block first: it cannot be hashed yet.
    assert_eq!(
        h.input(a, &h.block(1, K16, K16)),
        [write(0, 1, K16, h.bytes(1, K16, K16))]
    );
    assert_eq!(
        h.input(a, &h.block(1, 0, K16)),
        [write(1, 1, 0, h.bytes(1, 0, K16))]
    );
    assert_eq!(h.write_done(1), [Out::Cmd(Command::PersistResume)]);
    // All written: the first block was hashed in order; the tail is read back.
    let out = h.write_done(0);
    let read = Out::Cmd(Command::Read {
        op: OpId(2),
        piece: piece(1),
        offset: K16,
        len: K16,
    });
    assert_eq!(out, core::slice::from_ref(&read));
    assert_eq!(
        h.read_back(&read),
        [
            Out::Cmd(Command::PieceVerified { piece: piece(1) }),
            // A redundant `Have`: the peer has the piece, but is not a seed.
            tx(a, cat(&[&have(1), &NOT_INTERESTED])),
        ]
    );
}

#[test]
fn the_last_piece_completes_the_torrent_and_announces_completed() {
    let t = one_piece();
    let mut h = H::started(&t, config(), None);
    let (a, ours, out) = h.peer_with(1, &HAVE_ALL);
    assert_eq!(ours, HAVE_NONE);
    assert_eq!(out, [tx(a, INTERESTED.to_vec())]);
    assert_eq!(
        h.input(a, &UNCHOKE),
        [tx(a, cat(&[&request(0, 0, K16), &request(0, K16, 3616)]))]
    );
    assert_eq!(
        h.input(a, &h.block(0, 0, K16)),
        [write(0, 0, 0, h.bytes(0, 0, K16))]
    );
    assert_eq!(
        h.input(a, &h.block(0, K16, 3616)),
        [write(1, 0, K16, h.bytes(0, K16, 3616))]
    );
    h.at(2000);
    assert_eq!(h.write_done(0), [Out::Cmd(Command::PersistResume)]);
    let out = h.write_done(1);
    assert_eq!(
        out,
        [
            Out::Cmd(Command::PieceVerified { piece: piece(0) }),
            Out::Ev(Event::Completed),
            tx(a, NOT_INTERESTED.to_vec()),
            announce(AnnounceEvent::Completed, 0, 20000, 0),
        ]
    );
    assert!(h.s.is_complete());
    // Persisting waits for its interval, then happens once.
    assert_eq!(h.deadline, Instant::from_millis(3000));
    assert_eq!(h.at(3000).timeout(), [Out::Cmd(Command::PersistResume)]);
    // At the next rechoke, two seeds have nothing to say to each other.
    assert_eq!(h.deadline, Instant::from_millis(11_000));
    assert_eq!(h.at(11_000).timeout(), close(a, CloseReason::NotUseful));
}

#[test]
fn stopping_right_after_completing_still_announces_completed_first() {
    // A leech that exits once done: the tracker must still hear `completed`, then `stopped`.
    let t = one_piece();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &HAVE_ALL);
    h.input(a, &UNCHOKE);
    h.input(a, &h.block(0, 0, K16));
    h.input(a, &h.block(0, K16, 3616));
    h.write_done(0);
    let out = h.write_done(1);
    assert!(out.contains(&announce(AnnounceEvent::Completed, 0, 20000, 0)));
    h.s.handle_shutdown(h.now);
    let out = h.drain();
    assert!(
        !out.iter()
            .any(|o| matches!(o, Out::Cmd(Command::Announce { .. }))),
        "{out:?}"
    );
    h.s.handle_announce_ok(h.now, crate::Duration::from_secs(60), None);
    assert_eq!(h.drain(), [announce(AnnounceEvent::Stopped, 0, 20000, 0)]);
}

#[test]
fn a_piece_with_bad_data_fails_is_fetched_again_and_its_sender_banned() {
    let t = four_pieces();
    let mut config = config();
    config.ban_after_hash_failures = 2;
    let mut h = H::started(&t, config, None);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0001_0000]));
    let asks = cat(&[&request(3, 0, K16), &request(3, K16, 3616)]);
    assert_eq!(h.input(a, &UNCHOKE), [tx(a, asks.clone())]);
    let bad0 = piece_msg(3, 0, &[0xAA; K16 as usize]);
    let bad1 = piece_msg(3, K16, &[0xAA; 3616]);
    assert_eq!(h.input(a, &bad0).len(), 1);
    assert_eq!(h.input(a, &bad1).len(), 1);
    assert_eq!(h.write_done(0), [Out::Cmd(Command::PersistResume)]);
    // Verification fails: the piece is dropped and both blocks are asked for again.
    assert_eq!(
        h.write_done(1),
        [
            Out::Cmd(Command::PieceDiscarded {
                piece: piece(3),
                cause: DiscardCause::HashMismatch,
            }),
            tx(a, asks)
        ]
    );
    assert_eq!(
        h.s.stats().waste,
        Waste {
            corrupt: 20000,
            ..Waste::default()
        }
    );
    assert_eq!(h.s.stats().downloaded, 20000);
    // Bad again: the second strike bans the address and closes the peer.
    assert_eq!(h.input(a, &bad0).len(), 1);
    assert_eq!(h.input(a, &bad1).len(), 1);
    assert_eq!(h.write_done(2), []);
    let mut want = vec![
        Out::Cmd(Command::PieceDiscarded {
            piece: piece(3),
            cause: DiscardCause::HashMismatch,
        }),
        Out::Ev(Event::PeerBanned { addr: addr(1).ip() }),
    ];
    want.extend(close(a, CloseReason::Banned));
    assert_eq!(h.write_done(3), want);
    assert_eq!(
        h.s.handle_incoming(h.now, addr(1)),
        Err(SessionError::Banned)
    );
    // Its address is not dialled again either.
    h.s.handle_peers(h.now, [addr(1)]);
    assert_eq!(h.drain(), []);
}

#[test]
fn a_peer_closing_mid_block_costs_no_byte_the_rest_is_asked_from_the_exact_byte() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0100_0000]));
    assert_eq!(
        h.input(a, &UNCHOKE),
        [tx(a, cat(&[&request(1, 0, K16), &request(1, K16, K16)]))]
    );
    // B has the same piece, but every byte of it is already asked of A.
    let (b, _, out) = h.peer_with(2, &bitfield(&[0b0100_0000]));
    assert_eq!(out, [tx(b, INTERESTED.to_vec())]);
    assert_eq!(h.input(b, &UNCHOKE), []);
    // A sends 5000 bytes of its first block and vanishes.
    let block = h.block(1, 0, K16);
    assert_eq!(
        h.input(a, &block[..13 + 5000]),
        [write(0, 1, 0, h.bytes(1, 0, 5000))]
    );
    h.s.handle_closed(h.now, a);
    // B is asked for the rest, from byte 5000 to the block boundary, then the next block.
    assert_eq!(
        h.drain(),
        [
            Out::Ev(Event::PeerClosed {
                peer: a,
                reason: CloseReason::Disconnected
            }),
            tx(
                b,
                cat(&[&request(1, 5000, K16 - 5000), &request(1, K16, K16)])
            ),
        ]
    );
    assert_eq!(h.write_done(0), [Out::Cmd(Command::PersistResume)]);
    assert_eq!(
        h.input(b, &h.block(1, 5000, K16 - 5000)),
        [write(1, 1, 5000, h.bytes(1, 5000, K16 - 5000))]
    );
    assert_eq!(
        h.input(b, &h.block(1, K16, K16)),
        [write(2, 1, K16, h.bytes(1, K16, K16))]
    );
    assert_eq!(h.write_done(1), []);
    // Hashed in order across both peers: verified without a read.
    assert_eq!(
        h.write_done(2),
        [
            Out::Cmd(Command::PieceVerified { piece: piece(1) }),
            // A redundant `Have`: the peer has the piece, but is not a seed.
            tx(b, cat(&[&have(1), &NOT_INTERESTED])),
        ]
    );
    assert_eq!(h.s.stats().downloaded, 32768);
    assert_eq!(h.s.stats().wasted, 0);
}

// ---- serving -------------------------------------------------------------------------------

#[test]
fn serving_unchokes_an_interested_peer_and_sends_what_it_asks() {
    let t = four_pieces();
    let state = state_with(&t, &[0, 1]);
    let mut h = H::started(&t, config(), Some(&state));
    let a = h.accept(1);
    assert_eq!(
        h.input(a, &h.their_handshake(1, true, true)),
        [
            tx(
                a,
                cat(&[
                    &our_handshake(t.info_hash),
                    &bitfield(&[0b1100_0000]),
                    &our_extended_handshake()
                ])
            ),
            Out::Ev(Event::PeerHandshake {
                peer: a,
                peer_id: pid(1)
            }),
        ]
    );
    // They have nothing and want something: unchoked at once (a slot is free).
    assert_eq!(h.input(a, &HAVE_NONE), []);
    assert_eq!(h.input(a, &INTERESTED), [tx(a, UNCHOKE.to_vec())]);
    // A request: the block goes out with its 13-byte header (prefix 9 + 16384 = 0x4009).
    assert_eq!(
        h.input(a, &request(0, 0, K16)),
        [Out::Cmd(Command::SendBlock {
            peer: a,
            header: [0, 0, 0x40, 0x09, 7, 0, 0, 0, 0, 0, 0, 0, 0],
            piece: piece(0),
            offset: 0,
            len: K16,
        })]
    );
    // Two requests and a cancel of the first, in one read: only the second is served.
    let three = cat(&[
        &request(1, 0, K16),
        &request(1, K16, 1000),
        &cancel(1, 0, K16),
    ]);
    assert_eq!(
        h.input(a, &three),
        [Out::Cmd(Command::SendBlock {
            peer: a,
            header: [0, 0, 0x03, 0xf1, 7, 0, 0, 0, 1, 0, 0, 0x40, 0],
            piece: piece(1),
            offset: K16,
            len: 1000,
        })]
    );
    // A piece we do not have: rejected (fast extension).
    assert_eq!(h.input(a, &request(2, 0, K16)), [tx(a, reject(2, 0, K16))]);
    assert_eq!(h.s.stats().uploaded, 16384 + 1000);
}

#[test]
fn requests_beyond_the_queue_wait_in_the_ring_and_are_all_served() {
    // aria2 pipelines past the `reqq` we advertise: the surplus waits, nothing is rejected.
    let t = four_pieces();
    let state = state_with(&t, &[0, 1]);
    let mut h = H::started(&t, config(), Some(&state));
    let a = h.accept(1);
    h.input(a, &h.their_handshake(1, true, true));
    h.input(a, &HAVE_NONE);
    h.input(a, &INTERESTED);
    let n = Q as u32 + 5;
    let burst: Vec<u8> = (0..n).flat_map(|k| request(0, k * 100, 100)).collect();
    let out = h.input(a, &burst);
    let served: Vec<u32> = out
        .iter()
        .filter_map(|o| match o {
            Out::Cmd(Command::SendBlock { offset, .. }) => Some(*offset),
            _ => None,
        })
        .collect();
    assert_eq!(served, (0..n).map(|k| k * 100).collect::<Vec<_>>());
    assert_eq!(served.len(), out.len(), "only uploads: {out:?}");
}

#[test]
fn a_seed_dials_only_the_peers_the_user_named() {
    let t = four_pieces();
    let state = state_with(&t, &[0, 1, 2, 3]);
    let mut h = H::started(&t, config(), Some(&state));
    // Learned from a tracker: a seed waits for them to come.
    h.s.handle_peers(h.now, [addr(1)]);
    assert!(!h
        .drain()
        .iter()
        .any(|o| matches!(o, Out::Cmd(Command::Connect { .. }))));
    // Named by the user (`--peer`): dialled.
    h.s.handle_dial(h.now, [addr(2)]);
    let out = h.drain();
    let dialled: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Out::Cmd(Command::Connect { addr, .. }) => Some(*addr),
            _ => None,
        })
        .collect();
    assert_eq!(dialled, [addr(2)]);
}

#[test]
fn a_request_while_choked_is_rejected_with_fast_and_ignored_without() {
    let t = four_pieces();
    let state = state_with(&t, &[0, 1]);
    let mut h = H::started(&t, config(), Some(&state));
    let a = h.accept(1);
    assert_eq!(h.input(a, &h.their_handshake(1, true, false)).len(), 2);
    assert_eq!(h.input(a, &request(0, 0, K16)), [tx(a, reject(0, 0, K16))]);
    let b = h.accept(2);
    assert_eq!(h.input(b, &h.their_handshake(2, false, false)).len(), 2);
    assert_eq!(h.input(b, &request(0, 0, K16)), []);
    // Choked after being unchoked: queued requests are rejected too.
    let mut config = config();
    config.unchoke_slots = 1;
    let mut h = H::started(&t, config, Some(&state));
    let a = h.accept(1);
    h.input(a, &h.their_handshake(1, true, false));
    assert_eq!(h.input(a, &INTERESTED), [tx(a, UNCHOKE.to_vec())]);
    assert_eq!(h.input(a, &request(0, 0, K16)).len(), 1, "served");
    // Not interested any more: choked at once, its slot free for another.
    assert_eq!(h.input(a, &NOT_INTERESTED), [tx(a, CHOKE.to_vec())]);
    let b = h.accept(2);
    h.input(b, &h.their_handshake(2, true, false));
    assert_eq!(h.input(b, &INTERESTED), [tx(b, UNCHOKE.to_vec())]);
    // A, choked now, has its next request rejected.
    assert_eq!(h.input(a, &request(1, 0, K16)), [tx(a, reject(1, 0, K16))]);
    h.at(11_000);
    assert_eq!(h.timeout(), []);
}

// ---- hostile peers -------------------------------------------------------------------------

/// At `ms`, the session dials nobody.
fn assert_no_dial_until(h: &mut H, ms: u64) {
    let out = h.at(ms).timeout();
    assert!(
        !out.iter()
            .any(|o| matches!(o, Out::Cmd(Command::Connect { .. }))),
        "{out:?}"
    );
}

/// Feed `bytes` after a handshake (`fast` or not) and expect exactly a close for `reason`.
fn expect_close(t: &Torrent, have: &[u32], fast: bool, bytes: &[u8], reason: CloseReason) {
    let state = state_with(t, have);
    let mut h = H::started(t, config(), Some(&state));
    let a = h.accept(1);
    assert_eq!(h.input(a, &h.their_handshake(1, fast, false)).len(), 2);
    let out = h.input(a, bytes);
    assert_eq!(out, close(a, reason), "after {bytes:02x?}");
    // The slot is free and its handle stale: more input is swallowed without effect.
    assert_eq!(h.s.handle_input(h.now, a, bytes), bytes.len());
    assert_eq!(h.drain(), []);
    assert_eq!(h.s.stats().peers, 0);
}

#[test]
fn hostile_messages_close_the_peer_with_the_right_reason() {
    use PeerMisbehaved::*;
    let t = four_pieces();
    let mis = CloseReason::Misbehaved;
    let cases: Vec<(bool, Vec<u8>, CloseReason)> = vec![
        // Spare bits set (4 pieces: only the top nibble may be set), or the wrong length.
        (true, bitfield(&[0b0000_1000]), mis(BadBitfield)),
        (true, bitfield(&[0x80, 0]), mis(BadBitfield)),
        // Have beyond the piece count.
        (true, have(4), mis(BadHave)),
        // Fast-extension messages from a peer that did not negotiate it.
        (false, HAVE_ALL.to_vec(), mis(NotNegotiated)),
        (false, HAVE_NONE.to_vec(), mis(NotNegotiated)),
        (false, reject(0, 0, K16), mis(NotNegotiated)),
        (false, msg(Message::Suggest(0)), mis(NotNegotiated)),
        (false, msg(Message::AllowedFast(0)), mis(NotNegotiated)),
        // Requests outside the torrent: past the short last piece, past the last piece, empty.
        (true, request(3, K16, K16), mis(BadRequest)),
        (true, request(4, 0, K16), mis(BadRequest)),
        (true, request(0, 0, 0), mis(BadRequest)),
        (true, request(0, u32::MAX, 2), mis(BadRequest)),
        // A Piece for a piece that does not exist, or one longer than 128 KiB.
        (true, piece_msg(4, 0, &[1; 10]), mis(BadRequest)),
        (
            true,
            [
                &(9 + 128 * 1024 + 1u32).to_be_bytes()[..],
                &[7, 0, 0, 0, 0, 0, 0, 0, 0],
            ]
            .concat(),
            mis(MessageTooLong),
        ),
        // A length prefix over the maximum (RX - 4), an unknown id, a Have of the wrong size.
        (
            true,
            [&(RX as u32 - 3).to_be_bytes()[..], &[5]].concat(),
            CloseReason::Malformed(WireError::MessageTooLong {
                len: RX as u32 - 3,
                max: RX as u32 - 4,
            }),
        ),
        (
            true,
            vec![0, 0, 0, 1, 99],
            CloseReason::Malformed(WireError::UnknownMessage { id: 99 }),
        ),
        (
            true,
            vec![0, 0, 0, 2, 4, 0],
            CloseReason::Malformed(WireError::BadLength { id: 4, len: 2 }),
        ),
    ];
    for (fast, bytes, reason) in cases {
        expect_close(&t, &[], fast, &bytes, reason);
    }
    // A request longer than 128 KiB, inside a 256 KiB piece we have.
    let big = torrent(2 * 256 * 1024, 256 * 1024);
    let over = request(0, 0, 128 * 1024 + 1);
    expect_close(&big, &[0], true, &over, mis(BadRequest));
}

#[test]
fn a_length_prefix_over_the_configured_maximum_closes_as_soon_as_it_is_read() {
    let t = four_pieces();
    let mut config = config();
    config.max_message_len = 100;
    let mut h = H::started(&t, config, None);
    let a = h.accept(1);
    h.input(a, &h.their_handshake(1, true, false));
    // A prefix of 101 is refused as soon as the message id after it arrives.
    assert_eq!(h.input(a, &[0, 0, 0, 101]), []);
    assert_eq!(
        h.input(a, &[5]),
        close(
            a,
            CloseReason::Malformed(WireError::MessageTooLong { len: 101, max: 100 })
        )
    );
}

#[test]
fn accepting_we_answer_only_a_whole_valid_handshake_for_our_torrent() {
    let t = four_pieces();
    let state = state_with(&t, &[0]);
    let mut h = H::started(&t, config(), Some(&state));
    // Connected: nothing is sent, however long the dialler waits.
    let a = h.accept(1);
    assert_eq!(h.at(20_000).timeout(), []);
    // Its handshake up to the last byte of its peer id: still nothing of ours.
    let theirs = h.their_handshake(1, false, false);
    assert_eq!(h.input(a, &theirs[..67]), []);
    // The last byte: our handshake, then our bitfield.
    assert_eq!(
        h.input(a, &theirs[67..]),
        [
            tx(
                a,
                cat(&[&our_handshake(t.info_hash), &bitfield(&[0b1000_0000])])
            ),
            Out::Ev(Event::PeerHandshake {
                peer: a,
                peer_id: pid(1)
            }),
        ]
    );
    // A handshake for a torrent we do not serve is closed with nothing of ours sent.
    let b = h.accept(2);
    let other = handshake(InfoHash([7; 20]), pid(2), true, true);
    assert_eq!(h.input(b, &other), close(b, CloseReason::WrongInfoHash));
}

#[test]
fn a_wrong_protocol_string_is_closed_at_its_first_wrong_byte() {
    let t = four_pieces();
    let bad = CloseReason::Malformed(WireError::BadProtocol);
    let mut h = H::started(&t, config(), None);
    // One letter off, at the end of the string: closed when that byte arrives, not 30 s later.
    let a = h.accept(1);
    assert_eq!(h.input(a, b"\x13BitTorrent protoco"), []);
    assert_eq!(h.input(a, b"X"), close(a, bad));
    // Another length byte: closed at the first byte.
    let a = h.accept(1);
    assert_eq!(h.input(a, b"\x14BitTorrent protocol!"), close(a, bad));
    // An MSE key exchange (Transmission's and aria2's first dial): closed at once, so they
    // retry in plaintext at once.
    let a = h.accept(1);
    let key: Vec<u8> = (0..96u32).map(|i| (i * 97 + 13) as u8).collect();
    assert_eq!(h.input(a, &key), close(a, bad));
    // Not BitTorrent at all.
    let a = h.accept(1);
    assert_eq!(h.input(a, b"GET / HTTP/1.1\r\n"), close(a, bad));
    // Dialling, the same.
    let a = h.connect(2);
    assert_eq!(h.input(a, b"\x13BitTorrent protocoX"), close(a, bad));
}

#[test]
fn handshakes_for_another_torrent_ourselves_or_a_duplicate_are_closed() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    // Another torrent.
    let a = h.accept(1);
    let other = handshake(InfoHash([7; 20]), pid(1), true, true);
    assert_eq!(h.input(a, &other), close(a, CloseReason::WrongInfoHash));
    // Ourselves, dialled from a tracker's list: closed and never dialled again.
    let a = h.connect(9);
    let me = handshake(t.info_hash, OUR_ID, true, true);
    assert_eq!(h.input(a, &me), close(a, CloseReason::SelfConnection));
    assert_no_dial_until(&mut h, 600_000);
    // The same peer id twice.
    let b = h.accept(2);
    assert_eq!(h.input(b, &h.their_handshake(2, true, false)).len(), 2);
    let c = h.accept(3);
    assert_eq!(
        h.input(c, &h.their_handshake(2, true, false)),
        close(c, CloseReason::Duplicate)
    );
}

#[test]
fn two_dials_between_the_same_peers_keep_the_one_the_smaller_id_made_and_no_third() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    let from = |n: u8, port: u16| SocketAddr::new(addr(n).ip(), port);
    // Our id is the smaller: the connection we dialled stays, theirs is closed.
    let a = h.connect(1);
    assert_eq!(h.input(a, &h.their_handshake(1, true, false)).len(), 2);
    let b = h.s.handle_incoming(h.now, from(1, 40_000)).unwrap();
    h.drain();
    assert_eq!(
        h.input(b, &h.their_handshake(1, true, false)),
        close(b, CloseReason::Duplicate)
    );
    // Theirs is the smaller: their dial stays, ours is closed, whichever came first.
    let small = PeerId(*b"-AA0001-000000000002");
    let c = h.connect(2);
    assert_eq!(
        h.input(c, &handshake(t.info_hash, small, true, false))
            .len(),
        2
    );
    let d = h.s.handle_incoming(h.now, from(2, 40_001)).unwrap();
    h.drain();
    let out = h.input(d, &handshake(t.info_hash, small, true, false));
    let closed: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Out::Cmd(Command::Close { peer, reason }) => Some((*peer, *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(closed, [(c, CloseReason::Duplicate)], "{out:?}");
    // Neither address is dialled again while its connection lives.
    assert_no_dial_until(&mut h, 600_000);
}

#[test]
fn stale_handles_and_unknown_ops_are_ignored() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let a = h.accept(1);
    h.s.handle_closed(h.now, a);
    assert_eq!(
        h.drain(),
        [Out::Ev(Event::PeerClosed {
            peer: a,
            reason: CloseReason::Disconnected
        })]
    );
    let b = h.accept(2);
    assert_eq!(b.slot, a.slot);
    assert_ne!(b.generation, a.generation);
    // Everything aimed at the old generation of the slot is ignored.
    assert_eq!(h.s.handle_input(h.now, a, &HAVE_ALL), 5);
    h.s.handle_closed(h.now, a);
    h.s.handle_connected(h.now, a);
    h.s.handle_connect_failed(h.now, a);
    h.s.handle_write_done(h.now, OpId(77), Ok(()));
    h.s.handle_write_done(h.now, OpId(78), Err(StorageError::Io));
    h.s.handle_read_done(h.now, OpId(79), Ok(&[1, 2, 3]));
    h.s.handle_read_done(h.now, OpId(80), Err(StorageError::NoSpace));
    let bogus = PeerHandle {
        slot: 999,
        generation: 0,
    };
    assert_eq!(h.s.handle_input(h.now, bogus, &[1, 2]), 2);
    h.s.handle_closed(h.now, bogus);
    assert_eq!(h.drain(), []);
    // B is unaffected.
    assert_eq!(h.input(b, &h.their_handshake(2, true, false)).len(), 2);
    assert_eq!(h.s.stats().peers, 1);
}

// ---- room for useful peers -----------------------------------------------------------------

/// Accept peer `n` and take its handshake (fast); it says nothing more unless a test makes it.
fn guest(h: &mut H, n: u8) -> PeerHandle {
    let a = h.accept(n);
    assert_eq!(h.input(a, &h.their_handshake(n, true, false)).len(), 2);
    a
}

#[test]
fn idle_peers_give_their_slots_to_newcomers_once_slots_are_short() {
    let t = four_pieces();
    let state = state_with(&t, &[0, 1, 2, 3]);
    let mut h = H::started(&t, quiet(), Some(&state));
    // Three peers handshake and then say nothing. One slot of four is left: nobody is closed.
    let idle: Vec<PeerHandle> = (1..=3).map(|n| guest(&mut h, n)).collect();
    assert_eq!(
        h.deadline,
        Instant::from_millis(91_000),
        "a keep-alive, no idle check"
    );
    // A leech takes the last slot and asks for a block at 15 s.
    let leech = guest(h.at(2000), 4);
    assert_eq!(h.input(leech, &INTERESTED), [tx(leech, UNCHOKE.to_vec())]);
    h.at(10_000);
    assert_eq!(
        h.s.handle_incoming(h.now, addr(5)),
        Err(SessionError::NoFreeSlot),
        "every slot taken, nobody idle for 20 s yet"
    );
    assert_eq!(h.at(15_000).input(leech, &request(0, 0, K16)).len(), 1);
    // Slots are short: the first idle peer is closed when it has been idle 20 s, to keep one
    // slot free; the leech, which moved a block 6 s ago, stays.
    assert_eq!(h.deadline, Instant::from_millis(21_000));
    assert_eq!(h.at(21_000).timeout(), close(idle[0], CloseReason::Idle));
    // Its address may not come straight back into the free slot...
    assert_eq!(
        h.s.handle_incoming(h.now, addr(1)),
        Err(SessionError::RecentlyIdle)
    );
    // ...another may, and the next idle peer is closed to keep a slot free again.
    let fifth = h.s.handle_incoming(h.now, addr(5)).unwrap();
    assert_eq!(
        h.drain(),
        [Out::Ev(Event::PeerConnected {
            peer: fifth,
            addr: addr(5)
        })]
    );
    assert_eq!(h.deadline, h.now);
    assert_eq!(h.timeout(), close(idle[1], CloseReason::Idle));
    // With every slot taken, a newcomer gets the most idle peer's slot at once.
    h.s.handle_incoming(h.now, addr(6)).unwrap();
    h.drain();
    let seventh = h.s.handle_incoming(h.now, addr(7)).unwrap();
    assert_eq!(seventh.slot, idle[2].slot);
    assert_eq!(
        h.drain(),
        [
            Out::Ev(Event::PeerClosed {
                peer: idle[2],
                reason: CloseReason::Idle
            }),
            Out::Ev(Event::PeerConnected {
                peer: seventh,
                addr: addr(7)
            }),
            Out::Cmd(Command::Close {
                peer: idle[2],
                reason: CloseReason::Idle
            }),
        ]
    );
    // Everyone left is new or useful: the next newcomer waits.
    assert_eq!(
        h.s.handle_incoming(h.now, addr(8)),
        Err(SessionError::NoFreeSlot)
    );
    assert_eq!(h.s.stats().peers, 1, "the leech");
}

#[test]
fn a_download_whose_slots_idle_peers_took_still_dials_the_peers_it_learns() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    // Four peers with nothing to give fill the four slots.
    let idle: Vec<PeerHandle> = (1..=4).map(|n| guest(&mut h, n)).collect();
    // A seed learned from the tracker: no slot to dial it from.
    h.s.handle_peers(h.now, [addr(9)]);
    assert_eq!(h.drain(), []);
    // Once they have been idle 20 s, the first gives way and the seed is dialled in its slot.
    assert_eq!(h.deadline, Instant::from_millis(21_000));
    let out = h.at(21_000).timeout();
    let [Out::Cmd(Command::Close { peer, reason }), Out::Ev(_), Out::Cmd(Command::Connect {
        peer: seed,
        addr: to,
    })] = out[..]
    else {
        panic!("{out:?}");
    };
    assert_eq!((peer, reason), (idle[0], CloseReason::Idle));
    assert_eq!((seed.slot, to), (idle[0].slot, addr(9)));
    // Every slot is taken again: the next idle peer is due to give way at once.
    assert_eq!(h.deadline, h.now);
    assert_eq!(h.timeout(), close(idle[1], CloseReason::Idle));
}

// ---- timers --------------------------------------------------------------------------------

/// A config whose rechoke never interferes.
/// Timers a test is not about are far away: rechoking, and re-announcing when peerless.
fn quiet() -> Config {
    let mut c = config();
    c.rechoke_interval = secs(100_000);
    c.peerless_announce = secs(100_000);
    c
}

#[test]
fn keepalive_after_idle_then_timeout_then_reconnect_with_backoff() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    let a = h.connect(1);
    h.input(a, &h.their_handshake(1, true, false));
    // Everything was sent at t = 1 s: the next thing is a keep-alive at 91 s.
    assert_eq!(h.deadline, Instant::from_millis(91_000));
    assert_eq!(h.at(90_999).timeout(), []);
    assert_eq!(h.at(91_000).timeout(), [tx(a, KEEPALIVE.to_vec())]);
    // Their keep-alive at 100 s keeps them alive until 280 s.
    assert_eq!(h.at(100_000).input(a, &KEEPALIVE), []);
    assert_eq!(h.deadline, Instant::from_millis(181_000));
    assert_eq!(h.at(181_000).timeout(), [tx(a, KEEPALIVE.to_vec())]);
    assert_eq!(h.deadline, Instant::from_millis(271_000));
    assert_eq!(h.at(271_000).timeout(), [tx(a, KEEPALIVE.to_vec())]);
    assert_eq!(h.deadline, Instant::from_millis(280_000));
    assert_eq!(h.at(280_000).timeout(), close(a, CloseReason::Timeout));
    // A timed-out address is retried after 10 s (one failure).
    assert_eq!(h.deadline, Instant::from_millis(290_000));
    let out = h.at(290_000).timeout();
    let [Out::Cmd(Command::Connect { peer, addr: at })] = out[..] else {
        panic!("{out:?}");
    };
    assert_eq!((peer.slot, at), (a.slot, addr(1)));
    assert_eq!(peer.generation, a.generation + 1);
}

#[test]
fn a_peer_that_never_handshakes_is_dropped_after_30_s() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    let a = h.accept(1);
    assert_eq!(h.deadline, Instant::from_millis(31_000));
    assert_eq!(h.at(31_000).timeout(), close(a, CloseReason::Timeout));
}

#[test]
fn a_snubbing_peer_loses_its_blocks_to_another() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0100_0000]));
    assert_eq!(
        h.input(a, &UNCHOKE),
        [tx(a, cat(&[&request(1, 0, K16), &request(1, K16, K16)]))]
    );
    let (b, _, _) = h.peer_with(2, &bitfield(&[0b0100_0000]));
    assert_eq!(h.input(b, &UNCHOKE), []);
    // A sends nothing for 20 s: its requests are taken back (and cancelled at A), and B,
    // polled first, gets them.
    assert_eq!(h.deadline, Instant::from_millis(21_000));
    let out = h.at(21_000).timeout();
    assert_eq!(
        out,
        [
            tx(b, cat(&[&request(1, 0, K16), &request(1, K16, K16)])),
            tx(a, cat(&[&cancel(1, 0, K16), &cancel(1, K16, K16)])),
        ]
    );
    // A late block from A comes before B's copy: kept, and B is asked for it no more.
    assert_eq!(
        h.input(a, &h.block(1, 0, K16)),
        [write(0, 1, 0, h.bytes(1, 0, K16)), tx(b, cancel(1, 0, K16))]
    );
    // B's copy crossed the cancel: it is what we have already.
    assert_eq!(h.input(b, &h.block(1, 0, K16)), []);
    assert_eq!(
        h.s.stats().waste,
        Waste {
            duplicate: 16384,
            ..Waste::default()
        }
    );
    // B's other block is still wanted.
    assert_eq!(
        h.input(b, &h.block(1, K16, K16)),
        [write(1, 1, K16, h.bytes(1, K16, K16))]
    );
}

#[test]
fn a_late_reply_cut_by_its_peer_leaving_frees_the_rest_of_its_block() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0100_0000]));
    assert_eq!(
        h.input(a, &UNCHOKE),
        [tx(a, cat(&[&request(1, 0, K16), &request(1, K16, K16)]))]
    );
    let (b, _, _) = h.peer_with(2, &bitfield(&[0b0100_0000]));
    assert_eq!(h.input(b, &UNCHOKE), []);
    // A sends nothing for 20 s: its blocks go to B.
    let out = h.at(21_000).timeout();
    assert_eq!(
        out[0],
        tx(b, cat(&[&request(1, 0, K16), &request(1, K16, K16)]))
    );
    // A's late reply begins (kept: 8,192 bytes written), then B chokes us, rejecting what it
    // was asked, and A leaves in the middle of that block.
    let half = h.block(1, 0, K16)[..13 + 8192].to_vec();
    assert_eq!(h.input(a, &half), [write(0, 1, 0, h.bytes(1, 0, 8192))]);
    h.write_done(0);
    let choked = cat(&[&CHOKE, &reject(1, 0, K16), &reject(1, K16, K16)]);
    assert_eq!(h.input(b, &choked), []);
    h.s.handle_closed(h.now, a);
    let _ = h.drain();
    // The rest of A's block is nobody's now: B, unchoking, is asked for it from byte 8,192
    // (before, the piece waited forever for bytes no peer was asked for).
    let out = h.input(b, &UNCHOKE);
    let asked: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Out::Tx(p, bytes) if *p == b => Some(requests_in(bytes)),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(asked, [(1, 8192, 8192), (1, K16, K16)], "{out:?}");
}

#[test]
fn a_stalled_peer_loses_its_blocks_at_once_and_the_cut_block_continues_at_its_byte() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b1100_0000]));
    let out = h.input(a, &UNCHOKE);
    let [Out::Tx(_, ref bytes)] = out[..] else {
        panic!("expected the first requests: {out:?}");
    };
    let asked = requests_in(bytes);
    assert_eq!(asked.len(), 4, "pieces 0 and 1, two blocks each: {asked:?}");
    let (done, cut) = (asked[0].0, asked[2].0);
    assert_eq!((asked[1].0, asked[3].0), (done, cut));
    let (b, _, _) = h.peer_with(2, &bitfield(&[0x80 >> cut]));
    assert_eq!(h.input(b, &UNCHOKE), []);
    // A delivers one piece over 300 ms (a rate of 109 KB/s), then 8,192 bytes of the other
    // piece's first block and nothing more, its socket open.
    let (first, second) = (h.block(done, 0, K16), h.block(done, K16, K16));
    h.at(1100).input(a, &first);
    h.at(1400).input(a, &second);
    let half = h.block(cut, 0, K16)[..13 + 8192].to_vec();
    h.at(1500).input(a, &half);
    for op in 0..3 {
        h.write_done(op);
    }
    // The resume state is persisted a second after the writes; A is not stalled yet.
    assert_eq!(h.deadline, Instant::from_millis(2500));
    assert_eq!(h.at(2500).timeout(), [Out::Cmd(Command::PersistResume)]);
    // Stalled once 3 s passed without a byte (the floor: eight blocks' time at its rate is
    // 1.2 s, and a lossy link's retransmission timeouts alone can be silent for more than
    // one second), not after the 20 s request timeout: what A owed goes to B, the cut block
    // from byte 8,192.
    assert_eq!(h.deadline, Instant::from_millis(4500));
    let out = h.at(4500).timeout();
    let asked_of = |peer: PeerHandle| -> Vec<(u32, u32, u32)> {
        out.iter()
            .filter_map(|o| match o {
                Out::Tx(p, bytes) if *p == peer && bytes[4] == 6 => Some(requests_in(bytes)),
                _ => None,
            })
            .flatten()
            .collect()
    };
    assert_eq!(asked_of(b), [(cut, 8192, 8192), (cut, K16, K16)]);
    // A is asked for nothing until it sends again or, as long again later, one block to
    // prove itself (here: none is left that it has).
    assert_eq!(asked_of(a), []);
    assert_eq!(h.deadline, Instant::from_millis(7500));
    let out = h.at(7500).timeout();
    assert!(
        !out.iter().any(|o| matches!(o, Out::Tx(p, _) if *p == a)),
        "{out:?}"
    );
}

#[test]
fn announces_started_retry_with_backoff_then_follow_the_interval() {
    let t = four_pieces();
    let mut h = H::fresh(&t, quiet(), None);
    let started = || announce(AnnounceEvent::Started, 0, 0, 118304);
    assert_eq!(h.drain(), [started()]);
    // Nothing more while it is in flight.
    assert_eq!(h.at(2000).timeout(), []);
    // Failures: retried after 5 s, 10 s, 20 s.
    let mut at = 2000;
    for wait in [5000, 10_000, 20_000] {
        h.s.handle_announce_failed(h.now);
        assert_eq!(h.drain(), []);
        assert_eq!(h.deadline, Instant::from_millis(at + wait));
        assert_eq!(h.at(at + wait - 1).timeout(), []);
        at += wait;
        assert_eq!(h.at(at).timeout(), [started()]);
    }
    // Success: the next (plain) announce after the interval.
    h.s.handle_announce_ok(h.now, secs(1800), None);
    assert_eq!(h.drain(), []);
    assert_eq!(h.deadline, Instant::from_millis(at + 1_800_000));
    at += 1_800_000;
    assert_eq!(
        h.at(at).timeout(),
        [announce(AnnounceEvent::None, 0, 0, 118304)]
    );
    // A min interval longer than the interval wins.
    h.s.handle_announce_ok(h.now, secs(10), Some(secs(60)));
    assert_eq!(h.drain(), []);
    assert_eq!(h.deadline, Instant::from_millis(at + 60_000));
    // A failure after success retries with a plain announce, from 5 s again.
    at += 60_000;
    assert_eq!(
        h.at(at).timeout(),
        [announce(AnnounceEvent::None, 0, 0, 118304)]
    );
    h.s.handle_announce_failed(h.now);
    assert_eq!(h.drain(), []);
    assert_eq!(h.deadline, Instant::from_millis(at + 5000));
}

#[test]
fn a_download_without_peers_asks_the_tracker_again_at_the_min_interval() {
    let t = four_pieces();
    let mut c = quiet();
    c.peerless_announce = secs(30);
    let mut h = H::fresh(&t, c, None);
    let plain = || announce(AnnounceEvent::None, 0, 0, 118304);
    assert_eq!(h.drain(), [announce(AnnounceEvent::Started, 0, 0, 118304)]);
    // Nobody in the swarm: asked again after 30 s (the tracker named no min interval).
    h.s.handle_announce_ok(h.now, secs(1800), None);
    assert_eq!(h.drain(), []);
    assert_eq!(h.deadline, Instant::from_millis(31_000));
    assert_eq!(h.at(31_000).timeout(), [plain()]);
    // A min interval is respected.
    h.s.handle_announce_ok(h.now, secs(1800), Some(secs(120)));
    assert_eq!(h.drain(), []);
    assert_eq!(h.deadline, Instant::from_millis(151_000));
    // With a peer to download from, the full interval applies...
    let a = h.at(100_000).connect(1);
    h.input(a, &h.their_handshake(1, true, false));
    assert_eq!(h.at(151_000).timeout(), []);
    // ...until it leaves: the min interval has passed, so the tracker is asked at once.
    h.at(152_000);
    h.s.handle_closed(h.now, a);
    h.drain();
    assert_eq!(h.deadline, h.now, "due at once");
    let out = h.timeout();
    assert!(out.contains(&plain()), "{out:?}");
    // A finished download waits for the full interval, peers or not.
    let mut c = quiet();
    c.peerless_announce = secs(30);
    let mut seed = H::fresh(&t, c, Some(&state_with(&t, &[0, 1, 2, 3])));
    assert_eq!(seed.drain(), [announce(AnnounceEvent::Started, 0, 0, 0)]);
    seed.s.handle_announce_ok(seed.now, secs(1800), None);
    assert_eq!(seed.drain(), []);
    assert_eq!(seed.deadline, Instant::from_millis(1_801_000));
}

#[test]
fn shutdown_announces_stopped_closes_everyone_and_persists() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    let a = h.connect(1);
    h.input(a, &h.their_handshake(1, true, false));
    let b = h.accept(2);
    h.s.handle_shutdown(h.now);
    let mut want = vec![];
    want.extend(close(a, CloseReason::Shutdown));
    want.extend(close(b, CloseReason::Shutdown));
    want.push(announce(AnnounceEvent::Stopped, 0, 0, 118304));
    want.push(Out::Cmd(Command::PersistResume));
    assert_eq!(h.drain(), want);
    // Nobody is dialled again.
    h.at(1_000_000);
    assert_eq!(h.timeout(), []);
}

// ---- resume --------------------------------------------------------------------------------

#[test]
fn resume_claims_only_confirmed_writes_and_a_new_session_asks_only_for_the_holes() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0010_0000]));
    h.input(a, &UNCHOKE);
    assert_eq!(h.input(a, &h.block(2, 0, K16)).len(), 1);
    assert_eq!(h.input(a, &h.block(2, K16, K16)).len(), 1);
    // Only the second write is confirmed.
    assert_eq!(h.write_done(1), [Out::Cmd(Command::PersistResume)]);
    let mut buf = [0u8; State::max_encoded_len()];
    let bytes = h.s.encode_resume(&mut buf).unwrap();
    let state = State::decode(bytes, t.info_hash, t.geometry).unwrap();
    assert_eq!(state.have.count_ones(), 0);
    assert_eq!(state.downloaded, 16384);
    assert_eq!(state.partial.len(), 1);
    assert_eq!(state.partial[0].piece(), 2);
    assert_eq!(state.partial[0].as_slice(), [(K16, 2 * K16)]);
    // A new session from it: the peer is asked for the first block only.
    let mut h = H::started(&t, config(), Some(&state));
    let (a, ours, _) = h.peer_with(1, &bitfield(&[0b0010_0000]));
    assert_eq!(ours, HAVE_NONE);
    assert_eq!(h.input(a, &UNCHOKE), [tx(a, request(2, 0, K16))]);
}

#[test]
fn a_resumed_piece_whose_bytes_are_all_written_is_read_back_and_verified() {
    let t = four_pieces();
    let mut state = state_with(&t, &[]);
    let mut done = crate::progress::PieceProgress::new(3, 20000);
    done.add(0, 20000).unwrap();
    state.partial.push(done).unwrap();
    let mut h = H::fresh(&t, quiet(), Some(&state));
    h.disk.copy_from_slice(&t.data);
    let out = h.drain();
    let read = |op, offset, len| {
        Out::Cmd(Command::Read {
            op: OpId(op),
            piece: piece(3),
            offset,
            len,
        })
    };
    assert_eq!(
        out,
        [
            read(0, 0, K16),
            announce(AnnounceEvent::Started, 0, 0, 118304)
        ]
    );
    assert_eq!(h.read_back(&out[0]), [read(1, K16, 3616)]);
    let out = h.read_back(&read(1, K16, 3616));
    assert_eq!(
        out,
        [
            Out::Cmd(Command::PieceVerified { piece: piece(3) }),
            Out::Cmd(Command::PersistResume),
        ]
    );
    assert_eq!(h.s.stats().left, 3 * 32768);
}

// ---- choking, rejects, endgame, storage failures ---------------------------------------------

#[test]
fn a_choke_without_fast_drops_our_requests_and_an_unchoke_asks_again() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let a = h.connect(1);
    h.input(a, &h.their_handshake(1, false, false));
    assert_eq!(
        h.input(a, &bitfield(&[0b0100_0000])),
        [tx(a, INTERESTED.to_vec())]
    );
    let asks = cat(&[&request(1, 0, K16), &request(1, K16, K16)]);
    assert_eq!(h.input(a, &UNCHOKE), [tx(a, asks.clone())]);
    assert_eq!(h.input(a, &CHOKE), []);
    assert_eq!(h.input(a, &UNCHOKE), [tx(a, asks)]);
}

#[test]
fn a_choke_with_fast_keeps_requests_until_each_is_rejected() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0100_0000]));
    assert_eq!(
        h.input(a, &UNCHOKE),
        [tx(a, cat(&[&request(1, 0, K16), &request(1, K16, K16)]))]
    );
    assert_eq!(h.input(a, &CHOKE), []);
    // The second block is still theirs to send; the rejected first one is asked again later.
    assert_eq!(h.input(a, &reject(1, 0, K16)), []);
    assert_eq!(
        h.input(a, &h.block(1, K16, K16)),
        [write(0, 1, K16, h.bytes(1, K16, K16))]
    );
    assert_eq!(h.input(a, &UNCHOKE), [tx(a, request(1, 0, K16))]);
    // A reject for something we never asked is ignored.
    assert_eq!(h.input(a, &reject(2, 0, K16)), []);
}

#[test]
fn a_block_of_a_piece_we_are_not_fetching_is_discarded_as_unrequested() {
    let t = four_pieces();
    let mut h = H::started(&t, quiet(), None);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0100_0000]));
    assert_eq!(
        h.input(a, &UNCHOKE),
        [tx(a, cat(&[&request(1, 0, K16), &request(1, K16, K16)]))]
    );
    assert_eq!(h.input(a, &h.block(2, 0, K16)), []);
    assert_eq!(
        h.s.stats().waste,
        Waste {
            unrequested: 16384,
            ..Waste::default()
        }
    );
}

#[test]
fn endgame_asks_a_second_peer_and_cancels_the_duplicate_when_a_block_lands() {
    let t = one_piece();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &HAVE_ALL);
    let asks = cat(&[&request(0, 0, K16), &request(0, K16, 3616)]);
    assert_eq!(h.input(a, &UNCHOKE), [tx(a, asks)]);
    // Every missing byte is asked of A: B, idle, is asked for two of them, what A would
    // send last first.
    let (b, _, _) = h.peer_with(2, &HAVE_ALL);
    let twins = cat(&[&request(0, K16, 3616), &request(0, 0, K16)]);
    assert_eq!(h.input(b, &UNCHOKE), [tx(b, twins)]);
    // A's first block lands: B's copy of that request is cancelled.
    assert_eq!(
        h.input(a, &h.block(0, 0, K16)),
        [write(0, 0, 0, h.bytes(0, 0, K16)), tx(b, cancel(0, 0, K16)),]
    );
    // B's answer to the cancelled request arrives anyway: dropped, a duplicate (A's copy is
    // being written).
    assert_eq!(h.input(b, &h.block(0, 0, K16)), []);
    assert_eq!(
        h.s.stats().waste,
        Waste {
            duplicate: 16384,
            ..Waste::default()
        }
    );
}

#[test]
fn a_failed_write_is_reported_and_its_bytes_fetched_again() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0100_0000]));
    h.input(a, &UNCHOKE);
    assert_eq!(h.input(a, &h.block(1, 0, K16)).len(), 1);
    assert_eq!(h.input(a, &h.block(1, K16, K16)).len(), 1);
    h.s.handle_write_done(h.now, OpId(0), Err(StorageError::NoSpace));
    assert_eq!(
        h.drain(),
        [
            Out::Ev(Event::StorageFailed {
                piece: piece(1),
                error: StorageError::NoSpace
            }),
            tx(a, request(1, 0, K16)),
        ]
    );
    assert_eq!(h.write_done(1), [Out::Cmd(Command::PersistResume)]);
    assert_eq!(
        h.input(a, &h.block(1, 0, K16)),
        [write(2, 1, 0, h.bytes(1, 0, K16))]
    );
    // The hash restarted at the failure: the block after the refetched one is read back.
    let out = h.write_done(2);
    assert_eq!(
        out,
        [Out::Cmd(Command::Read {
            op: OpId(3),
            piece: piece(1),
            offset: K16,
            len: K16
        })]
    );
    assert_eq!(
        h.read_back(&out[0]),
        [
            Out::Cmd(Command::PieceVerified { piece: piece(1) }),
            // A redundant `Have`: the peer has the piece, but is not a seed.
            tx(a, cat(&[&have(1), &NOT_INTERESTED])),
        ]
    );
    assert_eq!(h.s.stats().downloaded, 32768);
}

#[test]
fn only_unchoke_slots_peers_are_unchoked_at_once() {
    let t = four_pieces();
    let state = state_with(&t, &[0]);
    let mut config = config();
    config.unchoke_slots = 1;
    let mut h = H::started(&t, config, Some(&state));
    let a = h.accept(1);
    h.input(a, &h.their_handshake(1, true, false));
    let b = h.accept(2);
    h.input(b, &h.their_handshake(2, true, false));
    assert_eq!(h.input(a, &INTERESTED), [tx(a, UNCHOKE.to_vec())]);
    assert_eq!(h.input(b, &INTERESTED), []);
    assert_eq!(h.input(b, &request(0, 0, K16)), [tx(b, reject(0, 0, K16))]);
}

#[test]
fn a_peer_interested_before_we_had_anything_is_unchoked_with_our_first_piece() {
    // In a flash crowd a leech's neighbours may be interested in it before its first piece is
    // verified (our partial-piece adverts make them so); that first piece must open its free
    // slots at once, not at the next rechoke ten seconds later.
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0010_0000]));
    let (b, _, _) = h.peer_with(2, &HAVE_NONE);
    h.input(a, &UNCHOKE);
    let out = h.input(b, &INTERESTED);
    assert!(
        !out.iter()
            .any(|o| matches!(o, Out::Tx(p, m) if *p == b && m.ends_with(&UNCHOKE))),
        "unchoked with nothing to give: {out:?}"
    );
    h.input(a, &h.block(2, 0, K16));
    h.input(a, &h.block(2, K16, K16));
    h.write_done(0);
    let out = h.write_done(1);
    assert!(out.contains(&Out::Cmd(Command::PieceVerified { piece: piece(2) })));
    assert!(out.contains(&tx(b, cat(&[&have(2), &UNCHOKE]))), "{out:?}");
}

#[test]
fn a_seed_gives_its_slots_to_each_interested_peer_in_turn() {
    let t = four_pieces();
    let state = state_with(&t, &[0, 1, 2, 3]);
    let mut config = config();
    config.unchoke_slots = 2;
    config.peerless_announce = secs(100_000);
    let mut h = H::started(&t, config, Some(&state));
    let mut unchoked = std::collections::BTreeSet::new();
    let mut peers = Vec::new();
    for n in 1..=4 {
        let p = h.accept(n);
        h.input(p, &h.their_handshake(n, true, false));
        // The first two to ask take the two free slots at once.
        if h.input(p, &INTERESTED) == [tx(p, UNCHOKE.to_vec())] {
            unchoked.insert(p.slot);
        }
        peers.push(p);
    }
    assert_eq!(unchoked.len(), 2);
    // Ten rechokes: every interested peer has its turn, and the first to ask loses its slot
    // (before, equal peers lost every tie to the first slot, which kept its slot forever).
    let mut first_choked = false;
    for round in 1..=10u64 {
        for o in h.at(round * 10_000).timeout() {
            let Out::Tx(p, bytes) = o else { continue };
            let says = |m: &[u8]| bytes.windows(m.len()).any(|w| w == m);
            if says(&UNCHOKE) {
                unchoked.insert(p.slot);
            } else if says(&CHOKE) && p == peers[0] {
                first_choked = true;
            }
        }
    }
    assert!(first_choked, "the first peer kept its slot");
    assert_eq!(unchoked.len(), peers.len(), "unchoked: {unchoked:?}");
}

#[test]
fn a_seed_gives_its_slots_to_peers_that_waited_not_to_those_that_took_least() {
    // In the lab's heterogeneous swarm, ranking by "took least last round" gave a seed's slots
    // to its slow receivers again and again. Three slots, four peers: the first three take the
    // slots at once, two of them download, the first (a slow receiver) takes nothing. Ranked
    // by what they took, the slow one and the waiting one always get the two regular slots;
    // by turns, the waiting one does, and the slow one keeps a slot only when a draw says so.
    let mut slow_kept = 0;
    for seed in 1..=12u64 {
        let t = four_pieces();
        let state = state_with(&t, &[0, 1, 2, 3]);
        let mut config = config();
        config.unchoke_slots = 3;
        config.seed = seed;
        config.peerless_announce = secs(100_000);
        let mut h = H::started(&t, config, Some(&state));
        let mut peers = Vec::new();
        for n in 1..=4 {
            let p = h.accept(n);
            h.input(p, &h.their_handshake(n, true, false));
            h.input(p, &INTERESTED);
            peers.push(p);
        }
        for &p in &peers[1..3] {
            h.input(p, &request(0, 0, K16));
        }
        h.drain();
        let (mut slow_choked, mut waiting_unchoked) = (false, false);
        for o in h.at(11_000).timeout() {
            if let Out::Tx(p, bytes) = o {
                let says = |m: &[u8]| bytes.windows(m.len()).any(|w| w == m);
                slow_choked |= p == peers[0] && says(&CHOKE);
                waiting_unchoked |= p == peers[3] && says(&UNCHOKE);
            }
        }
        assert!(
            waiting_unchoked,
            "seed {seed}: the waiting peer got no slot"
        );
        slow_kept += usize::from(!slow_choked);
    }
    assert!(
        slow_kept < 12,
        "the slow receiver kept its slot whatever the draws"
    );
}

// ---- found bugs --------------------------------------------------------------------------------

#[test]
fn an_extended_handshake_before_the_bitfield_is_accepted() {
    // Transmission sends its BEP 10 handshake before Bitfield/HaveAll/HaveNone.
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let a = h.connect(1);
    h.input(a, &h.their_handshake(1, true, true));
    assert_eq!(h.input(a, &their_extended_handshake(250)), []);
    assert_eq!(h.input(a, &HAVE_ALL), [tx(a, INTERESTED.to_vec())]);
    let b = h.connect(2);
    h.input(b, &h.their_handshake(2, false, true));
    assert_eq!(h.input(b, &their_extended_handshake(250)), []);
    assert_eq!(
        h.input(b, &bitfield(&[0b1000_0000])),
        [tx(b, INTERESTED.to_vec())]
    );
}

#[test]
fn a_later_bitfield_replaces_the_view_of_the_peer() {
    // aria2 1.36 sends HaveNone, then, as it completes pieces, whole Bitfields instead of Haves.
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let a = h.connect(1);
    h.input(a, &h.their_handshake(1, true, true));
    assert_eq!(h.input(a, &HAVE_NONE), []);
    assert_eq!(
        h.input(a, &bitfield(&[0b1000_0000])),
        [tx(a, INTERESTED.to_vec())]
    );
    assert_eq!(h.s.availability(t.geometry.piece(0).unwrap()), 1);
    // A later bitfield is counted afresh, not on top of the first.
    assert_eq!(h.input(a, &bitfield(&[0b1100_0000])), []);
    assert_eq!(
        (
            h.s.availability(t.geometry.piece(0).unwrap()),
            h.s.availability(t.geometry.piece(1).unwrap())
        ),
        (1, 1)
    );
    // Still validated: spare bits set closes the peer.
    assert_eq!(
        h.input(a, &bitfield(&[0b1100_0001])),
        close(a, CloseReason::Misbehaved(PeerMisbehaved::BadBitfield))
    );
}

#[test]
fn a_later_have_all_or_have_none_replaces_the_view_of_the_peer() {
    // aria2 1.36 at a complete seed: HaveNone, Bitfields as it completes pieces, then
    // NotInterested and HaveAll once done. Both seeds now: closed as not useful, politely.
    let t = four_pieces();
    let state = state_with(&t, &[0, 1, 2, 3]);
    let mut h = H::started(&t, config(), Some(&state));
    let a = h.accept(1);
    assert_eq!(h.input(a, &h.their_handshake(1, true, true)).len(), 2);
    assert_eq!(h.input(a, &their_extended_handshake(250)), []);
    assert_eq!(h.input(a, &HAVE_NONE), []);
    assert_eq!(h.input(a, &INTERESTED), [tx(a, UNCHOKE.to_vec())]);
    assert_eq!(h.input(a, &bitfield(&[0b1000_0000])), []);
    assert_eq!(h.input(a, &bitfield(&[0b1110_0000])), []);
    assert_eq!(h.input(a, &NOT_INTERESTED), [tx(a, CHOKE.to_vec())]);
    assert_eq!(h.input(a, &HAVE_ALL), close(a, CloseReason::NotUseful));

    // At a leech: a later HaveAll counts the peer once; a later HaveNone uncounts it, and we
    // lose interest.
    let mut h = H::started(&t, config(), None);
    let a = h.connect(1);
    h.input(a, &h.their_handshake(1, true, true));
    assert_eq!(h.input(a, &HAVE_NONE), []);
    assert_eq!(h.input(a, &have(0)), [tx(a, INTERESTED.to_vec())]);
    assert_eq!(h.input(a, &HAVE_ALL), []);
    let avail = |h: &H, p: u32| h.s.availability(t.geometry.piece(p).unwrap());
    assert_eq!((avail(&h, 0), avail(&h, 3)), (1, 1));
    assert_eq!(h.input(a, &HAVE_NONE), [tx(a, NOT_INTERESTED.to_vec())]);
    assert_eq!((avail(&h, 0), avail(&h, 3)), (0, 0));
}

#[test]
fn a_reply_shorter_than_the_request_leaves_the_rest_to_ask_again() {
    let t = four_pieces();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &bitfield(&[0b0100_0000]));
    assert_eq!(
        h.input(a, &UNCHOKE),
        [tx(a, cat(&[&request(1, 0, K16), &request(1, K16, K16)]))]
    );
    // 8000 bytes answer the 16 KiB request: the other 8384 are asked for again.
    assert_eq!(
        h.input(a, &h.block(1, 0, 8000)),
        [
            write(0, 1, 0, h.bytes(1, 0, 8000)),
            tx(a, request(1, 8000, K16 - 8000)),
        ]
    );
    assert_eq!(h.input(a, &h.block(1, K16, K16)).len(), 1);
    assert_eq!(h.input(a, &h.block(1, 8000, K16 - 8000)).len(), 1);
    let mut out = vec![];
    for op in 0..3 {
        out.extend(h.write_done(op));
    }
    while let Some(read @ Out::Cmd(Command::Read { .. })) = out.last().cloned() {
        out.pop();
        out.extend(h.read_back(&read));
    }
    assert!(out.contains(&Out::Cmd(Command::PieceVerified { piece: piece(1) })));
}

/// Endgame: A and B were both asked for the piece. A streams the first 8000 bytes of block 0
/// (hashed in order), then B's whole block 0 lands, its first `forged` bytes replaced, then B's
/// block 1. Returns the piece's verdict.
fn endgame_overlap(forged: usize) -> Vec<Out> {
    let t = one_piece();
    let mut h = H::started(&t, config(), None);
    let (a, _, _) = h.peer_with(1, &HAVE_ALL);
    h.input(a, &UNCHOKE);
    let (b, _, _) = h.peer_with(2, &HAVE_ALL);
    h.input(b, &UNCHOKE);
    let block = h.block(0, 0, K16);
    assert_eq!(h.input(a, &block[..13 + 8000]).len(), 1);
    let mut bytes = h.bytes(0, 0, K16);
    bytes[..forged].fill(0xEE);
    assert_eq!(
        h.input(b, &piece_msg(0, 0, &bytes)),
        [write(1, 0, 0, bytes.clone()), tx(a, cancel(0, 0, K16))]
    );
    assert_eq!(
        h.input(b, &h.block(0, K16, 3616)),
        [
            write(2, 0, K16, h.bytes(0, K16, 3616)),
            tx(a, cancel(0, K16, 3616))
        ]
    );
    // Storage applies writes in order: B's bytes are what it holds.
    assert_eq!(&h.disk[..K16 as usize], &bytes[..]);
    let mut out = vec![];
    for op in 0..3 {
        out.extend(h.write_done(op));
    }
    while let Some(read @ Out::Cmd(Command::Read { .. })) = out.last().cloned() {
        out.pop();
        out.extend(h.read_back(&read));
    }
    out.retain(|o| {
        matches!(
            o,
            Out::Ev(_) | Out::Cmd(Command::PieceVerified { .. } | Command::PieceDiscarded { .. })
        )
    });
    out
}

#[test]
fn bytes_rewritten_under_the_hashed_prefix_are_judged_as_storage_holds_them() {
    let verified = Out::Cmd(Command::PieceVerified { piece: piece(0) });
    let failed = Out::Cmd(Command::PieceDiscarded {
        piece: piece(0),
        cause: DiscardCause::HashMismatch,
    });
    assert_eq!(endgame_overlap(0), [verified, Out::Ev(Event::Completed)]);
    // B's garbage overwrote bytes hashed from A: the piece must fail, not pass on A's bytes.
    assert_eq!(endgame_overlap(8000), [failed]);
}

/// The requests (piece, begin, length) in a run of our messages.
fn requests_in(bytes: &[u8]) -> Vec<(u32, u32, u32)> {
    assert_eq!(bytes.len() % 17, 0, "only requests: {bytes:02x?}");
    bytes
        .chunks(17)
        .map(|m| {
            assert_eq!(m[..5], [0, 0, 0, 13, 6]);
            let word = |at: usize| u32::from_be_bytes([m[at], m[at + 1], m[at + 2], m[at + 3]]);
            (word(5), word(9), word(13))
        })
        .collect()
}

#[test]
fn a_deep_pipeline_is_topped_up_a_quarter_at_a_time() {
    // Four pieces of four blocks; eight requests in flight, topped up two at a time.
    let t = torrent(16 * K16 as usize, 4 * K16);
    let mut config = config();
    config.pipeline_depth = 8;
    config.pipeline_floor = 8;
    let mut h = H::started(&t, config, None);
    let (a, _, out) = h.peer_with(1, &HAVE_ALL);
    assert_eq!(out, [tx(a, INTERESTED.to_vec())]);
    let out = h.input(a, &UNCHOKE);
    let [Out::Tx(_, ref bytes)] = out[..] else {
        panic!("expected the first requests: {out:?}");
    };
    let mut asked = requests_in(bytes);
    assert_eq!(asked.len(), 8);
    let mut answered = 0;
    let mut op = 0;
    while answered < 16 {
        let (index, begin, len) = asked[answered];
        let out = h.input(a, &h.block(index, begin, len));
        assert_eq!(out[0], write(op, index, begin, h.bytes(index, begin, len)));
        op += 1;
        answered += 1;
        let more: Vec<_> = out[1..]
            .iter()
            .flat_map(|o| match o {
                Out::Tx(p, b) if *p == a => requests_in(b),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        let in_flight = asked.len() - answered;
        // One free slot asks for nothing; two are filled together, up to the depth again.
        let want = if asked.len() < 16 && in_flight <= 6 {
            2
        } else {
            0
        };
        assert_eq!(more.len(), want, "after {answered} blocks: {more:?}");
        asked.extend(more);
    }
    // Every block was asked for exactly once.
    asked.sort();
    let all: Vec<_> = (0..4)
        .flat_map(|p| (0..4).map(move |b| (p, b * K16, K16)))
        .collect();
    assert_eq!(asked, all);
}

/// BEP 5: with a DHT port set, our handshake offers the DHT (byte 7, 0x01) and a peer that
/// offers it too gets our `Port` right after our first message; one that does not, none.
#[test]
fn our_dht_port_goes_only_to_peers_that_offer_the_dht() {
    let t = four_pieces();
    let state = state_with(&t, &[0, 1, 2, 3]);
    let mut c = config();
    c.dht_port = Some(7001);
    let mut ours = our_handshake(t.info_hash);
    ours[27] |= 0x01;
    for offers in [true, false] {
        let mut h = H::started(&t, c.clone(), Some(&state));
        let a = h.accept(1);
        let ext = Extensions {
            fast: true,
            extended: false,
            dht: offers,
        };
        let theirs = Handshake::new(t.info_hash, pid(1), ext).encode().to_vec();
        let out = h.input(a, &theirs);
        let port = msg(Message::Port(7001));
        let tail: &[u8] = if offers { &port } else { &[] };
        let want = [
            tx(a, cat(&[&ours, &HAVE_ALL, tail])),
            Out::Ev(Event::PeerHandshake {
                peer: a,
                peer_id: pid(1),
            }),
        ];
        assert_eq!(out, want, "the peer offers the DHT: {offers}");
    }
}
