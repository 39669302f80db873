//! Tracker protocols: HTTP announce/scrape (BEP 3, 7, 23, 48) and UDP (BEP 15), both directions.
//!
//! Our peer writes announce requests and parses responses; our tracker parses requests and
//! writes responses. Everything reads borrowed bytes and writes into caller-owned slices: no
//! sockets, no allocation, and no panic on any input.

mod announce;
pub mod base64url;
pub mod client;
mod compact;
mod out;
mod query;
mod scrape;
pub mod udp;
pub mod urlencode;

pub use announce::{
    write_announce_response, write_failure, AnnounceReply, AnnounceResponse, ReplyPeer,
};
pub use compact::{compact_peers, CompactPeers, COMPACT_V4_LEN, COMPACT_V6_LEN};
pub use query::AnnounceRequest;
pub use scrape::{
    parse_scrape_response, scrape_info_hashes, write_scrape_query, write_scrape_response,
    ScrapeEntry,
};

use crate::bencode::BencodeError;
use core::fmt;

/// Why tracker bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TrackerError {
    /// A response body is not valid bencode.
    Bencode(BencodeError),
    /// A required field or query parameter is absent.
    MissingField(&'static str),
    /// A field or query parameter has the wrong type, length or range.
    BadField(&'static str),
    /// A `%` escape is not followed by two hexadecimal digits.
    BadUrlEncoding,
    /// Text is not strict unpadded base64url.
    BadBase64,
    /// A UDP packet is too short, has an unknown action or a malformed body.
    BadPacket,
    /// The tracker answered with a failure (its reason is in the response, when it has one).
    Failure,
    /// The decoded bytes do not fit in the output slice given.
    OutputTooSmall,
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackerError::Bencode(e) => write!(f, "tracker response: {e}"),
            TrackerError::MissingField(name) => write!(f, "missing field `{name}`"),
            TrackerError::BadField(name) => write!(f, "malformed field `{name}`"),
            TrackerError::BadUrlEncoding => f.write_str("malformed percent-encoding"),
            TrackerError::BadBase64 => f.write_str("malformed base64url"),
            TrackerError::BadPacket => f.write_str("malformed UDP tracker packet"),
            TrackerError::Failure => f.write_str("tracker reported a failure"),
            TrackerError::OutputTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl core::error::Error for TrackerError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            TrackerError::Bencode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BencodeError> for TrackerError {
    fn from(e: BencodeError) -> Self {
        TrackerError::Bencode(e)
    }
}

/// The `event` of an announce. The discriminants are BEP 15's numbers.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AnnounceEvent {
    /// A regular re-announce (HTTP: no `event`, or `event=empty`).
    #[default]
    None = 0,
    /// The download finished.
    Completed = 1,
    /// The first announce of a download.
    Started = 2,
    /// The peer is leaving the swarm.
    Stopped = 3,
}

impl AnnounceEvent {
    /// Return the HTTP `event=` value, `None` for a regular announce (no parameter).
    pub const fn as_query_value(self) -> Option<&'static str> {
        match self {
            AnnounceEvent::None => None,
            AnnounceEvent::Completed => Some("completed"),
            AnnounceEvent::Started => Some("started"),
            AnnounceEvent::Stopped => Some("stopped"),
        }
    }

    /// Parse an HTTP `event=` value.
    ///
    /// Accepts `started`, `completed`, `stopped`, `empty` and the empty string (BEP 3), and
    /// also `paused` (BEP 21 partial seeds; Transmission sends it), read as a regular announce.
    pub fn from_query_value(v: &[u8]) -> Option<Self> {
        match v {
            b"" | b"empty" | b"paused" => Some(AnnounceEvent::None),
            b"started" => Some(AnnounceEvent::Started),
            b"completed" => Some(AnnounceEvent::Completed),
            b"stopped" => Some(AnnounceEvent::Stopped),
            _ => None,
        }
    }

    /// Return BEP 15's number for the event.
    pub const fn to_udp(self) -> u32 {
        self as u32
    }

    /// Read BEP 15's number for an event.
    pub const fn from_udp(v: u32) -> Option<Self> {
        match v {
            0 => Some(AnnounceEvent::None),
            1 => Some(AnnounceEvent::Completed),
            2 => Some(AnnounceEvent::Started),
            3 => Some(AnnounceEvent::Stopped),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_numbers_are_bep15s() {
        for (event, n) in [
            (AnnounceEvent::None, 0),
            (AnnounceEvent::Completed, 1),
            (AnnounceEvent::Started, 2),
            (AnnounceEvent::Stopped, 3),
        ] {
            assert_eq!(event.to_udp(), n);
            assert_eq!(AnnounceEvent::from_udp(n), Some(event));
            let text = event.as_query_value().unwrap_or("");
            assert_eq!(
                AnnounceEvent::from_query_value(text.as_bytes()),
                Some(event)
            );
        }
        assert_eq!(AnnounceEvent::from_udp(4), None);
        assert_eq!(AnnounceEvent::from_query_value(b"Started"), None);
        assert_eq!(AnnounceEvent::from_query_value(b"update"), None);
    }

    #[test]
    fn errors_display() {
        let e = TrackerError::MissingField("port");
        assert_eq!(std::format!("{e}"), "missing field `port`");
    }
}
