//! Announcing to a torrent's trackers: builds the request with the core's tracker codec, sends it
//! over HTTP or UDP, walks the BEP 12 tiers, and turns the answer into owned values for the
//! session driver. Never announces to anything but the URLs it was given.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use enjambre_core::tracker::{AnnounceEvent, AnnounceRequest, AnnounceResponse};
use enjambre_core::{InfoHash, PeerId};

use super::http_tracker::{self, HttpUrl};
use super::tiers::Tiers;
use super::udp_tracker::{UdpAnnounce, UdpTimeouts, UdpTracker};

/// The interval used when a tracker gives none (BEP 3 has no default; 30 minutes is customary).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1800);

/// How many peers to ask for.
const NUMWANT: u32 = 80;

/// One announce's varying fields.
#[derive(Debug, Clone)]
pub struct AnnounceParams {
    /// started / completed / stopped / none.
    pub event: AnnounceEvent,
    /// Bytes uploaded so far.
    pub uploaded: u64,
    /// Bytes downloaded so far.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// Our bitfield, self-reported to trackers that read it (others ignore the parameter).
    pub bitfield: Option<Vec<u8>>,
}

/// A tracker's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// The tracker that answered.
    pub tracker: String,
    /// When to announce again.
    pub interval: Duration,
    /// Never announce sooner than this.
    pub min_interval: Option<Duration>,
    /// The peers it listed.
    pub peers: Vec<SocketAddr>,
    /// Seeds in the swarm, when said.
    pub seeders: Option<u32>,
    /// Leeches in the swarm, when said.
    pub leechers: Option<u32>,
}

/// Every tracker failed; each one's error, in the order tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceError(pub Vec<(String, String)>);

impl fmt::Display for AnnounceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("the torrent lists no tracker");
        }
        f.write_str("no tracker answered")?;
        for (url, e) in &self.0 {
            write!(f, "; {url}: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AnnounceError {}

/// Timeouts for both transports.
#[derive(Debug, Clone, Copy)]
pub struct AnnounceTimeouts {
    /// Whole HTTP exchange.
    pub http: Duration,
    /// UDP retransmission schedule.
    pub udp: UdpTimeouts,
}

impl Default for AnnounceTimeouts {
    fn default() -> Self {
        // Fewer UDP retransmissions than BEP 15's 8: the driver retries on its own schedule.
        AnnounceTimeouts {
            http: Duration::from_secs(20),
            udp: UdpTimeouts {
                base: Duration::from_secs(15),
                max_n: 2,
            },
        }
    }
}

/// Announces one torrent to its trackers.
pub struct Announcer {
    info_hash: InfoHash,
    peer_id: PeerId,
    port: u16,
    key: u32,
    tiers: Tiers,
    udp: HashMap<String, UdpTracker>,
    tracker_ids: HashMap<String, Vec<u8>>,
    timeouts: AnnounceTimeouts,
}

impl Announcer {
    /// Prepare announces for `trackers` (`(tier, url)` pairs).
    pub fn new(
        info_hash: InfoHash,
        peer_id: PeerId,
        port: u16,
        trackers: impl IntoIterator<Item = (usize, String)>,
        timeouts: AnnounceTimeouts,
    ) -> Self {
        let mut rng = rand::thread_rng();
        let tiers = Tiers::new(trackers, &mut rng);
        Announcer {
            info_hash,
            peer_id,
            port,
            key: rand::Rng::gen(&mut rng),
            tiers,
            udp: HashMap::new(),
            tracker_ids: HashMap::new(),
            timeouts,
        }
    }

    /// Return true when there is no tracker to announce to.
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// Announce to the first tracker that answers, in BEP 12 order.
    pub async fn announce(&mut self, p: &AnnounceParams) -> Result<Announced, AnnounceError> {
        let urls: Vec<String> = self.tiers.order().map(String::from).collect();
        let mut errors = Vec::new();
        for url in urls {
            match self.announce_one(&url, p).await {
                Ok(a) => {
                    self.tiers.promote(&url);
                    return Ok(a);
                }
                Err(e) => {
                    tracing::info!(tracker = %url, error = %e, "announce failed");
                    errors.push((url, e));
                }
            }
        }
        Err(AnnounceError(errors))
    }

    async fn announce_one(&mut self, url: &str, p: &AnnounceParams) -> Result<Announced, String> {
        if url.len() >= 6 && url[..6].eq_ignore_ascii_case("udp://") {
            self.announce_udp(url, p).await
        } else {
            self.announce_http(url, p).await
        }
    }

    async fn announce_http(&mut self, url: &str, p: &AnnounceParams) -> Result<Announced, String> {
        let parsed = HttpUrl::parse(url).map_err(|e| e.to_string())?;
        let request = AnnounceRequest {
            info_hash: self.info_hash,
            peer_id: self.peer_id,
            port: self.port,
            uploaded: p.uploaded,
            downloaded: p.downloaded,
            left: p.left,
            event: p.event,
            compact: true,
            numwant: Some(NUMWANT),
            key: Some(self.key),
            trackerid: self.tracker_ids.get(url).map(Vec::as_slice),
            ip: None,
            bitfield: p.bitfield.as_deref(),
        };
        let query = write_query(&request);
        let body = http_tracker::get(&parsed, &query, self.timeouts.http)
            .await
            .map_err(|e| e.to_string())?;
        let response =
            AnnounceResponse::parse(&body).map_err(|e| format!("bad announce response: {e}"))?;
        if let Some(reason) = response.failure {
            return Err(format!("tracker refused: {reason}"));
        }
        if let Some(warning) = response.warning {
            tracing::warn!(tracker = %url, %warning, "tracker warning");
        }
        if let Some(id) = response.tracker_id {
            self.tracker_ids.insert(url.to_string(), id.to_vec());
        }
        Ok(Announced {
            tracker: url.to_string(),
            interval: response
                .interval
                .map_or(DEFAULT_INTERVAL, |s| Duration::from_secs(s.into())),
            min_interval: response.min_interval.map(|s| Duration::from_secs(s.into())),
            peers: response.peers().collect(),
            seeders: response.complete,
            leechers: response.incomplete,
        })
    }

    async fn announce_udp(&mut self, url: &str, p: &AnnounceParams) -> Result<Announced, String> {
        if !self.udp.contains_key(url) {
            let client = UdpTracker::new(url, self.timeouts.udp).map_err(|e| e.to_string())?;
            self.udp.insert(url.to_string(), client);
        }
        let client = self.udp.get_mut(url).expect("inserted above");
        let a = UdpAnnounce {
            info_hash: self.info_hash,
            peer_id: self.peer_id,
            downloaded: p.downloaded,
            left: p.left,
            uploaded: p.uploaded,
            event: p.event,
            key: self.key,
            num_want: NUMWANT as i32,
            port: self.port,
        };
        let reply = client.announce(&a).await.map_err(|e| e.to_string())?;
        Ok(Announced {
            tracker: url.to_string(),
            interval: Duration::from_secs(reply.interval.max(1).into()),
            min_interval: None,
            peers: reply.peers,
            seeders: Some(reply.seeders),
            leechers: Some(reply.leechers),
        })
    }
}

/// Encode the query, growing the buffer until it fits (`required` may be a lower bound).
fn write_query(request: &AnnounceRequest<'_>) -> String {
    let mut buf = vec![0u8; 512 + request.bitfield.map_or(0, |b| b.len() * 4 / 3 + 16)];
    loop {
        match request.write_query(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                // The encoder writes only URL-safe ASCII.
                return String::from_utf8(buf).unwrap_or_default();
            }
            Err(e) => {
                let len = e.required.max(buf.len() * 2);
                buf.resize(len, 0);
            }
        }
    }
}
