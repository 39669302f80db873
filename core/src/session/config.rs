//! Tunables of a [`Session`](super::Session), chosen by the shell.

use crate::{Duration, PeerId};

/// How a session behaves; [`Config::new`] gives defaults that suit a desktop peer.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our peer id, sent in every handshake.
    pub peer_id: PeerId,
    /// The TCP port we accept peers on (sent in the extended handshake and announces).
    pub listen_port: u16,
    /// Connected peers at most (never more than the session's `PEERS` slots).
    pub max_peers: usize,
    /// Outbound connections being opened at once, at most.
    pub max_half_open: usize,
    /// Requests in flight per peer, at most (never more than the session's `Q` nor the
    /// peer's `reqq`). Below that, the depth follows the peer's rate (`request_queue_time`).
    /// 64 by default: on a fast local link a deeper pipeline only costs CPU (1 GiB over
    /// loopback: 1.6 CPU-s in the leech at 64, 2.0–2.3 at 128); a link whose rate × round
    /// trip exceeds 1 MiB needs more.
    pub pipeline_depth: usize,
    /// Requests in flight per peer, at least, and before its rate is known.
    pub pipeline_floor: usize,
    /// Keep this long of a peer's measured rate in requests in flight: longer than the
    /// round trip fills the link; much longer leaves blocks waiting at slow peers.
    pub request_queue_time: Duration,
    /// Peers we upload to at once, one of them the optimistic unchoke.
    pub unchoke_slots: usize,
    /// Send a keep-alive after this long without sending anything.
    pub keepalive: Duration,
    /// Close a peer after this long without receiving anything.
    pub peer_timeout: Duration,
    /// A peer that moved no block, either way, for this long is idle: while peer slots are
    /// short, idle peers are closed (the longest idle first) to keep room for newcomers.
    pub idle_timeout: Duration,
    /// Give up on a peer's outstanding requests after this long without a payload byte.
    pub request_timeout: Duration,
    /// How often the choking algorithm runs.
    pub rechoke_interval: Duration,
    /// How often, at most, to ask the shell to persist the resume state.
    pub persist_interval: Duration,
    /// The longest message a peer may send, except `Piece` (whose payload streams).
    pub max_message_len: u32,
    /// Ban a peer after it took part in this many pieces that failed verification.
    pub ban_after_hash_failures: u8,
    /// First retry delay after a failed announce; doubles on each failure.
    pub announce_retry: Duration,
    /// While downloading with no peer, announce again this soon (or after the tracker's min
    /// interval when it gives one), instead of waiting for the full interval.
    pub peerless_announce: Duration,
    /// Seed of the session's random choices (piece ties, optimistic unchoke).
    pub seed: u64,
    /// Our client name for the extended handshake's `v`.
    pub client_name: &'static str,
    /// Offer and use the BEP 6 fast extension.
    pub fast_extension: bool,
    /// Exchange peer addresses with peers that offer BEP 11 `ut_pex`: learn from theirs and
    /// tell them ours. Turn it off for a private torrent (BEP 27), whose peers come only from
    /// its trackers.
    pub pex: bool,
    /// Offer our `enjambre_partial` extension: peers that offer it too may request bytes of a
    /// piece we have not verified yet, within the ranges we have written (the SHA-1 check at
    /// their end still decides). Has no effect in a session that never downloads
    /// (`PARTIAL = 0`).
    pub partial_ext: bool,
    /// Super-seed (BEP 16) while complete: show each peer that connects only a piece or two
    /// at a time, pieces nobody was shown yet first, so the first copy uploaded spreads the
    /// whole file. For the first seed of a swarm; costs a little speed where other seeds exist.
    /// Has no effect in a shape that never downloads (see [`super_seed`](super::super_seed)).
    pub super_seed: bool,
    /// Never ask peers for pieces, only serve: a seed whose data lacks some pieces.
    pub upload_only: bool,
    /// Our DHT node's UDP port (BEP 5): our handshake then offers the DHT, and each peer that
    /// offers it too is sent a `Port` message after our first messages. `None`: neither (a
    /// shell without a DHT node).
    pub dht_port: Option<u16>,
    /// Bytes per peer the session hands the shell (transmits, and uploaded blocks with their
    /// header) before the shell confirms them sent with `handle_sent`: the most a shell ever
    /// holds for one peer. At least [`MIN_SEND_WINDOW`](super::MIN_SEND_WINDOW).
    pub send_window: u32,
}

impl Config {
    /// Defaults for a peer with id `peer_id` listening on `listen_port`.
    pub const fn new(peer_id: PeerId, listen_port: u16) -> Self {
        Config {
            peer_id,
            listen_port,
            max_peers: 50,
            max_half_open: 8,
            pipeline_depth: 64,
            pipeline_floor: 4,
            request_queue_time: Duration::from_secs(2),
            unchoke_slots: 4,
            keepalive: Duration::from_secs(90),
            peer_timeout: Duration::from_secs(180),
            idle_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(20),
            rechoke_interval: Duration::from_secs(10),
            persist_interval: Duration::from_secs(1),
            max_message_len: 256 * 1024,
            ban_after_hash_failures: 3,
            announce_retry: Duration::from_secs(5),
            peerless_announce: Duration::from_secs(30),
            seed: 0x5eed,
            client_name: "Enjambre 0.1",
            fast_extension: true,
            pex: true,
            partial_ext: true,
            super_seed: false,
            upload_only: false,
            dht_port: None,
            send_window: 256 * 1024,
        }
    }
}
