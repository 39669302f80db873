//! How much CPU the core Session spends per GiB: one seed and one leech session joined by an
//! in-memory pipe, storage as plain memory copies, the clock frozen. Prints GiB/s and CPU
//! seconds per GiB for the pair, hashing with `sha1_smol` and with hashing stubbed out.
//!
//! Run: `cargo bench -p enjambre-tests --bench session_pipe`

use std::time::Instant as WallClock;

use enjambre_core::resume::ResumeState;
use enjambre_core::session::{
    Command, Config, Output, PeerHandle, Session, MAX_RANGES, MIN_OUTPUT_BUF,
};
use enjambre_core::sha1::{Sha1, Sha1Smol};
use enjambre_core::{Geometry, InfoHash, Instant, PeerId};

const PEERS: usize = 4;
const BYTES: usize = 1024;
const PARTIAL: usize = 16;
const RX: usize = 64 * 1024;
const Q: usize = 128;

/// A hasher that does nothing: isolates the session's own cost.
#[derive(Default)]
struct NoHash;
impl Sha1 for NoHash {
    fn update(&mut self, _: &[u8]) {}
    fn finish(self) -> [u8; 20] {
        [0; 20]
    }
}

fn run<H: Sha1>(data: &[u8], piece_len: u32, hashes: &'static [u8], label: &str) {
    let geometry = Geometry::new(piece_len, data.len() as u64).unwrap();
    let ih = InfoHash([7; 20]);
    let now = Instant::from_millis(1);
    let mut seed_state =
        ResumeState::<BYTES, PARTIAL, MAX_RANGES>::new(ih, geometry.piece_count()).unwrap();
    seed_state.have.fill();
    let mut seed: Box<Session<H, &'static [u8], PEERS, BYTES, PARTIAL, RX, Q>> = Box::new(
        Session::new(
            now,
            Config::new(PeerId([1; 20]), 1),
            ih,
            geometry,
            hashes,
            Some(&seed_state),
        )
        .unwrap(),
    );
    let mut leech: Box<Session<H, &'static [u8], PEERS, BYTES, PARTIAL, RX, Q>> = Box::new(
        Session::new(
            now,
            Config::new(PeerId([2; 20]), 2),
            ih,
            geometry,
            hashes,
            None,
        )
        .unwrap(),
    );
    // Touch every page now, so page faults are not counted as the session's cost.
    let mut disk = vec![1u8; data.len()];
    let addr = "10.0.0.1:1".parse().unwrap();
    let mut buf = vec![0u8; MIN_OUTPUT_BUF * 4];
    // Leech dials the seed.
    let lh: PeerHandle = loop {
        if let Output::Command(Command::Connect { peer, .. }) = leech.poll_output(now, &mut buf) {
            break peer;
        }
        leech.handle_peers(now, [addr]);
    };
    let sh = seed
        .handle_incoming(now, "10.0.0.2:2".parse().unwrap())
        .unwrap();
    leech.handle_connected(now, lh);
    let mut to_seed: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut to_leech: Vec<u8> = Vec::with_capacity(64 << 20);
    let start = WallClock::now();
    let cpu0 = cpu_seconds();
    while !leech.is_complete() {
        loop {
            match seed.poll_output(now, &mut buf) {
                Output::Timeout(_) => break,
                Output::Transmit { peer, bytes } => {
                    to_leech.extend_from_slice(bytes);
                    let n = bytes.len();
                    seed.handle_sent(now, peer, n);
                }
                Output::Command(Command::SendBlock {
                    peer,
                    header,
                    piece,
                    offset,
                    len,
                }) => {
                    let at = geometry.piece_offset(piece) as usize + offset as usize;
                    to_leech.extend_from_slice(&header);
                    to_leech.extend_from_slice(&data[at..at + len as usize]);
                    seed.handle_sent(now, peer, 13 + len as usize);
                }
                _ => {}
            }
        }
        let mut off = 0;
        while off < to_seed.len() {
            off += seed.handle_input(now, sh, &to_seed[off..]);
        }
        to_seed.clear();
        let mut off = 0;
        loop {
            if off < to_leech.len() {
                off += leech.handle_input(now, lh, &to_leech[off..]);
            }
            let mut progressed = false;
            loop {
                match leech.poll_output(now, &mut buf) {
                    Output::Timeout(_) => break,
                    Output::Transmit { peer, bytes } => {
                        to_seed.extend_from_slice(bytes);
                        let n = bytes.len();
                        leech.handle_sent(now, peer, n);
                    }
                    Output::Write {
                        op,
                        piece,
                        offset,
                        bytes,
                    } => {
                        let at = geometry.piece_offset(piece) as usize + offset as usize;
                        disk[at..at + bytes.len()].copy_from_slice(bytes);
                        leech.handle_write_done(now, op, Ok(()));
                        progressed = true;
                    }
                    Output::Command(Command::Read {
                        op,
                        piece,
                        offset,
                        len,
                    }) => {
                        let at = geometry.piece_offset(piece) as usize + offset as usize;
                        let chunk = disk[at..at + len as usize].to_vec();
                        leech.handle_read_done(now, op, Ok(&chunk));
                    }
                    _ => progressed = true,
                }
            }
            if off >= to_leech.len() && !progressed {
                break;
            }
        }
        to_leech.clear();
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let gib = data.len() as f64 / (1u64 << 30) as f64;
    assert!(disk == data, "{label}: data differs");
    println!(
        "{label:<28} {:>7.2} GiB/s   {:.3} CPU-s per GiB (seed + leech, incl. memcpy storage)",
        gib / wall,
        cpu / gib
    );
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn main() {
    let len = 512 << 20;
    let piece_len = 256 * 1024;
    let data: Vec<u8> = (0..len)
        .map(|i: usize| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut hashes = Vec::new();
    for piece in data.chunks(piece_len) {
        hashes.extend_from_slice(&sha1_smol::Sha1::from(piece).digest().bytes());
    }
    let hashes: &'static [u8] = Box::leak(hashes.into_boxed_slice());
    let zero: &'static [u8] = Box::leak(vec![0u8; hashes.len()].into_boxed_slice());
    run::<NoHash>(&data, piece_len as u32, zero, "session only (no hashing)");
    run::<Sha1Smol>(&data, piece_len as u32, hashes, "session + sha1_smol");
}
