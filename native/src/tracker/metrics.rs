//! Request counters (lock-free) and the Prometheus text exposition of them and the registry.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use super::registry::Registry;

/// Counters updated by the servers and the poller.
#[derive(Default)]
pub struct Metrics {
    pub http_announces: AtomicU64,
    pub http_scrapes: AtomicU64,
    pub http_requests: AtomicU64,
    pub http_bad_requests: AtomicU64,
    pub http_refused_connections: AtomicU64,
    pub http_slow_heads: AtomicU64,
    pub http_connections: AtomicUsize,
    pub udp_connects: AtomicU64,
    pub udp_announces: AtomicU64,
    pub udp_scrapes: AtomicU64,
    pub udp_bad_packets: AtomicU64,
    pub udp_bad_connection_ids: AtomicU64,
    pub polls_ok: AtomicU64,
    pub polls_failed: AtomicU64,
    pub polls_in_flight: AtomicUsize,
    pub sse_subscribers: AtomicUsize,
}

/// Add one to a counter.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// Totals over the registry, computed on demand.
#[derive(Default, Debug, Clone, Copy)]
pub struct Totals {
    pub torrents: usize,
    pub peers: usize,
    pub seeders: u64,
    pub leechers: u64,
    pub completed: u64,
    pub peers_with_bitfield: usize,
    pub registry_heap_bytes: usize,
}

/// Walk the registry once.
pub fn totals(reg: &Registry) -> Totals {
    let mut t = Totals {
        torrents: reg.swarms.len(),
        ..Totals::default()
    };
    for s in reg.swarms.values() {
        t.peers += s.len();
        t.seeders += u64::from(s.seeders);
        t.leechers += u64::from(s.leechers);
        t.completed += s.completed;
        t.peers_with_bitfield +=
            s.v4.peers
                .iter()
                .filter(|p| p.have != super::bits::Have::Unknown)
                .count();
        t.peers_with_bitfield +=
            s.v6.peers
                .iter()
                .filter(|p| p.have != super::bits::Have::Unknown)
                .count();
        t.registry_heap_bytes += s.v4.heap_bytes() + s.v6.heap_bytes() + s.arena.heap_bytes();
    }
    t.registry_heap_bytes +=
        reg.swarms.capacity() * (std::mem::size_of::<super::registry::Swarm>() + 21);
    t
}

/// Render `/metrics` in the Prometheus text format.
pub fn render(m: &Metrics, t: &Totals, reg: &Registry) -> String {
    let mut s = String::with_capacity(4096);
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(s, "# HELP enjambre_tracker_{name} {help}\n# TYPE enjambre_tracker_{name} counter\nenjambre_tracker_{name} {v}");
    };
    counter(
        "http_announces_total",
        "HTTP announces answered.",
        m.http_announces.load(Relaxed),
    );
    counter(
        "http_scrapes_total",
        "HTTP scrapes answered.",
        m.http_scrapes.load(Relaxed),
    );
    counter(
        "http_requests_total",
        "HTTP requests parsed.",
        m.http_requests.load(Relaxed),
    );
    counter(
        "http_bad_requests_total",
        "HTTP requests refused as malformed or oversized.",
        m.http_bad_requests.load(Relaxed),
    );
    counter(
        "http_refused_connections_total",
        "HTTP connections refused at the connection cap or the per-address cap.",
        m.http_refused_connections.load(Relaxed),
    );
    counter(
        "http_slow_heads_total",
        "HTTP connections closed because a request head did not arrive in time.",
        m.http_slow_heads.load(Relaxed),
    );
    counter(
        "udp_connects_total",
        "UDP connect requests answered.",
        m.udp_connects.load(Relaxed),
    );
    counter(
        "udp_announces_total",
        "UDP announces answered.",
        m.udp_announces.load(Relaxed),
    );
    counter(
        "udp_scrapes_total",
        "UDP scrapes answered.",
        m.udp_scrapes.load(Relaxed),
    );
    counter(
        "udp_bad_packets_total",
        "UDP packets that did not decode.",
        m.udp_bad_packets.load(Relaxed),
    );
    counter(
        "udp_bad_connection_ids_total",
        "UDP requests with a forged or expired connection id.",
        m.udp_bad_connection_ids.load(Relaxed),
    );
    counter(
        "polls_ok_total",
        "Peer polls that learned a bitfield.",
        m.polls_ok.load(Relaxed),
    );
    counter(
        "polls_failed_total",
        "Peer polls that failed (unreachable, refused, bad handshake).",
        m.polls_failed.load(Relaxed),
    );
    counter(
        "refused_unregistered_total",
        "Announces refused for unregistered torrents.",
        reg.refused.unregistered,
    );
    counter(
        "refused_torrent_cap_total",
        "Announces refused at the torrent cap.",
        reg.refused.torrents_cap,
    );
    counter(
        "refused_peer_cap_total",
        "Peers not stored at the peer caps.",
        reg.refused.peers_cap,
    );
    counter(
        "bad_bitfields_total",
        "Bitfields ignored for a wrong length or spare bits.",
        reg.refused.bad_bitfield,
    );
    counter(
        "completed_total",
        "Completed downloads counted over all torrents.",
        t.completed,
    );
    let mut gauge = |name: &str, help: &str, v: u64| {
        let _ = writeln!(s, "# HELP enjambre_tracker_{name} {help}\n# TYPE enjambre_tracker_{name} gauge\nenjambre_tracker_{name} {v}");
    };
    gauge("torrents", "Torrents in the registry.", t.torrents as u64);
    gauge("peers", "Peers in the registry.", t.peers as u64);
    gauge("seeders", "Peers with nothing left.", t.seeders);
    gauge("leechers", "Peers still downloading.", t.leechers);
    gauge(
        "peers_with_bitfield",
        "Peers whose bitfield is known.",
        t.peers_with_bitfield as u64,
    );
    gauge(
        "registry_heap_bytes",
        "Approximate heap bytes held by the registry.",
        t.registry_heap_bytes as u64,
    );
    gauge(
        "http_connections",
        "Open HTTP connections.",
        m.http_connections.load(Relaxed) as u64,
    );
    gauge(
        "polls_in_flight",
        "Polls in progress.",
        m.polls_in_flight.load(Relaxed) as u64,
    );
    gauge(
        "sse_subscribers",
        "Live feed subscribers.",
        m.sse_subscribers.load(Relaxed) as u64,
    );
    s
}
