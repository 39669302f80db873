//! Scenarios of the engine against a seed engine, over a "bridge" that cuts the byte stream
//! into messages of arbitrary sizes, as WebSockets through the bridge do.

use core::net::SocketAddr;

use enjambre_core::metainfo::{write_torrent, TorrentSpec};
use enjambre_core::rng::Rng;
use enjambre_core::session::{CloseReason, PeerHandle};
use enjambre_core::sha1::{Sha1 as _, Sha1Smol};
use enjambre_core::{Duration, Instant, PeerId};

use crate::engine::{Engine, Net, Note};
use crate::file::MemFile;
use crate::store::{BrowserResume, Files, Store};
use crate::torrent::Torrent;

const PIECE: u32 = 32 * 1024;

fn content() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn torrent(data: &[u8]) -> Torrent {
    let mut pieces = Vec::new();
    for chunk in data.chunks(PIECE as usize) {
        let mut h = Sha1Smol::default();
        h.update(chunk);
        pieces.extend_from_slice(&h.finish());
    }
    let spec = TorrentSpec {
        name: "stream.bin",
        piece_length: PIECE,
        pieces: &pieces,
        files: &[],
        length: data.len() as u64,
        trackers: &[],
        private: false,
        created_by: None,
        creation_date: None,
        comment: None,
    };
    let mut out = vec![0u8; 4096];
    let n = write_torrent(&spec, &mut out).unwrap();
    Torrent::parse(&out[..n]).unwrap()
}

fn files() -> Files<MemFile> {
    Files {
        data: MemFile::default(),
        state: MemFile::default(),
        journal: MemFile::default(),
    }
}

/// Connections as a test sees them: what each side queued, and connects asked for.
#[derive(Default)]
struct Wire {
    out: Vec<(PeerHandle, Vec<u8>)>,
    connects: Vec<(PeerHandle, SocketAddr)>,
    closed: Vec<PeerHandle>,
}

impl Net for Wire {
    fn connect(&mut self, peer: PeerHandle, addr: SocketAddr) {
        self.connects.push((peer, addr));
    }
    fn send(&mut self, peer: PeerHandle, bytes: &[u8]) {
        self.out.push((peer, bytes.to_vec()));
    }
    fn close(&mut self, peer: PeerHandle, _: CloseReason) {
        self.closed.push(peer);
    }
}

struct Swarm {
    now: Instant,
    leech: Engine<MemFile>,
    seed: Engine<MemFile>,
    leech_wire: Wire,
    seed_wire: Wire,
    rng: Rng,
    /// The leech's handle for the seed, and the seed's for the leech.
    link: Option<(PeerHandle, PeerHandle)>,
    /// Payload-carrying bytes the seed sent.
    seed_sent: usize,
}

const SEED: &str = "10.0.0.7:6881";
const LEECH: &str = "10.0.0.5:51413";

impl Swarm {
    fn new(data: &[u8], leech_files: Files<MemFile>) -> Self {
        let t = torrent(data);
        let now = Instant::from_millis(1);
        let (mut store, _) = Store::open(files(), t.info_hash, t.geometry, 1).unwrap();
        store.data().bytes = data.to_vec();
        let mut all = BrowserResume::new(t.info_hash, t.geometry.piece_count()).unwrap();
        all.have.fill();
        let seed = Engine::new(
            now,
            &t,
            store,
            Some(&all),
            PeerId(*b"-EJ0001-seed00000000"),
            1,
        );
        let (store, opened) = Store::open(leech_files, t.info_hash, t.geometry, 2).unwrap();
        let resume = opened.resume.as_deref();
        let id = PeerId(*b"-EJ0001-leech0000000");
        let mut leech = Engine::new(now, &t, store, resume, id, 2).unwrap();
        leech.session().handle_peers(now, [SEED.parse().unwrap()]);
        Swarm {
            now,
            leech,
            seed: seed.unwrap(),
            leech_wire: Wire::default(),
            seed_wire: Wire::default(),
            rng: Rng::new(3),
            link: None,
            seed_sent: 0,
        }
    }

    /// One round: both pump, the bridge carries what each sent in pieces of 1 to 3,000 bytes.
    fn step(&mut self) {
        self.now = self.now + Duration::from_millis(1);
        let now = self.now;
        self.leech.pump(now, &mut self.leech_wire);
        self.seed.pump(now, &mut self.seed_wire);
        for (peer, addr) in core::mem::take(&mut self.leech_wire.connects) {
            assert_eq!(addr, SEED.parse().unwrap());
            self.leech.connected(now, peer);
            // The leech dialled the seed's bridge port: the seed takes it in as the page does.
            let theirs = self.seed.incoming(now, LEECH.parse().unwrap()).unwrap();
            assert_eq!(self.seed.addr(theirs), Some(LEECH.parse().unwrap()));
            self.link = Some((peer, theirs));
        }
        let Some((to_seed, to_leech)) = self.link else {
            return;
        };
        for (peer, bytes) in core::mem::take(&mut self.leech_wire.out) {
            self.leech.session().handle_sent(now, peer, bytes.len());
            for chunk in split(&mut self.rng, &bytes) {
                self.seed.received(to_leech, chunk);
            }
        }
        for (peer, bytes) in core::mem::take(&mut self.seed_wire.out) {
            self.seed.session().handle_sent(now, peer, bytes.len());
            if bytes.len() > 13 {
                self.seed_sent += bytes.len() - 13;
            }
            for chunk in split(&mut self.rng, &bytes) {
                self.leech.received(to_seed, chunk);
            }
        }
    }
}

/// Cut `bytes` into messages of 1 to 3,000 bytes.
fn split<'a>(rng: &mut Rng, mut bytes: &'a [u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let n = (1 + rng.below(3000) as usize).min(bytes.len());
        out.push(&bytes[..n]);
        bytes = &bytes[n..];
    }
    out
}

/// Run `f` on a thread with room for two sessions built on the stack before they are boxed.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn a_download_over_a_stream_cut_anywhere_completes_byte_identical() {
    big_stack(download_over_a_cut_stream);
}

fn download_over_a_cut_stream() {
    let data = content();
    let mut swarm = Swarm::new(&data, files());
    let mut notes = Vec::new();
    for _ in 0..5000 {
        swarm.step();
        notes.extend(swarm.leech.take_notes());
        if swarm.leech.session().is_complete() {
            break;
        }
    }
    assert!(swarm.leech.session().is_complete(), "{notes:?}");
    assert_eq!(swarm.leech.store().data().bytes, data);
    assert!(notes.contains(&Note::Connected(SEED.parse().unwrap())));
    assert!(notes.contains(&Note::Completed));
    let seed: SocketAddr = SEED.parse().unwrap();
    assert!(notes
        .iter()
        .any(|n| matches!(n, Note::Block { addr, .. } if *addr == seed)));
}

#[test]
fn a_turn_that_stored_bytes_flushed_them_and_says_so() {
    big_stack(turns_say_when_they_flushed);
}

fn turns_say_when_they_flushed() {
    let data = content();
    let mut swarm = Swarm::new(&data, files());
    // The page's loop rests after a turn that `flushed()` (see `peer::FLUSH_GAP_MS`): such a
    // turn did flush the data file, and most turns of a download do not store anything.
    let (mut stored, mut other) = (0, 0);
    for _ in 0..5000 {
        let before = swarm.leech.store().data().flushes;
        swarm.step();
        if swarm.leech.flushed() {
            assert!(swarm.leech.store().data().flushes > before);
            stored += 1;
        } else {
            other += 1;
        }
        if swarm.leech.session().is_complete() {
            break;
        }
    }
    assert!(swarm.leech.session().is_complete());
    assert!(
        stored > 0 && other > 0,
        "{stored} turns stored, {other} did not"
    );
}

#[test]
fn blocks_that_follow_each_other_are_stored_by_one_write() {
    big_stack(blocks_stored_together);
}

fn blocks_stored_together() {
    let data = content();
    let mut swarm = Swarm::new(&data, files());
    for _ in 0..5000 {
        swarm.step();
        if swarm.leech.session().is_complete() {
            break;
        }
    }
    assert!(swarm.leech.session().is_complete());
    let file = swarm.leech.store().data();
    assert_eq!(file.bytes, data);
    // An OPFS write costs about the same for one block as for sixty-four: what a turn received
    // that follows on in the file goes out in one call. The bridge carried the bytes in pieces
    // of 1 to 3,000 bytes (about 130 for this file), each one stored as it came before.
    let blocks = data.len().div_ceil(16384);
    assert!(
        file.writes <= blocks,
        "{} writes for {blocks} blocks",
        file.writes
    );
}

#[test]
fn a_tab_killed_mid_piece_resumes_from_the_exact_byte() {
    big_stack(kill_mid_piece_and_resume);
}

fn kill_mid_piece_and_resume() {
    let data = content();
    let mut swarm = Swarm::new(&data, files());
    // Download until some piece is partly written, then lose the tab with no warning (and
    // whatever it had read and not yet taken): every turn that stored bytes ended with their
    // journal record, so nothing stored is lost.
    let mut steps = 0;
    while swarm.leech.session().stats().downloaded < 70_000 {
        swarm.step();
        steps += 1;
        assert!(steps < 5000);
    }
    let held = held(&mut swarm.leech);
    assert!(held.iter().any(|&(_, _, end)| end % PIECE != 0), "{held:?}");
    let files = leech_files(swarm.leech);

    let mut swarm = Swarm::new(&data, files);
    assert_eq!(
        self::held(&mut swarm.leech),
        held,
        "resumed at the exact byte"
    );
    let mut notes = Vec::new();
    for _ in 0..5000 {
        swarm.step();
        notes.extend(swarm.leech.take_notes());
        if swarm.leech.session().is_complete() {
            break;
        }
    }
    assert!(swarm.leech.session().is_complete(), "{notes:?}");
    assert_eq!(swarm.leech.store().data().bytes, data);
    for note in &notes {
        if let Note::Block {
            piece, offset, len, ..
        } = *note
        {
            let again = held
                .iter()
                .any(|&(p, s, e)| p == piece && offset < e && offset + len > s);
            assert!(!again, "fetched again: piece {piece} {offset}+{len}");
        }
    }
}

/// Every byte range the leech holds, by piece.
fn held(leech: &mut Engine<MemFile>) -> Vec<(u32, u32, u32)> {
    let session = leech.session();
    let geometry = *session.geometry();
    (geometry.pieces())
        .flat_map(|p| {
            let ranges: Vec<_> = session.piece_ranges(p).collect();
            ranges.into_iter().map(move |(s, e)| (p.get(), s, e))
        })
        .collect()
}

fn leech_files(leech: Engine<MemFile>) -> Files<MemFile> {
    leech.into_store().into_files()
}
