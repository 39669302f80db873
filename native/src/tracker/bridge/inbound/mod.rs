//! The bridge's inbound side: a TCP port per browser peer, so ordinary clients (and the
//! tracker's poller) can dial a page.
//!
//! - `GET /bridge/listen/<info-hash hex>` upgrades to a *control* WebSocket that holds one port
//!   of `--bridge-ports` while it is open. Its first message (text, JSON) is
//!   `{"port":20001,"addr":"203.0.113.5:20001","token":"<32 hex>"}`. The page's announces
//!   (`/bridge/announce?…&bridge_token=<token>`) then store the page in that torrent's swarm at
//!   `addr` (`--bridge-public-ip`, default the tracker's address as the page reached it), so the
//!   tracker hands it out and polls it like any other peer.
//! - Each TCP connection accepted on the port becomes a message
//!   `{"accept":"<32 hex>","from":"198.51.100.7:51413"}` on the control socket; the page claims
//!   it with `GET /bridge/accept/<id>` (from the same client address), and bytes flow both ways
//!   as on an outbound bridged connection (same relay, bounds, idle rule and close codes). An
//!   accept not claimed within `--bridge-accept-timeout` is closed.
//! - Closing the control socket frees the port, closes its inbound connections and takes the
//!   page out of the swarm. The page sends nothing on it (a message gets 1003); the bridge pings
//!   it, and a page that stops answering is closed as idle (4408).
//!
//! Caps: ports per client address (`--bridge-max-ports-per-ip`), ports in all (the range),
//! inbound connections per port (`--bridge-max-inbound-per-port`; more are closed at once).
//! Refusals are close frames: 4429 (a cap; the reason says which), 4503 (no `--bridge-ports`),
//! 4404 (an accept id unknown, claimed already or too late).

mod args;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use enjambre_core::InfoHash;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tracing::debug;

pub use args::{InboundArgs, PortRange};

use super::super::conn_limit;
use super::super::peers::Event;
use super::super::registry::{unix_now, AnnounceIn, Families};
use super::super::State;
use super::handshake;
use super::relay::{close, pipe, End, Ws};

/// The ports, the pages holding them and the connections waiting to be claimed.
pub struct Inbound {
    range: PortRange,
    public_ip: Option<IpAddr>,
    per_ip: usize,
    per_port: usize,
    claim: Duration,
    inner: Arc<Mutex<Inner>>,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Inner {
    /// Ports held now.
    ports: HashSet<u16>,
    /// Ports held per client (IPv6 by /64).
    clients: HashMap<IpAddr, usize>,
    /// Pages listening, by token.
    listening: HashMap<u128, Listening>,
    /// Inbound connections not claimed yet, by id.
    pending: HashMap<u128, Pending>,
}

struct Listening {
    info_hash: InfoHash,
    addr: SocketAddr,
    client: IpAddr,
}

/// An inbound connection waiting for its page.
pub struct Pending {
    stream: TcpStream,
    client: IpAddr,
    /// Flips when the port closes.
    gone: watch::Receiver<bool>,
    _conn: PortConn,
}

/// One inbound connection counted on its port.
struct PortConn(Arc<AtomicUsize>);

impl Drop for PortConn {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// A client's claim on one port (the port itself is bound later); dropping it gives both back.
pub struct Lease {
    inner: Arc<Mutex<Inner>>,
    client: IpAddr,
    port: Option<u16>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut inner = lock(&self.inner);
        if let Some(port) = self.port {
            inner.ports.remove(&port);
        }
        if let Some(n) = inner.clients.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                inner.clients.remove(&self.client);
            }
        }
    }
}

#[derive(Default)]
struct Counters {
    listen_refused: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    claimed: AtomicU64,
    unclaimed: AtomicU64,
}

/// An accepted handshake on `/bridge/listen/…` or `/bridge/accept/…`.
pub enum Upgrade {
    Listen(InfoHash, Result<Lease, (u16, &'static str)>),
    Accept(Result<Pending, (u16, &'static str)>),
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn hex(n: u128) -> String {
    format!("{n:032x}")
}

impl Inbound {
    /// The inbound side with the ports and caps of `args`.
    pub fn new(args: &InboundArgs) -> anyhow::Result<Inbound> {
        Ok(Inbound {
            range: args.bridge_ports,
            public_ip: args.bridge_public_ip.map(|ip| ip.to_canonical()),
            per_ip: args.bridge_max_ports_per_ip,
            per_port: args.bridge_max_inbound_per_port.max(1),
            claim: super::super::config::secs(
                args.bridge_accept_timeout,
                "--bridge-accept-timeout",
            )?,
            inner: Arc::default(),
            counters: Arc::default(),
        })
    }

    /// Take a port for `client`, or say which cap it hit.
    fn lease(&self, client: IpAddr) -> Result<Lease, (u16, &'static str)> {
        if self.range.len() == 0 {
            return Err((
                4503,
                "the bridge opens no ports for browser peers (no --bridge-ports)",
            ));
        }
        let client = conn_limit::key(client);
        let mut inner = lock(&self.inner);
        if inner.clients.values().sum::<usize>() >= self.range.len() {
            return Err((4429, "no bridge port free: every port is held"));
        }
        let n = inner.clients.entry(client).or_insert(0);
        if *n >= self.per_ip {
            return Err((4429, "too many bridge ports held from this address"));
        }
        *n += 1;
        Ok(Lease {
            inner: self.inner.clone(),
            client,
            port: None,
        })
    }

    /// Bind a free port of the range on `ip` for `lease`.
    fn bind(&self, lease: &mut Lease, ip: IpAddr) -> Option<TcpListener> {
        for port in self.range.first..=self.range.last {
            if !lock(&self.inner).ports.insert(port) {
                continue;
            }
            match listen_on(SocketAddr::new(ip, port)) {
                Ok(l) => {
                    lease.port = Some(port);
                    return Some(l);
                }
                Err(e) => {
                    debug!(port, error = %e, "bridge port not available");
                    lock(&self.inner).ports.remove(&port);
                }
            }
        }
        None
    }

    /// The address a bridge announce stores its asker at: the page's port, when the query
    /// carries the token of a page listening for `info_hash` from `from`.
    pub fn announced_addr(
        &self,
        query: &str,
        info_hash: &InfoHash,
        from: IpAddr,
    ) -> Option<SocketAddr> {
        let token = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("bridge_token="))?;
        let token = u128::from_str_radix(token, 16).ok()?;
        let inner = lock(&self.inner);
        let l = inner.listening.get(&token)?;
        (l.info_hash == *info_hash && l.client == conn_limit::key(from)).then_some(l.addr)
    }

    /// The Prometheus lines of the inbound side.
    pub fn render(&self, out: &mut String) {
        let c = &self.counters;
        let ports = lock(&self.inner).ports.len() as u64;
        let mut line = |name: &str, kind: &str, v: u64| super::metric(out, name, kind, v);
        line("ports_open", "gauge", ports);
        line(
            "ports_refused_total",
            "counter",
            c.listen_refused.load(Relaxed),
        );
        line(
            "inbound_accepted_total",
            "counter",
            c.accepted.load(Relaxed),
        );
        line("inbound_refused_total", "counter", c.refused.load(Relaxed));
        line("inbound_claimed_total", "counter", c.claimed.load(Relaxed));
        line(
            "inbound_unclaimed_total",
            "counter",
            c.unclaimed.load(Relaxed),
        );
    }
}

fn listen_on(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(128)
}

/// Answer `/bridge/listen/<hex>` and `/bridge/accept/<id>`; `None` for any other path.
#[allow(clippy::type_complexity)]
pub fn upgrade(
    req: &httparse::Request<'_, '_>,
    rest: &str,
    from: IpAddr,
    st: &State,
) -> Option<Result<(String, Upgrade), (&'static str, String)>> {
    let bad = |why: &str| ("400 Bad Request", format!("{why}\n"));
    let inb = &st.bridge.inbound;
    if let Some(hex) = rest.strip_prefix("listen/") {
        let Some(ih) = InfoHash::from_hex(hex) else {
            return Some(Err(bad("info-hash must be 40 hex digits")));
        };
        return Some(handshake::accept(req).map(|head| {
            let lease = inb.lease(from);
            if lease.is_err() {
                inb.counters.listen_refused.fetch_add(1, Relaxed);
            }
            (head, Upgrade::Listen(ih, lease))
        }));
    }
    let id = rest.strip_prefix("accept/")?;
    let Some(id) = u128::from_str_radix(id, 16).ok().filter(|_| id.len() == 32) else {
        return Some(Err(bad("connection id must be 32 hex digits")));
    };
    Some(handshake::accept(req).map(|head| {
        let mut inner = lock(&inb.inner);
        let found = match inner.pending.remove(&id) {
            Some(p) if p.client == conn_limit::key(from) => Ok(p),
            Some(p) => {
                // Not this client's to claim: it stays for its page.
                inner.pending.insert(id, p);
                Err((4404, "no such inbound connection"))
            }
            None => Err((
                4404,
                "no such inbound connection (unknown, claimed already, or not claimed in time)",
            )),
        };
        (head, Upgrade::Accept(found))
    }))
}

/// Serve an upgraded `/bridge/listen/…` or `/bridge/accept/…`; `local` is the tracker's end of
/// the page's connection.
pub async fn serve(
    ws: Ws,
    local: SocketAddr,
    up: Upgrade,
    st: Arc<State>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let b = &st.bridge;
    match up {
        Upgrade::Accept(Err((code, why))) | Upgrade::Listen(_, Err((code, why))) => {
            close(ws, End(code, why.into())).await
        }
        Upgrade::Accept(Ok(p)) => {
            b.inbound.counters.claimed.fetch_add(1, Relaxed);
            let mut gone = p.gone;
            let gone = async move {
                let _ = gone.wait_for(|g| *g).await;
                End(1001, "the browser peer closed its port".into())
            };
            pipe(ws, p.stream, b, stop, gone, p._conn).await
        }
        Upgrade::Listen(ih, Ok(lease)) => listen(ws, local, ih, lease, &st, stop).await,
    }
}

async fn listen(
    ws: Ws,
    local: SocketAddr,
    info_hash: InfoHash,
    mut lease: Lease,
    st: &State,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let inb = &st.bridge.inbound;
    let local_ip = local.ip().to_canonical();
    let bind_ip = match inb.public_ip {
        Some(IpAddr::V4(_)) => IpAddr::from([0, 0, 0, 0]),
        Some(IpAddr::V6(_)) => IpAddr::from([0u16; 8]),
        None => local_ip,
    };
    let Some(listener) = inb.bind(&mut lease, bind_ip) else {
        inb.counters.listen_refused.fetch_add(1, Relaxed);
        let why = "no bridge port free: none of --bridge-ports can be bound";
        return close(ws, End(4429, why.into())).await;
    };
    let port = lease.port.unwrap_or(0);
    let addr = SocketAddr::new(inb.public_ip.unwrap_or(local_ip), port);
    let token: u128 = rand::random();
    lock(&inb.inner).listening.insert(
        token,
        Listening {
            info_hash,
            addr,
            client: lease.client,
        },
    );
    debug!(%addr, %info_hash, "bridge port open for a browser peer");
    let idle = st.bridge.idle;
    let (mut sink, mut stream) = ws.split();
    let (gone_tx, gone_rx) = watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let mut ids: Vec<u128> = Vec::new();
    let mut ping = tokio::time::interval((idle / 3).max(Duration::from_millis(200)));
    ping.tick().await;
    let mut last = Instant::now();
    let hello = format!(
        "{{\"port\":{port},\"addr\":\"{addr}\",\"token\":\"{}\"}}",
        hex(token)
    );
    // A page that stops reading is closed as idle, even in the middle of a send.
    let send_within = |r: Result<Result<(), _>, _>| match r {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(End(1000, format!("client connection ended: {e}"))),
        Err(_) => Some(End(
            4408,
            format!("idle: not reading for {}s", idle.as_secs()),
        )),
    };
    let mut end =
        send_within(tokio::time::timeout(idle, sink.send(Message::Text(hello.into()))).await);
    while end.is_none() {
        tokio::select! {
            r = listener.accept() => {
                let (sock, from) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        debug!(error = %e, "bridge port accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                if open.load(Relaxed) >= inb.per_port {
                    inb.counters.refused.fetch_add(1, Relaxed);
                    debug!(%from, port, "bridge port full: inbound connection closed");
                    continue;
                }
                open.fetch_add(1, Relaxed);
                inb.counters.accepted.fetch_add(1, Relaxed);
                let id: u128 = rand::random();
                ids.retain(|id| lock(&inb.inner).pending.contains_key(id));
                ids.push(id);
                lock(&inb.inner).pending.insert(id, Pending {
                    stream: sock,
                    client: lease.client,
                    gone: gone_rx.clone(),
                    _conn: PortConn(open.clone()),
                });
                let claim = inb.claim;
                let inner = inb.inner.clone();
                tokio::spawn(unclaimed_after(claim, inner, inb.counters.clone(), id));
                let msg = format!("{{\"accept\":\"{}\",\"from\":\"{from}\"}}", hex(id));
                end = send_within(
                    tokio::time::timeout(idle, sink.send(Message::Text(msg.into()))).await,
                );
            }
            m = stream.next() => match m {
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    end = Some(End(1003, "the control socket takes no messages".into()));
                }
                Some(Ok(Message::Close(_))) | None => end = Some(End(1000, String::new())),
                Some(Ok(_)) => last = Instant::now(),
                Some(Err(e)) => end = Some(End(1002, format!("control socket: {e}"))),
            },
            _ = ping.tick() => {
                if last.elapsed() >= idle {
                    st.bridge.counters.closed_idle.fetch_add(1, Relaxed);
                    end = Some(End(4408, format!("idle: no answer for {}s", idle.as_secs())));
                } else {
                    end = send_within(
                        tokio::time::timeout(idle, sink.send(Message::Ping(Bytes::new()))).await,
                    );
                }
            }
            _ = stop.changed() => end = Some(End(1001, "tracker shutting down".into())),
        }
    }
    // Unclaimed connections count as such when their timer fires; the claimed ones end now.
    let _ = gone_tx.send(true);
    {
        let mut inner = lock(&inb.inner);
        inner.listening.remove(&token);
        for id in &ids {
            inner.pending.remove(id);
        }
    }
    // Out of the swarm before the port can go to another page.
    forget(st, info_hash, addr);
    drop(listener);
    drop(lease);
    let end = end.unwrap_or(End(1000, String::new()));
    debug!(%addr, code = end.0, reason = %end.1, "bridge port closed");
    match sink.reunite(stream) {
        Ok(ws) => close(ws, end).await,
        Err(_) => Ok(()),
    }
}

/// Close an inbound connection its page has not claimed in time.
async fn unclaimed_after(
    claim: Duration,
    inner: Arc<Mutex<Inner>>,
    counters: Arc<Counters>,
    id: u128,
) {
    tokio::time::sleep(claim).await;
    if lock(&inner).pending.remove(&id).is_some() {
        debug!("inbound connection not claimed in time: closed");
        counters.unclaimed.fetch_add(1, Relaxed);
    }
}

/// Take the page out of its swarm: its port is gone.
fn forget(st: &State, info_hash: InfoHash, addr: SocketAddr) {
    let stopped = AnnounceIn {
        info_hash,
        peer_id: [0; 20],
        addr,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: Event::Stopped,
        numwant: Some(0),
        bitfield: None,
    };
    let mut out = Vec::new();
    let _ = st
        .reg()
        .announce(unix_now(), &stopped, Families::Same, &mut out);
}
