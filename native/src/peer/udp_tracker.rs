//! The sockets of a UDP tracker announce (BEP 15): resolving, binding from the `--listen`
//! address, sending and receiving, and waiting until the core's deadlines. The exchange itself
//! (connect, announce, retransmitting after 15·2ⁿ seconds, reusing the connection id for a
//! minute) is the core's `tracker::client::Announcer`, shared with the other shells.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use enjambre_core::tracker::client::{Announcer, Step, MAX_REQUEST};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::http_tracker::Allow;

/// One UDP tracker's socket, connected to its address.
#[derive(Debug)]
pub struct TrackerSocket {
    socket: UdpSocket,
    /// The tracker is reached over IPv6 (its compact peers are 18 bytes).
    v6: bool,
}

impl TrackerSocket {
    /// Resolve `host:port` and open a socket to its first address `allow` accepts, bound to
    /// `source` when it is a specific address of the tracker's family.
    pub async fn open(
        host: &str,
        port: u16,
        source: Option<IpAddr>,
        allow: Allow<'_>,
    ) -> std::io::Result<Self> {
        let mut addrs = tokio::net::lookup_host((host, port)).await?.peekable();
        if addrs.peek().is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no address",
            ));
        }
        let addr = addrs.find(|a| allow.is_none_or(|f| f(*a))).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "not an allowed address",
            )
        })?;
        let bind: SocketAddr = match source {
            Some(ip) if ip.is_ipv4() == addr.is_ipv4() && !ip.is_unspecified() => (ip, 0).into(),
            _ if addr.is_ipv4() => ([0, 0, 0, 0], 0).into(),
            _ => ([0u16; 8], 0).into(),
        };
        let socket = UdpSocket::bind(bind).await?;
        socket.connect(addr).await?;
        Ok(TrackerSocket {
            socket,
            v6: addr.is_ipv6(),
        })
    }

    /// Run the announcer's UDP exchange over this socket until it decides, and return what
    /// `settle` makes of that step. `epoch` is the origin of the core's clock.
    pub async fn drive<const N: usize, T>(
        &self,
        core: &mut Announcer<N>,
        epoch: Instant,
        settle: impl FnOnce(Step<'_>) -> T,
    ) -> std::io::Result<T> {
        let now = || enjambre_core::Instant::from_millis(epoch.elapsed().as_millis() as u64);
        let mut out = [0u8; MAX_REQUEST];
        let mut buf = vec![0u8; 2048];
        loop {
            while let Some(len) = core.poll_transmit(now(), &mut out) {
                self.socket.send(&out[..len]).await?;
            }
            let Some(deadline) = core.poll_timeout() else {
                return Err(std::io::Error::other("no UDP announce in progress"));
            };
            let wait = Duration::from_millis(deadline.saturating_since(now()).as_millis());
            match tokio::time::timeout(wait, self.socket.recv(&mut buf)).await {
                Err(_) => {
                    if let Some(step) = core.handle_timeout(now()) {
                        return Ok(settle(step));
                    }
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok(got)) => {
                    if let Some(step) = core.handle_datagram(now(), &buf[..got], self.v6) {
                        return Ok(settle(step));
                    }
                }
            }
        }
    }
}
