//! The announce relay ("forwarding"): a page joins a swarm that lives on other trackers.
//!
//! `POST /bridge/torrent/<info-hash hex>` with a `.torrent`'s raw bytes (at most
//! `--bridge-forward-max-torrent`): the core's parser validates it, its info dictionary must hash
//! to the info-hash named (a forgery gets 403, a malformed torrent 400, one naming no
//! http/https/udp tracker 422), and its tracker URLs are remembered (at most 16, for two hours
//! after last use, 4,096 torrents). From then on, `GET /bridge/announce` for that info-hash
//! also announces, on the page's behalf, to those trackers and only to them, with the page's
//! `event`, `left`, `uploaded` and `downloaded`; the peers they return are merged into the
//! page's answer and kept, bounded and expiring, as "listed by a relayed tracker", which the
//! bridge accepts as listed only at public addresses.
//!
//! Bounded: one round at a time per torrent, no more often than `--bridge-forward-every` nor the
//! remote's min interval, a regular announce relayed only once the remote's interval has run
//! out (the cached answer serves until then); the page waits for a round at most 8 s. The
//! rounds are the native peer's announce client (core codecs, the core's tier order, bounded
//! responses, timeouts): it sends nothing but announces and reads nothing but parsed announce
//! responses. Names are resolved and only public addresses reached, unless
//! `--bridge-forward-private` allows the rest; the tracker's own listening address never. A
//! relayed peer at a port announced for a page (the page itself, seen at the tracker's address)
//! or at the tracker's own listening address is left out, so the bridge never dials its own host.

mod args;
mod policy;
mod torrent;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use enjambre_core::tracker::{AnnounceEvent, AnnounceRequest};
use enjambre_core::{InfoHash, PeerId};
use tokio::sync::watch;
use tracing::debug;

pub use args::ForwardArgs;
pub use policy::is_public;

use super::super::State;
use crate::peer::announce::{AddrFilter, AnnounceParams, AnnounceTimeouts, Announcer};

/// Torrents remembered at most.
const MAX_TORRENTS: usize = 4096;
/// A torrent is forgotten this long after a page last used it.
const TTL: Duration = Duration::from_secs(2 * 3600);
/// Relayed peers kept per torrent at most (the newest).
const MAX_PEERS: usize = 200;
/// Announced ports remembered per torrent.
const MAX_PORTS: usize = 16;
/// How long a page's announce waits for a round in progress.
const WAIT: Duration = Duration::from_secs(8);
/// A whole round, every tracker tried included.
const ROUND: Duration = Duration::from_secs(30);
/// How long a relayed peer stays listed: twice the remote's interval, within these bounds.
const PEER_TTL: (Duration, Duration) = (Duration::from_secs(300), Duration::from_secs(3600));

/// The relay's settings, the torrents it knows and its counters.
pub struct Forward {
    on: bool,
    private: bool,
    every: Duration,
    max_torrent: usize,
    /// The tracker's own listening addresses: never announced to.
    own: OnceLock<Vec<SocketAddr>>,
    torrents: Mutex<HashMap<InfoHash, Entry>>,
    counters: Arc<Counters>,
}

/// Monotonic counters for `/metrics`.
#[derive(Default)]
struct Counters {
    torrents: AtomicU64,
    torrents_refused: AtomicU64,
    rounds: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    cached: AtomicU64,
    refused_addresses: AtomicU64,
}

/// One torrent's trackers, its announce client and what they answered.
struct Entry {
    trackers: Arc<Vec<(usize, String)>>,
    expires: Instant,
    /// `None` while a round has it.
    client: Option<Client>,
    busy: bool,
    /// When the last round started, and how long after it the next may.
    last: Option<Instant>,
    wait: Duration,
    /// Until when the last answer is fresh (the remote's interval).
    fresh_until: Option<Instant>,
    /// Relayed peers and when each stops being listed.
    peers: Vec<(SocketAddr, Instant)>,
    /// The ports announced for pages (the newest [`MAX_PORTS`]): a relayed peer at one of them
    /// is most likely a page itself, seen at the tracker's own address, and is left out.
    ports: Vec<u16>,
    /// Bumped when a round ends.
    done: watch::Sender<u64>,
}

/// The announce client of one page identity, for one tracker list.
struct Client {
    trackers: Arc<Vec<(usize, String)>>,
    peer_id: PeerId,
    port: u16,
    announcer: Announcer,
}

/// A posted torrent's head, accepted: its body is read next.
pub struct Post {
    pub info_hash: InfoHash,
    pub len: usize,
}

/// A page's announce for a torrent the relay knows.
pub struct Job {
    /// The page's query, answered by the local registry once the relay is done.
    pub query: String,
    info_hash: InfoHash,
    peer_id: PeerId,
    port: u16,
    params: AnnounceParams,
}

/// What to do with a page's announce now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// A round is in progress: wait for it.
    Busy,
    /// Start a round.
    Now,
    /// Answer from what is kept.
    Cached,
}

impl Forward {
    /// A relay set up by `args`; `bridge_on`: the bridge itself is on.
    pub fn new(args: &ForwardArgs, bridge_on: bool) -> anyhow::Result<Forward> {
        let every =
            super::super::config::secs(args.bridge_forward_every, "--bridge-forward-every")?;
        Ok(Forward {
            on: bridge_on && !args.no_bridge_forward,
            private: args.bridge_forward_private,
            every,
            max_torrent: args.bridge_forward_max_torrent,
            own: OnceLock::new(),
            torrents: Mutex::new(HashMap::new()),
            counters: Arc::default(),
        })
    }

    /// Where the tracker listens: never a relay target.
    pub fn set_own(&self, addrs: Vec<SocketAddr>) {
        let _ = self.own.set(addrs);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<InfoHash, Entry>> {
        self.torrents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Check the head of `POST /bridge/torrent/<hex>`: the info-hash and a body length within
    /// bounds, or the status and text refusing it.
    pub fn post(
        &self,
        req: &httparse::Request<'_, '_>,
        hex: &str,
    ) -> Result<Post, (&'static str, String)> {
        if !self.on {
            return Err(("404 Not Found", "the announce relay is off\n".into()));
        }
        let info_hash = InfoHash::from_hex(hex).ok_or_else(|| {
            (
                "400 Bad Request",
                "info-hash must be 40 hex digits\n".into(),
            )
        })?;
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value)
        };
        if header("transfer-encoding").is_some() {
            return Err((
                "411 Length Required",
                "send Content-Length, not chunks\n".into(),
            ));
        }
        let len = header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<usize>().ok())
            .ok_or_else(|| ("411 Length Required", "Content-Length required\n".into()))?;
        if len > self.max_torrent {
            self.counters.torrents_refused.fetch_add(1, Relaxed);
            let why = format!("the .torrent is over {} bytes\n", self.max_torrent);
            return Err(("413 Content Too Large", why));
        }
        Ok(Post { info_hash, len })
    }

    /// Remember the trackers of a posted `.torrent`: the status and text of the answer.
    pub fn register(&self, info_hash: InfoHash, bytes: &[u8]) -> (&'static str, String) {
        let list = match torrent::trackers(&info_hash, bytes) {
            Ok(list) => list,
            Err(refusal) => {
                self.counters.torrents_refused.fetch_add(1, Relaxed);
                debug!(%info_hash, reason = %refusal.1.trim_end(), "relay refused a torrent");
                return refusal;
            }
        };
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_TORRENTS && !map.contains_key(&info_hash) {
            map.retain(|_, e| e.busy || e.expires > now);
            if map.len() >= MAX_TORRENTS {
                self.counters.torrents_refused.fetch_add(1, Relaxed);
                return (
                    "503 Service Unavailable",
                    "the relay knows too many torrents\n".into(),
                );
            }
        }
        self.counters.torrents.fetch_add(1, Relaxed);
        let entry = map.entry(info_hash).or_insert_with(|| Entry {
            trackers: Arc::new(Vec::new()),
            expires: now,
            client: None,
            busy: false,
            last: None,
            wait: Duration::ZERO,
            fresh_until: None,
            peers: Vec::new(),
            ports: Vec::new(),
            done: watch::Sender::new(0),
        });
        entry.expires = now + TTL;
        // Anyone may post the same info with other trackers: the first ones stay, new ones are
        // added while there is room.
        let mut merged = (*entry.trackers).clone();
        for (tier, url) in list {
            if merged.len() < torrent::MAX_TRACKERS && !merged.iter().any(|(_, u)| *u == url) {
                merged.push((tier, url));
            }
        }
        if merged != *entry.trackers {
            entry.trackers = Arc::new(merged);
            entry.client = None;
            entry.fresh_until = None;
        }
        let n = entry.trackers.len();
        (
            "200 OK",
            format!("relaying announces for {info_hash} to {n} trackers\n"),
        )
    }

    /// The page's announce `query`, when it is for a torrent the relay knows; `bridge_port`: the
    /// TCP port the bridge holds for that page (`bridge::inbound`), announced instead of the
    /// page's own.
    pub fn job(
        &self,
        query: &str,
        bridge_port: impl FnOnce(&InfoHash) -> Option<u16>,
    ) -> Option<Box<Job>> {
        if !self.on {
            return None;
        }
        let r = AnnounceRequest::parse_query(query.as_bytes()).ok()?;
        let now = Instant::now();
        let known = self
            .lock()
            .get(&r.info_hash)
            .is_some_and(|e| e.busy || e.expires > now);
        if r.port == 0 || !known {
            return None;
        }
        Some(Box::new(Job {
            query: query.to_owned(),
            info_hash: r.info_hash,
            peer_id: r.peer_id,
            port: bridge_port(&r.info_hash).unwrap_or(r.port),
            params: AnnounceParams {
                event: r.event,
                uploaded: r.uploaded,
                downloaded: r.downloaded,
                left: r.left,
                bitfield: None,
            },
        }))
    }

    /// Whether a relayed tracker lists `addr` for `info_hash` now, at an address the bridge may
    /// dial (public, or any with `--bridge-forward-private`).
    pub fn lists(&self, info_hash: &InfoHash, addr: SocketAddr) -> bool {
        if !self.dialable(addr) {
            return false;
        }
        let now = Instant::now();
        self.lock().get(info_hash).is_some_and(|e| {
            e.expires > now && e.peers.iter().any(|&(a, until)| a == addr && until > now)
        })
    }

    fn dialable(&self, addr: SocketAddr) -> bool {
        self.private || is_public(addr.ip())
    }

    /// Whether `addr` may be the tracker itself: one of its listening addresses, or its port
    /// when it listens on every address.
    fn is_own(&self, addr: SocketAddr) -> bool {
        let ip = addr.ip().to_canonical();
        self.own.get().is_some_and(|own| {
            own.iter().any(|o| {
                o.port() == addr.port() && (o.ip().is_unspecified() || o.ip().to_canonical() == ip)
            })
        })
    }

    /// Tracker addresses a round may reach: public ones (any with `--bridge-forward-private`),
    /// never the tracker's own; each refusal counted.
    fn filter(&self) -> AddrFilter {
        let own = self.own.get().cloned().unwrap_or_default();
        let private = self.private;
        let counters = self.counters.clone();
        Arc::new(move |a: SocketAddr| {
            let ip = a.ip().to_canonical();
            // Trackers elsewhere commonly use our port too: only loopback counts as us then.
            let ours = own.iter().any(|o| {
                o.port() == a.port()
                    && (o.ip().to_canonical() == ip || o.ip().is_unspecified() && ip.is_loopback())
            });
            let ok = !ours && (private || is_public(ip));
            if !ok {
                counters.refused_addresses.fetch_add(1, Relaxed);
                debug!(%a, "relay refused a tracker address");
            }
            ok
        })
    }

    /// The Prometheus lines of the relay.
    pub fn render(&self, out: &mut String) {
        let c = &self.counters;
        let mut line = |name: &str, kind: &str, v: u64| {
            super::metric(out, &format!("forward_{name}"), kind, v)
        };
        line("torrents", "gauge", self.lock().len() as u64);
        line(
            "torrents_accepted_total",
            "counter",
            c.torrents.load(Relaxed),
        );
        line(
            "torrents_refused_total",
            "counter",
            c.torrents_refused.load(Relaxed),
        );
        line("announces_total", "counter", c.rounds.load(Relaxed));
        line("answered_total", "counter", c.answered.load(Relaxed));
        line("failed_total", "counter", c.failed.load(Relaxed));
        line("cached_total", "counter", c.cached.load(Relaxed));
        line(
            "refused_addresses_total",
            "counter",
            c.refused_addresses.load(Relaxed),
        );
    }
}

/// The port the relayed announce gives for the page: the bridge's TCP port for it when it holds
/// one (so peers the other trackers send reach the page), else the one the page asked with.
fn announced_port(job: &Job) -> u16 {
    job.port
}

/// Relay a page's announce when due (waiting at most [`WAIT`] for the round), and return the
/// peers the relayed trackers list for the torrent now, those the bridge may dial.
pub async fn relay(st: &Arc<State>, job: &Job) -> Vec<SocketAddr> {
    let f = &st.bridge.forward;
    let now = Instant::now();
    let port = announced_port(job);
    let waiting = {
        let mut map = f.lock();
        let Some(e) = map.get_mut(&job.info_hash) else {
            return Vec::new();
        };
        e.expires = now + TTL;
        match decide(e, job.params.event, now) {
            Due::Cached => {
                f.counters.cached.fetch_add(1, Relaxed);
                None
            }
            Due::Busy => Some(e.done.subscribe()),
            Due::Now => {
                let reusable = e.client.take().filter(|c| {
                    Arc::ptr_eq(&c.trackers, &e.trackers)
                        && c.peer_id == job.peer_id
                        && c.port == port
                });
                let client = reusable.unwrap_or_else(|| Client {
                    trackers: e.trackers.clone(),
                    peer_id: job.peer_id,
                    port,
                    announcer: Announcer::new(
                        job.info_hash,
                        job.peer_id,
                        port,
                        e.trackers.iter().cloned(),
                        timeouts(),
                        None,
                    )
                    .only_to(f.filter()),
                });
                if !e.ports.contains(&port) {
                    if e.ports.len() == MAX_PORTS {
                        e.ports.remove(0);
                    }
                    e.ports.push(port);
                }
                e.busy = true;
                e.last = Some(now);
                let rx = e.done.subscribe();
                tokio::spawn(round(st.clone(), job.info_hash, client, job.params.clone()));
                Some(rx)
            }
        }
    };
    if let Some(mut rx) = waiting {
        let _ = tokio::time::timeout(WAIT, rx.changed()).await;
    }
    let now = Instant::now();
    let map = f.lock();
    map.get(&job.info_hash)
        .map(|e| {
            e.peers
                .iter()
                .filter(|&&(a, until)| until > now && f.dialable(a))
                .map(|&(a, _)| a)
                .collect()
        })
        .unwrap_or_default()
}

/// Shorter than the peer's: a page is waiting, and the next round retries.
fn timeouts() -> AnnounceTimeouts {
    AnnounceTimeouts {
        http: Duration::from_secs(10),
        udp: enjambre_core::tracker::client::Retransmit {
            base: enjambre_core::Duration::from_secs(4),
            max_n: 1,
        },
    }
}

/// Whether a page's announce with `event` starts a round now.
fn decide(e: &Entry, event: AnnounceEvent, now: Instant) -> Due {
    if e.busy {
        return Due::Busy;
    }
    if e.last.is_some_and(|last| now < last + e.wait) {
        return Due::Cached;
    }
    let fresh = e.fresh_until.is_some_and(|until| now < until);
    if event == AnnounceEvent::None && fresh {
        return Due::Cached;
    }
    Due::Now
}

/// One round to the torrent's trackers; its answer is kept for the pages.
async fn round(st: Arc<State>, info_hash: InfoHash, mut client: Client, params: AnnounceParams) {
    let f = &st.bridge.forward;
    f.counters.rounds.fetch_add(1, Relaxed);
    let got = tokio::time::timeout(ROUND, client.announcer.announce(&params)).await;
    let now = Instant::now();
    let mut map = f.lock();
    let Some(e) = map.get_mut(&info_hash) else {
        return;
    };
    e.wait = f.every;
    e.fresh_until = None;
    match got {
        Ok(Ok(a)) => {
            f.counters.answered.fetch_add(1, Relaxed);
            debug!(%info_hash, tracker = %a.tracker, peers = a.peers.len(), "relayed announce answered");
            e.wait = f.every.max(a.min_interval.unwrap_or_default());
            e.fresh_until = Some(now + a.interval);
            let until = now + (a.interval * 2).clamp(PEER_TTL.0, PEER_TTL.1);
            let kept = |p: &SocketAddr| !e.ports.contains(&p.port()) && !f.is_own(*p);
            let fresh: Vec<SocketAddr> = a.peers.iter().copied().filter(kept).collect();
            e.peers.retain(|&(p, t)| t > now && !fresh.contains(&p));
            e.peers.extend(fresh.into_iter().map(|p| (p, until)));
            let over = e.peers.len().saturating_sub(MAX_PEERS);
            e.peers.drain(..over);
        }
        Ok(Err(err)) => {
            f.counters.failed.fetch_add(1, Relaxed);
            debug!(%info_hash, error = %err, "relayed announce failed");
        }
        Err(_) => {
            f.counters.failed.fetch_add(1, Relaxed);
            debug!(%info_hash, "relayed announce timed out");
        }
    }
    if Arc::ptr_eq(&client.trackers, &e.trackers) {
        e.client = Some(client);
    }
    e.busy = false;
    e.done.send_modify(|n| *n = n.wrapping_add(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            trackers: Arc::new(Vec::new()),
            expires: Instant::now() + TTL,
            client: None,
            busy: false,
            last: None,
            wait: Duration::ZERO,
            fresh_until: None,
            peers: Vec::new(),
            ports: Vec::new(),
            done: watch::Sender::new(0),
        }
    }

    #[test]
    fn a_relayed_peer_counts_as_listed_only_at_a_public_address() {
        let args = ForwardArgs {
            no_bridge_forward: false,
            bridge_forward_private: false,
            bridge_forward_every: 30.0,
            bridge_forward_max_torrent: 1 << 20,
        };
        let (ih, other) = (InfoHash([5; 20]), InfoHash([6; 20]));
        let (private, public): (SocketAddr, SocketAddr) = (
            "127.0.0.2:6881".parse().unwrap(),
            "93.184.216.34:6881".parse().unwrap(),
        );
        let later = Instant::now() + Duration::from_secs(60);
        for allow_private in [false, true] {
            let args = ForwardArgs {
                bridge_forward_private: allow_private,
                ..args.clone()
            };
            let f = Forward::new(&args, true).unwrap();
            let mut e = entry();
            e.peers = vec![(private, later), (public, later)];
            f.lock().insert(ih, e);
            assert_eq!(f.lists(&ih, private), allow_private);
            assert!(f.lists(&ih, public));
            assert!(!f.lists(&other, public));
            assert!(!f.lists(&ih, "93.184.216.34:6882".parse().unwrap()));
        }
    }

    #[test]
    fn rounds_are_spaced_and_a_fresh_answer_serves() {
        let now = Instant::now();
        let mut e = entry();
        assert_eq!(decide(&e, AnnounceEvent::Started, now), Due::Now);
        e.busy = true;
        assert_eq!(decide(&e, AnnounceEvent::Started, now), Due::Busy);
        e.busy = false;
        e.last = Some(now);
        e.wait = Duration::from_secs(30);
        e.fresh_until = Some(now + Duration::from_secs(1800));
        let soon = now + Duration::from_secs(10);
        assert_eq!(decide(&e, AnnounceEvent::Started, soon), Due::Cached);
        let later = now + Duration::from_secs(40);
        assert_eq!(decide(&e, AnnounceEvent::None, later), Due::Cached);
        assert_eq!(decide(&e, AnnounceEvent::Completed, later), Due::Now);
        let stale = now + Duration::from_secs(1801);
        assert_eq!(decide(&e, AnnounceEvent::None, stale), Due::Now);
    }
}
