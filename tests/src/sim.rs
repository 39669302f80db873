//! A deterministic swarm simulator: several sessions, in-memory storage, links with seeded
//! latency, and a virtual clock that jumps to the earliest pending instant.
//!
//! The simulator plays every shell role (sockets, disk, tracker) and records what crossed each
//! link, so tests can check byte accounting exactly (which byte ranges were requested and from
//! whom, which were written twice).

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use enjambre_core::resume::ResumeState;
use enjambre_core::session::{
    Command, Config, Event, Output, PeerHandle, Session, MAX_RANGES, MIN_OUTPUT_BUF,
};
use enjambre_core::sha1::{Sha1, Sha1Smol};
use enjambre_core::wire::{Message, Status};
use enjambre_core::{Duration, Geometry, InfoHash, Instant, PeerId};

/// Peer slots per simulated session.
pub const PEERS: usize = 8;
/// Bitfield bytes: 512 pieces at most.
pub const BYTES: usize = 64;
/// Pieces in progress at once.
pub const PARTIAL: usize = 32;
/// Receive ring per peer.
pub const RX: usize = 8 * 1024;
/// Requests in flight per peer.
pub const Q: usize = 128;

/// The session type every simulated node runs.
pub type SimSession = Session<Sha1Smol, &'static [u8], PEERS, BYTES, PARTIAL, RX, Q>;
/// Its resume state.
pub type SimResume = ResumeState<BYTES, PARTIAL, MAX_RANGES>;

/// A torrent for the simulation: deterministic content and its piece hashes.
pub struct Torrent {
    /// The content.
    pub data: Vec<u8>,
    /// Concatenated SHA-1 of each piece.
    pub hashes: &'static [u8],
    /// Shape.
    pub geometry: Geometry,
    /// Info-hash (any 20 bytes will do in simulation).
    pub info_hash: InfoHash,
}

impl Torrent {
    /// Build a torrent of `len` bytes in pieces of `piece_len`, content drawn from `seed`.
    pub fn new(len: usize, piece_len: u32, seed: u64) -> Self {
        let mut rng = seed | 1;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        let mut hashes = Vec::new();
        for piece in data.chunks(piece_len as usize) {
            let mut h = Sha1Smol::default();
            h.update(piece);
            hashes.extend_from_slice(&h.finish());
        }
        let geometry = Geometry::new(piece_len, len as u64).unwrap();
        let mut ih = [0u8; 20];
        ih[..8].copy_from_slice(&seed.to_be_bytes());
        Torrent {
            data,
            hashes: Box::leak(hashes.into_boxed_slice()),
            geometry,
            info_hash: InfoHash(ih),
        }
    }
}

/// How a node's storage misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Serves correct data.
    Honest,
    /// Serves every block with its bytes flipped.
    Corrupt,
}

/// One simulated peer process.
pub struct Node {
    /// Its listening address.
    pub addr: SocketAddr,
    /// The running session, `None` while killed.
    pub session: Option<Box<SimSession>>,
    /// What its disk holds.
    pub disk: Vec<u8>,
    /// The last persisted resume state.
    pub persisted: Option<Vec<u8>>,
    /// When to call `handle_timeout`.
    pub deadline: Option<Instant>,
    /// Serving behaviour.
    pub behaviour: Behaviour,
    /// Events seen, in order.
    pub events: Vec<Event>,
    /// Durability facts (`PieceVerified`, `PieceDiscarded`) seen, in order.
    pub facts: Vec<Command>,
    /// Bytes written, by piece: (offset, len) in order, for accounting.
    pub writes: BTreeMap<u32, Vec<(u32, u32)>>,
    /// Requests this node sent: (to node, piece, begin, len).
    pub requests_sent: Vec<(usize, u32, u32, u32)>,
    /// Its uplink, bytes per second, shared by all its connections; `None`: about 4 MB/s
    /// per connection. With a rate, a socket takes bytes only as the uplink sends them.
    pub up_rate: Option<u64>,
    /// When its uplink is free again, in microseconds of virtual time.
    up_free_us: u64,
    config: Config,
}

/// A TCP connection between two nodes' slots.
struct Link {
    ends: [(usize, PeerHandle); 2],
    /// Bytes in flight toward end `k`: (arrival, bytes).
    inflight: [VecDeque<(Instant, Vec<u8>)>; 2],
    /// Bytes from end k's socket not yet accepted by `handle_input`.
    backlog: [Vec<u8>; 2],
    /// End k's socket reached end of stream: it hears so once its backlog is all offered
    /// (the shell contract's closing rule: bytes read before the end are never dropped).
    eof: [bool; 2],
    /// Partial message reassembly per direction, to log requests.
    sniff: [Vec<u8>; 2],
    closed: bool,
}

/// The whole simulated swarm.
pub struct Swarm {
    /// Virtual time.
    pub now: Instant,
    /// The torrent.
    pub torrent: Torrent,
    /// The nodes.
    pub nodes: Vec<Node>,
    links: Vec<Link>,
    rng: u64,
    /// One-way latency range, in milliseconds.
    pub latency_ms: (u64, u64),
    /// Announce interval the simulated tracker gives.
    pub announce_interval: Duration,
    /// Whether nodes added from now on exchange peers (`Config::pex`; on by default). The
    /// simulated tracker gives every node every address, so PEX only adds its messages.
    pub pex: bool,
    /// Whether seeds added from now on super-seed (`Config::super_seed`; off by default).
    pub super_seed: bool,
    buf: Vec<u8>,
    /// Bytes a rate-limited uplink will have sent: (when, node, peer, bytes).
    sending: Vec<(Instant, usize, PeerHandle, usize)>,
}

impl Swarm {
    /// An empty swarm for `torrent`, with random choices drawn from `seed`.
    pub fn new(torrent: Torrent, seed: u64) -> Self {
        Swarm {
            now: Instant::from_millis(1_000),
            torrent,
            nodes: Vec::new(),
            links: Vec::new(),
            rng: seed | 1,
            latency_ms: (1, 20),
            announce_interval: Duration::from_secs(30),
            pex: true,
            super_seed: false,
            buf: vec![0; MIN_OUTPUT_BUF * 2],
            sending: Vec::new(),
        }
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = self.latency_ms;
        Duration::from_millis(lo + self.random() % (hi - lo + 1))
    }

    /// Add a node that has all the data (`seed`) or none; returns its index.
    pub fn add_node(&mut self, seed: bool, behaviour: Behaviour) -> usize {
        let n = self.nodes.len();
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n as u8 + 1)), 6881);
        let disk = if seed {
            self.torrent.data.clone()
        } else {
            vec![0; self.torrent.data.len()]
        };
        let mut id = [b'-'; 20];
        id[..8].copy_from_slice(b"-SIM000-");
        id[19] = n as u8;
        let mut config = Config::new(PeerId(id), 6881);
        config.seed = 0x1234 + n as u64;
        config.pipeline_depth = Q;
        config.pex = self.pex;
        config.super_seed = self.super_seed && seed;
        let mut node = Node {
            addr,
            session: None,
            disk,
            persisted: None,
            deadline: Some(self.now),
            behaviour,
            events: Vec::new(),
            facts: Vec::new(),
            writes: BTreeMap::new(),
            requests_sent: Vec::new(),
            up_rate: None,
            up_free_us: 0,
            config,
        };
        let mut resume = None;
        if seed {
            let mut state =
                SimResume::new(self.torrent.info_hash, self.torrent.geometry.piece_count())
                    .unwrap();
            state.have.fill();
            resume = Some(state);
        }
        node.session = Some(self.build_session(&node, resume.as_ref()));
        self.nodes.push(node);
        n
    }

    /// Add a node that holds only the verified pieces `pieces` and the written, unverified
    /// byte ranges `ranges` (piece, start, end), on its disk and in its resume state: a leech
    /// as a departed seed left it. Returns its index.
    pub fn add_node_holding(&mut self, pieces: &[u32], ranges: &[(u32, u32, u32)]) -> usize {
        let n = self.add_node(false, Behaviour::Honest);
        let geometry = self.torrent.geometry;
        let mut state = SimResume::new(self.torrent.info_hash, geometry.piece_count()).unwrap();
        let mut copy = |piece: u32, start: u32, end: u32| {
            let at = geometry.piece_offset(geometry.piece(piece).unwrap()) as usize;
            let (s, e) = (at + start as usize, at + end as usize);
            self.nodes[n].disk[s..e].copy_from_slice(&self.torrent.data[s..e]);
        };
        for &piece in pieces {
            let len = geometry.piece_len(geometry.piece(piece).unwrap());
            copy(piece, 0, len);
            state.have.set(piece, true);
        }
        for &(piece, start, end) in ranges {
            copy(piece, start, end);
            state.record_write(&geometry, piece, start, end).unwrap();
        }
        self.nodes[n].session = Some(self.build_session(&self.nodes[n], Some(&state)));
        n
    }

    fn build_session(&self, node: &Node, resume: Option<&SimResume>) -> Box<SimSession> {
        Box::new(
            Session::new(
                self.now,
                node.config.clone(),
                self.torrent.info_hash,
                self.torrent.geometry,
                self.torrent.hashes,
                resume,
            )
            .unwrap(),
        )
    }

    /// Kill node `n` as `kill -9` would: its sockets drop, its disk and persisted state stay.
    pub fn kill(&mut self, n: usize) {
        self.nodes[n].session = None;
        self.nodes[n].deadline = None;
        for l in 0..self.links.len() {
            let link = &self.links[l];
            if link.closed {
                continue;
            }
            if let Some(k) = link.ends.iter().position(|e| e.0 == n) {
                // The host vanished: what it had sent and not yet delivered is lost too.
                self.links[l].inflight[1 - k].clear();
                self.close_link(l, k);
            }
        }
    }

    /// Cut one open connection chosen at random, as a network fault would (both ends learn it
    /// after the latency; bytes in flight are lost). Returns whether there was one to cut.
    pub fn cut_random_link(&mut self) -> bool {
        let open: Vec<usize> = (0..self.links.len())
            .filter(|&l| !self.links[l].closed)
            .collect();
        if open.is_empty() {
            return false;
        }
        let l = open[(self.random() % open.len() as u64) as usize];
        let at = self.now + self.latency();
        let link = &mut self.links[l];
        link.closed = true;
        for k in 0..2 {
            link.inflight[k].clear();
            link.backlog[k].clear();
            link.inflight[k].push_back((at, Vec::new()));
        }
        true
    }

    /// Restart node `n` from its persisted resume state.
    pub fn restart(&mut self, n: usize) {
        let resume = self.nodes[n].persisted.as_ref().map(|bytes| {
            SimResume::decode(bytes, self.torrent.info_hash, self.torrent.geometry)
                .expect("persisted state decodes")
        });
        let session = self.build_session(&self.nodes[n], resume.as_ref());
        self.nodes[n].session = Some(session);
        self.nodes[n].deadline = Some(self.now);
    }

    /// Whether node `n` has every piece and its disk equals the torrent.
    pub fn is_complete(&self, n: usize) -> bool {
        let node = &self.nodes[n];
        node.session.as_ref().is_some_and(|s| s.is_complete()) && node.disk == self.torrent.data
    }

    /// Run until `done` holds or `limit` of virtual time passes; returns whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Swarm) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.drain_all();
            if done(self) {
                return true;
            }
            let Some(next) = self.next_instant() else {
                return done(self);
            };
            if next > end {
                // Nothing happens before the limit: the clock still moves to it.
                self.now = end;
                return false;
            }
            self.now = next.max(self.now);
            self.deliver_due();
            self.confirm_sent();
            for n in 0..self.nodes.len() {
                if self.nodes[n].deadline.is_some_and(|d| d <= self.now) {
                    let now = self.now;
                    if let Some(s) = self.nodes[n].session.as_mut() {
                        s.handle_timeout(now);
                    }
                    self.nodes[n].deadline = None;
                }
            }
        }
    }

    fn next_instant(&self) -> Option<Instant> {
        let links = self
            .links
            .iter()
            .flat_map(|l| l.inflight.iter().filter_map(|q| q.front().map(|x| x.0)));
        let deadlines = self.nodes.iter().filter_map(|n| n.deadline);
        let sending = self.sending.iter().map(|x| x.0);
        links.chain(deadlines).chain(sending).min()
    }

    fn deliver_due(&mut self) {
        for l in 0..self.links.len() {
            for k in 0..2 {
                while let Some((t, _)) = self.links[l].inflight[k].front() {
                    if *t > self.now {
                        break;
                    }
                    let (_, bytes) = self.links[l].inflight[k].pop_front().unwrap();
                    if bytes.is_empty() {
                        // A close notice: heard once the bytes before it are all offered.
                        self.links[l].eof[k] = true;
                        self.close_if_drained(l, k);
                    } else {
                        self.links[l].backlog[k].extend_from_slice(&bytes);
                    }
                }
            }
        }
    }

    /// Feed backlogs and drain every node's outputs until nothing moves.
    fn drain_all(&mut self) {
        loop {
            let mut moved = false;
            for n in 0..self.nodes.len() {
                moved |= self.feed(n);
                moved |= self.drain(n);
            }
            if !moved {
                break;
            }
        }
    }

    fn feed(&mut self, n: usize) -> bool {
        let mut moved = false;
        for l in 0..self.links.len() {
            for k in 0..2 {
                let (node, h) = self.links[l].ends[k];
                if node != n || self.links[l].backlog[k].is_empty() {
                    continue;
                }
                let now = self.now;
                let Some(s) = self.nodes[n].session.as_mut() else {
                    continue;
                };
                let taken = s.handle_input(now, h, &self.links[l].backlog[k]);
                if taken > 0 {
                    self.links[l].backlog[k].drain(..taken);
                    self.close_if_drained(l, k);
                    moved = true;
                }
            }
        }
        moved
    }

    /// Tell end `k` of link `l` its socket ended, once nothing read before the end is left.
    fn close_if_drained(&mut self, l: usize, k: usize) {
        let link = &mut self.links[l];
        if !link.eof[k] || !link.backlog[k].is_empty() {
            return;
        }
        link.eof[k] = false;
        let (n, h) = link.ends[k];
        let now = self.now;
        if let Some(s) = self.nodes[n].session.as_mut() {
            s.handle_closed(now, h);
        }
    }

    fn drain(&mut self, n: usize) -> bool {
        let mut moved = false;
        let mut buf = std::mem::take(&mut self.buf);
        loop {
            let now = self.now;
            let Some(session) = self.nodes[n].session.as_mut() else {
                break;
            };
            let out = session.poll_output(now, &mut buf);
            match out {
                Output::Timeout(t) => {
                    self.nodes[n].deadline = Some(t);
                    break;
                }
                Output::Transmit { peer, bytes } => {
                    let bytes = bytes.to_vec();
                    let len = bytes.len();
                    // Sockets take everything at once, unless the uplink has a rate.
                    if let Some(at) = self.transmit(n, peer, bytes) {
                        self.sending.push((at, n, peer, len));
                    } else {
                        self.sent(n, peer, len);
                    }
                }
                Output::Write {
                    op,
                    piece,
                    offset,
                    bytes,
                } => {
                    let at = self.torrent.geometry.piece_offset(piece) as usize + offset as usize;
                    let node = &mut self.nodes[n];
                    node.disk[at..at + bytes.len()].copy_from_slice(bytes);
                    node.writes
                        .entry(piece.get())
                        .or_default()
                        .push((offset, bytes.len() as u32));
                    let s = node.session.as_mut().unwrap();
                    s.handle_write_done(now, op, Ok(()));
                    // Persist after every confirmed write, as the native shell's journal does.
                    persist(node);
                }
                Output::Command(cmd) => self.command(n, cmd),
                Output::Event(e) => self.nodes[n].events.push(e),
            }
            moved = true;
        }
        self.buf = buf;
        moved
    }

    fn command(&mut self, n: usize, cmd: Command) {
        let now = self.now;
        match cmd {
            Command::Connect { peer, addr } => {
                let target = self
                    .nodes
                    .iter()
                    .position(|x| x.addr == addr && x.session.is_some());
                let Some(t) = target else {
                    self.nodes[n]
                        .session
                        .as_mut()
                        .unwrap()
                        .handle_connect_failed(now, peer);
                    return;
                };
                let from = self.nodes[n].addr;
                let Ok(theirs) = self.nodes[t]
                    .session
                    .as_mut()
                    .unwrap()
                    .handle_incoming(now, from)
                else {
                    self.nodes[n]
                        .session
                        .as_mut()
                        .unwrap()
                        .handle_connect_failed(now, peer);
                    return;
                };
                self.nodes[n]
                    .session
                    .as_mut()
                    .unwrap()
                    .handle_connected(now, peer);
                self.links.push(Link {
                    ends: [(n, peer), (t, theirs)],
                    inflight: [VecDeque::new(), VecDeque::new()],
                    backlog: [Vec::new(), Vec::new()],
                    eof: [false, false],
                    sniff: [Vec::new(), Vec::new()],
                    closed: false,
                });
            }
            Command::Close { peer, .. } => {
                if let Some((l, k)) = self.link_of(n, peer) {
                    self.close_link(l, k);
                }
            }
            Command::SendBlock {
                peer,
                header,
                piece,
                offset,
                len,
            } => {
                let at = self.torrent.geometry.piece_offset(piece) as usize + offset as usize;
                let mut bytes = header.to_vec();
                let data = &self.nodes[n].disk[at..at + len as usize];
                match self.nodes[n].behaviour {
                    Behaviour::Honest => bytes.extend_from_slice(data),
                    Behaviour::Corrupt => bytes.extend(data.iter().map(|b| !b)),
                }
                if let Some(at) = self.transmit(n, peer, bytes) {
                    self.sending.push((at, n, peer, 13 + len as usize));
                } else {
                    self.sent(n, peer, 13 + len as usize);
                }
            }
            Command::Read {
                op,
                piece,
                offset,
                len,
            } => {
                let at = self.torrent.geometry.piece_offset(piece) as usize + offset as usize;
                let data = self.nodes[n].disk[at..at + len as usize].to_vec();
                self.nodes[n]
                    .session
                    .as_mut()
                    .unwrap()
                    .handle_read_done(now, op, Ok(&data));
            }
            Command::Announce { .. } => {
                let me = self.nodes[n].addr;
                let peers: Vec<SocketAddr> = self
                    .nodes
                    .iter()
                    .filter(|x| x.session.is_some() && x.addr != me)
                    .map(|x| x.addr)
                    .collect();
                let interval = self.announce_interval;
                let s = self.nodes[n].session.as_mut().unwrap();
                s.handle_peers(now, peers);
                s.handle_announce_ok(now, interval, None);
            }
            Command::PersistResume => persist(&mut self.nodes[n]),
            fact @ (Command::PieceVerified { .. } | Command::PieceDiscarded { .. }) => {
                self.nodes[n].facts.push(fact);
            }
        }
    }

    fn sent(&mut self, n: usize, peer: PeerHandle, len: usize) {
        let now = self.now;
        if let Some(s) = self.nodes[n].session.as_mut() {
            s.handle_sent(now, peer, len);
        }
    }

    fn link_of(&self, n: usize, peer: PeerHandle) -> Option<(usize, usize)> {
        self.links.iter().enumerate().find_map(|(l, link)| {
            if link.closed {
                return None;
            }
            link.ends
                .iter()
                .position(|e| *e == (n, peer))
                .map(|k| (l, k))
        })
    }

    /// Close link `l` from end `k`: the other end learns it after the latency.
    fn close_link(&mut self, l: usize, k: usize) {
        let at = self.now + self.latency();
        let link = &mut self.links[l];
        link.closed = true;
        link.inflight[k].clear();
        link.backlog[k].clear();
        link.inflight[1 - k].push_back((at, Vec::new()));
    }

    /// Put `bytes` on the link; with a rate-limited uplink, returns when the last of them
    /// leaves (the socket confirms them then).
    fn transmit(&mut self, n: usize, peer: PeerHandle, bytes: Vec<u8>) -> Option<Instant> {
        let (l, k) = self.link_of(n, peer)?;
        let to = self.links[l].ends[1 - k].0;
        let latency = self.latency();
        // In-order delivery: never earlier than what is already in flight.
        let last = self.links[l].inflight[1 - k]
            .back()
            .map(|x| x.0)
            .unwrap_or(Instant::ZERO);
        let mut at = (self.now + latency).max(last);
        self.sniff_requests(l, k, n, to, &bytes);
        let Some(rate) = self.nodes[n].up_rate else {
            // Segments of 4 KiB, one per millisecond: a link carries about 4 MB/s, and a
            // close can cut a message anywhere.
            for segment in bytes.chunks(4096) {
                self.links[l].inflight[1 - k].push_back((at, segment.to_vec()));
                at = at + Duration::from_millis(1);
            }
            return None;
        };
        // Segments of 1 KiB leave one after another at the uplink's rate, shared by every
        // connection of the node, and arrive a latency later.
        let node = &mut self.nodes[n];
        let mut free = node.up_free_us.max(self.now.as_millis() * 1000);
        for segment in bytes.chunks(1024) {
            free += segment.len() as u64 * 1_000_000 / rate;
            let arrive = (Instant::from_millis(free / 1000) + latency).max(at);
            at = arrive;
            self.links[l].inflight[1 - k].push_back((arrive, segment.to_vec()));
        }
        self.nodes[n].up_free_us = free;
        Some(Instant::from_millis(free.div_ceil(1000)))
    }

    /// Tell each session which bytes its rate-limited uplink sent by now.
    fn confirm_sent(&mut self) {
        let now = self.now;
        let mut k = 0;
        while k < self.sending.len() {
            if self.sending[k].0 <= now {
                let (_, n, peer, len) = self.sending.swap_remove(k);
                self.sent(n, peer, len);
            } else {
                k += 1;
            }
        }
    }

    /// Log the `Request` messages node `n` sends to node `to`.
    fn sniff_requests(&mut self, l: usize, k: usize, n: usize, to: usize, bytes: &[u8]) {
        let sniff = &mut self.links[l].sniff[k];
        sniff.extend_from_slice(bytes);
        // Skip the handshake once.
        if sniff.len() >= 68 && sniff[0] == 19 && &sniff[1..20] == b"BitTorrent protocol" {
            sniff.drain(..68);
        }
        while let Ok(Status::Complete((msg, used))) = Message::decode(sniff, &[], u32::MAX) {
            if let Message::Request {
                index,
                begin,
                length,
            } = msg
            {
                self.nodes[n].requests_sent.push((to, index, begin, length));
            }
            sniff.drain(..used);
        }
    }

    /// Count the events of node `n` that match `f`.
    pub fn count_events(&self, n: usize, f: impl Fn(&Event) -> bool) -> usize {
        self.nodes[n].events.iter().filter(|e| f(e)).count()
    }

    /// Count the durability facts of node `n` that match `f`.
    pub fn count_facts(&self, n: usize, f: impl Fn(&Command) -> bool) -> usize {
        self.nodes[n].facts.iter().filter(|e| f(e)).count()
    }
}

fn persist(node: &mut Node) {
    let Some(s) = node.session.as_ref() else {
        return;
    };
    let mut out = vec![0u8; 64 * 1024];
    let bytes = s
        .encode_resume(&mut out)
        .expect("resume state fits")
        .to_vec();
    node.persisted = Some(bytes);
}
