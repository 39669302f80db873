//! `enjambre get MAGNET`: the torrent's info dictionary fetched from peers (BEP 9) and kept as
//! a `.torrent` next to the download, so that a resume needs no peer for it.
//!
//! The protocol is the core's ([`enjambre_core::metadata`]): one [`MetadataFetch`] per
//! connection, all sharing one [`MetadataAssembler`]. This module owns the sockets, the clock,
//! the announces and DHT lookups that find peers, and the file; it never parses a peer's bytes
//! itself.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use enjambre_core::magnet::{self, Magnet};
use enjambre_core::metadata::{
    FetchConfig, FetchOutput, MetadataAssembler, MetadataFetch, FETCH_RX_LEN,
};
use enjambre_core::metainfo::{is_web_url, write_torrent_with_info, Metainfo};
use enjambre_core::tracker::AnnounceEvent;
use enjambre_core::{InfoHash, PeerId};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep_until, timeout, timeout_at, Instant};

use super::announce::{AnnounceParams, AnnounceTimeouts, Announcer};
use super::args::CommonArgs;
use super::dht::DhtNode;
use super::encryption::{self, Encryption, Opening, Policy, Secured};
use super::layout::stored_name;
use super::sha1::FastSha1;
use super::Failure;
use crate::torrent_source::MAX_TORRENT_BYTES;

/// The largest info dictionary fetched (as large as a `.torrent` may be).
const MAX_METADATA: usize = MAX_TORRENT_BYTES as usize;
/// Metadata pieces at most: 16 KiB each.
const PIECES: usize = MAX_METADATA / 16384;
/// Peers asked at once.
const CONNECTIONS: usize = 8;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A piece asked of a peer that has not come by then is asked of another.
const PIECE_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer that sends nothing for this long is dropped.
const IDLE: Duration = Duration::from_secs(30);
/// Rounds of announces that found no peer with the metadata before giving up (without
/// `--wait`); the delay between rounds starts at 5 s and doubles up to 5 minutes.
const ROUNDS: u32 = 3;

type Assembler = MetadataAssembler<'static, FastSha1, u32, PIECES>;

/// A magnet link turned into a torrent file.
pub struct Resolved {
    /// The `.torrent` in the download directory.
    pub torrent: PathBuf,
    /// The peers the link names (`x.pe`), for the session to dial too.
    pub peers: Vec<SocketAddr>,
    /// The web seeds the link names (`ws`, decoded), for the session to fetch from too once
    /// the torrent is known.
    pub web_seeds: Vec<String>,
    /// Whether it was fetched now (rather than found from an earlier run).
    pub fetched: bool,
}

/// Whether `source` is a magnet link rather than a file or URL.
pub fn is_magnet(source: &Path) -> bool {
    source
        .to_str()
        .and_then(|s| s.get(..7))
        .is_some_and(|s| s.eq_ignore_ascii_case("magnet:"))
}

/// Turn `link` into a `.torrent` in `output`: one saved there by an earlier run for the same
/// info-hash, or the info dictionary fetched from the peers that the link's trackers, its
/// `x.pe` peers, the `--peer`s of `common` and the DHT give (never from its web seeds, which
/// serve files the metadata describes), dialled with its encryption policy from its `--listen`
/// address; its `--port` is announced as ours; `wait` keeps trying.
pub fn resolve(
    link: &str,
    output: &Path,
    common: &CommonArgs,
    wait: bool,
    dht: Option<&DhtNode>,
) -> Result<Resolved, Failure> {
    let (extra, port, source, policy) =
        (&common.peers, common.port, common.listen, common.encryption);
    let m = Magnet::parse(link).map_err(|e| Failure::new(2, e.to_string()))?;
    let mut buf = vec![0u8; link.len()];
    let mut peers = Vec::new();
    for raw in m.peers() {
        let addr = magnet::decode(raw, &mut buf)
            .ok()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse::<SocketAddr>().ok());
        match addr {
            Some(a) => peers.push(a),
            None => tracing::warn!(
                peer = raw,
                "the magnet link names a peer that is no address"
            ),
        }
    }
    let mut trackers = Vec::new();
    for raw in m.trackers() {
        match magnet::decode(raw, &mut buf).map(|b| String::from_utf8(b.to_vec())) {
            Ok(Ok(url)) => trackers.push(url),
            _ => tracing::warn!(
                tracker = raw,
                "the magnet link names a tracker badly encoded"
            ),
        }
    }
    let mut web_seeds: Vec<String> = Vec::new();
    for raw in m.web_seeds() {
        match magnet::decode(raw, &mut buf).map(|b| String::from_utf8(b.to_vec())) {
            Ok(Ok(url)) if is_web_url(&url) => {
                if !web_seeds.contains(&url) {
                    web_seeds.push(url);
                }
            }
            _ => tracing::warn!(
                web_seed = raw,
                "the magnet link names a web seed that is no http(s) URL"
            ),
        }
    }
    if let Some(torrent) = find_saved(output, m.info_hash) {
        return Ok(Resolved {
            torrent,
            peers,
            web_seeds,
            fetched: false,
        });
    }
    // Web seeds serve the files, whose names and sizes are in the metadata: they cannot give it.
    let no_metadata_from_web_seeds = if web_seeds.is_empty() {
        ""
    } else {
        "; the link's web seeds (`ws=`) serve the files only once the metadata is known: a \
         peer must give it first"
    };
    let known: Vec<SocketAddr> = peers.iter().chain(extra).copied().collect();
    if known.is_empty() && trackers.is_empty() && dht.is_none() {
        return Err(Failure::new(
            2,
            format!(
                "the magnet link names no tracker and no peer, and the DHT is off: give a \
                 tracker (`tr=`) or a peer (`--peer`), or leave the DHT on{}",
                no_metadata_from_web_seeds
            ),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(1, format!("cannot start the runtime: {e}")))?;
    let job = Job {
        info_hash: m.info_hash,
        peer_id: super::new_peer_id(),
        port,
        source,
        wait,
        policy,
    };
    let info = (runtime.block_on(job.fetch(known, &trackers, dht))).map_err(|f| {
        let message = format!("{}{no_metadata_from_web_seeds}", f.message);
        Failure::new(f.code, message)
    })?;
    let torrent = save(output, &info, &trackers)?;
    Ok(Resolved {
        torrent,
        peers,
        web_seeds,
        fetched: true,
    })
}

/// A `.torrent` directly in `dir` whose info-hash is `info_hash`, if any.
fn find_saved(dir: &Path, info_hash: InfoHash) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    entries.flatten().map(|e| e.path()).find(|path| {
        let is_torrent = path.extension().is_some_and(|e| e == "torrent");
        let small =
            std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= MAX_TORRENT_BYTES);
        is_torrent
            && small
            && std::fs::read(path)
                .ok()
                .is_some_and(|b| Metainfo::parse(&b).is_ok_and(|m| m.info_hash == info_hash))
    })
}

/// Write the torrent around `info` as `NAME.torrent` in `dir` (or `NAME.HASH.torrent` when
/// another torrent has that name), through a temporary file renamed into place.
fn save(dir: &Path, info: &[u8], trackers: &[String]) -> Result<PathBuf, Failure> {
    let tiers: Vec<[&str; 1]> = trackers.iter().map(|t| [t.as_str()]).collect();
    let tiers: Vec<&[&str]> = tiers.iter().map(|t| &t[..]).collect();
    let mut out = vec![0u8; info.len() + 64 + trackers.iter().map(|t| t.len() + 32).sum::<usize>()];
    let n = write_torrent_with_info(info, &tiers, &mut out)
        .map_err(|e| Failure::new(1, format!("cannot write the torrent: {e}")))?;
    out.truncate(n);
    let meta = Metainfo::parse(&out).map_err(|e| {
        Failure::new(
            2,
            format!("the metadata the peers sent is not a usable torrent: {e}"),
        )
    })?;
    let name = stored_name(meta.name);
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::new(4, format!("cannot create {}: {e}", dir.display())))?;
    let mut path = dir.join(format!("{name}.torrent"));
    if path.exists() {
        path = dir.join(format!("{name}.{}.torrent", meta.info_hash));
    }
    let tmp = path.with_extension("torrent.part");
    let cannot =
        |e: std::io::Error| Failure::new(4, format!("cannot write {}: {e}", path.display()));
    std::fs::write(&tmp, &out).map_err(cannot)?;
    std::fs::rename(&tmp, &path).map_err(cannot)?;
    Ok(path)
}

/// What a fetch needs to say who we are.
struct Job {
    info_hash: InfoHash,
    peer_id: PeerId,
    port: u16,
    source: Option<std::net::IpAddr>,
    wait: bool,
    /// `--encryption`: the metadata is fetched as the data is.
    policy: Policy,
}

/// What the connections share: the assembler, and who was found lying.
struct Shared {
    asm: RefCell<Box<Assembler>>,
    /// Peer keys (indices into `addrs`) banned after a mismatch.
    banned: RefCell<HashSet<u32>>,
    epoch: Instant,
}

/// How a connection ended.
enum End {
    Done,
    /// Ban this peer (it sent something wrong).
    Ban(String),
    /// Nothing learnt from it (refused, silent, lacks the metadata).
    Gone(String),
    /// As `Gone`, before the peer sent a byte: a plaintext dial is made again with MSE.
    Unanswered(String),
}

impl Job {
    async fn fetch(
        &self,
        mut candidates: Vec<SocketAddr>,
        trackers: &[String],
        dht: Option<&DhtNode>,
    ) -> Result<Vec<u8>, Failure> {
        let buf: &'static mut [u8] = Box::leak(vec![0u8; MAX_METADATA].into_boxed_slice());
        let asm = Assembler::new(buf, self.info_hash, core_duration(PIECE_TIMEOUT));
        let shared = Shared {
            asm: RefCell::new(Box::new(asm)),
            banned: RefCell::new(HashSet::new()),
            epoch: Instant::now(),
        };
        let shared = &shared;
        let mut announcer = Announcer::new(
            self.info_hash,
            self.peer_id,
            self.port,
            trackers.iter().cloned().enumerate(),
            AnnounceTimeouts::default(),
            self.source,
        );
        let params = |event| AnnounceParams {
            event,
            uploaded: 0,
            downloaded: 0,
            // Not a seed: trackers list seeds to leeches.
            left: 1,
            bitfield: None,
        };
        let mut addrs: Vec<SocketAddr> = Vec::new();
        let mut tried: HashSet<SocketAddr> = HashSet::new();
        let mut queue: VecDeque<SocketAddr> = VecDeque::new();
        candidates.retain(|a| tried.insert(*a));
        queue.extend(candidates);
        let mut running = FuturesUnordered::new();
        let mut next_announce = Instant::now();
        let mut backoff = Duration::from_secs(5);
        let mut rounds = 0u32;
        let mut reasons: HashMap<SocketAddr, String> = HashMap::new();
        let mut announced = false;
        // Whether a round of announces and lookups was made.
        let mut asked = false;
        // Peers that went away without fault, to try again after the next announce.
        let mut retry: Vec<SocketAddr> = Vec::new();
        loop {
            while running.len() < CONNECTIONS {
                let Some(addr) = queue.pop_front() else { break };
                let key = addrs.len() as u32;
                addrs.push(addr);
                running.push(async move { (addr, key, self.ask_peer(addr, key, shared).await) });
            }
            let idle = running.is_empty();
            let sources = !announcer.is_empty() || dht.is_some();
            if idle && !sources && retry.is_empty() {
                return Err(no_metadata(&reasons));
            }
            // A round: the peers that went away tried again, and the trackers and the DHT
            // asked, first at once, then whenever nothing is left to try.
            let first = !asked && sources;
            tokio::select! {
                Some((addr, key, end)) = running.next() => match end {
                    End::Done => break,
                    End::Ban(why) => {
                        shared.asm.borrow_mut().forget(key);
                        tracing::warn!(%addr, %why, "banned for the metadata it sent");
                        reasons.insert(addr, why);
                    }
                    End::Gone(why) | End::Unanswered(why) => {
                        shared.asm.borrow_mut().forget(key);
                        tracing::debug!(%addr, %why, "no metadata from this peer");
                        reasons.insert(addr, why);
                        // Tried again at the next round of announces.
                        if !shared.banned.borrow().contains(&key) {
                            retry.push(addr);
                        }
                    }
                },
                _ = sleep_until(next_announce), if idle || first => {
                    rounds += u32::from(!first);
                    if rounds >= ROUNDS && !self.wait {
                        return Err(no_metadata(&reasons));
                    }
                    queue.extend(retry.drain(..));
                    if !announcer.is_empty() {
                        match announcer.announce(&params(AnnounceEvent::Started)).await {
                            Ok(a) => queue.extend(a.peers.into_iter().filter(|p| tried.insert(*p))),
                            Err(e) => tracing::warn!("{e}"),
                        }
                        announced = true;
                    }
                    if let Some(node) = dht {
                        let mut found = Vec::new();
                        // The first peers found are tried at once: the rest of the lookup
                        // waits on its slowest node.
                        node.lookup(self.info_hash, |batch| {
                            found.extend(batch);
                            found.is_empty()
                        })
                        .await;
                        tracing::info!(peers = found.len(), "DHT lookup for the metadata");
                        queue.extend(found.into_iter().filter(|p| tried.insert(*p)));
                    }
                    asked = true;
                    next_announce = Instant::now() + backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(300));
                }
            }
        }
        if announced {
            // The session announces for itself from now on; this entry is withdrawn.
            let _ = timeout(
                Duration::from_secs(5),
                announcer.announce(&params(AnnounceEvent::Stopped)),
            )
            .await;
        }
        let asm = shared.asm.borrow();
        Ok(asm.info().map(<[u8]>::to_vec).unwrap_or_default())
    }

    /// Ask one peer for the metadata until it is complete, or the peer fails or falls silent.
    async fn ask_peer(&self, addr: SocketAddr, key: u32, shared: &Shared) -> End {
        let enc = Encryption {
            policy: self.policy,
            info_hash: self.info_hash.0,
        };
        let dial = encryption::dial(addr, self.source, enc);
        let limit = if self.policy.dials_mse() {
            CONNECT_TIMEOUT * 3
        } else {
            CONNECT_TIMEOUT
        };
        let secured = match timeout(limit, dial).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return End::Gone(format!("cannot connect: {e}")),
            Err(_) => return End::Gone("no answer to connect".into()),
        };
        let plaintext = secured.opening == Opening::Plaintext;
        match self.ask_over(secured, key, shared).await {
            // Closed unanswered, as a peer that requires encryption closes it: dialled again
            // with MSE, once.
            End::Unanswered(_) if plaintext && self.policy.falls_back() => {
                let why = "plaintext handshake closed unanswered; dialling again with MSE";
                tracing::debug!(%addr, "{why}");
                shared.asm.borrow_mut().forget(key);
                let dial = encryption::redial_with_mse(addr, self.source, self.info_hash.0);
                match timeout(CONNECT_TIMEOUT * 3, dial).await {
                    Ok(Ok(s)) => self.ask_over(s, key, shared).await,
                    Ok(Err(e)) => End::Gone(format!("closed the connection, and MSE failed: {e}")),
                    Err(_) => End::Gone("closed the connection, and MSE got no answer".into()),
                }
            }
            end => end,
        }
    }

    /// Ask for the metadata over one connection; [`End::Unanswered`] when it ends before the
    /// peer sent a byte.
    async fn ask_over(&self, secured: Secured, key: u32, shared: &Shared) -> End {
        let Secured {
            mut stream,
            read: mut decrypt,
            write: mut encrypt,
            first,
            ..
        } = secured;
        let mut heard = !first.is_empty();
        let ended = |heard: bool, why: String| {
            if heard {
                End::Gone(why)
            } else {
                End::Unanswered(why)
            }
        };
        let mut config = FetchConfig::new(self.peer_id);
        config.listen_port = Some(self.port);
        let mut fetch = Box::new(MetadataFetch::<u32, FETCH_RX_LEN>::new(
            key,
            self.info_hash,
            config,
        ));
        let mut out = vec![0u8; 1024];
        let mut input = vec![0u8; 64 * 1024];
        input[..first.len()].copy_from_slice(&first);
        let (mut from, mut to) = (0, first.len());
        let mut last_rx = Instant::now();
        loop {
            if shared.banned.borrow().contains(&key) {
                return End::Ban("its metadata did not match the info-hash".into());
            }
            // Offer what was read, and act on every output, until the fetch waits.
            let wake = loop {
                let now = core_now(shared.epoch);
                let act = {
                    let mut asm = shared.asm.borrow_mut();
                    match fetch.poll_output(now, &mut asm, &mut out) {
                        FetchOutput::Transmit(bytes) => Act::Send(bytes.to_vec()),
                        FetchOutput::Mismatch(peers) => Act::Mismatch(peers.to_vec()),
                        FetchOutput::Done => return End::Done,
                        FetchOutput::Failed(e) => Act::Fail(e.to_string()),
                        FetchOutput::Timeout(at) => Act::Wait(at),
                    }
                };
                match act {
                    Act::Send(mut bytes) => {
                        if let Some(rc4) = encrypt.as_mut() {
                            rc4.apply(&mut bytes);
                        }
                        if let Err(e) = stream.write_all(&bytes).await {
                            return ended(heard, format!("cannot send: {e}"));
                        }
                    }
                    Act::Mismatch(peers) => {
                        tracing::warn!(
                            peers = peers.len(),
                            "the metadata did not match the info-hash; fetching it again"
                        );
                        shared.banned.borrow_mut().extend(peers);
                    }
                    Act::Fail(why) => return End::Ban(why),
                    Act::Wait(at) => {
                        if from < to {
                            let n = fetch.handle_input(&input[from..to]);
                            from += n;
                            if n > 0 {
                                continue;
                            }
                        }
                        break at;
                    }
                }
            };
            if from == to {
                (from, to) = (0, 0);
            }
            let idle_at = last_rx + IDLE;
            let until = wake.map_or(idle_at, |at| {
                (shared.epoch + Duration::from_millis(at.as_millis())).min(idle_at)
            });
            if to == input.len() {
                // The fetch takes nothing more and waits only for time: let time pass.
                sleep_until(until).await;
                continue;
            }
            match timeout_at(until, stream.read(&mut input[to..])).await {
                Ok(Ok(0)) => return ended(heard, "closed the connection".into()),
                Ok(Ok(n)) => {
                    decrypt.apply(&mut input[to..to + n]);
                    to += n;
                    last_rx = Instant::now();
                    heard = true;
                }
                Ok(Err(e)) => return ended(heard, format!("connection lost: {e}")),
                Err(_) if Instant::now() >= idle_at => return End::Gone("silent".into()),
                Err(_) => {}
            }
        }
    }
}

enum Act {
    Send(Vec<u8>),
    Mismatch(Vec<u32>),
    Fail(String),
    Wait(Option<enjambre_core::Instant>),
}

fn core_now(epoch: Instant) -> enjambre_core::Instant {
    enjambre_core::Instant::from_millis(epoch.elapsed().as_millis() as u64)
}

fn core_duration(d: Duration) -> enjambre_core::Duration {
    enjambre_core::Duration::from_millis(d.as_millis() as u64)
}

fn no_metadata(reasons: &HashMap<SocketAddr, String>) -> Failure {
    let mut why = String::from("no peer gave the torrent's metadata");
    if reasons.is_empty() {
        why.push_str(" (no peer found)");
    }
    let mut listed: Vec<_> = reasons.iter().collect();
    listed.sort();
    for (addr, reason) in listed.into_iter().take(8) {
        why.push_str(&format!("; {addr}: {reason}"));
    }
    Failure::new(3, why)
}
