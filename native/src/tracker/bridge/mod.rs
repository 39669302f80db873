//! The WebSocket-to-TCP bridge: a browser peer reaches ordinary BitTorrent peers through it.
//!
//! `GET /bridge/<info-hash hex>/<ip>:<port>` (IPv6 as `[addr]:port`) on the tracker's HTTP
//! listener upgrades to a WebSocket, and binary messages then carry the TCP byte stream both
//! ways (message boundaries mean nothing). The tracker dials that address **only if its registry
//! (with `--store`, the shared one) lists it in that torrent's swarm now**; loopback and private addresses are reachable only that
//! way, so the bridge never becomes an open proxy.
//!
//! A request that is not a WebSocket handshake, or names no peer address, gets an HTTP 400 (426
//! for another WebSocket version) with a text reason. Every other refusal comes after the
//! upgrade, as a close frame a page can read: 4403 not listed, 4429 too many connections (in
//! total, from this client, into this torrent), 4502 connect failed, 4408 idle; a client message
//! over `--bridge-max-message` gets 1009, a malformed frame 1002, a text message 1003.
//!
//! `GET /bridge/announce?<BEP 3 query>` answers like `/announce` but stores the asker only when
//! it carries `bridge_token=` of a port the page holds (below), and then at that port's address;
//! otherwise it only learns the swarm's peers.
//!
//! `POST /bridge/torrent/<info-hash hex>` hands the tracker a `.torrent` naming other trackers;
//! the page's announces are then relayed to them (see [`forward`]), and a peer only they list
//! counts as listed here when its address is public (`--bridge-forward-private` for tests).
//!
//! A page is reachable through a TCP port of its own (`--bridge-ports FIRST-LAST`, none by
//! default): `GET /bridge/listen/<info-hash hex>` holds one while the WebSocket is open, and
//! each inbound connection reaches the page as `GET /bridge/accept/<id>`, relayed like the
//! outbound ones (see [`inbound`]).

mod args;
mod caps;
mod client;
pub mod forward;
mod frames;
mod handshake;
mod inbound;
mod relay;
mod target;

use std::fmt::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

pub use args::BridgeArgs;
pub use relay::relay;

use super::State;
use caps::{Caps, Slot};
pub use target::Target;

/// The bridge's settings, open connections and counters, shared by every connection.
pub struct Bridge {
    pub on: bool,
    idle: Duration,
    max_message: usize,
    caps: Arc<Caps>,
    counters: Counters,
    /// The announce relay to the other trackers a page's torrent names.
    pub forward: forward::Forward,
    /// The ports opened for browser peers.
    pub(super) inbound: inbound::Inbound,
}

/// Monotonic counters for `/metrics`.
#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused_unlisted: AtomicU64,
    refused_cap: AtomicU64,
    connect_failed: AtomicU64,
    closed_idle: AtomicU64,
    bad_frames: AtomicU64,
    bytes_to_peers: AtomicU64,
    bytes_to_clients: AtomicU64,
}

/// An accepted handshake: what to serve on it.
pub struct Upgrade(Kind);

enum Kind {
    Dial(Dial),
    /// A page's port or an inbound connection to it (see [`inbound`]).
    Inbound(inbound::Upgrade),
}

/// Where to relay, or the close frame that refuses it.
struct Dial {
    target: Target,
    verdict: Result<Slot, (u16, &'static str)>,
}

impl Bridge {
    /// A bridge with the caps and timings of `args`.
    pub fn new(args: &BridgeArgs) -> anyhow::Result<Bridge> {
        Ok(Bridge {
            on: !args.no_bridge,
            idle: super::config::secs(args.bridge_idle_timeout, "--bridge-idle-timeout")?,
            max_message: args.bridge_max_message.max(1024),
            caps: Caps::new(
                args.bridge_max_connections,
                args.bridge_max_per_ip,
                args.bridge_max_per_torrent,
            ),
            counters: Counters::default(),
            forward: forward::Forward::new(&args.forward, !args.no_bridge)?,
            inbound: inbound::Inbound::new(&args.inbound)?,
        })
    }

    /// The Prometheus lines of the bridge.
    pub fn render(&self, out: &mut String) {
        let c = &self.counters;
        let mut line = |name: &str, kind: &str, v: u64| metric(out, name, kind, v);
        line("connections", "gauge", self.caps.open() as u64);
        line("accepted_total", "counter", c.accepted.load(Relaxed));
        line(
            "refused_unlisted_total",
            "counter",
            c.refused_unlisted.load(Relaxed),
        );
        line("refused_cap_total", "counter", c.refused_cap.load(Relaxed));
        line(
            "connect_failed_total",
            "counter",
            c.connect_failed.load(Relaxed),
        );
        line("closed_idle_total", "counter", c.closed_idle.load(Relaxed));
        line("bad_frames_total", "counter", c.bad_frames.load(Relaxed));
        line(
            "bytes_to_peers_total",
            "counter",
            c.bytes_to_peers.load(Relaxed),
        );
        line(
            "bytes_to_clients_total",
            "counter",
            c.bytes_to_clients.load(Relaxed),
        );
        self.forward.render(out);
        self.inbound.render(out);
    }
}

/// Write one Prometheus sample, `enjambre_bridge_<name>`, with its type line.
fn metric(out: &mut String, name: &str, kind: &str, v: u64) {
    let _ = write!(
        out,
        "# TYPE enjambre_bridge_{name} {kind}\nenjambre_bridge_{name} {v}\n"
    );
}

/// An accepted bridge handshake: ready to relay (or to refuse with a close frame), or waiting
/// for the shared store to say whether the swarm lists the peer.
pub enum Opened {
    /// The `101` head and what to relay.
    Ready(String, Upgrade),
    /// With `--store`: ask [`super::store::Store::lists`], then [`decide`].
    AskStore(String, Target),
}

/// Answer a request for `/bridge/<rest>` (not `announce`): the `101` head and what to relay, or
/// the HTTP status and text of a refusal.
pub fn upgrade(
    req: &httparse::Request<'_, '_>,
    rest: &str,
    from: IpAddr,
    st: &State,
) -> Result<Opened, (&'static str, String)> {
    if let Some(up) = inbound::upgrade(req, rest, from, st) {
        return up.map(|(head, up)| Opened::Ready(head, Upgrade(Kind::Inbound(up))));
    }
    let target = target::parse(rest).map_err(|why| ("400 Bad Request", format!("{why}\n")))?;
    let head = handshake::accept(req)?;
    if st.store.is_some() {
        return Ok(Opened::AskStore(head, target));
    }
    let listed = st.reg().lists(&target.info_hash, target.addr);
    Ok(Opened::Ready(head, decide(st, from, target, Some(listed))))
}

/// Relay to `target` or refuse it: `listed` is whether the registry lists it (`None`: the
/// shared store could not be asked).
pub fn decide(st: &State, from: IpAddr, target: Target, listed: Option<bool>) -> Upgrade {
    let b = &st.bridge;
    let listed = listed.map(|l| l || b.forward.lists(&target.info_hash, target.addr));
    let verdict = match listed {
        None => Err((1013, super::store::UNAVAILABLE)),
        Some(false) => {
            b.counters.refused_unlisted.fetch_add(1, Relaxed);
            Err((
                4403,
                "not listed: the tracker lists no such peer for this torrent",
            ))
        }
        Some(true) => b.caps.take(from, target.info_hash).map_err(|hit| {
            b.counters.refused_cap.fetch_add(1, Relaxed);
            (4429, hit.reason())
        }),
    };
    Upgrade(Kind::Dial(Dial { target, verdict }))
}
