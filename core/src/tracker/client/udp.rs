//! One UDP tracker from the client's side (BEP 15), sans-IO: connect, announce, retransmit on
//! the `15 · 2ⁿ` s schedule, and reuse a connection id for its one-minute lifetime.
//!
//! The shell owns the socket and the clock: it sends what [`UdpTracker::poll_transmit`] writes,
//! hands every datagram from the tracker to [`UdpTracker::handle_datagram`], and calls
//! [`UdpTracker::handle_timeout`] at [`UdpTracker::poll_timeout`]. A datagram that is not the
//! answer to the request in flight (another transaction id, another action) is ignored.

use crate::rng::Rng;
use crate::tracker::udp::{Request, Response};
use crate::tracker::AnnounceEvent;
use crate::{Duration, InfoHash, Instant, PeerId};

/// How long a connection id may be used after the tracker gave it (BEP 15: one minute).
pub const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);

/// The longest request this module writes (an announce is 98 bytes).
pub const MAX_REQUEST: usize = 98;

/// When to send a request again: after `base · 2ⁿ`, for `n` from 0 to `max_n`, then give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Retransmit {
    /// The first wait.
    pub base: Duration,
    /// The last exponent tried.
    pub max_n: u32,
}

impl Retransmit {
    /// BEP 15's schedule: 15 s doubling up to 3840 s.
    pub const BEP15: Retransmit = Retransmit {
        base: Duration::from_secs(15),
        max_n: 8,
    };

    fn wait(&self, n: u32) -> Duration {
        Duration::from_millis(self.base.as_millis().saturating_mul(1u64 << n.min(32)))
    }
}

/// What an announce carries, as BEP 15 lays it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UdpAnnounce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// Payload bytes downloaded.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// Payload bytes uploaded.
    pub uploaded: u64,
    /// Why we announce.
    pub event: AnnounceEvent,
    /// Identifies us across address changes.
    pub key: u32,
    /// Peers wanted (-1: the tracker's default).
    pub num_want: i32,
    /// Our listening port.
    pub port: u16,
}

/// How an announce ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpOutcome<'a> {
    /// The tracker answered.
    Announced {
        /// Seconds until the next announce.
        interval: u32,
        /// Peers still downloading.
        leechers: u32,
        /// Peers with everything.
        seeders: u32,
        /// Compact peers (6 bytes each over IPv4, 18 over IPv6).
        peers: &'a [u8],
    },
    /// The tracker refused, with its reason (not necessarily UTF-8).
    Refused(&'a [u8]),
    /// No answer after the whole retransmission schedule.
    GaveUp,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    request: UdpAnnounce,
    /// The connection id the announce goes with; `None` while connecting.
    connection: Option<u64>,
    transaction_id: u32,
    /// Retransmissions so far (the `n` of `15 · 2ⁿ`).
    n: u32,
    /// Send the request at the next `poll_transmit`.
    due: bool,
    /// When to send it again.
    deadline: Instant,
}

/// One UDP tracker's client state.
#[derive(Debug, Clone)]
pub struct UdpTracker {
    schedule: Retransmit,
    rng: Rng,
    /// The connection id and when it was received.
    connection: Option<(u64, Instant)>,
    in_flight: Option<InFlight>,
}

impl UdpTracker {
    /// A tracker never contacted, with this retransmission schedule and random seed.
    pub const fn new(schedule: Retransmit, seed: u64) -> Self {
        UdpTracker {
            schedule,
            rng: Rng::new(seed),
            connection: None,
            in_flight: None,
        }
    }

    /// Start announcing `request`, replacing any announce still in flight.
    pub fn announce(&mut self, now: Instant, request: UdpAnnounce) {
        let connection = self.valid_connection(now);
        self.in_flight = Some(InFlight {
            request,
            connection,
            transaction_id: self.rng.next_u32(),
            n: 0,
            due: true,
            deadline: now,
        });
    }

    /// Whether an announce is in flight.
    pub fn is_busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Drop the announce in flight (the shell gave up on it, or is shutting down).
    pub fn cancel(&mut self) {
        self.in_flight = None;
    }

    /// Write the datagram to send now into `out` and return its length; `None` when nothing is
    /// due. `out` needs [`MAX_REQUEST`] bytes.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        let f = self.in_flight.as_mut().filter(|f| f.due)?;
        let r = &f.request;
        let packet = match f.connection {
            None => Request::Connect {
                transaction_id: f.transaction_id,
            },
            Some(connection_id) => Request::Announce {
                connection_id,
                transaction_id: f.transaction_id,
                info_hash: r.info_hash,
                peer_id: r.peer_id,
                downloaded: r.downloaded,
                left: r.left,
                uploaded: r.uploaded,
                event: r.event,
                ip: 0,
                key: r.key,
                num_want: r.num_want,
                port: r.port,
            },
        };
        let len = packet.encode(out).ok()?;
        f.due = false;
        f.deadline = now + self.schedule.wait(f.n);
        Some(len)
    }

    /// When to call [`UdpTracker::handle_timeout`]: `None` when idle; `now` or earlier means a
    /// datagram is due (call `poll_transmit`).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight.map(|f| f.deadline)
    }

    /// The wait for an answer ran out: schedule the request again, or give up after the last
    /// retransmission.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<UdpOutcome<'static>> {
        let connected = self.valid_connection(now).is_some();
        let f = self.in_flight.as_mut()?;
        if f.due || now < f.deadline {
            return None;
        }
        if f.n >= self.schedule.max_n {
            self.in_flight = None;
            return Some(UdpOutcome::GaveUp);
        }
        f.n += 1;
        f.due = true;
        f.transaction_id = self.rng.next_u32();
        if f.connection.is_some() && !connected {
            // The id expired while we waited: connect again first.
            f.connection = None;
        }
        None
    }

    /// A datagram from the tracker. Returns how the announce ended, or `None` when it goes on
    /// (a connect answered, or a datagram that is not for us).
    pub fn handle_datagram<'a>(&mut self, now: Instant, bytes: &'a [u8]) -> Option<UdpOutcome<'a>> {
        let f = self.in_flight.as_mut()?;
        let response = Response::decode(bytes).ok()?;
        if response.transaction_id() != f.transaction_id || f.due {
            return None;
        }
        match (response, f.connection) {
            (Response::Connect { connection_id, .. }, None) => {
                self.connection = Some((connection_id, now));
                f.connection = Some(connection_id);
                f.transaction_id = self.rng.next_u32();
                f.due = true;
                None
            }
            (
                Response::Announce {
                    interval,
                    leechers,
                    seeders,
                    peers,
                    ..
                },
                Some(_),
            ) => {
                self.in_flight = None;
                Some(UdpOutcome::Announced {
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            (Response::Error { message, .. }, _) => {
                // Often a stale connection id: the next announce connects again.
                self.connection = None;
                self.in_flight = None;
                Some(UdpOutcome::Refused(message))
            }
            _ => None,
        }
    }

    fn valid_connection(&self, now: Instant) -> Option<u64> {
        self.connection
            .filter(|&(_, at)| now.saturating_since(at) < CONNECTION_ID_LIFETIME)
            .map(|(id, _)| id)
    }
}
