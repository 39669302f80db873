//! The tracker client, sans-IO: what every shell (native, board, browser) needs to announce,
//! with the sockets, DNS and TLS left to the shell.
//!
//! - [`TrackerUrl`] reads `http://`, `https://` and `udp://` announce URLs;
//! - [`Tiers`] orders a torrent's trackers by BEP 12 (tiers in order, shuffled within);
//! - [`Announcer`] runs one torrent's announces over its tiers: which tracker to ask next and
//!   with what, what the answer means, when to give up (the shell only moves the bytes);
//! - [`UdpTracker`] runs BEP 15's connect / announce / retransmit exchange;
//! - [`write_get`] and [`read_response`] frame an HTTP/1.1 announce (the query itself is
//!   [`AnnounceRequest::write_query`](crate::tracker::AnnounceRequest::write_query), the body
//!   [`AnnounceResponse::parse`](crate::tracker::AnnounceResponse::parse)).
//!
//! Randomness (transaction ids, tier shuffles) comes from a seed the shell gives ([`Rng`]).

mod announcer;
mod answer;
mod failure;
mod http;
mod tiers;
mod udp;
mod url;

#[cfg(test)]
mod announcer_tests;
#[cfg(test)]
mod tests;

pub use crate::rng::Rng;
pub use announcer::{
    Action, Announce, Announcer, Identity, Step, MAX_QUERY, MAX_TRACKER_ID, NUMWANT,
};
pub use answer::{Answer, DEFAULT_INTERVAL};
pub use failure::Failure;
pub use http::{read_response, write_get, HttpError, Reply};
pub use tiers::{Tiers, TooManyTrackers};
pub use udp::{
    Retransmit, UdpAnnounce, UdpOutcome, UdpTracker, CONNECTION_ID_LIFETIME, MAX_REQUEST,
};
pub use url::{split_host_port, Scheme, TrackerUrl, UrlError};
