//! Tests of `announce.rs`.
use super::*;
use enjambre_core::tracker::udp::{self, Request, Response};
use enjambre_core::tracker::{write_announce_response, write_failure, AnnounceReply, ReplyPeer};
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
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
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
