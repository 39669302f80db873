//! A tracker's answer to an announce, the same shape for HTTP and UDP trackers, with the
//! defaults already applied; the peers are read from the response's bytes, never copied.

use core::net::SocketAddr;

use crate::tracker::{compact_peers, AnnounceResponse};
use crate::Duration;

/// The interval used when a tracker gives none (BEP 3 has no default; 30 minutes is customary).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1800);

/// What the tracker that answered said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer<'a> {
    /// The tracker that answered (its index in the caller's list); it is now tried first.
    pub tracker: u16,
    /// When to announce again: the tracker's interval, at least a second, or
    /// [`DEFAULT_INTERVAL`] when it gave none.
    pub interval: Duration,
    /// Never announce sooner than this, when said.
    pub min_interval: Option<Duration>,
    /// Seeds in the swarm, when said.
    pub seeders: Option<u32>,
    /// Leeches in the swarm, when said.
    pub leechers: Option<u32>,
    /// The tracker's `warning message`, for the user.
    pub warning: Option<&'a str>,
    /// An HTTP response's peer lists.
    http: Option<AnnounceResponse<'a>>,
    /// A UDP response's compact peers, and whether they are IPv6 (18 bytes each).
    compact: &'a [u8],
    v6: bool,
}

impl<'a> Answer<'a> {
    pub(super) fn from_http(tracker: u16, r: AnnounceResponse<'a>) -> Self {
        Answer {
            tracker,
            interval: interval(r.interval),
            min_interval: r.min_interval.map(|s| Duration::from_secs(s.into())),
            seeders: r.complete,
            leechers: r.incomplete,
            warning: r.warning,
            http: Some(r),
            compact: &[],
            v6: false,
        }
    }

    pub(super) fn from_udp(
        tracker: u16,
        interval_s: u32,
        seeders: u32,
        leechers: u32,
        compact: &'a [u8],
        v6: bool,
    ) -> Self {
        Answer {
            tracker,
            interval: interval(Some(interval_s)),
            min_interval: None,
            seeders: Some(seeders),
            leechers: Some(leechers),
            warning: None,
            http: None,
            compact,
            v6,
        }
    }

    /// Iterate the peers the tracker listed.
    pub fn peers(&self) -> impl Iterator<Item = SocketAddr> + 'a {
        self.http
            .map(|r| r.peers())
            .into_iter()
            .flatten()
            .chain(compact_peers(self.compact, self.v6))
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Answer<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Answer {{ tracker: {}, interval: {}, min_interval: {}, seeders: {}, leechers: {} }}",
            self.tracker,
            self.interval,
            self.min_interval,
            self.seeders,
            self.leechers
        )
    }
}

fn interval(seconds: Option<u32>) -> Duration {
    seconds.map_or(DEFAULT_INTERVAL, |s| Duration::from_secs(s.max(1).into()))
}
