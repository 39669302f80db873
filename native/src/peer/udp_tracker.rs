//! The UDP tracker client (BEP 15): connect, then announce, retransmitting after 15·2ⁿ seconds
//! (n = 0…8 by the BEP; the caller may stop earlier), reconnecting when the connection id is
//! older than a minute. Packets are encoded and checked by the core's `tracker::udp` codec.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use enjambre_core::tracker::udp::{Request, Response};
use enjambre_core::tracker::AnnounceEvent;
use enjambre_core::{InfoHash, PeerId};
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// How long a connection id may be used (BEP 15: one minute).
const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);

/// Retransmission schedule: wait `base · 2ⁿ` for an answer, for n = 0..=max_n.
#[derive(Debug, Clone, Copy)]
pub struct UdpTimeouts {
    /// The first wait (BEP 15: 15 s).
    pub base: Duration,
    /// The last exponent tried (BEP 15: 8, that is 3,840 s).
    pub max_n: u32,
}

impl Default for UdpTimeouts {
    fn default() -> Self {
        UdpTimeouts {
            base: Duration::from_secs(15),
            max_n: 8,
        }
    }
}

/// Why a UDP announce failed.
#[derive(Debug, thiserror::Error)]
pub enum UdpError {
    /// The URL is not `udp://host:port[/…]`.
    #[error("bad tracker URL {0:?}")]
    BadUrl(String),
    /// Resolution, bind or send failed (including "connection refused" from an ICMP error).
    #[error("UDP tracker {host}: {source}")]
    Io {
        /// Host and port.
        host: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// No answer after every retransmission.
    #[error("UDP tracker {0} did not answer")]
    Timeout(String),
    /// The tracker answered with an error message.
    #[error("UDP tracker {host} refused: {message}")]
    Refused {
        /// Host and port.
        host: String,
        /// Its message.
        message: String,
    },
}

/// One announce's parameters (the UDP subset of the HTTP request).
#[derive(Debug, Clone, Copy)]
pub struct UdpAnnounce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// Bytes downloaded so far.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// Bytes uploaded so far.
    pub uploaded: u64,
    /// The event.
    pub event: AnnounceEvent,
    /// Our per-session key.
    pub key: u32,
    /// How many peers we want (-1: tracker's default).
    pub num_want: i32,
    /// Our listening port.
    pub port: u16,
}

/// What a UDP tracker answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpReply {
    /// Seconds until the next announce.
    pub interval: u32,
    /// Peers without the whole torrent.
    pub leechers: u32,
    /// Peers with the whole torrent.
    pub seeders: u32,
    /// The peers.
    pub peers: Vec<SocketAddr>,
}

/// A client for one UDP tracker, keeping its connection id between announces.
pub struct UdpTracker {
    host: String,
    socket: Option<UdpSocket>,
    source: Option<IpAddr>,
    /// The tracker's address is IPv6 (peers then come 18 bytes each).
    v6: bool,
    connection: Option<(u64, Instant)>,
    timeouts: UdpTimeouts,
}

impl UdpTracker {
    /// Prepare a client for `udp://host:port[/path]`; nothing is sent yet.
    /// With `source`, packets are sent from that address (when of the tracker's family).
    pub fn new(url: &str, timeouts: UdpTimeouts, source: Option<IpAddr>) -> Result<Self, UdpError> {
        let rest = url
            .get(..6)
            .filter(|s| s.eq_ignore_ascii_case("udp://"))
            .map(|_| &url[6..])
            .ok_or_else(|| UdpError::BadUrl(url.to_string()))?;
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let (host, port) = super::http_tracker::split_host_port(authority, 0)
            .filter(|(h, p)| *p != 0 && !h.is_empty())
            .ok_or_else(|| UdpError::BadUrl(url.to_string()))?;
        let host = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(UdpTracker {
            host,
            socket: None,
            source,
            v6: false,
            connection: None,
            timeouts,
        })
    }

    async fn ensure_socket(&mut self) -> Result<(), UdpError> {
        if self.socket.is_none() {
            let io = |source| UdpError::Io {
                host: self.host.clone(),
                source,
            };
            let addr = tokio::net::lookup_host(&self.host)
                .await
                .map_err(io)?
                .next()
                .ok_or_else(|| {
                    io(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no address",
                    ))
                })?;
            let bind: SocketAddr = match self.source {
                Some(ip) if ip.is_ipv4() == addr.is_ipv4() && !ip.is_unspecified() => {
                    (ip, 0).into()
                }
                _ if addr.is_ipv4() => ([0, 0, 0, 0], 0).into(),
                _ => ([0u16; 8], 0).into(),
            };
            let socket = UdpSocket::bind(bind).await.map_err(io)?;
            // Connected, so an ICMP "port unreachable" fails fast as ECONNREFUSED.
            socket.connect(addr).await.map_err(io)?;
            self.v6 = addr.is_ipv6();
            self.socket = Some(socket);
        }
        Ok(())
    }

    /// Announce, connecting first when needed; retransmits on the BEP 15 schedule.
    pub async fn announce(&mut self, a: &UdpAnnounce) -> Result<UdpReply, UdpError> {
        let mut n = 0u32;
        let mut out = [0u8; 128];
        let mut buf = vec![0u8; 2048];
        loop {
            let wait = self.timeouts.base * 2u32.saturating_pow(n);
            let valid = self
                .connection
                .filter(|(_, at)| at.elapsed() < CONNECTION_ID_LIFETIME);
            let transaction_id: u32 = rand::random();
            let request = match valid {
                None => Request::Connect { transaction_id },
                Some((connection_id, _)) => Request::Announce {
                    connection_id,
                    transaction_id,
                    info_hash: a.info_hash,
                    peer_id: a.peer_id,
                    downloaded: a.downloaded,
                    left: a.left,
                    uploaded: a.uploaded,
                    event: a.event,
                    ip: 0,
                    key: a.key,
                    num_want: a.num_want,
                    port: a.port,
                },
            };
            let len = request
                .encode(&mut out)
                .expect("a request fits in 128 bytes");
            let host = self.host.clone();
            self.ensure_socket().await?;
            let v4 = !self.v6;
            let socket = self.socket.as_ref().expect("ensured above");
            socket
                .send(&out[..len])
                .await
                .map_err(|source| UdpError::Io {
                    host: host.clone(),
                    source,
                })?;
            let deadline = Instant::now() + wait;
            let answer = loop {
                let received = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await;
                let got = match received {
                    Err(_) => break None,
                    Ok(Err(source)) => return Err(UdpError::Io { host, source }),
                    Ok(Ok(got)) => got,
                };
                // Anything that is not the answer to this transaction is ignored.
                match Response::decode(&buf[..got]) {
                    Ok(Response::Connect {
                        transaction_id: t,
                        connection_id,
                    }) if t == transaction_id && valid.is_none() => {
                        break Some(Ok(Answer::Connected(connection_id)))
                    }
                    Ok(Response::Announce {
                        transaction_id: t,
                        interval,
                        leechers,
                        seeders,
                        peers,
                    }) if t == transaction_id && valid.is_some() => {
                        break Some(Ok(Answer::Announced(UdpReply {
                            interval,
                            leechers,
                            seeders,
                            peers: compact_peers(peers, v4),
                        })))
                    }
                    Ok(Response::Error {
                        transaction_id: t,
                        message,
                    }) if t == transaction_id => {
                        break Some(Err(UdpError::Refused {
                            host: host.clone(),
                            message: String::from_utf8_lossy(message).into_owned(),
                        }))
                    }
                    _ => continue,
                }
            };
            match answer {
                Some(Ok(Answer::Connected(id))) => self.connection = Some((id, Instant::now())),
                Some(Ok(Answer::Announced(reply))) => return Ok(reply),
                Some(Err(e)) => return Err(e),
                None if n >= self.timeouts.max_n => return Err(UdpError::Timeout(host)),
                None => n += 1,
            }
        }
    }
}

enum Answer {
    Connected(u64),
    Announced(UdpReply),
}

/// Decode BEP 15 compact peers: 6 bytes each from an IPv4 tracker, 18 from an IPv6 one.
fn compact_peers(bytes: &[u8], v4: bool) -> Vec<SocketAddr> {
    if v4 {
        bytes
            .chunks_exact(6)
            .map(|c| SocketAddr::from(([c[0], c[1], c[2], c[3]], u16::from_be_bytes([c[4], c[5]]))))
            .collect()
    } else {
        bytes
            .chunks_exact(18)
            .map(|c| {
                let mut ip = [0u8; 16];
                ip.copy_from_slice(&c[..16]);
                SocketAddr::from((ip, u16::from_be_bytes([c[16], c[17]])))
            })
            .collect()
    }
}
