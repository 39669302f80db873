//! Key names in Redis. Every key of one torrent carries the hash tag `{<info-hash hex>}`, so a
//! torrent lives in one Redis Cluster slot and its announce script may touch all of its keys.
//! Keys that are not a torrent's (the torrent index, the node heartbeats) carry tags of their
//! own and are never touched by a script together with a torrent's.

use std::net::SocketAddr;

use enjambre_core::InfoHash;

/// The prefix of every key the tracker writes.
pub const PREFIX: &str = "enj";

/// The set of info-hashes (hex) that have had peers: what `/swarms`, a full scrape and the
/// totals of `/metrics` walk. Members whose torrent expired are dropped when found.
pub const INDEX: &str = "enj:{index}:torrents";

/// The torrents whose earliest next poll is due: sorted set of info-hash (hex) scored by the
/// smallest score of that torrent's [`TorrentKeys::due`] (or lower: a torrent found with nothing
/// due is rescored). A node's scan for due peers reads this and then only the due torrents.
pub const DUE: &str = "enj:{index}:due";

/// The keys of one torrent, all in the slot of its hash tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TorrentKeys {
    /// Seeders: sorted set of peer members scored by the Unix second they last announced.
    pub seeders: String,
    /// Leechers: the same for peers with something left.
    pub leechers: String,
    /// Peer records: hash of member → [`super::record::PeerRecord`] bytes.
    pub peers: String,
    /// Bitfields: hash of member → [`super::record::BitsRecord`] bytes.
    pub bits: String,
    /// Counters and facts: hash with `completed`, `name`, `pieces`, `stride`, `registered`.
    pub meta: String,
    /// Members whose completion was counted (so a seed re-announcing counts once).
    pub done: String,
    /// Present while some node serves this torrent's live feed (expires by itself).
    pub watched: String,
    /// Poll bookkeeping: hash of member → `<next poll unix>:<consecutive failed polls>`.
    pub fails: String,
    /// The same next poll times as a sorted set (member scored by its next poll), so a scan
    /// reads only the peers that are due.
    pub due: String,
    /// The live feed's pub/sub channel.
    pub feed: String,
}

impl TorrentKeys {
    /// The keys of `ih`.
    pub fn of(ih: &InfoHash) -> Self {
        let tag = format!("{PREFIX}:{{{ih}}}");
        TorrentKeys {
            seeders: format!("{tag}:seeders"),
            leechers: format!("{tag}:leechers"),
            peers: format!("{tag}:peers"),
            bits: format!("{tag}:bits"),
            meta: format!("{tag}:meta"),
            done: format!("{tag}:done"),
            watched: format!("{tag}:watched"),
            fails: format!("{tag}:fails"),
            due: format!("{tag}:due"),
            feed: format!("{tag}:feed"),
        }
    }

    /// The keys the announce script takes, in its `KEYS` order.
    pub fn script_keys(&self) -> [&str; 9] {
        [
            &self.seeders,
            &self.leechers,
            &self.peers,
            &self.bits,
            &self.meta,
            &self.done,
            &self.watched,
            &self.fails,
            &self.due,
        ]
    }
}

/// The hash tag of a key: the text between the first `{` and the next `}` when not empty, as
/// Redis Cluster computes slots from it; else the whole key.
#[cfg(test)]
pub fn hash_tag(key: &str) -> &str {
    if let Some(open) = key.find('{') {
        if let Some(len) = key[open + 1..].find('}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// A peer's member name in a torrent's sets: its address as text (`10.0.0.1:6881`,
/// `[2001:db8::1]:6881`; IPv4-mapped IPv6 as IPv4).
pub fn member(addr: SocketAddr) -> String {
    SocketAddr::new(addr.ip().to_canonical(), addr.port()).to_string()
}

/// The address of a member name.
pub fn parse_member(m: &[u8]) -> Option<SocketAddr> {
    std::str::from_utf8(m).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_torrent_shares_its_hash_tag() {
        let ih = InfoHash([0xab; 20]);
        let k = TorrentKeys::of(&ih);
        let hex = "ab".repeat(20);
        for key in k.script_keys().into_iter().chain([k.feed.as_str()]) {
            assert_eq!(hash_tag(key), hex, "{key}");
            assert!(key.starts_with("enj:{"), "{key}");
        }
        let other = TorrentKeys::of(&InfoHash([0xac; 20]));
        assert_ne!(hash_tag(&other.peers), hash_tag(&k.peers));
        assert_eq!(hash_tag(INDEX), "index");
        assert_eq!(hash_tag(DUE), "index");
    }

    #[test]
    fn hash_tags_follow_the_cluster_rules() {
        assert_eq!(hash_tag("plain"), "plain");
        assert_eq!(hash_tag("a{}b"), "a{}b", "an empty tag is no tag");
        assert_eq!(hash_tag("a{x}{y}"), "x", "the first tag counts");
        assert_eq!(hash_tag("a{x"), "a{x");
    }

    #[test]
    fn members_name_addresses_both_ways() {
        let v4: SocketAddr = "10.0.0.1:6881".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:6881".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:6881".parse().unwrap();
        assert_eq!(member(v4), "10.0.0.1:6881");
        assert_eq!(member(v6), "[2001:db8::1]:6881");
        assert_eq!(member(mapped), "10.0.0.1:6881");
        for a in [v4, v6] {
            assert_eq!(parse_member(member(a).as_bytes()), Some(a));
        }
        assert_eq!(parse_member(b"nonsense"), None);
    }
}
