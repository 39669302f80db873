//! Announcing to a torrent's trackers: the sockets, DNS, TLS and timeouts around the core's
//! `tracker::client::Announcer`, which decides which tracker to ask, with what, and what the
//! answer means. Turns the answer into owned values for the session driver (and for the
//! tracker's bridge, which relays a browser page's announces with it). Never announces to
//! anything but the URLs it was given, nor to an address its filter refuses.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use enjambre_core::tracker::client::{
    self, Action, Answer, Failure, Identity, Retransmit, Rng, Step, MAX_QUERY, NUMWANT,
};
use enjambre_core::tracker::AnnounceEvent;
use enjambre_core::{InfoHash, PeerId};
use tokio::time::Instant;

use super::http_tracker::{self, HttpUrl};
use super::udp_tracker::TrackerSocket;

/// Trackers considered at most; a longer announce list is cut (with a warning).
const MAX_TRACKERS: usize = 512;

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
    /// Whole HTTP exchange (connecting, TLS, request and response).
    pub http: Duration,
    /// UDP retransmission schedule.
    pub udp: Retransmit,
}

impl Default for AnnounceTimeouts {
    fn default() -> Self {
        // Fewer UDP retransmissions than BEP 15's 8: the driver retries on its own schedule.
        AnnounceTimeouts {
            http: Duration::from_secs(20),
            udp: Retransmit {
                base: enjambre_core::Duration::from_secs(15),
                max_n: 2,
            },
        }
    }
}

/// Which tracker addresses may be reached (resolved names included); the rest are refused
/// before any byte is sent.
pub type AddrFilter = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

/// Announces one torrent to its trackers.
pub struct Announcer {
    /// The announce list; the core holds indices into it.
    urls: Vec<String>,
    core: Box<client::Announcer<MAX_TRACKERS>>,
    /// Each UDP tracker's socket, kept so its connection id stays valid.
    udp: HashMap<u16, TrackerSocket>,
    timeouts: AnnounceTimeouts,
    /// Announce from this address (the `--listen` address), so trackers list the right one.
    source: Option<IpAddr>,
    /// The TLS client for https trackers (built at the first one, from `SSL_CERT_FILE` or the
    /// built-in roots).
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Which tracker addresses may be reached; `None`: any.
    allow: Option<AddrFilter>,
    /// The origin of the core's clock.
    epoch: Instant,
}

/// How one tracker's attempt ended, owned.
enum Settled {
    Answered(Announced),
    Failed(String),
    Again,
}

impl Announcer {
    /// Prepare announces for `trackers` (`(tier, url)` pairs).
    pub fn new(
        info_hash: InfoHash,
        peer_id: PeerId,
        port: u16,
        trackers: impl IntoIterator<Item = (usize, String)>,
        timeouts: AnnounceTimeouts,
        source: Option<IpAddr>,
    ) -> Self {
        let mut list: Vec<(u16, String)> = trackers
            .into_iter()
            .map(|(tier, url)| (u16::try_from(tier).unwrap_or(u16::MAX), url))
            .collect();
        if list.len() > MAX_TRACKERS {
            tracing::warn!(
                trackers = list.len(),
                "only the first {MAX_TRACKERS} trackers are used"
            );
            list.truncate(MAX_TRACKERS);
        }
        let pairs = list.iter().map(|(tier, url)| (*tier, url.as_str()));
        let tiers = client::Tiers::new(pairs, &mut Rng::new(rand::random()))
            .expect("the list is cut to the capacity");
        let identity = Identity {
            info_hash,
            peer_id,
            port,
            key: rand::random(),
            numwant: NUMWANT,
        };
        Announcer {
            urls: list.into_iter().map(|(_, url)| url).collect(),
            core: Box::new(client::Announcer::new(
                identity,
                tiers,
                timeouts.udp,
                rand::random(),
            )),
            udp: HashMap::new(),
            timeouts,
            source,
            tls: None,
            allow: None,
            epoch: Instant::now(),
        }
    }

    /// Reach only tracker addresses `allow` accepts.
    pub fn only_to(mut self, allow: AddrFilter) -> Self {
        self.allow = Some(allow);
        self
    }

    /// Return true when there is no tracker to announce to.
    pub fn is_empty(&self) -> bool {
        self.core.is_empty()
    }

    /// Announce to the first tracker that answers, in BEP 12 order.
    pub async fn announce(&mut self, p: &AnnounceParams) -> Result<Announced, AnnounceError> {
        self.core.start(client::Announce {
            event: p.event,
            uploaded: p.uploaded,
            downloaded: p.downloaded,
            left: p.left,
        });
        // What each failed tracker's error said, with the shell's detail.
        let mut details: HashMap<u16, String> = HashMap::new();
        let mut out = vec![0u8; MAX_QUERY + 512];
        loop {
            let now = self.now();
            let action = self
                .core
                .poll(now, &self.urls, p.bitfield.as_deref(), &mut out);
            let (tracker, settled) = match action {
                Some(Action::Http {
                    tracker,
                    url,
                    query,
                    ..
                }) => {
                    let (url, query) = (HttpUrl::from_tracker(&url), query.to_vec());
                    (tracker, self.ask_http(tracker, url, &query).await)
                }
                Some(Action::Udp { tracker, url }) => {
                    let (host, port) = (url.host.to_string(), url.port);
                    (tracker, self.ask_udp(tracker, &host, port).await)
                }
                Some(Action::GaveUp) | None => return Err(self.gave_up(details)),
            };
            match settled {
                Settled::Answered(a) => return Ok(a),
                Settled::Failed(e) => {
                    let url = &self.urls[usize::from(tracker)];
                    tracing::info!(tracker = %url, error = %e, "announce failed");
                    details.insert(tracker, e);
                }
                Settled::Again => {
                    let url = &self.urls[usize::from(tracker)];
                    tracing::debug!(tracker = %url, "announcing again without the self-report");
                }
            }
        }
    }

    fn now(&self) -> enjambre_core::Instant {
        enjambre_core::Instant::from_millis(self.epoch.elapsed().as_millis() as u64)
    }

    async fn ask_http(&mut self, tracker: u16, url: Option<HttpUrl>, query: &[u8]) -> Settled {
        let Some(http_url) = url else {
            return self.failed(Failure::BadUrl, "not an HTTP URL".into());
        };
        let tls = match (http_url.tls, &self.tls) {
            (false, _) => None,
            (true, Some(config)) => Some(config.clone()),
            (true, None) => match super::tls::client_config() {
                Ok(config) => Some(self.tls.insert(config).clone()),
                Err(e) => return self.failed(Failure::Tls, e),
            },
        };
        let allow = self.allow.as_deref().map(|f| f as _);
        let timeout = self.timeouts.http;
        let got = http_tracker::request(&http_url, query, timeout, self.source, tls, allow).await;
        match got {
            Ok(response) => {
                let url = &self.urls[usize::from(tracker)];
                match self.core.handle_http(response.status, &response.body) {
                    Some(step) => settle(step, url),
                    None => Settled::Failed("no announce in progress".into()),
                }
            }
            Err(e) => self.failed(e.failure(), e.to_string()),
        }
    }

    async fn ask_udp(&mut self, tracker: u16, host: &str, port: u16) -> Settled {
        if !self.udp.contains_key(&tracker) {
            let allow = self.allow.as_deref().map(|f| f as _);
            match TrackerSocket::open(host, port, self.source, allow).await {
                Ok(socket) => {
                    self.udp.insert(tracker, socket);
                }
                Err(e) => {
                    return self.failed(Failure::Unreachable, format!("UDP tracker {host}: {e}"))
                }
            }
        }
        let socket = &self.udp[&tracker];
        let url = &self.urls[usize::from(tracker)];
        match socket
            .drive(&mut self.core, self.epoch, |step| settle(step, url))
            .await
        {
            Ok(settled) => settled,
            Err(e) => {
                // A fresh socket next time (an ICMP refusal, a changed route).
                self.udp.remove(&tracker);
                self.failed(Failure::Unreachable, format!("UDP tracker {host}: {e}"))
            }
        }
    }

    /// Report the shell's failure to the core; `detail` is what the user reads.
    fn failed(&mut self, failure: Failure, detail: String) -> Settled {
        self.core.handle_failure(failure);
        Settled::Failed(detail)
    }

    /// Every tracker failed: each one's URL and error, in the order tried.
    fn gave_up(&self, mut details: HashMap<u16, String>) -> AnnounceError {
        AnnounceError(
            self.core
                .failures()
                .map(|(tracker, failure)| {
                    let url = self.urls[usize::from(tracker)].clone();
                    let detail = details
                        .remove(&tracker)
                        .unwrap_or_else(|| failure.to_string());
                    (url, detail)
                })
                .collect(),
        )
    }
}

/// Own a step of the core's: the answer for the driver, or the failure's text.
fn settle(step: Step<'_>, url: &str) -> Settled {
    match step {
        Step::Answered(a) => {
            if let Some(warning) = a.warning {
                tracing::warn!(tracker = %url, %warning, "tracker warning");
            }
            Settled::Answered(announced(&a, url))
        }
        Step::Failed {
            failure: Failure::Refused,
            reason,
            ..
        } => Settled::Failed(format!(
            "tracker refused: {}",
            reason.unwrap_or("(no reason given)")
        )),
        Step::Failed { failure, .. } => Settled::Failed(failure.to_string()),
        Step::Again => Settled::Again,
    }
}

fn announced(a: &Answer<'_>, url: &str) -> Announced {
    let std_duration = |d: enjambre_core::Duration| Duration::from_millis(d.as_millis());
    Announced {
        tracker: url.to_string(),
        interval: std_duration(a.interval),
        min_interval: a.min_interval.map(std_duration),
        peers: a.peers().collect(),
        seeders: a.seeders,
        leechers: a.leechers,
    }
}

#[cfg(test)]
#[path = "announce_tests.rs"]
mod tests;
