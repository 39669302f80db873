//! Announcing to a torrent's trackers: the sockets, DNS, TLS and timeouts around the core's
//! `tracker::client::Announcer`, which decides which tracker to ask, with what, and what the
//! answer means. Turns the answer into owned values for the session driver. Never announces to
//! anything but the URLs it was given.

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
            epoch: Instant::now(),
        }
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
        let got =
            http_tracker::request(&http_url, query, self.timeouts.http, self.source, tls).await;
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
            match TrackerSocket::open(host, port, self.source).await {
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
mod tests {
    use super::*;
    use enjambre_core::tracker::udp::{self, Request, Response};
    use enjambre_core::tracker::{
        write_announce_response, write_failure, AnnounceReply, ReplyPeer,
    };
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::{TcpListener, UdpSocket};

    const HASH: InfoHash = InfoHash([0x12; 20]);
    const ID: PeerId = PeerId(*b"-EJ0100-abcdefghijkl");

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
            udp: Retransmit {
                base: enjambre_core::Duration::from_millis(100),
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

    /// Return `reply` bencoded, as an HTTP tracker sends it.
    fn encoded(reply: &AnnounceReply<'_>) -> Vec<u8> {
        let mut body = vec![0u8; 512];
        let n = write_announce_response(&mut body, reply).unwrap();
        body.truncate(n);
        body
    }

    /// Return a compact answer: `interval` seconds, `seeders` seeders, no leecher, `peers`.
    fn answer(interval: u32, seeders: u32, peers: &[ReplyPeer]) -> Vec<u8> {
        encoded(&AnnounceReply {
            interval,
            min_interval: None,
            complete: seeders,
            incomplete: 0,
            warning: None,
            compact: true,
            peers,
        })
    }

    /// A one-shot HTTP tracker: returns the request line it saw through the channel.
    async fn http_tracker(body: Vec<u8>) -> (String, tokio::sync::oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/announce", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let _ = tx.send(serve_one(s, &body).await);
        });
        (url, rx)
    }

    /// Read one request's head from `s`, answer 200 with `body`, and return the request.
    async fn serve_one(mut s: impl AsyncRead + AsyncWrite + Unpin, body: &[u8]) -> String {
        let req = read_head(&mut s).await;
        respond(&mut s, "200 OK", body).await;
        s.shutdown().await.unwrap();
        req
    }

    /// Read one request's head (through its blank line) from `s`.
    async fn read_head(s: &mut (impl AsyncRead + Unpin)) -> String {
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed before the end of its request");
            req.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&req).into_owned()
    }

    /// Answer `status` with `body`.
    async fn respond(s: &mut (impl AsyncWrite + Unpin), status: &str, body: &[u8]) {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
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
        let (url, seen) = http_tracker(encoded(&reply)).await;
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
                let req = read_head(&mut s).await;
                let line = req.lines().next().unwrap().to_string();
                let (status, body) = if line.contains("bitfield=") {
                    ("431 Request Header Fields Too Large", &[][..])
                } else {
                    ("200 OK", &body[..])
                };
                respond(&mut s, status, body).await;
                let _ = tx.send(line);
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn a_tracker_refusing_the_self_report_is_announced_to_without_it() {
        let (url, mut seen) = tracker_refusing_self_reports(answer(900, 1, &[])).await;
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
        let (good, _) = http_tracker(answer(60, 0, &[])).await;
        let mut a = announcer(&[&refusing, "http://127.0.0.1:1/announce", &good]);
        let got = a.announce(&params(AnnounceEvent::None)).await.unwrap();
        assert_eq!(got.tracker, good);
        assert!(got.peers.is_empty());

        let mut a = announcer(&["gopher://old.example/", "http://127.0.0.1:1/announce"]);
        let err = a.announce(&params(AnnounceEvent::None)).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("gopher://old.example/: bad tracker URL"),
            "{text}"
        );
        assert!(text.contains("cannot connect to 127.0.0.1:1"), "{text}");
    }

    /// A certificate authority, written as PEM to a file, and a certificate it signed for
    /// `names`, with its key.
    struct Pki {
        _dir: tempfile::TempDir,
        ca_file: std::path::PathBuf,
        server: Arc<rustls::ServerConfig>,
    }

    fn pki(names: &[&str]) -> Pki {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(super::super::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        Pki {
            _dir: dir,
            ca_file,
            server: Arc::new(server),
        }
    }

    /// A one-shot HTTPS tracker: TLS with `pki`'s certificate, then `body`; returns the request
    /// it saw, or the TLS error.
    async fn https_tracker(
        pki: &Pki,
        body: Vec<u8>,
    ) -> (u16, tokio::sync::oneshot::Receiver<Result<String, String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let seen = match acceptor.accept(s).await {
                Ok(tls) => Ok(serve_one(tls, &body).await),
                Err(e) => Err(e.to_string()),
            };
            let _ = tx.send(seen);
        });
        (port, rx)
    }

    #[tokio::test]
    async fn an_https_tracker_answers_through_tls_with_roots_from_ssl_cert_file() {
        let pki = pki(&["localhost", "127.0.0.1"]);
        let peer = ReplyPeer {
            addr: "10.1.2.3:6881".parse().unwrap(),
            peer_id: None,
        };
        let (port, seen) = https_tracker(&pki, answer(600, 1, &[peer])).await;
        let url = format!("https://127.0.0.1:{port}/announce");
        let mut a = announcer(&[&url]);
        // What `SSL_CERT_FILE` naming the CA's PEM file gives.
        a.tls = Some(super::super::tls::config_with_roots(Some(pki.ca_file.as_os_str())).unwrap());
        let got = a.announce(&params(AnnounceEvent::Started)).await.unwrap();
        assert_eq!(got.tracker, url);
        assert_eq!(got.interval, Duration::from_secs(600));
        assert_eq!(got.peers, ["10.1.2.3:6881".parse::<SocketAddr>().unwrap()]);
        let request = seen.await.unwrap().unwrap();
        assert!(request.starts_with("GET /announce?info_hash="), "{request}");
        assert!(request.contains("&bitfield=oA"), "{request}");
    }

    #[tokio::test]
    async fn an_https_tracker_with_a_certificate_for_another_name_is_refused() {
        let pki = pki(&["tracker.example"]);
        let (port, seen) = https_tracker(&pki, Vec::new()).await;
        let url = format!("https://127.0.0.1:{port}/announce");
        let mut a = announcer(&[&url]);
        a.tls = Some(super::super::tls::config_with_roots(Some(pki.ca_file.as_os_str())).unwrap());
        let err = a
            .announce(&params(AnnounceEvent::Started))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("TLS with 127.0.0.1:{port} failed"))
                && text.contains("not valid for name"),
            "{text}"
        );
        assert!(seen.await.unwrap().is_err(), "no request went through");
    }

    #[test]
    fn an_unreadable_ssl_cert_file_is_a_clear_error() {
        let err =
            super::super::tls::config_with_roots(Some("/nonexistent/ca.pem".as_ref())).unwrap_err();
        assert!(err.contains("SSL_CERT_FILE /nonexistent/ca.pem"), "{err}");
        assert!(super::super::tls::config_with_roots(None).is_ok());
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
