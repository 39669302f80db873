//! The UDP tracker protocol (BEP 15), both directions: requests our peer sends and our tracker
//! reads, responses our tracker sends and our peer reads.
//!
//! All integers are big-endian. Decoding accepts bytes after the fixed part of a connect or
//! announce packet and ignores them (BEP 15: "do not expect packets to be exactly of a certain
//! size"; BEP 41 options follow the 98-byte announce). Scrape bodies must be whole entries. The
//! peer list of an announce response is returned raw: 6 bytes per IPv4 peer or 18 per IPv6
//! peer, chosen by the address family of the socket it came over (read it with
//! [`compact_peers`]).

use core::net::SocketAddr;

use super::compact;
use super::out::Out;
use super::{AnnounceEvent, TrackerError};
use crate::{BufferTooSmall, InfoHash, PeerId};

pub use super::compact::compact_peers;

/// The magic `connection_id` of a connect request.
pub const PROTOCOL_ID: u64 = 0x41727101980;
/// Length of a connect request and of a connect response.
pub const CONNECT_LEN: usize = 16;
/// Length of an announce request without BEP 41 options.
pub const ANNOUNCE_REQUEST_LEN: usize = 98;
/// Length of an announce response without peers.
pub const ANNOUNCE_RESPONSE_HEADER_LEN: usize = 20;
/// Bytes per scrape response entry (seeders, completed, leechers).
pub const SCRAPE_ENTRY_LEN: usize = 12;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

/// A packet from a client to a UDP tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Ask for a connection id.
    Connect {
        /// Chosen by the client, echoed by the tracker.
        transaction_id: u32,
    },
    /// Announce (BEP 15's fields, in order).
    Announce {
        /// From the connect response.
        connection_id: u64,
        /// Chosen by the client, echoed by the tracker.
        transaction_id: u32,
        /// The torrent.
        info_hash: InfoHash,
        /// The announcing peer.
        peer_id: PeerId,
        /// Bytes downloaded.
        downloaded: u64,
        /// Bytes still missing.
        left: u64,
        /// Bytes uploaded.
        uploaded: u64,
        /// Why the announce was sent.
        event: AnnounceEvent,
        /// IPv4 address claimed by the peer, 0 for "the packet's source".
        ip: u32,
        /// A value identifying the peer across address changes.
        key: u32,
        /// Peers wanted, -1 for the tracker's default.
        num_want: i32,
        /// The peer's listening port.
        port: u16,
    },
    /// Ask for the statistics of some torrents.
    Scrape {
        /// From the connect response.
        connection_id: u64,
        /// Chosen by the client, echoed by the tracker.
        transaction_id: u32,
        /// One or more 20-byte info hashes, back to back.
        info_hashes: &'a [u8],
    },
}

/// A packet from a UDP tracker to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    /// The connection id to use for the next requests.
    Connect {
        /// The request's.
        transaction_id: u32,
        /// To send with announces and scrapes.
        connection_id: u64,
    },
    /// Peers and counts for one torrent.
    Announce {
        /// The request's.
        transaction_id: u32,
        /// Seconds to wait before re-announcing.
        interval: u32,
        /// Peers still downloading.
        leechers: u32,
        /// Peers with the whole torrent.
        seeders: u32,
        /// Compact peers: 6 bytes each (IPv4) or 18 bytes each (IPv6).
        peers: &'a [u8],
    },
    /// Statistics in the order of the request's info hashes.
    Scrape {
        /// The request's.
        transaction_id: u32,
        /// 12 bytes per torrent: seeders, completed, leechers (read with [`scrape_stats`]).
        stats: &'a [u8],
    },
    /// The tracker refused the request.
    Error {
        /// The request's.
        transaction_id: u32,
        /// Human-readable reason, not necessarily UTF-8.
        message: &'a [u8],
    },
}

/// One entry of a scrape response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ScrapeStats {
    /// Peers with the whole torrent.
    pub seeders: u32,
    /// Downloads ever completed.
    pub completed: u32,
    /// Peers still downloading.
    pub leechers: u32,
}

/// Iterate the entries of a scrape response's `stats`.
pub fn scrape_stats(stats: &[u8]) -> impl ExactSizeIterator<Item = ScrapeStats> + '_ {
    stats.chunks_exact(SCRAPE_ENTRY_LEN).map(|entry| {
        let mut r = Reader(entry);
        ScrapeStats {
            seeders: r.u32().unwrap_or(0),
            completed: r.u32().unwrap_or(0),
            leechers: r.u32().unwrap_or(0),
        }
    })
}

/// Write a scrape response straight from statistics, in the order of the request's hashes.
pub fn write_scrape_response(
    out: &mut [u8],
    transaction_id: u32,
    stats: impl IntoIterator<Item = ScrapeStats>,
) -> Result<usize, BufferTooSmall> {
    let mut w = Out::new(out);
    w.put_u32(ACTION_SCRAPE);
    w.put_u32(transaction_id);
    for s in stats {
        w.put_u32(s.seeders);
        w.put_u32(s.completed);
        w.put_u32(s.leechers);
    }
    w.finish()
}

/// Write an announce response straight from addresses, skipping the peers of the other family.
///
/// With `ipv6 == false` only IPv4 peers (IPv4-mapped IPv6 included) are written, 6 bytes each;
/// with `ipv6 == true` only IPv6 peers, 18 bytes each. This saves building the raw list for
/// [`Response::Announce`].
pub fn write_announce_response(
    out: &mut [u8],
    transaction_id: u32,
    interval: u32,
    leechers: u32,
    seeders: u32,
    ipv6: bool,
    peers: impl IntoIterator<Item = SocketAddr>,
) -> Result<usize, BufferTooSmall> {
    let mut w = Out::new(out);
    w.put_u32(ACTION_ANNOUNCE);
    w.put_u32(transaction_id);
    w.put_u32(interval);
    w.put_u32(leechers);
    w.put_u32(seeders);
    for addr in peers {
        if addr.ip().to_canonical().is_ipv6() == ipv6 {
            compact::put(&mut w, &addr);
        }
    }
    w.finish()
}

/// Big-endian reads from the front of a packet; running short is [`TrackerError::BadPacket`].
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], TrackerError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(TrackerError::BadPacket)?;
        self.0 = rest;
        Ok(*head)
    }

    fn u16(&mut self) -> Result<u16, TrackerError> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, TrackerError> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, TrackerError> {
        self.array().map(u64::from_be_bytes)
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }
}

impl<'a> Request<'a> {
    /// Decode a request packet (tracker side).
    pub fn decode(p: &'a [u8]) -> Result<Self, TrackerError> {
        let mut r = Reader(p);
        let connection_id = r.u64()?;
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            ACTION_CONNECT if connection_id == PROTOCOL_ID => {
                Ok(Request::Connect { transaction_id })
            }
            ACTION_ANNOUNCE => Ok(Request::Announce {
                connection_id,
                transaction_id,
                info_hash: InfoHash(r.array()?),
                peer_id: PeerId(r.array()?),
                downloaded: r.u64()?,
                left: r.u64()?,
                uploaded: r.u64()?,
                event: AnnounceEvent::from_udp(r.u32()?).ok_or(TrackerError::BadField("event"))?,
                ip: r.u32()?,
                key: r.u32()?,
                num_want: i32::from_be_bytes(r.array()?),
                port: r.u16()?,
            }),
            ACTION_SCRAPE => {
                let info_hashes = r.rest();
                if info_hashes.is_empty() || info_hashes.len() % 20 != 0 {
                    return Err(TrackerError::BadPacket);
                }
                Ok(Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes,
                })
            }
            _ => Err(TrackerError::BadPacket),
        }
    }

    /// Return the transaction id.
    pub fn transaction_id(&self) -> u32 {
        match *self {
            Request::Connect { transaction_id }
            | Request::Announce { transaction_id, .. }
            | Request::Scrape { transaction_id, .. } => transaction_id,
        }
    }

    /// Return the encoded length.
    pub fn encoded_len(&self) -> usize {
        match self {
            Request::Connect { .. } => CONNECT_LEN,
            Request::Announce { .. } => ANNOUNCE_REQUEST_LEN,
            Request::Scrape { info_hashes, .. } => CONNECT_LEN.saturating_add(info_hashes.len()),
        }
    }

    /// Encode into `out`; return the length written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Out::new(out);
        match *self {
            Request::Connect { transaction_id } => {
                w.put_u64(PROTOCOL_ID);
                w.put_u32(ACTION_CONNECT);
                w.put_u32(transaction_id);
            }
            Request::Announce {
                connection_id,
                transaction_id,
                info_hash,
                peer_id,
                downloaded,
                left,
                uploaded,
                event,
                ip,
                key,
                num_want,
                port,
            } => {
                w.put_u64(connection_id);
                w.put_u32(ACTION_ANNOUNCE);
                w.put_u32(transaction_id);
                w.put(&info_hash.0);
                w.put(&peer_id.0);
                w.put_u64(downloaded);
                w.put_u64(left);
                w.put_u64(uploaded);
                w.put_u32(event.to_udp());
                w.put_u32(ip);
                w.put_u32(key);
                w.put(&num_want.to_be_bytes());
                w.put_u16(port);
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                w.put_u64(connection_id);
                w.put_u32(ACTION_SCRAPE);
                w.put_u32(transaction_id);
                w.put(info_hashes);
            }
        }
        w.finish()
    }
}

impl<'a> Response<'a> {
    /// Decode a response packet (client side).
    pub fn decode(p: &'a [u8]) -> Result<Self, TrackerError> {
        let mut r = Reader(p);
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            ACTION_CONNECT => Ok(Response::Connect {
                transaction_id,
                connection_id: r.u64()?,
            }),
            ACTION_ANNOUNCE => {
                let interval = r.u32()?;
                let leechers = r.u32()?;
                let seeders = r.u32()?;
                let peers = r.rest();
                // 18 is a multiple of 6, so this holds for either family.
                if peers.len() % compact::COMPACT_V4_LEN != 0 {
                    return Err(TrackerError::BadPacket);
                }
                Ok(Response::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            ACTION_SCRAPE => {
                let stats = r.rest();
                if stats.len() % SCRAPE_ENTRY_LEN != 0 {
                    return Err(TrackerError::BadPacket);
                }
                Ok(Response::Scrape {
                    transaction_id,
                    stats,
                })
            }
            ACTION_ERROR => Ok(Response::Error {
                transaction_id,
                message: r.rest(),
            }),
            _ => Err(TrackerError::BadPacket),
        }
    }

    /// Return the transaction id.
    pub fn transaction_id(&self) -> u32 {
        match *self {
            Response::Connect { transaction_id, .. }
            | Response::Announce { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => transaction_id,
        }
    }

    /// Return the encoded length.
    pub fn encoded_len(&self) -> usize {
        let body = match self {
            Response::Connect { .. } => 8,
            Response::Announce { peers, .. } => 12usize.saturating_add(peers.len()),
            Response::Scrape { stats, .. } => stats.len(),
            Response::Error { message, .. } => message.len(),
        };
        body.saturating_add(8)
    }

    /// Encode into `out`; return the length written.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut w = Out::new(out);
        match *self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                w.put_u32(ACTION_CONNECT);
                w.put_u32(transaction_id);
                w.put_u64(connection_id);
            }
            Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                w.put_u32(ACTION_ANNOUNCE);
                w.put_u32(transaction_id);
                w.put_u32(interval);
                w.put_u32(leechers);
                w.put_u32(seeders);
                w.put(peers);
            }
            Response::Scrape {
                transaction_id,
                stats,
            } => {
                w.put_u32(ACTION_SCRAPE);
                w.put_u32(transaction_id);
                w.put(stats);
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                w.put_u32(ACTION_ERROR);
                w.put_u32(transaction_id);
                w.put(message);
            }
        }
        w.finish()
    }
}

#[cfg(test)]
#[path = "udp_tests.rs"]
mod tests;
