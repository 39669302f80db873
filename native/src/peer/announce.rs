//! Announcing to a torrent's trackers: builds the request with the core's tracker codec, sends it
//! over HTTP or UDP, walks the BEP 12 tiers, and turns the answer into owned values for the
//! session driver. Never announces to anything but the URLs it was given.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use enjambre_core::tracker::{AnnounceEvent, AnnounceRequest, AnnounceResponse};
use enjambre_core::{InfoHash, PeerId};

use super::http_tracker::{self, HttpError, HttpUrl};
use super::tiers::Tiers;
use super::udp_tracker::{UdpAnnounce, UdpTimeouts, UdpTracker};

/// The interval used when a tracker gives none (BEP 3 has no default; 30 minutes is customary).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1800);

/// The longest announce query we send with a self-reported `bitfield=`: trackers cap request
/// heads (ours and many others at 8 KiB), and a longer report is left out rather than refused.
const MAX_QUERY: usize = 6 * 1024;

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
    /// HTTP trackers that refused an announce carrying `bitfield=` (414 or 431): not sent again.
    no_self_report: HashSet<String>,
    timeouts: AnnounceTimeouts,
    /// Announce from this address (the `--listen` address), so trackers list the right one.
    source: Option<IpAddr>,
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
            no_self_report: HashSet::new(),
            timeouts,
            source,
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
            bitfield: p
                .bitfield
                .as_deref()
                .filter(|_| !self.no_self_report.contains(url)),
        };
        let query = write_query(&request);
        let mut got = http_tracker::get(&parsed, &query, self.timeouts.http, self.source).await;
        if let Err(HttpError::Status {
            status: 414 | 431, ..
        }) = got
        {
            if query.contains("&bitfield=") {
                // Its head limit is below ours: announce again without the self-report.
                self.no_self_report.insert(url.to_string());
                let query = write_query(&AnnounceRequest {
                    bitfield: None,
                    ..request
                });
                got = http_tracker::get(&parsed, &query, self.timeouts.http, self.source).await;
            }
        }
        let body = got.map_err(|e| e.to_string())?;
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
            let client =
                UdpTracker::new(url, self.timeouts.udp, self.source).map_err(|e| e.to_string())?;
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

/// Encode the query; a self-reported bitfield that would make it longer than [`MAX_QUERY`] is
/// left out (the tracker's poller learns the pieces instead).
fn write_query(request: &AnnounceRequest<'_>) -> String {
    let query = encode_query(request);
    if query.len() <= MAX_QUERY || request.bitfield.is_none() {
        return query;
    }
    tracing::debug!(
        len = query.len(),
        "self-reported bitfield left out of a long announce"
    );
    encode_query(&AnnounceRequest {
        bitfield: None,
        ..*request
    })
}

/// Encode the query, growing the buffer until it fits (`required` may be a lower bound).
fn encode_query(request: &AnnounceRequest<'_>) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use enjambre_core::tracker::udp::{self, Request, Response};
    use enjambre_core::tracker::{
        write_announce_response, write_failure, AnnounceReply, ReplyPeer,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, UdpSocket};

    const HASH: InfoHash = InfoHash([0x12; 20]);
    const ID: PeerId = PeerId(*b"-EJ0100-abcdefghijkl");

    fn request(bitfield: &[u8]) -> AnnounceRequest<'_> {
        AnnounceRequest {
            info_hash: HASH,
            peer_id: ID,
            port: 6881,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: AnnounceEvent::None,
            compact: true,
            numwant: Some(NUMWANT),
            key: Some(7),
            trackerid: None,
            ip: None,
            bitfield: Some(bitfield),
        }
    }

    #[test]
    fn a_self_report_too_long_for_a_tracker_head_is_left_out() {
        // 35 000 pieces still fit; 140 000 pieces (17 500 bytes, 23 KB of base64) do not.
        let fits = write_query(&request(&[0xff; 4375]));
        assert!(
            fits.contains("&bitfield=") && fits.len() <= MAX_QUERY,
            "{}",
            fits.len()
        );
        let large = write_query(&request(&[0xff; 17_500]));
        assert!(!large.contains("bitfield="), "{}", large.len());
        assert!(
            large.contains("info_hash=") && large.contains("left=0"),
            "{large}"
        );
    }

    fn params(event: AnnounceEvent) -> AnnounceParams {
        AnnounceParams {
            event,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            bitfield: Some(vec![0b1010_0000]),
        }
    }

    fn fast() -> AnnounceTimeouts {
        AnnounceTimeouts {
            http: Duration::from_secs(5),
            udp: UdpTimeouts {
                base: Duration::from_millis(100),
                max_n: 2,
            },
        }
    }

    fn announcer(urls: &[&str]) -> Announcer {
        Announcer::new(
            HASH,
            ID,
            6881,
            urls.iter().enumerate().map(|(i, u)| (i, u.to_string())),
            fast(),
            None,
        )
    }

    /// A one-shot HTTP tracker: returns the request line it saw through the channel.
    async fn http_tracker(body: Vec<u8>) -> (String, tokio::sync::oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/announce", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "client closed before the end of its request");
                req.extend_from_slice(&buf[..n]);
            }
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            s.write_all(head.as_bytes()).await.unwrap();
            s.write_all(&body).await.unwrap();
            let _ = tx.send(String::from_utf8_lossy(&req).into_owned());
        });
        (url, rx)
    }

    #[tokio::test]
    async fn http_announce_sends_every_field_and_reads_compact_peers() {
        let peers = [
            ReplyPeer {
                addr: "10.0.0.1:6881".parse().unwrap(),
                peer_id: None,
            },
            ReplyPeer {
                addr: "[2001:db8::1]:51413".parse().unwrap(),
                peer_id: None,
            },
        ];
        let reply = AnnounceReply {
            interval: 900,
            min_interval: Some(60),
            complete: 4,
            incomplete: 7,
            warning: None,
            compact: true,
            peers: &peers,
        };
        let mut body = vec![0u8; 512];
        let n = write_announce_response(&mut body, &reply).unwrap();
        body.truncate(n);
        let (url, seen) = http_tracker(body).await;
        let mut a = announcer(&[&url]);
        let got = a.announce(&params(AnnounceEvent::Started)).await.unwrap();
        assert_eq!(got.tracker, url);
        assert_eq!(got.interval, Duration::from_secs(900));
        assert_eq!(got.min_interval, Some(Duration::from_secs(60)));
        assert_eq!((got.seeders, got.leechers), (Some(4), Some(7)));
        assert_eq!(got.peers, peers.map(|p| p.addr));
        let request = seen.await.unwrap();
        let line = request.lines().next().unwrap();
        assert!(
            line.starts_with("GET /announce?") && line.ends_with(" HTTP/1.1"),
            "{line}"
        );
        for part in [
            "info_hash=%12%12%12%12%12%12%12%12%12%12%12%12%12%12%12%12%12%12%12%12",
            "peer_id=-EJ0100-abcdefghijkl",
            "port=6881",
            "uploaded=1",
            "downloaded=2",
            "left=3",
            "event=started",
            "compact=1",
            "bitfield=oA",
        ] {
            assert!(line.contains(part), "{part} missing from {line}");
        }
        assert!(request.contains("\r\nHost: 127.0.0.1:"), "{request}");
    }

    /// An HTTP tracker with a smaller head limit: 431 to any request carrying `bitfield=`.
    /// Sends every request line it saw.
    async fn tracker_refusing_self_reports(
        body: Vec<u8>,
    ) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/announce", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    assert!(n > 0, "client closed before the end of its request");
                    req.extend_from_slice(&buf[..n]);
                }
                let line = String::from_utf8_lossy(&req)
                    .lines()
                    .next()
                    .unwrap()
                    .to_string();
                let (status, body) = if line.contains("bitfield=") {
                    ("431 Request Header Fields Too Large", &[][..])
                } else {
                    ("200 OK", &body[..])
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                s.write_all(head.as_bytes()).await.unwrap();
                s.write_all(body).await.unwrap();
                let _ = tx.send(line);
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn a_tracker_refusing_the_self_report_is_announced_to_without_it() {
        let reply = AnnounceReply {
            interval: 900,
            min_interval: None,
            complete: 1,
            incomplete: 0,
            warning: None,
            compact: true,
            peers: &[],
        };
        let mut body = vec![0u8; 512];
        let n = write_announce_response(&mut body, &reply).unwrap();
        body.truncate(n);
        let (url, mut seen) = tracker_refusing_self_reports(body).await;
        let mut a = announcer(&[&url]);
        let got = a.announce(&params(AnnounceEvent::Started)).await.unwrap();
        assert_eq!(got.interval, Duration::from_secs(900));
        a.announce(&params(AnnounceEvent::None)).await.unwrap();
        let mut lines = Vec::new();
        while let Ok(line) = seen.try_recv() {
            lines.push(line.contains("bitfield="));
        }
        // Refused once with it, then without it, and this tracker is not offered it again.
        assert_eq!(lines, [true, false, false]);
    }

    #[tokio::test]
    async fn a_failure_reason_is_reported_and_the_next_tier_is_tried() {
        let mut body = vec![0u8; 128];
        let n = write_failure(&mut body, "unregistered torrent").unwrap();
        body.truncate(n);
        let (refusing, _) = http_tracker(body).await;
        let good_reply = AnnounceReply {
            interval: 60,
            min_interval: None,
            complete: 0,
            incomplete: 0,
            warning: None,
            compact: true,
            peers: &[],
        };
        let mut body = vec![0u8; 128];
        let n = write_announce_response(&mut body, &good_reply).unwrap();
        body.truncate(n);
        let (good, _) = http_tracker(body).await;
        let mut a = announcer(&[&refusing, "https://secure.example/announce", &good]);
        let got = a.announce(&params(AnnounceEvent::None)).await.unwrap();
        assert_eq!(got.tracker, good);
        assert!(got.peers.is_empty());

        let mut a = announcer(&[
            "https://secure.example/announce",
            "http://127.0.0.1:1/announce",
        ]);
        let err = a.announce(&params(AnnounceEvent::None)).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("https trackers are not supported"), "{text}");
        assert!(text.contains("127.0.0.1:1"), "{text}");
    }

    #[tokio::test]
    async fn udp_announce_retransmits_connects_and_announces() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let url = format!("udp://{}/announce", server.local_addr().unwrap());
        let script = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            // The first connect is "lost"; the retransmission is answered.
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            let first = match Request::decode(&buf[..n]).unwrap() {
                Request::Connect { transaction_id } => transaction_id,
                other => panic!("expected connect, got {other:?}"),
            };
            let started = std::time::Instant::now();
            let (n, from2) = server.recv_from(&mut buf).await.unwrap();
            assert_eq!(from, from2);
            assert!(
                started.elapsed() >= Duration::from_millis(90),
                "retransmitted too early"
            );
            let Request::Connect { transaction_id } = Request::decode(&buf[..n]).unwrap() else {
                panic!()
            };
            assert_ne!(
                transaction_id, first,
                "each attempt has its own transaction id"
            );
            let mut out = [0u8; 512];
            let m = Response::Connect {
                transaction_id,
                connection_id: 0xfeed,
            }
            .encode(&mut out)
            .unwrap();
            server.send_to(&out[..m], from).await.unwrap();
            let (n, _) = server.recv_from(&mut buf).await.unwrap();
            match Request::decode(&buf[..n]).unwrap() {
                Request::Announce {
                    connection_id,
                    transaction_id,
                    info_hash,
                    left,
                    event,
                    port,
                    ..
                } => {
                    assert_eq!(
                        (connection_id, info_hash, left, event, port),
                        (0xfeed, HASH, 3, AnnounceEvent::Completed, 6881)
                    );
                    let peers = ["1.2.3.4:5".parse().unwrap()];
                    let m = udp::write_announce_response(
                        &mut out,
                        transaction_id,
                        1800,
                        2,
                        1,
                        false,
                        peers,
                    )
                    .unwrap();
                    server.send_to(&out[..m], from).await.unwrap();
                }
                other => panic!("expected announce, got {other:?}"),
            }
        });
        let mut a = announcer(&[&url]);
        let got = a.announce(&params(AnnounceEvent::Completed)).await.unwrap();
        assert_eq!(got.interval, Duration::from_secs(1800));
        assert_eq!(got.peers, ["1.2.3.4:5".parse::<SocketAddr>().unwrap()]);
        assert_eq!((got.seeders, got.leechers), (Some(1), Some(2)));
        script.await.unwrap();
    }

    #[tokio::test]
    async fn a_silent_udp_tracker_times_out_and_a_closed_port_fails_fast() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let url = format!("udp://{}", silent.local_addr().unwrap());
        let started = std::time::Instant::now();
        let err = announcer(&[&url])
            .announce(&params(AnnounceEvent::Started))
            .await
            .unwrap_err();
        // 100 + 200 + 400 ms on the BEP 15 schedule, cut at n = 2.
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(650) && took < Duration::from_secs(3),
            "{took:?}"
        );
        assert!(err.to_string().contains("did not answer"), "{err}");
        drop(silent);

        let closed = UdpSocket::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let started = std::time::Instant::now();
        let err = announcer(&[&format!("udp://{closed}")])
            .announce(&params(AnnounceEvent::Started))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "ICMP refusal should end it at once"
        );
        assert!(!err.0.is_empty());
    }
}
