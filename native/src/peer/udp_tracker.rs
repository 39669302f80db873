//! The UDP tracker client's sockets (BEP 15): resolving, binding from the `--listen` address,
//! sending and receiving. The exchange itself (connect, announce, retransmitting after 15·2ⁿ
//! seconds, reconnecting when the connection id is older than a minute) is the core's
//! `tracker::client::UdpTracker`, shared with the other shells.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use enjambre_core::tracker::client::{self, Retransmit, UdpOutcome, MAX_REQUEST};
use enjambre_core::tracker::compact_peers;
use tokio::net::UdpSocket;
use tokio::time::Instant;

pub use enjambre_core::tracker::client::UdpAnnounce;

/// Retransmission schedule: wait `base * 2^n` for n = 0..=max_n (BEP 15: 15 s, up to 8).
#[derive(Debug, Clone, Copy)]
pub struct UdpTimeouts {
    /// First wait.
    pub base: Duration,
    /// Last exponent tried before giving up.
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
    /// Not `udp://host:port`.
    #[error("bad tracker URL {0:?}")]
    BadUrl(String),
    /// Resolving, binding or sending failed.
    #[error("UDP tracker {host}: {source}")]
    Io {
        /// `host:port`.
        host: String,
        /// The error.
        source: std::io::Error,
    },
    /// No answer after every retransmission.
    #[error("UDP tracker {0} did not answer")]
    Timeout(String),
    /// The tracker sent an error packet.
    #[error("UDP tracker {host} refused: {message}")]
    Refused {
        /// `host:port`.
        host: String,
        /// Its message.
        message: String,
    },
}

/// A tracker's answer to an announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpReply {
    /// Seconds until the next announce.
    pub interval: u32,
    /// Peers still downloading.
    pub leechers: u32,
    /// Peers with everything.
    pub seeders: u32,
    /// The peers listed.
    pub peers: Vec<SocketAddr>,
}

/// One UDP tracker: the socket and the resolved address; the BEP 15 exchange itself (connection
/// ids, transaction ids, retransmissions) is the core's [`client::UdpTracker`].
pub struct UdpTracker {
    host: String,
    socket: Option<UdpSocket>,
    source: Option<IpAddr>,
    v6: bool,
    exchange: client::UdpTracker,
    /// The core's clock starts here.
    epoch: Instant,
}

impl UdpTracker {
    /// Prepare announces to `udp://host:port[/…]`, sent from `source` when given.
    pub fn new(url: &str, timeouts: UdpTimeouts, source: Option<IpAddr>) -> Result<Self, UdpError> {
        let bad = || UdpError::BadUrl(url.to_string());
        let parsed = client::TrackerUrl::parse(url).map_err(|_| bad())?;
        if parsed.scheme != client::Scheme::Udp {
            return Err(bad());
        }
        let host = if parsed.host_is_v6() {
            format!("[{}]:{}", parsed.host, parsed.port)
        } else {
            format!("{}:{}", parsed.host, parsed.port)
        };
        let schedule = Retransmit {
            base: enjambre_core::Duration::from_millis(timeouts.base.as_millis() as u64),
            max_n: timeouts.max_n,
        };
        Ok(UdpTracker {
            host,
            socket: None,
            source,
            v6: false,
            exchange: client::UdpTracker::new(schedule, rand::random()),
            epoch: Instant::now(),
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
            socket.connect(addr).await.map_err(io)?;
            self.v6 = addr.is_ipv6();
            self.socket = Some(socket);
        }
        Ok(())
    }

    /// Announce, connecting first when the connection id is missing or expired.
    pub async fn announce(&mut self, a: &UdpAnnounce) -> Result<UdpReply, UdpError> {
        self.ensure_socket().await?;
        let socket = self.socket.as_ref().expect("ensured above");
        let io = |source| UdpError::Io {
            host: self.host.clone(),
            source,
        };
        let now = || enjambre_core::Instant::from_millis(self.epoch.elapsed().as_millis() as u64);
        let mut out = [0u8; MAX_REQUEST];
        let mut buf = vec![0u8; 2048];
        self.exchange.announce(now(), *a);
        let outcome = loop {
            while let Some(len) = self.exchange.poll_transmit(now(), &mut out) {
                socket.send(&out[..len]).await.map_err(io)?;
            }
            let Some(deadline) = self.exchange.poll_timeout() else {
                break UdpOutcome::GaveUp;
            };
            let wait = Duration::from_millis(deadline.saturating_since(now()).as_millis());
            match tokio::time::timeout(wait, socket.recv(&mut buf)).await {
                Err(_) => {
                    if let Some(outcome) = self.exchange.handle_timeout(now()) {
                        break outcome;
                    }
                }
                Ok(Err(source)) => {
                    self.exchange.cancel();
                    return Err(io(source));
                }
                Ok(Ok(got)) => {
                    if let Some(outcome) = self.exchange.handle_datagram(now(), &buf[..got]) {
                        break outcome;
                    }
                }
            }
        };
        match outcome {
            UdpOutcome::Announced {
                interval,
                leechers,
                seeders,
                peers,
            } => Ok(UdpReply {
                interval,
                leechers,
                seeders,
                peers: compact_peers(peers, self.v6).collect(),
            }),
            UdpOutcome::Refused(message) => Err(UdpError::Refused {
                host: self.host.clone(),
                message: String::from_utf8_lossy(message).into_owned(),
            }),
            UdpOutcome::GaveUp => Err(UdpError::Timeout(self.host.clone())),
        }
    }
}
