//! Placing and starting a session: the empty value for a `static` or the heap, `start` in
//! place, and continuing from a resume state.

use heapless::{Deque, Vec};

use super::announce::Announce;
use super::peer::Peer;
use super::pex::PexLog;
use super::pieces::Partial;
use super::{Config, Resume, Session, SessionError, Waste, MIN_SEND_WINDOW};
use crate::bitfield::Bitfield;
use crate::picker::Picker;
use crate::sha1::Sha1;
use crate::{Geometry, InfoHash, Instant};

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
    /// Connection slots: `PEERS`.
    pub const SLOTS: usize = PEERS;

    /// Whether this shape serves the torrent's metadata (BEP 9) when started with it: not a
    /// session that never downloads (`PARTIAL = 0`, the MCU seeder), whose small output buffer
    /// could not carry a 16 KiB metadata piece anyway; there the code is compiled out.
    pub const SERVES_METADATA: bool = PARTIAL > 0;

    /// The `reqq` we advertise (BEP 10): the `Q` requests we queue per peer, plus the requests
    /// (17 bytes each) its receive ring holds behind them; past the queue, a request waits in
    /// the ring until uploads drain, never rejected. Some clients (Transmission 3.00) keep no
    /// more requests in flight than this: with `Q` alone (256) one Transmission leech took
    /// exactly 4 MiB a second from our seed on a 25 MB/s link; with this, 64 MiB in 4.4 s
    /// (`tests/lab/run.sh 7b-transmission-leech`, 2026-12-07).
    pub const ADVERTISED_REQQ: u32 = (Q + RX / 17) as u32;

    /// A session for no torrent, doing nothing: the value to put in a `static` before
    /// [`Session::start`] fills it in place.
    pub const EMPTY: Self = Self::with_peers([const { Peer::new() }; PEERS]);

    /// [`Session::EMPTY`], built by code where it is called: a large session built on the heap
    /// (`Box::new(Session::empty())`) puts no multi-megabyte constant in the program image.
    pub fn empty() -> Self {
        Self::with_peers(core::array::from_fn(|_| Peer::new()))
    }

    const fn with_peers(peers: [Peer<BYTES, RX, Q>; PEERS]) -> Self {
        Session {
            config: Config::new(crate::PeerId([0; 20]), 0),
            info_hash: InfoHash([0; 20]),
            geometry: Geometry::NONE,
            hashes: None,
            hashes_at: 0,
            metadata_len: 0,
            have: Bitfield::empty(),
            have_count: 0,
            verified_bytes: 0,
            in_progress: Bitfield::empty(),
            wanted: Bitfield::empty(),
            wanted_missing: 0,
            wanted_left: 0,
            picker: Picker::empty(),
            revealed: Bitfield::empty(),
            reported: Bitfield::empty(),
            partials: Vec::new(),
            facts: Vec::new(),
            peers,
            known: Vec::new(),
            want_connect: false,
            slots_pending: false,
            bans: Vec::new(),
            cooling: Vec::new(),
            evicted: Deque::new(),
            strikes: Vec::new(),
            parole: Vec::new(),
            ops: Vec::new(),
            next_op: 0,
            have_log: Deque::new(),
            have_log_end: 0,
            pex_log: PexLog::new(),
            partial_gen: 0,
            adverts: Vec::new(),
            own_ips: Vec::new(),
            events: Deque::new(),
            cursor: 0,
            announce: Announce::new(),
            next_rechoke: Instant::ZERO,
            rechoke_round: 0,
            persist_dirty: false,
            next_persist: Instant::ZERO,
            uploaded: 0,
            downloaded: 0,
            waste: Waste {
                duplicate: 0,
                unrequested: 0,
                corrupt: 0,
            },
            duplicates: false,
            stalls: 0,
            rng: 1,
            complete_at_start: false,
            now: Instant::ZERO,
        }
    }

    /// Build a started session by value (see [`Session::start`]). Fine for small shapes; a
    /// large one is better started in place, where it already lives.
    pub fn new(
        now: Instant,
        config: Config,
        info_hash: InfoHash,
        geometry: Geometry,
        piece_hashes: P,
        resume: Option<&Resume<BYTES, PARTIAL>>,
    ) -> Result<Self, SessionError> {
        let mut session = Self::empty();
        session.start(now, config, info_hash, geometry, piece_hashes, resume)?;
        Ok(session)
    }

    /// Start, in place, the session for the torrent `info_hash` of shape `geometry` whose
    /// SHA-1 piece hashes are `piece_hashes`, continuing from `resume` when given. Whatever
    /// the session held before is forgotten (the shell closes any sockets it still has).
    ///
    /// A session with no picker (`PICK = 0`) or no room for partial pieces (`PARTIAL = 0`)
    /// only seeds: it starts only with every piece, or with [`Config::upload_only`].
    pub fn start(
        &mut self,
        now: Instant,
        config: Config,
        info_hash: InfoHash,
        geometry: Geometry,
        piece_hashes: P,
        resume: Option<&Resume<BYTES, PARTIAL>>,
    ) -> Result<(), SessionError> {
        let len = geometry.piece_count() as usize * 20;
        if piece_hashes.as_ref().len() != len {
            return Err(SessionError::BadPieceHashes);
        }
        self.begin(now, config, info_hash, geometry, piece_hashes, 0, 0, resume)
    }

    /// [`Session::start`] for a session that also serves the torrent's metadata to peers that
    /// ask for it (BEP 9 `ut_metadata`, so magnet links resolve from us): `info` is the whole
    /// info dictionary, exactly as it hashes to `info_hash` (which is the caller's to check),
    /// with the piece hashes at `hashes_at` in it
    /// ([`Metainfo::pieces_offset`](crate::metainfo::Metainfo::pieces_offset)). A shape that
    /// does not [serve metadata](Self::SERVES_METADATA) starts as [`Session::start`] would.
    #[allow(clippy::too_many_arguments)]
    pub fn start_serving_metadata(
        &mut self,
        now: Instant,
        config: Config,
        info_hash: InfoHash,
        geometry: Geometry,
        info: P,
        hashes_at: usize,
        resume: Option<&Resume<BYTES, PARTIAL>>,
    ) -> Result<(), SessionError> {
        let len = geometry.piece_count() as usize * 20;
        let size = info.as_ref().len();
        let fits = hashes_at.checked_add(len).is_some_and(|end| end <= size);
        let metadata_len = u32::try_from(size).map_err(|_| SessionError::BadPieceHashes)?;
        if !fits {
            return Err(SessionError::BadPieceHashes);
        }
        let at = hashes_at;
        self.begin(
            now,
            config,
            info_hash,
            geometry,
            info,
            at,
            metadata_len,
            resume,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn begin(
        &mut self,
        now: Instant,
        config: Config,
        info_hash: InfoHash,
        geometry: Geometry,
        piece_hashes: P,
        hashes_at: usize,
        metadata_len: u32,
        resume: Option<&Resume<BYTES, PARTIAL>>,
    ) -> Result<(), SessionError> {
        let count = geometry.piece_count();
        if config.send_window < MIN_SEND_WINDOW {
            return Err(SessionError::SendWindowTooSmall);
        }
        let too_many = |_| SessionError::TooManyPieces;
        self.have.reset(count).map_err(too_many)?;
        self.in_progress.reset(count).map_err(too_many)?;
        self.wanted.reset(count).map_err(too_many)?;
        self.wanted.fill();
        let can_download = self.picker.reset(count, config.seed).is_ok() && PARTIAL > 0;
        if !can_download {
            self.picker.reset(0, config.seed).map_err(too_many)?;
        }
        let _ = self.revealed.reset(if can_download { count } else { 0 });
        let _ = self.reported.reset(if can_download { count } else { 0 });
        self.info_hash = info_hash;
        self.geometry = geometry;
        self.hashes = Some(piece_hashes);
        self.hashes_at = hashes_at;
        self.metadata_len = if Self::SERVES_METADATA {
            metadata_len
        } else {
            0
        };
        self.have_count = 0;
        self.verified_bytes = 0;
        self.partials.clear();
        self.facts.clear();
        for p in self.peers.iter_mut() {
            p.clear();
        }
        self.known.clear();
        self.want_connect = false;
        self.slots_pending = false;
        self.bans.clear();
        self.cooling.clear();
        self.evicted.clear();
        self.strikes.clear();
        self.parole.clear();
        self.ops.clear();
        self.have_log.clear();
        self.have_log_end = 0;
        self.pex_log.clear();
        self.own_ips.clear();
        self.events.clear();
        self.cursor = 0;
        self.announce = Announce::new();
        self.next_rechoke = now + config.rechoke_interval;
        self.rechoke_round = 0;
        self.persist_dirty = false;
        self.next_persist = now;
        self.uploaded = 0;
        self.downloaded = 0;
        self.waste = Waste::default();
        self.duplicates = false;
        self.rng = config.seed | 1;
        self.now = now;
        self.config = config;
        if let Some(state) = resume {
            self.restore(state)?;
        }
        self.recount_wanted();
        if !can_download && !self.is_complete() && !self.config.upload_only {
            return Err(SessionError::SeedOnly);
        }
        self.complete_at_start = self.is_complete();
        Ok(())
    }

    fn restore(&mut self, state: &Resume<BYTES, PARTIAL>) -> Result<(), SessionError> {
        if state.info_hash != self.info_hash || state.piece_count != self.geometry.piece_count() {
            return Err(SessionError::BadResume);
        }
        self.have.clone_from(&state.have);
        self.have_count = self.have.count_ones();
        self.verified_bytes = (self.have.iter_ones())
            .filter_map(|i| self.geometry.piece(i))
            .map(|p| self.geometry.piece_len(p) as u64)
            .sum();
        self.uploaded = state.uploaded;
        self.downloaded = state.downloaded;
        for progress in state.partial.iter() {
            let Some(piece) = self.geometry.piece(progress.piece()) else {
                return Err(SessionError::BadResume);
            };
            if self.have.get(piece.get()) || progress.piece_len() != self.geometry.piece_len(piece)
            {
                return Err(SessionError::BadResume);
            }
            let partial = Partial::resumed(progress.clone());
            if self.partials.push(partial).is_err() {
                return Err(SessionError::BadResume);
            }
            self.in_progress.set(piece.get(), true);
        }
        for i in 0..self.partials.len() {
            if self.partials[i].written.is_complete() {
                self.start_verify(i);
            }
        }
        Ok(())
    }
}
