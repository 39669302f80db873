//! Drive one session with an arbitrary sequence of shell inputs decoded from the fuzz input:
//! connects, accepts, raw and well-formed peer bytes, closes, time passing, storage and announce
//! results, shutdown, restarts from the resume state. After every input the outputs are drained.
//!
//! Checked: nothing panics; `poll_output` reaches `Timeout` (never in the past) within a bound;
//! the resume state always encodes and decodes; the counters add up; and a piece reported
//! verified is byte-identical to the torrent on the simulated storage, which applies writes in
//! the order they are issued; no peer's socket is ever handed more than the send window.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use enjambre_core::resume::ResumeState;
use enjambre_core::session::{
    Command, Config, OpId, Output, PeerHandle, Session, StorageError, MAX_RANGES, MIN_OUTPUT_BUF,
    MIN_SEND_WINDOW,
};
use enjambre_core::sha1::{Sha1, Sha1Smol};
use enjambre_core::wire::{
    ExtendedHandshake, Extensions, Handshake, Message, PartialUpdate, Split,
};
use enjambre_core::{Duration, Geometry, InfoHash, Instant, PeerId};
use libfuzzer_sys::fuzz_target;

const PEERS: usize = 3;
const BYTES: usize = 2;
const PARTIAL: usize = 2;
/// A small ring: messages wrap around its end, and input is taken in several offers.
const RX: usize = 1024;
const Q: usize = 4;

type S = Session<Sha1Smol, &'static [u8], PEERS, BYTES, PARTIAL, RX, Q>;
type State = ResumeState<BYTES, PARTIAL, MAX_RANGES>;

const PIECE_LEN: u32 = 40_000;
/// Five pieces, the last one short: blocks of 16384, 16384 and 7232 bytes, then 12000.
const TOTAL: usize = 4 * PIECE_LEN as usize + 12_000;
const INFO_HASH: InfoHash = InfoHash(*b"fuzzing-the-session!");
const OUR_ID: PeerId = PeerId(*b"-EJ0001-fuzzfuzzfuzz");

struct Torrent {
    data: Vec<u8>,
    hashes: Vec<u8>,
    geometry: Geometry,
}

fn torrent() -> &'static Torrent {
    static T: OnceLock<Torrent> = OnceLock::new();
    T.get_or_init(|| {
        let data: Vec<u8> = (0..TOTAL).map(|i| (i * 7 + i / 977) as u8).collect();
        let mut hashes = Vec::new();
        for piece in data.chunks(PIECE_LEN as usize) {
            let mut h = Sha1Smol::default();
            h.update(piece);
            hashes.extend_from_slice(&h.finish());
        }
        let geometry = Geometry::new(PIECE_LEN, TOTAL as u64).unwrap();
        Torrent {
            data,
            hashes,
            geometry,
        }
    })
}

/// Reads the fuzz input; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    /// A piece offset or length: mostly the ones that matter, sometimes anything.
    fn offset(&mut self) -> u32 {
        match self.byte() % 8 {
            0 => 0,
            1 => 16_384,
            2 => 32_768,
            3 => 7_232,
            4 => 12_000,
            5 => u32::from(self.u16()),
            6 => self.u32(),
            _ => u32::from(self.byte()) * 1000,
        }
    }
}

/// The shell: sockets are handles, storage is a byte array, time is a number.
struct Shell {
    s: Box<S>,
    now: Instant,
    disk: Vec<u8>,
    handles: Vec<PeerHandle>,
    writes: Vec<OpId>,
    reads: Vec<(OpId, u64, u32)>,
    /// Bytes handed to each peer's socket and not yet reported sent.
    unsent: std::collections::HashMap<PeerHandle, usize>,
    buf: Vec<u8>,
}

impl Shell {
    fn new(now: Instant, resume: Option<&State>, disk: Vec<u8>) -> Shell {
        let t = torrent();
        let mut config = Config::new(OUR_ID, 6881);
        config.max_message_len = 200;
        config.ban_after_hash_failures = 2;
        config.pipeline_depth = Q;
        // The smallest window: sockets that fill up are the common case here.
        config.send_window = MIN_SEND_WINDOW;
        let s = S::new(now, config, INFO_HASH, t.geometry, &t.hashes, resume)
            .expect("a valid resume state is accepted");
        Shell {
            s: Box::new(s),
            now,
            disk,
            handles: Vec::new(),
            writes: Vec::new(),
            reads: Vec::new(),
            unsent: Default::default(),
            buf: vec![0; MIN_OUTPUT_BUF],
        }
    }

    fn drain(&mut self) {
        let t = torrent();
        for _ in 0..100_000 {
            let out = self.s.poll_output(self.now, &mut self.buf);
            if trace() {
                eprintln!("{:?} {}", self.now, short(&out));
            }
            match out {
                Output::Timeout(at) => {
                    assert!(at >= self.now, "deadline {at:?} before now {:?}", self.now);
                    self.check();
                    return;
                }
                Output::Transmit { peer, bytes } => {
                    assert!(!bytes.is_empty());
                    let n = bytes.len();
                    self.handed(peer, n);
                }
                Output::Write {
                    op,
                    piece,
                    offset,
                    bytes,
                } => {
                    let at = t.geometry.piece_offset(piece) as usize + offset as usize;
                    assert!(
                        offset as u64 + bytes.len() as u64 <= t.geometry.piece_len(piece) as u64
                    );
                    self.disk[at..at + bytes.len()].copy_from_slice(bytes);
                    self.writes.push(op);
                }
                Output::Command(Command::Connect { peer, .. }) => self.handles.push(peer),
                Output::Command(Command::Read {
                    op,
                    piece,
                    offset,
                    len,
                }) => {
                    assert!(offset as u64 + len as u64 <= t.geometry.piece_len(piece) as u64);
                    self.reads
                        .push((op, t.geometry.piece_offset(piece) + offset as u64, len));
                }
                Output::Command(Command::SendBlock {
                    peer,
                    piece,
                    offset,
                    len,
                    ..
                }) => {
                    self.handed(peer, 13 + len as usize);
                    assert!(self.s.have().get(piece.get()));
                    assert!(offset as u64 + len as u64 <= t.geometry.piece_len(piece) as u64);
                }
                Output::Command(Command::PieceVerified { piece }) => {
                    let at = t.geometry.piece_offset(piece) as usize;
                    let len = t.geometry.piece_len(piece) as usize;
                    assert!(
                        self.disk[at..at + len] == t.data[at..at + len],
                        "piece {} verified but storage differs",
                        piece.get()
                    );
                }
                Output::Command(_) | Output::Event(_) => {}
            }
        }
        panic!("poll_output did not reach Timeout");
    }

    /// A shell never holds more than the send window for one peer.
    fn handed(&mut self, peer: PeerHandle, n: usize) {
        let unsent = self.unsent.entry(peer).or_default();
        *unsent += n;
        assert!(*unsent <= MIN_SEND_WINDOW as usize, "{unsent} bytes held");
    }

    /// Counters add up and the resume state round-trips.
    fn check(&self) {
        let t = torrent();
        let stats = self.s.stats();
        let have: u64 = self
            .s
            .have()
            .iter_ones()
            .map(|p| t.geometry.piece_len(t.geometry.piece(p).unwrap()) as u64)
            .sum();
        assert_eq!(stats.left, TOTAL as u64 - have);
        assert!(stats.peers <= PEERS);
        let mut buf = [0u8; State::max_encoded_len()];
        let bytes = self
            .s
            .encode_resume(&mut buf)
            .expect("resume state encodes");
        let state = State::decode(bytes, INFO_HASH, t.geometry).expect("and decodes");
        assert_eq!(&state.have, self.s.have());
    }

    fn handle(&self, input: &mut Input<'_>) -> PeerHandle {
        let n = input.byte() as usize;
        match self.handles.get(n % self.handles.len().max(1)) {
            Some(&h) if n < 250 => h,
            _ => PeerHandle {
                slot: (n % 5) as u16,
                generation: (n / 5) as u16,
            },
        }
    }

    /// Offer all of `bytes`, draining between offers, as a shell does.
    fn feed(&mut self, peer: PeerHandle, mut bytes: &[u8]) {
        for _ in 0..1000 {
            let n = self.s.handle_input(self.now, peer, bytes);
            bytes = &bytes[n..];
            self.drain();
            if bytes.is_empty() || n == 0 {
                return;
            }
        }
        panic!("input never consumed");
    }
}

/// Print every output when `SESSION_TRACE` is set (to read a crash's transcript).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SESSION_TRACE").is_some())
}

fn short(out: &Output<'_>) -> String {
    match out {
        Output::Transmit { peer, bytes } => {
            format!("Transmit {peer:?} {:02x?}", &bytes[..bytes.len().min(40)])
        }
        Output::Write {
            op,
            piece,
            offset,
            bytes,
        } => format!("Write {op:?} {piece:?} @{offset} +{}", bytes.len()),
        other => format!("{other:?}"),
    }
}

fn addr(n: u8) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n % 6)),
        6881 + u16::from(n / 6 % 2),
    )
}

fn peer_id(n: u8) -> PeerId {
    if n == 0xff {
        return OUR_ID;
    }
    let mut id = *b"-XX0000-000000000000";
    id[19] = n % 4;
    PeerId(id)
}

fn encode(m: Message<'_>) -> Vec<u8> {
    let mut out = vec![0; m.encoded_len()];
    let n = m.encode(&mut out).unwrap();
    out.truncate(n);
    out
}

/// A well-formed peer message, legal or not at this moment.
fn message(input: &mut Input<'_>) -> Vec<u8> {
    let t = torrent();
    let index = u32::from(input.byte() % 7);
    match input.byte() % 19 {
        0 => encode(Message::KeepAlive),
        1 => encode(Message::Choke),
        2 => encode(Message::Unchoke),
        3 => encode(Message::Interested),
        4 => encode(Message::NotInterested),
        5 => encode(Message::Have(index)),
        6 => {
            let len = usize::from(input.byte() % 4);
            let bits = input.bytes(len).to_vec();
            encode(Message::Bitfield(Split::contiguous(&bits)))
        }
        7 => encode(Message::Request {
            index,
            begin: input.offset(),
            length: input.offset(),
        }),
        8 => encode(Message::Cancel {
            index,
            begin: input.offset(),
            length: input.offset(),
        }),
        9 => encode(Message::Reject {
            index,
            begin: input.offset(),
            length: input.offset(),
        }),
        10 => encode(Message::HaveAll),
        11 => encode(Message::HaveNone),
        12 => {
            let hs = ExtendedHandshake {
                reqq: Some(u32::from(input.byte())),
                enjambre_partial: input.byte().is_multiple_of(2).then_some(9),
                client: Some("fuzz"),
                ..Default::default()
            };
            let mut out = [0u8; 128];
            let n = hs.encode_message(&mut out).unwrap();
            out[..n].to_vec()
        }
        13 | 14 => {
            // A block of the real data (13) or garbage (14), at any offset and length that
            // fits the piece; the length is capped to keep inputs quick.
            let begin = input.offset();
            let len = input.offset().min(20_000);
            let mut data = vec![0xA5u8; len as usize];
            if let Some(piece) = t.geometry.piece(index) {
                let plen = t.geometry.piece_len(piece);
                if begin < plen && input.byte().is_multiple_of(2) {
                    let len = len.min(plen - begin) as usize;
                    data.truncate(len);
                    let at = t.geometry.piece_offset(piece) as usize + begin as usize;
                    if !input.byte().is_multiple_of(4) {
                        data.copy_from_slice(&t.data[at..at + len]);
                    }
                }
            }
            encode(Message::Piece {
                index,
                begin,
                data: Split::contiguous(&data),
            })
        }
        15 => encode(Message::Suggest(index)),
        16 => encode(Message::AllowedFast(index)),
        17 => {
            // An `enjambre_partial` message (our id 3): up to two pieces of up to two ranges,
            // in order or not (a broken one is ignored whole).
            let mut pieces = Vec::new();
            for _ in 0..input.byte() % 3 {
                let piece = u32::from(input.byte() % 7);
                let ranges: Vec<_> = (0..input.byte() % 3)
                    .map(|_| {
                        let start = input.offset();
                        start..start.saturating_add(input.offset().max(1))
                    })
                    .collect();
                pieces.push((piece, ranges));
            }
            let update = PartialUpdate {
                downloaded: 0,
                uploaded: 0,
                pieces: pieces.iter().map(|(i, r)| (*i, r.iter().cloned())),
            };
            let mut out = [0u8; 256];
            let n = update.encode(3, &mut out).unwrap();
            out[..n].to_vec()
        }
        _ => encode(Message::Port(input.u16())),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut shell = Shell::new(Instant::from_millis(1000), None, vec![0; TOTAL]);
    shell.drain();
    let mut steps = 0;
    while !input.0.is_empty() && steps < 2000 {
        steps += 1;
        let now = shell.now;
        match input.byte() % 17 {
            0 => {
                let n = input.byte();
                shell
                    .s
                    .handle_peers(now, [addr(n), addr(n.wrapping_add(1))]);
            }
            1 => {
                if let Ok(h) = shell.s.handle_incoming(now, addr(input.byte())) {
                    shell.handles.push(h);
                }
            }
            2 => {
                let h = shell.handle(&mut input);
                shell.s.handle_connected(now, h);
            }
            3 => {
                let h = shell.handle(&mut input);
                shell.s.handle_connect_failed(now, h);
            }
            4 => {
                let h = shell.handle(&mut input);
                let n = usize::from(input.byte());
                let bytes = input.bytes(n).to_vec();
                shell.feed(h, &bytes);
            }
            5 => {
                let h = shell.handle(&mut input);
                let flags = input.byte();
                let hash = if flags & 0x80 != 0 {
                    InfoHash([9; 20])
                } else {
                    INFO_HASH
                };
                let ext = Extensions {
                    fast: flags & 1 != 0,
                    extended: flags & 2 != 0,
                    dht: flags & 4 != 0,
                };
                let hs = Handshake::new(hash, peer_id(input.byte()), ext).encode();
                shell.feed(h, &hs);
            }
            6 | 7 => {
                let h = shell.handle(&mut input);
                let mut bytes = Vec::new();
                for _ in 0..=input.byte() % 4 {
                    bytes.extend(message(&mut input));
                }
                shell.feed(h, &bytes);
            }
            8 => {
                let h = shell.handle(&mut input);
                shell.s.handle_closed(now, h);
            }
            9 => {
                let step = u64::from(input.u16());
                let scale = if input.byte() % 2 == 0 { 1 } else { 1000 };
                shell.now = now + Duration::from_millis(step * scale);
                shell.s.handle_timeout(shell.now);
            }
            10 if input.0.first().is_some_and(|b| b % 8 == 7) => {
                // Storage catches up: every pending write succeeds, in order.
                input.byte();
                for op in std::mem::take(&mut shell.writes) {
                    shell.s.handle_write_done(shell.now, op, Ok(()));
                    shell.drain();
                }
            }
            11 if input.0.first().is_some_and(|b| b % 8 == 7) => {
                // Every read is answered from storage, including those the answers cause.
                input.byte();
                for _ in 0..1000 {
                    let Some((op, at, len)) = shell.reads.pop() else {
                        break;
                    };
                    let bytes = shell.disk[at as usize..(at + u64::from(len)) as usize].to_vec();
                    shell.s.handle_read_done(shell.now, op, Ok(&bytes));
                    shell.drain();
                }
            }
            10 => {
                if !shell.writes.is_empty() {
                    let k = usize::from(input.byte()) % shell.writes.len();
                    let op = shell.writes.remove(k);
                    let result = match input.byte() % 8 {
                        0 => Err(StorageError::Io),
                        1 => Err(StorageError::NoSpace),
                        _ => Ok(()),
                    };
                    shell.s.handle_write_done(now, op, result);
                }
            }
            11 => {
                if !shell.reads.is_empty() {
                    let k = usize::from(input.byte()) % shell.reads.len();
                    let (op, at, len) = shell.reads.remove(k);
                    let mut bytes = shell.disk[at as usize..at as usize + len as usize].to_vec();
                    match input.byte() % 8 {
                        0 => shell.s.handle_read_done(now, op, Err(StorageError::Io)),
                        1 => {
                            bytes.pop();
                            shell.s.handle_read_done(now, op, Ok(&bytes));
                        }
                        _ => shell.s.handle_read_done(now, op, Ok(&bytes)),
                    }
                }
            }
            12 => {
                if input.byte() % 2 == 0 {
                    let interval = Duration::from_secs(u64::from(input.u16()));
                    let min = match input.byte() % 3 {
                        0 => None,
                        _ => Some(Duration::from_secs(u64::from(input.byte()))),
                    };
                    shell.s.handle_announce_ok(now, interval, min);
                } else {
                    shell.s.handle_announce_failed(now);
                }
            }
            13 => shell.s.handle_shutdown(now),
            14 => {
                // Restart from the persisted state; storage keeps its bytes.
                let mut buf = [0u8; State::max_encoded_len()];
                let bytes = shell.s.encode_resume(&mut buf).unwrap();
                let state = State::decode(bytes, INFO_HASH, torrent().geometry).unwrap();
                let disk = std::mem::take(&mut shell.disk);
                shell = Shell::new(now, Some(&state), disk);
            }
            16 => {
                // A socket takes some of what it holds.
                let h = shell.handle(&mut input);
                let unsent = shell.unsent.entry(h).or_default();
                let n = (*unsent).min(usize::from(input.u16()) * 4);
                *unsent -= n;
                shell.s.handle_sent(now, h, n);
            }
            _ => {
                // Stale and made-up storage completions.
                let op = OpId(input.u32() % 64);
                if input.byte() % 2 == 0 {
                    shell.s.handle_write_done(now, op, Ok(()));
                } else {
                    shell.s.handle_read_done(now, op, Ok(&[0; 3]));
                }
            }
        }
        shell.drain();
    }
});
