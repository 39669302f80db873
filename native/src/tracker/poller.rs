//! The poller (R5): every poll interval, dial each registered peer, handshake for its torrent,
//! read `Bitfield` / `Have` / `HaveAll` / `HaveNone` for a bounded time and record what it has.
//!
//! Polls keep out of the swarm's way: none before a peer's grace period after its first
//! announce is over (`--poll-grace`), none of a peer whose pieces are known otherwise (a seed, a
//! fresh self-report), the connection closed as soon as the bitfield-type message is read, and
//! a peer that refused backed off.
//!
//! Bounded everywhere: polls in flight (a semaphore), connect and read time, bytes read, and
//! polls to one IP address (spaced by `--poll-spacing`, because some clients drop a second
//! connection from an address whose first one is still closing). A peer that cannot be reached
//! keeps its last known bitfield and is backed off by the registry. With `--store`, the due
//! peers are this node's share of the shared registry's (see `store::poll`). Silence until the read time
//! is over means no pieces: a peer without pieces and without the fast extension sends nothing.
//!
//! A peer that closes the plaintext handshake unanswered is dialled once more with MSE (RC4
//! or plaintext, as it selects), so a peer that requires encryption can still be polled.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use enjambre_core::wire::{Extensions, Handshake, Message, Status, HANDSHAKE_LEN};
use enjambre_core::PeerId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::{timeout, timeout_at, Instant};
use tracing::debug;

use super::bits::{set_bit, NewBits};
use super::metrics::inc;
use super::registry::{unix_now, PollTarget};
use super::state::State;
use crate::peer::encryption::{self, ReadCipher, Secured};
use enjambre_core::mse::Rc4;

/// How long to keep listening after a `Have` when no bitfield-type message came: a peer that
/// announces its pieces one `Have` at a time sends them back to back.
const HAVE_QUIET: Duration = Duration::from_millis(150);

/// Due polls queued per poll in flight, at most.
const QUEUE_PER_SLOT: usize = 16;

/// Timings of one poll.
#[derive(Clone, Copy, Debug)]
pub struct PollTimes {
    pub connect: Duration,
    pub read: Duration,
    pub spacing: Duration,
}

/// The peer id the tracker handshakes with: a fixed client prefix, random tail.
pub fn poll_peer_id() -> PeerId {
    let mut id = *b"-EJ0001-000000000000";
    let tail: [u8; 12] = rand::random();
    for (d, r) in id[8..].iter_mut().zip(tail) {
        *d = b'0' + r % 10;
    }
    PeerId(id)
}

/// Run the poller until `stop` flips.
pub async fn run(
    st: Arc<State>,
    concurrency: usize,
    times: PollTimes,
    mut stop: watch::Receiver<bool>,
) {
    let Some(_) = st.limits.poll_interval else {
        return;
    };
    let concurrency = concurrency.max(1);
    let sem = Arc::new(Semaphore::new(concurrency));
    let peer_id = poll_peer_id();
    let mut spaced: HashMap<IpAddr, Instant> = HashMap::new();
    let in_flight: Arc<Mutex<HashSet<SocketAddr>>> = Arc::default();
    let mut queue: VecDeque<PollTarget> = VecDeque::new();
    let mut fresh = Vec::new();
    let mut last_scan = Instant::now() - Duration::from_secs(1);
    // A scan of the shared store reads every swarm: once a second at most.
    let idle_scan = Duration::from_millis(if st.store.is_some() { 1000 } else { 200 });
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A finished poll wakes the loop at once: its permit is free for the next due peer (waiting
    // for the tick instead capped the poller at `concurrency` polls per tick).
    let done = Arc::new(Notify::new());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = done.notified() => {}
            _ = stop.changed() => {
                // Let the polls under way finish and be recorded (their peers were claimed for
                // this interval), within a bound.
                let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
                let _ = tokio::time::timeout(Duration::from_secs(2), sem.acquire_many(all)).await;
                return;
            }
        }
        // Scanning the registry walks every peer under the lock: at most once a second, or
        // sooner when the queue runs low. The queue holds a few scans' worth of polls, so a
        // poller running flat out does not wait for the next scan.
        let room = (concurrency * QUEUE_PER_SLOT).saturating_sub(queue.len());
        let since = last_scan.elapsed();
        let low = queue.len() < concurrency;
        if room > 0 && (since >= Duration::from_secs(1) || (low && since >= idle_scan)) {
            last_scan = Instant::now();
            fresh.clear();
            match &st.store {
                Some(store) => {
                    if let Err(e) = store.due_polls(unix_now(), room, &mut fresh).await {
                        store.failed(&e);
                    }
                }
                None => st.reg().due_polls(unix_now(), room, &mut fresh),
            }
            queue.extend(fresh.drain(..));
        }
        let now = Instant::now();
        spaced.retain(|_, at| *at > now);
        for _ in 0..queue.len() {
            let Some(t) = queue.pop_front() else { break };
            if lock(&in_flight).contains(&t.addr) {
                // Still polling it (a silent peer takes the whole read time): one connection
                // to a peer at a time; it is due again next interval.
                continue;
            }
            if spaced.contains_key(&t.addr.ip()) {
                queue.push_back(t);
                continue;
            }
            let Ok(permit) = sem.clone().try_acquire_owned() else {
                queue.push_front(t);
                break;
            };
            spaced.insert(t.addr.ip(), now + times.spacing);
            lock(&in_flight).insert(t.addr);
            let in_flight = in_flight.clone();
            let done = done.clone();
            let st = st.clone();
            st.metrics.polls_in_flight.fetch_add(1, Relaxed);
            tokio::spawn(async move {
                let max_len = st.limits.max_pieces / 8 + 64;
                let result = poll_one(&t, peer_id, times, max_len).await;
                match &result {
                    Ok(bits) => {
                        inc(&st.metrics.polls_ok);
                        debug!(peer = %t.addr, info_hash = %t.info_hash, bits = ?summary(bits), "polled");
                    }
                    Err(why) => {
                        inc(&st.metrics.polls_failed);
                        debug!(peer = %t.addr, info_hash = %t.info_hash, why, "poll failed");
                    }
                }
                match &st.store {
                    Some(store) => {
                        if let Err(e) = store.record_poll(unix_now(), &t, result).await {
                            store.failed(&e);
                        }
                    }
                    None => st.reg().record_poll(unix_now(), &t, result),
                }
                lock(&in_flight).remove(&t.addr);
                st.metrics.polls_in_flight.fetch_sub(1, Relaxed);
                drop(permit);
                done.notify_one();
            });
        }
    }
}

/// Lock the set of peers being polled (a poisoned lock is still a valid set).
fn lock(m: &Mutex<HashSet<SocketAddr>>) -> MutexGuard<'_, HashSet<SocketAddr>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn summary(b: &NewBits) -> String {
    match b {
        NewBits::None => "none".into(),
        NewBits::All => "all".into(),
        NewBits::Bytes(v) => format!(
            "{} of {}",
            v.iter().map(|b| b.count_ones()).sum::<u32>(),
            v.len() * 8
        ),
    }
}

/// What the poll has learned so far.
enum Learned {
    Nothing,
    Bits(NewBits),
}

/// Dial one peer and learn its bitfield: in plaintext, then with MSE when the peer closed
/// the plaintext handshake.
pub async fn poll_one(
    t: &PollTarget,
    peer_id: PeerId,
    times: PollTimes,
    max_len: u32,
) -> Result<NewBits, &'static str> {
    let sock = dial(t.addr, times).await?;
    match poll_over(Link::plain(sock), t, peer_id, times, max_len).await {
        Err("closed before handshake") => {
            let sock = dial(t.addr, times).await?;
            let mse = encryption::initiate_after_plaintext(sock, t.info_hash.0);
            let secured = match timeout(times.connect, mse).await {
                Ok(Ok(s)) => s,
                _ => return Err("closed before handshake, and the MSE exchange failed"),
            };
            debug!(addr = %t.addr, encrypted = secured.encrypted, "polling with MSE");
            poll_over(Link::secured(secured), t, peer_id, times, max_len).await
        }
        r => r,
    }
}

async fn dial(addr: SocketAddr, times: PollTimes) -> Result<TcpStream, &'static str> {
    match timeout(times.connect, TcpStream::connect(addr)).await {
        Err(_) => Err("connect timed out"),
        Ok(Err(_)) => Err("connect failed"),
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
    }
}

/// A polled peer's socket, plaintext or after an MSE exchange.
struct Link {
    sock: TcpStream,
    read: ReadCipher,
    write: Option<Rc4>,
    /// Bytes the exchange read past its end, decrypted: read first.
    first: Vec<u8>,
}

impl Link {
    fn plain(sock: TcpStream) -> Self {
        Link {
            sock,
            read: ReadCipher::none(),
            write: None,
            first: Vec::new(),
        }
    }

    fn secured(s: Secured) -> Self {
        Link {
            sock: s.stream,
            read: s.read,
            write: s.write,
            first: s.first,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.write.as_mut() {
            Some(rc4) => {
                let mut b = bytes.to_vec();
                rc4.apply(&mut b);
                self.sock.write_all(&b).await
            }
            None => self.sock.write_all(bytes).await,
        }
    }

    /// Cancel-safe: nothing is consumed unless the read completes.
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.first.is_empty() {
            let n = self.first.len().min(buf.len());
            buf[..n].copy_from_slice(&self.first[..n]);
            self.first.drain(..n);
            return Ok(n);
        }
        let n = self.sock.read(buf).await?;
        self.read.apply(&mut buf[..n]);
        Ok(n)
    }
}

/// Handshake over `sock` and learn the peer's bitfield.
async fn poll_over(
    mut sock: Link,
    t: &PollTarget,
    peer_id: PeerId,
    times: PollTimes,
    max_len: u32,
) -> Result<NewBits, &'static str> {
    let ext = Extensions {
        fast: true,
        extended: true,
        dht: false,
    };
    let hs = Handshake::new(t.info_hash, peer_id, ext);
    if timeout(times.connect, sock.write_all(&hs.encode()))
        .await
        .is_err()
    {
        return Err("handshake write timed out");
    }
    let read_end = Instant::now() + times.read;
    let mut deadline = read_end;
    let cap = max_len as usize + 4 + HANDSHAKE_LEN;
    let mut buf = vec![0u8; 4096.min(cap)];
    let mut filled = 0;
    let mut theirs: Option<Handshake> = None;
    let mut learned = Learned::Nothing;
    let mut haves: Vec<u32> = Vec::new();
    let mut haves_seen = 0;
    loop {
        // Decode everything buffered.
        let mut pos = 0;
        if theirs.is_none() {
            match Handshake::decode(&buf[..filled], &[]) {
                Ok(Status::Complete(h)) => {
                    if h.info_hash != t.info_hash {
                        return Err("handshake for another torrent");
                    }
                    if h.extensions().fast {
                        let mut m = [0u8; 5];
                        if let Ok(n) = Message::HaveNone.encode(&mut m) {
                            let _ = sock.write_all(&m[..n]).await;
                        }
                    }
                    theirs = Some(h);
                    pos = HANDSHAKE_LEN;
                }
                Ok(Status::Partial) => {}
                Err(_) => return Err("bad handshake"),
            }
        }
        if theirs.is_some() {
            loop {
                let rest = &buf[pos..filled];
                match Message::decode(rest, &[], max_len) {
                    Ok(Status::Complete((m, used))) => {
                        match m {
                            Message::Bitfield(s) => {
                                let mut v = vec![0u8; s.len()];
                                s.copy_to(&mut v);
                                learned = Learned::Bits(NewBits::Bytes(v));
                            }
                            Message::HaveAll => learned = Learned::Bits(NewBits::All),
                            Message::HaveNone => learned = Learned::Bits(NewBits::None),
                            Message::Have(i) => haves.push(i),
                            _ => {}
                        }
                        pos += used;
                    }
                    Ok(Status::Partial) => break,
                    Err(enjambre_core::wire::WireError::UnknownMessage { .. }) => {
                        // Skip a message this decoder does not know, by its length prefix.
                        let len = rest
                            .get(..4)
                            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
                        match len {
                            Some(len) if rest.len() >= 4 + len => pos += 4 + len,
                            _ => break,
                        }
                    }
                    Err(_) => return finish(learned, haves, t.stride).ok_or("malformed message"),
                }
                if haves.len() > 1 << 20 {
                    return Err("too many have messages");
                }
            }
        }
        buf.copy_within(pos..filled, 0);
        filled -= pos;
        if matches!(learned, Learned::Bits(_)) {
            // The bitfield (or HaveAll/HaveNone) is what the poll came for, with any Have that
            // arrived alongside it: hang up at once, so the peer's slot for this address is
            // free again for a real peer.
            return Ok(finish(learned, haves, t.stride).unwrap_or(NewBits::None));
        }
        if haves.len() > haves_seen {
            // Only Haves so far: listen while they keep coming back to back.
            haves_seen = haves.len();
            deadline = read_end.min(Instant::now() + HAVE_QUIET);
        }
        if filled == buf.len() {
            if buf.len() >= cap {
                return Err("message too long");
            }
            buf.resize((buf.len() * 2).min(cap), 0);
        }
        match timeout_at(deadline, sock.read(&mut buf[filled..])).await {
            Err(_) => {
                // Time is up: silence after a handshake means no pieces.
                if theirs.is_none() {
                    return Err("no handshake");
                }
                return Ok(finish(learned, haves, t.stride).unwrap_or(NewBits::None));
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                if theirs.is_none() {
                    return Err("closed before handshake");
                }
                return finish(learned, haves, t.stride).ok_or("closed before bitfield");
            }
            Ok(Ok(n)) => filled += n,
        }
    }
}

/// Combine the bitfield (or HaveAll/HaveNone) with the `Have`s seen; `None` when nothing was learned.
fn finish(learned: Learned, haves: Vec<u32>, stride: usize) -> Option<NewBits> {
    let base = match learned {
        Learned::Bits(b) => b,
        Learned::Nothing if haves.is_empty() => return None,
        Learned::Nothing => NewBits::None,
    };
    if haves.is_empty() {
        return Some(base);
    }
    match base {
        NewBits::All => Some(NewBits::All),
        NewBits::Bytes(mut v) => {
            for i in haves {
                set_bit(&mut v, i as usize);
            }
            Some(NewBits::Bytes(v))
        }
        NewBits::None if stride > 0 => {
            let mut v = vec![0u8; stride];
            for i in haves {
                set_bit(&mut v, i as usize);
            }
            Some(NewBits::Bytes(v))
        }
        NewBits::None => Some(NewBits::None),
    }
}
