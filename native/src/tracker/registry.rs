//! The registry (R1): per info-hash swarms, per peer address, counters, bitfields, expiry, caps.
//!
//! Plain data behind one mutex: every method is synchronous and bounded. It never does I/O; the
//! servers, the poller and the snapshot call into it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use enjambre_core::InfoHash;
use hashbrown::{DefaultHashBuilder, HashMap};
use tokio::sync::broadcast;

use super::bits::{Arena, BitsError, Have, NewBits, Source};
use super::config::Limits;
use super::peers::{Event, IpBytes, Peer, PeerSet, COUNTED};
use super::select::{select, AskerBits, Picked};
use super::sse;

/// One torrent's swarm.
pub struct Swarm {
    /// Name from a registered .torrent.
    pub name: Option<Box<str>>,
    /// Exact piece count, from a registered .torrent or a seed's bitfield.
    pub pieces: Option<u32>,
    /// Registered with --torrent.
    pub registered: bool,
    pub v4: PeerSet<[u8; 4]>,
    pub v6: PeerSet<[u8; 16]>,
    pub arena: Arena,
    pub seeders: u32,
    pub leechers: u32,
    /// Completed downloads, counted once per peer that finished.
    pub completed: u64,
    /// The live feed, while anyone listens.
    pub feed: Option<broadcast::Sender<Arc<str>>>,
}

impl Swarm {
    fn new() -> Self {
        Swarm {
            name: None,
            pieces: None,
            registered: false,
            v4: PeerSet::default(),
            v6: PeerSet::default(),
            arena: Arena::default(),
            seeders: 0,
            leechers: 0,
            completed: 0,
            feed: None,
        }
    }

    /// Peers in both families.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The fewest and most pieces this torrent can have: both the exact count when known;
    /// else what the bitfields' byte length allows (a count of `8 × len − 7` to `8 × len`),
    /// raised to the highest piece a peer has; `None` before any bitfield is seen.
    pub fn piece_count_range(&self) -> Option<(usize, usize)> {
        if let Some(n) = self.pieces {
            return Some((n as usize, n as usize));
        }
        let most = self.arena.stride() * 8;
        if most == 0 {
            return None;
        }
        let least = (most - 7).max(self.arena.highest_piece().map_or(0, |i| i + 1));
        Some((least, most))
    }

    /// Send `msg()` to the live feed when it has listeners; drop the feed when it has none.
    pub fn emit(&mut self, msg: impl FnOnce(&Swarm) -> String) {
        if let Some(tx) = &self.feed {
            if tx.receiver_count() == 0 {
                self.feed = None;
                return;
            }
            let m: Arc<str> = msg(self).into();
            if let Some(tx) = &self.feed {
                let _ = tx.send(m);
            }
        }
    }
}

/// An announce, decoded and with the address the tracker will give out for it.
#[derive(Clone, Copy, Debug)]
pub struct AnnounceIn<'a> {
    pub info_hash: InfoHash,
    pub peer_id: [u8; 20],
    pub addr: SocketAddr,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
    pub numwant: Option<u32>,
    /// Self-reported bitfield, raw bytes (already base64url-decoded).
    pub bitfield: Option<&'a [u8]>,
}

/// Which address families a response may carry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Families {
    /// Only the asker's own (UDP: the packet format fixes it).
    Same,
    /// Both (HTTP: `peers` and `peers6`).
    Both,
}

/// Whether an announce stores its asker.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Asker {
    /// An ordinary peer: inserted, updated, or removed on `stopped`.
    Register,
    /// A peer nobody can dial yet (a page behind the bridge): it gets the swarm's peers and is
    /// never stored; an unknown swarm is not created for it.
    Unlisted,
}

/// What an announce answers besides the peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceOut {
    pub complete: u32,
    pub incomplete: u32,
    pub warning: Option<&'static str>,
}

/// Why an announce or a new swarm was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// --allow-only-registered and this info-hash is not registered.
    Unregistered,
    /// --max-torrents reached.
    TooManyTorrents,
}

impl Refusal {
    /// The failure reason sent to the client.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Unregistered => "torrent not registered with this tracker",
            Refusal::TooManyTorrents => "tracker full: too many torrents",
        }
    }
}

/// A peer the poller should dial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollTarget {
    pub info_hash: InfoHash,
    pub addr: SocketAddr,
    /// The swarm's bitfield length in bytes (0 = unknown), to place `Have`s after a silence.
    pub stride: usize,
}

/// Counters of refusals, for /metrics and the logs.
#[derive(Default, Clone, Copy, Debug)]
pub struct Refused {
    pub unregistered: u64,
    pub torrents_cap: u64,
    pub peers_cap: u64,
    pub bad_bitfield: u64,
}

/// All swarms.
pub struct Registry {
    /// Boxed: a map slot is then 28 bytes, however much of the table is empty.
    pub swarms: HashMap<InfoHash, Box<Swarm>, DefaultHashBuilder>,
    pub hasher: DefaultHashBuilder,
    pub limits: Limits,
    pub peer_total: usize,
    pub refused: Refused,
    rng: u64,
    scratch: Vec<u8>,
    /// When a cap was last reported at `warn` level (refusals are logged at most every 10 s).
    last_cap_warning: u32,
}

/// Unix seconds now, as the registry stores time.
pub fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().min(u64::from(u32::MAX)) as u32)
        .unwrap_or(0)
}

/// An address's family and key bytes (IPv4-mapped IPv6 counts as IPv4).
enum FamKey {
    V4([u8; 4]),
    V6([u8; 16]),
}

fn fam(ip: IpAddr) -> FamKey {
    match ip {
        IpAddr::V4(v4) => FamKey::V4(v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => FamKey::V4(v4.octets()),
            None => FamKey::V6(v6.octets()),
        },
    }
}

/// Run `$body` with `$set` the asker's family, `$other` the other family and `$parts` the rest.
macro_rules! with_family {
    ($swarm:expr, $ip:expr, |$set:ident, $other:ident, $parts:ident, $key:ident| $body:expr) => {{
        let (v4, v6, $parts) = split($swarm);
        match fam($ip) {
            FamKey::V4($key) => {
                let ($set, $other) = (v4, v6);
                $body
            }
            FamKey::V6($key) => {
                let ($set, $other) = (v6, v4);
                $body
            }
        }
    }};
}

impl Registry {
    /// An empty registry.
    pub fn new(limits: Limits) -> Self {
        Registry {
            swarms: HashMap::default(),
            hasher: DefaultHashBuilder::default(),
            limits,
            peer_total: 0,
            refused: Refused::default(),
            rng: rand::random::<u64>() | 1,
            scratch: Vec::new(),
            last_cap_warning: 0,
        }
    }

    /// Register a torrent: its name and exact piece count.
    pub fn register(&mut self, info_hash: InfoHash, name: &str, pieces: u32) {
        let s = self
            .swarms
            .entry(info_hash)
            .or_insert_with(|| Box::new(Swarm::new()));
        s.name = Some(name.into());
        s.registered = true;
        if s.pieces.is_none() && s.arena.stride() == (pieces as usize).div_ceil(8)
            || s.arena.stride() == 0
        {
            s.pieces = Some(pieces);
            s.arena.set_stride((pieces as usize).div_ceil(8));
        }
    }

    /// The swarm for `info_hash`, created if the caps and policy allow.
    pub fn swarm_mut(&mut self, info_hash: InfoHash) -> Result<&mut Swarm, Refusal> {
        if !self.swarms.contains_key(&info_hash) {
            if self.limits.allow_only_registered {
                self.refused.unregistered += 1;
                return Err(Refusal::Unregistered);
            }
            if self.swarms.len() >= self.limits.max_torrents {
                self.refused.torrents_cap += 1;
                self.warn_caps();
                return Err(Refusal::TooManyTorrents);
            }
            self.swarms.insert(info_hash, Box::new(Swarm::new()));
        }
        self.swarms
            .get_mut(&info_hash)
            .map(|b| &mut **b)
            .ok_or(Refusal::TooManyTorrents)
    }

    /// Handle one announce: update the registry, then choose peers for the asker into `out`.
    pub fn announce(
        &mut self,
        now: u32,
        a: &AnnounceIn<'_>,
        families: Families,
        out: &mut Vec<Picked>,
    ) -> Result<AnnounceOut, Refusal> {
        self.announce_as(now, a, families, Asker::Register, out)
    }

    /// [`Registry::announce`], storing the asker or not.
    pub fn announce_as(
        &mut self,
        now: u32,
        a: &AnnounceIn<'_>,
        families: Families,
        who: Asker,
        out: &mut Vec<Picked>,
    ) -> Result<AnnounceOut, Refusal> {
        out.clear();
        let unknown = !self.swarms.contains_key(&a.info_hash);
        if unknown && (a.event == Event::Stopped || who == Asker::Unlisted) {
            if self.limits.allow_only_registered {
                self.refused.unregistered += 1;
                return Err(Refusal::Unregistered);
            }
            return Ok(AnnounceOut {
                complete: 0,
                incomplete: 0,
                warning: None,
            });
        }
        let numwant = a
            .numwant
            .unwrap_or(self.limits.numwant_default)
            .min(self.limits.numwant_max) as usize;
        let limits = self.limits.clone();
        let hasher = self.hasher;
        let mut rng = self.rng;
        let mut peer_total = self.peer_total;
        let mut refused = self.refused;
        let mut scratch = std::mem::take(&mut self.scratch);
        let swarm = self.swarm_mut(a.info_hash)?;
        let mut warning = None;
        let ctx = Ctx {
            limits: &limits,
            hasher: &hasher,
            now,
        };
        let (complete, incomplete) = with_family!(swarm, a.addr.ip(), |set, other, parts, key| {
            let mut parts = parts;
            let asker = match who {
                Asker::Register => ctx.upsert(
                    &mut parts,
                    set,
                    key,
                    a,
                    &mut peer_total,
                    &mut refused,
                    &mut warning,
                ),
                Asker::Unlisted => None,
            };
            if a.event != Event::Stopped {
                let set_ref = &*set;
                scratch.clear();
                let bits = match asker.map(|i| (set_ref.peers[i].have, set_ref.peers[i].slot)) {
                    Some((Have::All, _)) => AskerBits::All,
                    Some((Have::None, _)) => AskerBits::None,
                    Some((Have::Some, slot)) => {
                        scratch.extend_from_slice(parts.arena.slot(slot));
                        AskerBits::Some(&scratch)
                    }
                    _ => AskerBits::Unknown,
                };
                let pc = parts.piece_count();
                select(
                    set_ref,
                    parts.arena,
                    pc,
                    asker,
                    &a.peer_id,
                    bits,
                    numwant,
                    &mut rng,
                    out,
                );
                if families == Families::Both && out.len() < numwant {
                    let want = numwant - out.len();
                    select(
                        &*other,
                        parts.arena,
                        pc,
                        None,
                        &a.peer_id,
                        AskerBits::Unknown,
                        want,
                        &mut rng,
                        out,
                    );
                }
            }
            (*parts.seeders, *parts.leechers)
        });
        let reply = AnnounceOut {
            complete,
            incomplete,
            warning,
        };
        let peers_cap_hit = refused.peers_cap > self.refused.peers_cap;
        self.rng = rng;
        self.peer_total = peer_total;
        self.refused = refused;
        self.scratch = scratch;
        if peers_cap_hit {
            self.warn_caps();
        }
        Ok(reply)
    }

    /// Report refusals at the caps, at most every 10 seconds.
    fn warn_caps(&mut self) {
        let now = unix_now();
        if now.saturating_sub(self.last_cap_warning) >= 10 {
            self.last_cap_warning = now;
            let r = self.refused;
            tracing::warn!(
                torrents = self.swarms.len(),
                peers = self.peer_total,
                refused_torrents = r.torrents_cap,
                refused_peers = r.peers_cap,
                max_torrents = self.limits.max_torrents,
                max_peers = self.limits.max_peers,
                max_peers_per_torrent = self.limits.max_peers_per_torrent,
                "registry at its caps: new torrents are refused (\"tracker full\"), new peers are served but not stored"
            );
        }
    }

    /// Whether the swarm of `info_hash` currently lists a peer at `addr`.
    pub fn lists(&self, info_hash: &InfoHash, addr: SocketAddr) -> bool {
        let Some(s) = self.swarms.get(info_hash) else {
            return false;
        };
        match fam(addr.ip()) {
            FamKey::V4(k) => s.v4.find(&self.hasher, k, addr.port()).is_some(),
            FamKey::V6(k) => s.v6.find(&self.hasher, k, addr.port()).is_some(),
        }
    }

    /// (seeders, completed, leechers) of a swarm, zeros when unknown.
    pub fn scrape(&self, info_hash: &InfoHash) -> (u32, u64, u32) {
        self.swarms
            .get(info_hash)
            .map(|s| (s.seeders, s.completed, s.leechers))
            .unwrap_or((0, 0, 0))
    }

    /// Collect up to `max` peers due for a poll, and push their next poll out by one interval.
    /// Peers whose pieces are known without a poll are skipped (see [`needs_poll`]).
    pub fn due_polls(&mut self, now: u32, max: usize, out: &mut Vec<PollTarget>) {
        let Some(interval) = self.limits.poll_interval else {
            return;
        };
        let step = (interval.as_secs_f64().ceil() as u32).max(1);
        for (ih, swarm) in self.swarms.iter_mut() {
            let stride = swarm.arena.stride();
            let pieces = swarm.pieces;
            macro_rules! scan {
                ($set:expr) => {
                    for p in $set.peers.iter_mut() {
                        if out.len() >= max {
                            return;
                        }
                        if p.next_poll <= now && p.port != 0 {
                            p.next_poll = now.saturating_add(step);
                            if needs_poll(p, pieces, now, step) {
                                out.push(PollTarget {
                                    info_hash: *ih,
                                    addr: p.addr(),
                                    stride,
                                });
                            }
                        }
                    }
                };
            }
            scan!(swarm.v4);
            scan!(swarm.v6);
        }
    }

    /// Record a poll: `Ok(bits)` learned, or `Err(why)` (peer unreachable or refused; it keeps its
    /// last known bitfield and is backed off).
    pub fn record_poll(&mut self, now: u32, t: &PollTarget, result: Result<NewBits, &'static str>) {
        let step = self
            .limits
            .poll_interval
            .map(|d| (d.as_secs_f64().ceil() as u32).max(1))
            .unwrap_or(60);
        let max_pieces = self.limits.max_pieces;
        let hasher = self.hasher;
        let Some(swarm) = self.swarms.get_mut(&t.info_hash) else {
            return;
        };
        let mut bad = false;
        with_family!(swarm, t.addr.ip(), |set, _other, parts, key| {
            let Some(i) = set.find(&hasher, key, t.addr.port()) else {
                return;
            };
            match result {
                Err(_) => {
                    let p = &mut set.peers[i];
                    p.poll_fails = p.poll_fails.saturating_add(1);
                    // A peer that refused (or is away) is left alone for longer each time,
                    // starting at 10 s however short the interval.
                    let base = step.max(10);
                    let backoff = base
                        .saturating_mul(1 << u32::from(p.poll_fails.min(6) - 1))
                        .clamp(base, 3600.max(base));
                    p.next_poll = now.saturating_add(backoff);
                }
                Ok(bits) => {
                    let is_seed = set.peers[i].is_seed();
                    if let NewBits::Bytes(b) = &bits {
                        if is_seed {
                            learn_count_from_seed(parts.pieces, parts.arena, b, max_pieces);
                        }
                        bad = parts.arena.check(b, *parts.pieces, max_pieces).is_err();
                    }
                    let p = &mut set.peers[i];
                    p.poll_fails = if bad {
                        p.poll_fails.saturating_add(1)
                    } else {
                        0
                    };
                    p.next_poll = now.saturating_add(step);
                    if !bad {
                        parts.arena.release(p.have, p.slot);
                        let (have, slot) = parts.arena.store(&bits, *parts.pieces);
                        p.have = have;
                        p.slot = slot;
                        p.source = Source::Poll;
                        p.have_at = now;
                    }
                }
            }
        });
        let addr = t.addr;
        swarm.emit(|s| sse::peer_event(s, addr, now));
        if bad {
            self.refused.bad_bitfield += 1;
        }
    }

    /// Forget peers that have not announced within the peer timeout, and empty swarms that carry
    /// nothing worth keeping. Returns the number of peers removed.
    pub fn sweep(&mut self, now: u32) -> usize {
        let deadline = now.saturating_sub(self.limits.peer_timeout);
        let hasher = self.hasher;
        let mut removed = 0;
        for swarm in self.swarms.values_mut() {
            let (v4, v6, mut parts) = split(swarm);
            removed += expire(v4, &mut parts, &hasher, deadline);
            removed += expire(v6, &mut parts, &hasher, deadline);
        }
        self.swarms
            .retain(|_, s| s.len() > 0 || s.registered || s.completed > 0 || s.feed.is_some());
        self.peer_total = self.peer_total.saturating_sub(removed);
        removed
    }
}

/// The parts of a swarm other than its peer sets, borrowed alongside one set.
struct Parts<'s> {
    arena: &'s mut Arena,
    pieces: &'s mut Option<u32>,
    seeders: &'s mut u32,
    leechers: &'s mut u32,
    completed: &'s mut u64,
    feed: &'s mut Option<broadcast::Sender<Arc<str>>>,
}

impl Parts<'_> {
    fn piece_count(&self) -> usize {
        self.pieces
            .map(|n| n as usize)
            .unwrap_or(self.arena.stride() * 8)
    }
}

type Split<'s> = (
    &'s mut PeerSet<[u8; 4]>,
    &'s mut PeerSet<[u8; 16]>,
    Parts<'s>,
);

fn split(s: &mut Swarm) -> Split<'_> {
    let Swarm {
        v4,
        v6,
        arena,
        pieces,
        seeders,
        leechers,
        completed,
        feed,
        ..
    } = s;
    (
        v4,
        v6,
        Parts {
            arena,
            pieces,
            seeders,
            leechers,
            completed,
            feed,
        },
    )
}

fn expire<I: IpBytes>(
    set: &mut PeerSet<I>,
    parts: &mut Parts<'_>,
    hasher: &DefaultHashBuilder,
    deadline: u32,
) -> usize {
    let mut removed = 0;
    let mut i = 0;
    while i < set.peers.len() {
        if set.peers[i].last_seen < deadline {
            let p = set.remove(hasher, i);
            parts.arena.release(p.have, p.slot);
            if p.is_seed() {
                *parts.seeders = parts.seeders.saturating_sub(1);
            } else {
                *parts.leechers = parts.leechers.saturating_sub(1);
            }
            removed += 1;
        } else {
            i += 1;
        }
    }
    removed
}

struct Ctx<'c> {
    limits: &'c Limits,
    hasher: &'c DefaultHashBuilder,
    now: u32,
}

impl Ctx<'_> {
    /// Insert, update or (on `stopped`) remove the asker; returns its position if it is present.
    #[allow(clippy::too_many_arguments)]
    fn upsert<I: IpBytes>(
        &self,
        parts: &mut Parts<'_>,
        set: &mut PeerSet<I>,
        key: I,
        a: &AnnounceIn<'_>,
        peer_total: &mut usize,
        refused: &mut Refused,
        warning: &mut Option<&'static str>,
    ) -> Option<usize> {
        let port = a.addr.port();
        let found = set.find(self.hasher, key, port);
        if a.event == Event::Stopped {
            if let Some(i) = found {
                let p = set.remove(self.hasher, i);
                parts.arena.release(p.have, p.slot);
                if p.is_seed() {
                    *parts.seeders = parts.seeders.saturating_sub(1);
                } else {
                    *parts.leechers = parts.leechers.saturating_sub(1);
                }
                *peer_total = peer_total.saturating_sub(1);
                let addr = a.addr;
                emit_parts(parts.feed, || sse::leave_event(addr));
            }
            return None;
        }
        let i = match found {
            Some(i) => {
                let p = &mut set.peers[i];
                let was_seed = p.is_seed();
                let finished = a.left == 0
                    && p.flags & COUNTED == 0
                    && (a.event == Event::Completed || !was_seed);
                if finished {
                    *parts.completed += 1;
                    p.flags |= COUNTED;
                }
                if was_seed != (a.left == 0) {
                    if was_seed {
                        *parts.seeders = parts.seeders.saturating_sub(1);
                        *parts.leechers += 1;
                    } else {
                        *parts.leechers = parts.leechers.saturating_sub(1);
                        *parts.seeders += 1;
                    }
                }
                p.peer_id = a.peer_id;
                p.uploaded = a.uploaded;
                p.downloaded = a.downloaded;
                p.left = a.left;
                p.event = a.event;
                p.last_seen = self.now;
                i
            }
            None => {
                let per_torrent = (*parts.seeders + *parts.leechers) as usize;
                if *peer_total >= self.limits.max_peers
                    || per_torrent >= self.limits.max_peers_per_torrent
                {
                    refused.peers_cap += 1;
                    return None;
                }
                let mut flags = 0;
                if a.left == 0 {
                    // A seed counts as a completion only when it says it just completed.
                    if a.event == Event::Completed {
                        *parts.completed += 1;
                    }
                    flags |= COUNTED;
                    *parts.seeders += 1;
                } else {
                    *parts.leechers += 1;
                }
                *peer_total += 1;
                set.insert(
                    self.hasher,
                    Peer {
                        ip: key,
                        port,
                        event: a.event,
                        have: Have::Unknown,
                        source: Source::Report,
                        poll_fails: 0,
                        flags,
                        peer_id: a.peer_id,
                        uploaded: a.uploaded,
                        downloaded: a.downloaded,
                        left: a.left,
                        last_seen: self.now,
                        have_at: 0,
                        next_poll: self.now.saturating_add(self.limits.poll_grace),
                        slot: u32::MAX,
                    },
                )
            }
        };
        if a.left == 0 {
            // Nothing left to download means every piece, whatever was learned before.
            if let Some(bytes) = a.bitfield {
                learn_count_from_seed(parts.pieces, parts.arena, bytes, self.limits.max_pieces);
            }
            let p = &mut set.peers[i];
            if p.have != Have::All {
                parts.arena.release(p.have, p.slot);
                let (have, slot) = parts.arena.store(&NewBits::All, *parts.pieces);
                p.have = have;
                p.slot = slot;
                p.source = Source::Report;
                p.have_at = self.now;
            }
        } else if let Some(bytes) = a.bitfield {
            match parts
                .arena
                .check(bytes, *parts.pieces, self.limits.max_pieces)
            {
                Ok(()) => {
                    let p = &mut set.peers[i];
                    parts.arena.release(p.have, p.slot);
                    let (have, slot) = parts
                        .arena
                        .store(&NewBits::Bytes(bytes.to_vec()), *parts.pieces);
                    p.have = have;
                    p.slot = slot;
                    p.source = Source::Report;
                    p.have_at = self.now;
                }
                Err(e) => {
                    refused.bad_bitfield += 1;
                    *warning = Some(match e {
                        BitsError::WrongLength => "bitfield ignored: wrong length for this torrent",
                        BitsError::SpareBits => "bitfield ignored: spare bits set",
                        BitsError::TooLarge => "bitfield ignored: too large",
                    });
                }
            }
        } else {
            let p = &mut set.peers[i];
            if p.have == Have::All && p.source == Source::Report {
                // "Every piece" came from an earlier `left=0`; this peer now lacks some.
                parts.arena.release(p.have, p.slot);
                p.have = Have::Unknown;
                p.slot = u32::MAX;
            }
        }
        if parts.feed.is_some() {
            let p = &set.peers[i];
            let json = super::swarm_api::peer_json(p, parts.arena, *parts.pieces, self.now);
            emit_parts(parts.feed, || {
                format!("{{\"type\":\"peer\",\"peer\":{json}}}")
            });
        }
        Some(i)
    }
}

/// Whether polling `p` could teach the tracker anything: not for a seed (`left=0` is every
/// piece) once the piece count is known or the seed itself said HaveAll, nor for a peer whose
/// own report is younger than one poll interval. Every poll not made is a connection the
/// peer's real swarm does not compete with.
fn needs_poll<I: IpBytes>(p: &Peer<I>, pieces: Option<u32>, now: u32, step: u32) -> bool {
    if p.is_seed() {
        return pieces.is_none() && !(p.source == Source::Poll && p.have == Have::All);
    }
    let fresh_report = p.source == Source::Report
        && p.have != Have::Unknown
        && now.saturating_sub(p.have_at) <= step;
    !fresh_report
}

/// A seed's own bitfield has every bit set: when the piece count is not known yet, its set
/// bits are the count (if they fill the bitfield's length as a count must).
fn learn_count_from_seed(
    pieces: &mut Option<u32>,
    arena: &mut Arena,
    bits: &[u8],
    max_pieces: u32,
) {
    if pieces.is_some() {
        return;
    }
    let ones: u32 = bits.iter().map(|x| x.count_ones()).sum();
    if ones > 0
        && (ones as usize).div_ceil(8) == bits.len()
        && arena.check(bits, Some(ones), max_pieces).is_ok()
    {
        *pieces = Some(ones);
        arena.set_stride(bits.len());
    }
}

fn emit_parts(feed: &mut Option<broadcast::Sender<Arc<str>>>, msg: impl FnOnce() -> String) {
    if let Some(tx) = feed {
        if tx.receiver_count() == 0 {
            *feed = None;
        } else {
            let _ = tx.send(msg().into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> Limits {
        Limits {
            interval: 600,
            min_interval: 60,
            peer_timeout: 100,
            numwant_default: 50,
            numwant_max: 200,
            max_torrents: 4,
            max_peers_per_torrent: 8,
            max_peers: 20,
            max_pieces: 64,
            allow_only_registered: false,
            poll_interval: Some(std::time::Duration::from_secs(30)),
            poll_grace: 0,
        }
    }

    fn ann(t: u8, p: u8, left: u64, event: Event, bits: Option<&[u8]>) -> AnnounceIn<'_> {
        AnnounceIn {
            info_hash: InfoHash([t; 20]),
            peer_id: [p; 20],
            addr: SocketAddr::from(([10, 0, 0, p % 4], 6000 + u16::from(p))),
            uploaded: 0,
            downloaded: 0,
            left,
            event,
            numwant: None,
            bitfield: bits,
        }
    }

    /// Everything the registry keeps incrementally, recomputed from scratch.
    fn check_invariants(r: &Registry) {
        let mut total = 0;
        for s in r.swarms.values() {
            let seeds = s.v4.peers.iter().filter(|p| p.is_seed()).count()
                + s.v6.peers.iter().filter(|p| p.is_seed()).count();
            assert_eq!(s.seeders as usize, seeds);
            assert_eq!((s.seeders + s.leechers) as usize, s.len());
            assert!(s.len() <= r.limits.max_peers_per_torrent);
            for (i, p) in s.v4.peers.iter().enumerate() {
                assert_eq!(s.v4.find(&r.hasher, p.ip, p.port), Some(i));
            }
            let full = s.v4.peers.iter().filter(|p| p.have == Have::All).count() as u32;
            for piece in 0..s.piece_count_range().map_or(0, |r| r.1) {
                let some =
                    s.v4.peers
                        .iter()
                        .filter(|p| {
                            p.have == Have::Some
                                && super::super::bits::get_bit(s.arena.slot(p.slot), piece)
                        })
                        .count() as u32;
                assert_eq!(s.arena.availability(piece), some + full, "piece {piece}");
            }
            total += s.len();
        }
        assert_eq!(total, r.peer_total);
        assert!(r.peer_total <= r.limits.max_peers);
        assert!(r.swarms.len() <= r.limits.max_torrents);
    }

    #[test]
    fn an_empty_swarm_stays_small() {
        // Many torrents with one or two peers each: the per-swarm cost matters.
        assert!(
            std::mem::size_of::<Swarm>() <= 136,
            "{}",
            std::mem::size_of::<Swarm>()
        );
    }

    #[test]
    fn completions_count_once_per_finished_peer() {
        let mut r = Registry::new(limits());
        let mut out = Vec::new();
        r.announce(
            1,
            &ann(1, 1, 10, Event::Started, None),
            Families::Both,
            &mut out,
        )
        .unwrap();
        r.announce(
            2,
            &ann(1, 1, 0, Event::Completed, None),
            Families::Both,
            &mut out,
        )
        .unwrap();
        r.announce(
            3,
            &ann(1, 1, 0, Event::Completed, None),
            Families::Both,
            &mut out,
        )
        .unwrap();
        r.announce(
            4,
            &ann(1, 1, 0, Event::None, None),
            Families::Both,
            &mut out,
        )
        .unwrap();
        // A seed that starts as a seed never completed anything here.
        r.announce(
            5,
            &ann(1, 2, 0, Event::Started, None),
            Families::Both,
            &mut out,
        )
        .unwrap();
        // A leech that reaches left=0 without saying `completed` did complete.
        r.announce(
            6,
            &ann(1, 3, 5, Event::Started, None),
            Families::Both,
            &mut out,
        )
        .unwrap();
        r.announce(
            7,
            &ann(1, 3, 0, Event::None, None),
            Families::Both,
            &mut out,
        )
        .unwrap();
        assert_eq!(r.scrape(&InfoHash([1; 20])), (3, 2, 0));
    }

    #[test]
    fn expiry_removes_silent_peers_and_empty_swarms() {
        let mut r = Registry::new(limits());
        let mut out = Vec::new();
        r.announce(
            1000,
            &ann(1, 1, 10, Event::Started, Some(&[0x80])),
            Families::Both,
            &mut out,
        )
        .unwrap();
        r.announce(
            1050,
            &ann(1, 2, 10, Event::Started, None),
            Families::Both,
            &mut out,
        )
        .unwrap();
        r.announce(
            1000,
            &ann(2, 3, 10, Event::Started, None),
            Families::Both,
            &mut out,
        )
        .unwrap();
        assert_eq!(r.sweep(1101), 2);
        assert_eq!(r.peer_total, 1);
        assert_eq!(
            r.swarms.len(),
            1,
            "empty swarm with nothing to keep is dropped"
        );
        assert_eq!(r.swarms[&InfoHash([1; 20])].arena.availability(0), 0);
        check_invariants(&r);
    }

    #[test]
    fn caps_hold() {
        let mut r = Registry::new(limits());
        let mut out = Vec::new();
        for t in 0..10 {
            let res = r.announce(
                1,
                &ann(t, 1, 1, Event::Started, None),
                Families::Both,
                &mut out,
            );
            assert_eq!(res.is_err(), t >= 4);
        }
        for p in 0..50 {
            r.announce(
                1,
                &ann(0, p, 1, Event::Started, None),
                Families::Both,
                &mut out,
            )
            .unwrap();
        }
        check_invariants(&r);
        assert_eq!(r.swarms[&InfoHash([0; 20])].len(), 8);
        assert!(r.refused.peers_cap > 0 && r.refused.torrents_cap == 6);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Announce {
            t: u8,
            p: u8,
            left: u64,
            event: u8,
            bits: Option<u8>,
        },
        Poll {
            t: u8,
            p: u8,
            bits: Option<u8>,
            fail: bool,
        },
        Sweep {
            advance: u32,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..6, 0u8..12, 0u64..3, 0u8..4, proptest::option::of(any::<u8>()))
                .prop_map(|(t, p, left, event, bits)| Op::Announce { t, p, left, event, bits }),
            2 => (0u8..6, 0u8..12, proptest::option::of(any::<u8>()), any::<bool>())
                .prop_map(|(t, p, bits, fail)| Op::Poll { t, p, bits, fail }),
            1 => (0u32..150).prop_map(|advance| Op::Sweep { advance }),
        ]
    }

    proptest! {
        #[test]
        fn incremental_counters_match_a_recount(ops in proptest::collection::vec(op(), 1..200)) {
            let mut r = Registry::new(limits());
            let mut out = Vec::new();
            let mut now = 1000u32;
            for o in ops {
                now += 1;
                match o {
                    Op::Announce { t, p, left, event, bits } => {
                        let b = bits.map(|b| [b]);
                        let a = ann(t, p, left, Event::from_u8(event), b.as_ref().map(|x| x.as_slice()));
                        if r.announce(now, &a, Families::Both, &mut out).is_ok() {
                            prop_assert!(out.iter().all(|x| x.addr != a.addr && x.peer_id != a.peer_id));
                            prop_assert!(out.len() <= 50);
                        }
                    }
                    Op::Poll { t, p, bits, fail } => {
                        let target = PollTarget { info_hash: InfoHash([t; 20]), addr: ann(t, p, 0, Event::None, None).addr, stride: 1 };
                        let result = if fail { Err("unreachable") } else {
                            Ok(match bits { None => NewBits::All, Some(0) => NewBits::None, Some(b) => NewBits::Bytes(vec![b]) })
                        };
                        r.record_poll(now, &target, result);
                    }
                    Op::Sweep { advance } => {
                        now += advance;
                        r.sweep(now);
                    }
                }
                check_invariants(&r);
            }
        }
    }
}
