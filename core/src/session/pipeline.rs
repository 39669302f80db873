//! How many requests to keep in flight with one peer: what it delivers times a queue time.
//!
//! A fixed depth cannot fill a long fat pipe, and it buries a slow peer under blocks others
//! would send sooner. The depth follows the peer's measured payload rate:
//! rate × `request_queue_time` in blocks, never below `pipeline_floor`, never above the least
//! of the session's `Q`, the peer's `reqq` and `pipeline_depth`. What a peer delivers through
//! a pipeline of `d` blocks over a round trip `t` is `d / t`, so while the queue time is longer
//! than the round trip each rate sample raises the depth, until the link (not the pipeline)
//! is what limits the rate. Never reads a clock: every sample is given `now`.
//!
//! The same holds the other way: the uploads handed to the shell for one peer follow what its
//! socket takes, [`upload_window`], so our requests and haves to that peer never wait behind
//! many seconds of blocks in one TCP stream.

use crate::geometry::BLOCK_LEN;
use crate::{Duration, Instant};

/// A rate sample covers at least this long.
const WINDOW: Duration = Duration::from_millis(250);

/// A peer's payload rate, as samples of at least [`WINDOW`] blended half and half.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateMeter {
    /// Start of the open sample, or `None` until the first payload byte.
    since: Option<Instant>,
    bytes: u64,
    /// Bytes per second; 0 until a sample closed.
    rate: u64,
}

impl RateMeter {
    pub(crate) const fn new() -> Self {
        RateMeter {
            since: None,
            bytes: 0,
            rate: 0,
        }
    }

    /// The latest rate, bytes per second (0 before the first sample closes).
    pub(crate) fn rate(&self) -> u64 {
        self.rate
    }

    /// Count `n` payload bytes received at `now`; the new rate when a sample closed.
    pub(crate) fn add(&mut self, now: Instant, n: u32) -> Option<u64> {
        let since = *self.since.get_or_insert(now);
        self.bytes += n as u64;
        let elapsed = now.saturating_since(since);
        if elapsed < WINDOW {
            return None;
        }
        let sample = self.bytes * 1000 / elapsed.as_millis();
        self.rate = if self.rate == 0 {
            sample
        } else {
            self.rate / 2 + sample / 2
        };
        self.since = Some(now);
        self.bytes = 0;
        Some(self.rate)
    }
}

/// Requests to keep in flight with a peer delivering `rate` bytes per second.
pub(crate) fn depth(rate: u64, queue_time: Duration, floor: usize, cap: usize) -> usize {
    let blocks = rate.saturating_mul(queue_time.as_millis()) / 1000 / BLOCK_LEN as u64;
    (blocks.min(usize::MAX as u64) as usize)
        .max(floor)
        .min(cap)
        .max(1)
}

/// Uploaded bytes kept ahead of a peer's socket: what it took in [`UPLOAD_QUEUE`] at its
/// measured rate, at least [`UPLOAD_FLOOR`] (a rate is measured by sending), at most `cap`.
pub(crate) fn upload_window(rate: u64, cap: u32) -> u64 {
    let ahead = rate.saturating_mul(UPLOAD_QUEUE.as_millis()) / 1000;
    ahead.max(UPLOAD_FLOOR).min(cap as u64)
}

/// How long of a peer's upload rate is handed to the shell ahead of its socket.
const UPLOAD_QUEUE: Duration = Duration::from_secs(1);

/// Four blocks with their headers: the least handed ahead, before any rate is known.
const UPLOAD_FLOOR: u64 = 4 * (BLOCK_LEN as u64 + 13);

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn a_sample_closes_after_a_quarter_second_and_blends_with_the_last() {
        let mut m = RateMeter::new();
        assert_eq!(
            m.add(at(1000), 16384),
            None,
            "the first bytes open the sample"
        );
        assert_eq!(m.add(at(1100), 16384), None);
        // 3 blocks over 250 ms: 196,608 B/s.
        assert_eq!(m.add(at(1250), 16384), Some(196_608));
        // Next: 1 MB over 500 ms = 2,000,000 B/s, blended half and half.
        assert_eq!(m.add(at(1750), 1_000_000), Some(98_304 + 1_000_000));
        assert_eq!(m.rate(), 1_098_304);
    }

    #[test]
    fn the_depth_is_rate_times_queue_time_between_floor_and_cap() {
        let two_s = Duration::from_secs(2);
        assert_eq!(depth(0, two_s, 4, 512), 4, "no rate yet: the floor");
        assert_eq!(
            depth(50_000, two_s, 4, 512),
            6,
            "a slow peer holds 2 s of blocks"
        );
        // 10 Mbit/s: 76 blocks cover 2 s, twice a 600 ms satellite round trip's worth.
        assert_eq!(depth(1_250_000, two_s, 4, 512), 152);
        assert_eq!(depth(125_000_000, two_s, 4, 512), 512, "1 Gbit/s: the cap");
        assert_eq!(depth(125_000_000, two_s, 4, 0), 1, "never zero");
    }

    #[test]
    fn uploads_run_a_second_ahead_of_the_socket_between_four_blocks_and_the_window() {
        assert_eq!(
            upload_window(0, 4 << 20),
            4 * 16397,
            "nothing measured: four blocks"
        );
        assert_eq!(
            upload_window(25_000, 4 << 20),
            4 * 16397,
            "a slow peer: four blocks"
        );
        assert_eq!(upload_window(1_000_000, 4 << 20), 1_000_000);
        assert_eq!(
            upload_window(800_000_000, 4 << 20),
            4 << 20,
            "loopback: the window"
        );
    }

    #[test]
    fn a_pipeline_limited_rate_grows_the_depth_each_sample_until_the_link_limits() {
        // A 600 ms round trip, a 1.25 MB/s link: what the pipeline delivers is d blocks per
        // round trip, or the link's rate, whichever is less.
        let (rtt_ms, link) = (600u64, 1_250_000u64);
        let mut d = 4;
        let mut seen = std::vec::Vec::new();
        for _ in 0..8 {
            let delivered = (d as u64 * BLOCK_LEN as u64 * 1000 / rtt_ms).min(link);
            d = depth(delivered, Duration::from_secs(2), 4, 512);
            seen.push(d);
        }
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        let bdp_blocks = (link * rtt_ms / 1000 / BLOCK_LEN as u64) as usize;
        assert!(
            d >= bdp_blocks,
            "depth {d} below the link's {bdp_blocks} blocks in flight"
        );
    }
}
