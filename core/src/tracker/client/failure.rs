//! Why one tracker did not answer an announce: what the announcer records for each tracker it
//! gave up on, whether it saw the cause itself or the shell reported it.

use core::fmt;

use crate::tracker::TrackerError;

/// Why one tracker failed an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Failure {
    /// The URL cannot be read as a tracker URL.
    BadUrl,
    /// The shell does not speak this scheme (an `https://` tracker where there is no TLS).
    Unsupported,
    /// The request does not fit the caller's buffer, even without the self-report.
    RequestTooLong,
    /// Name resolution, connecting, sending or receiving failed (reported by the shell).
    Unreachable,
    /// The TLS handshake failed, for instance on a certificate for another name (shell).
    Tls,
    /// No whole answer in time: the shell's timeout, or the UDP retransmissions ran out.
    TimedOut,
    /// The answer is not HTTP, is framed wrongly, or is larger than the shell accepts.
    Malformed,
    /// An HTTP status other than 200.
    Status(u16),
    /// The body is not an announce response.
    BadResponse(TrackerError),
    /// The tracker refused the announce (`failure reason`, or a UDP error packet).
    Refused,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::BadUrl => f.write_str("bad tracker URL"),
            Failure::Unsupported => f.write_str("this kind of tracker is not supported here"),
            Failure::RequestTooLong => f.write_str("the announce does not fit the buffer"),
            Failure::Unreachable => f.write_str("cannot reach the tracker"),
            Failure::Tls => f.write_str("TLS handshake failed"),
            Failure::TimedOut => f.write_str("the tracker did not answer in time"),
            Failure::Malformed => f.write_str("malformed HTTP response"),
            Failure::Status(status) => write!(f, "the tracker answered HTTP {status}"),
            Failure::BadResponse(e) => write!(f, "bad announce response: {e}"),
            Failure::Refused => f.write_str("the tracker refused the announce"),
        }
    }
}

impl core::error::Error for Failure {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Failure::BadResponse(e) => Some(e),
            _ => None,
        }
    }
}
