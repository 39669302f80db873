//! The swarm API's JSON: `/swarm/<hex>`, `/swarms`, `/stats`. Built by hand (no intermediate
//! values) because a swarm of thousands of peers with 10,000-piece bitfields is large.
//!
//! Bitfields are base64url of the raw BEP 3 bytes, the same encoding as the `bitfield=`
//! self-report parameter.

use std::fmt::Write;

use enjambre_core::InfoHash;

use super::bits::{Arena, Have};
use super::metrics::{Metrics, Totals};
use super::peers::{IpBytes, Peer};
use super::proto::b64url;
use super::registry::{Registry, Swarm};

fn json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The bitfield bytes the API shows for a peer, when they can be given.
fn shown_bits<I: IpBytes>(p: &Peer<I>, arena: &Arena, pieces: Option<u32>) -> Option<Vec<u8>> {
    let stride = arena.stride();
    match p.have {
        Have::Unknown => None,
        Have::Some => Some(arena.slot(p.slot).to_vec()),
        Have::None if stride > 0 => Some(vec![0; stride]),
        Have::All => {
            let n = pieces? as usize;
            let mut v = vec![0xffu8; n.div_ceil(8)];
            if n % 8 != 0 {
                if let Some(last) = v.last_mut() {
                    *last = 0xffu8 << (8 - n % 8);
                }
            }
            Some(v)
        }
        Have::None => None,
    }
}

/// One peer as JSON.
pub fn peer_json<I: IpBytes>(p: &Peer<I>, arena: &Arena, pieces: Option<u32>, now: u32) -> String {
    let mut s = String::with_capacity(256);
    let id_printable: String = p
        .peer_id
        .iter()
        .take(8)
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
        .collect();
    let _ = write!(
        s,
        "{{\"addr\":\"{}\",\"peer_id\":\"{}\",\"client\":",
        p.addr(),
        hex(&p.peer_id)
    );
    json_str(&mut s, &id_printable);
    let _ = write!(
        s,
        ",\"uploaded\":{},\"downloaded\":{},\"left\":{},\"seed\":{},\"event\":\"{}\",\"last_seen_age\":{}",
        p.uploaded,
        p.downloaded,
        p.left,
        p.is_seed(),
        p.event.as_str(),
        now.saturating_sub(p.last_seen)
    );
    let have = match p.have {
        Have::Unknown => "unknown",
        Have::None => "none",
        Have::All => "all",
        Have::Some => "some",
    };
    let count: Option<u64> = match p.have {
        Have::Unknown => None,
        Have::None => Some(0),
        Have::All => pieces.map(u64::from),
        Have::Some => Some(
            arena
                .slot(p.slot)
                .iter()
                .map(|b| u64::from(b.count_ones()))
                .sum(),
        ),
    };
    // A fraction only of an exact count: the bitfield's length alone allows up to 7 more.
    let total = pieces.map(u64::from);
    let progress = match (count, total, p.have) {
        (_, _, Have::All) => Some(1.0),
        (Some(c), Some(t), _) if t > 0 => Some(c as f64 / t as f64),
        _ if p.is_seed() => Some(1.0),
        _ => None,
    };
    let _ = write!(s, ",\"have\":\"{have}\",\"pieces_have\":");
    push_opt(&mut s, count);
    s.push_str(",\"progress\":");
    match progress {
        Some(v) => {
            let _ = write!(s, "{v:.4}");
        }
        None => s.push_str("null"),
    }
    s.push_str(",\"bitfield\":");
    match shown_bits(p, arena, pieces) {
        Some(b) => {
            let _ = write!(s, "\"{}\"", b64url(&b));
        }
        None => s.push_str("null"),
    }
    let known = p.have != Have::Unknown;
    if known {
        let _ = write!(
            s,
            ",\"source\":\"{}\",\"bitfield_age\":{}",
            p.source.as_str(),
            now.saturating_sub(p.have_at)
        );
    } else {
        s.push_str(",\"source\":null,\"bitfield_age\":null");
    }
    let _ = write!(
        s,
        ",\"reachable\":{},\"poll_failures\":{}}}",
        p.poll_fails == 0,
        p.poll_fails
    );
    s
}

fn push_opt(s: &mut String, v: Option<u64>) {
    match v {
        Some(v) => {
            let _ = write!(s, "{v}");
        }
        None => s.push_str("null"),
    }
}

/// One swarm as JSON: counters, every peer, and per-piece availability.
///
/// `piece_count` is the exact count or `null` while unknown (a torrent the tracker was not
/// given, before a seed's bitfield told it); `piece_count_range` is then what the bitfields
/// allow, and `availability` lists only the pieces known to exist.
pub fn swarm_json(ih: &InfoHash, s: &Swarm, now: u32) -> String {
    let range = s.piece_count_range();
    // Availability of the pieces known to exist.
    let listed = range.map_or(0, |r| r.0);
    let mut out = String::with_capacity(512 + s.len() * 256 + listed * 3);
    let _ = write!(out, "{{\"info_hash\":\"{ih}\",\"name\":");
    match &s.name {
        Some(n) => json_str(&mut out, n),
        None => out.push_str("null"),
    }
    out.push_str(",\"piece_count\":");
    push_opt(&mut out, s.pieces.map(u64::from));
    out.push_str(",\"piece_count_range\":");
    match range {
        Some((least, most)) => {
            let _ = write!(out, "[{least},{most}]");
        }
        None => out.push_str("null"),
    }
    let _ = write!(
        out,
        ",\"piece_count_exact\":{},\"registered\":{},\"seeders\":{},\"leechers\":{},\"completed\":{},\"peers\":[",
        s.pieces.is_some(),
        s.registered,
        s.seeders,
        s.leechers,
        s.completed
    );
    let mut first = true;
    for p in &s.v4.peers {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&peer_json(p, &s.arena, s.pieces, now));
    }
    for p in &s.v6.peers {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&peer_json(p, &s.arena, s.pieces, now));
    }
    out.push_str("],\"availability\":[");
    for i in 0..listed {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}", s.arena.availability(i));
    }
    out.push_str("]}");
    out
}

/// Every swarm's counters, the most populated first (ties by info-hash, so pages are stable):
/// `limit` of them from position `offset`.
pub fn swarms_json(reg: &Registry, offset: usize, limit: usize) -> String {
    let mut list: Vec<(&InfoHash, &Swarm)> = reg.swarms.iter().map(|(k, v)| (k, &**v)).collect();
    list.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let mut out = String::with_capacity(64 + list.len().min(limit) * 160);
    let _ = write!(
        out,
        "{{\"total\":{},\"offset\":{offset},\"swarms\":[",
        list.len()
    );
    for (k, (ih, s)) in list.into_iter().skip(offset).take(limit).enumerate() {
        if k > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"info_hash\":\"{ih}\",\"name\":");
        match &s.name {
            Some(n) => json_str(&mut out, n),
            None => out.push_str("null"),
        }
        let _ = write!(
            out,
            ",\"peers\":{},\"seeders\":{},\"leechers\":{},\"completed\":{},\"piece_count\":",
            s.len(),
            s.seeders,
            s.leechers,
            s.completed,
        );
        push_opt(&mut out, s.pieces.map(u64::from));
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// Tracker-wide counters.
pub fn stats_json(m: &Metrics, t: &Totals, uptime_secs: u64) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    format!(
        "{{\"uptime_secs\":{uptime_secs},\"torrents\":{},\"peers\":{},\"seeders\":{},\"leechers\":{},\"completed\":{},\"peers_with_bitfield\":{},\"registry_heap_bytes\":{},\"http_announces\":{},\"udp_announces\":{},\"http_scrapes\":{},\"udp_scrapes\":{},\"polls_ok\":{},\"polls_failed\":{}}}",
        t.torrents,
        t.peers,
        t.seeders,
        t.leechers,
        t.completed,
        t.peers_with_bitfield,
        t.registry_heap_bytes,
        m.http_announces.load(Relaxed),
        m.udp_announces.load(Relaxed),
        m.http_scrapes.load(Relaxed),
        m.udp_scrapes.load(Relaxed),
        m.polls_ok.load(Relaxed),
        m.polls_failed.load(Relaxed),
    )
}
