//! Rates: the limits, one token bucket per direction shared by every peer connection, and the
//! meter that shows the rate of the last few seconds.
//!
//! A caller waits until the bucket is not in debt, then takes what it is about to transfer,
//! possibly going into debt; the long-run rate is the configured one. Unlimited costs nothing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::uplink::UplinkDelay;

/// A shared byte-rate limit: the one asked for (`--max-…-rate`), lowered for uploads while the
/// uplink's queue is long (see [`crate::peer::uplink`]).
#[derive(Debug)]
pub struct RateLimit {
    /// The limit asked for, in bytes per second.
    asked: Option<f64>,
    /// Whether a limit applies now: read on every send, so no limit costs one atomic load.
    active: AtomicBool,
    bucket: Mutex<Bucket>,
    /// For uploads, the round trips of the connections that send: the uplink's queue.
    pub uplink: UplinkDelay,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::new(None)
    }
}

impl RateLimit {
    /// A limit of `rate` bytes per second, or none.
    pub fn new(rate: Option<u64>) -> Self {
        let asked = rate.map(|r| r as f64);
        RateLimit {
            asked,
            active: AtomicBool::new(asked.is_some()),
            bucket: Mutex::new(Bucket {
                rate: asked.unwrap_or(f64::INFINITY),
                burst: burst(asked.unwrap_or(f64::INFINITY)),
                tokens: 0.0,
                last: Instant::now(),
            }),
            uplink: UplinkDelay::default(),
        }
    }

    /// Whether there is a limit at all (`take` may wait).
    pub fn is_limited(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Apply `auto` (bytes per second) as well as the limit asked for, or only that one.
    pub fn set_auto(&self, auto: Option<f64>) {
        let rate = match (self.asked, auto) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(rate) = rate {
            let mut b = self.bucket.lock().expect("rate bucket poisoned");
            b.rate = rate;
            b.burst = burst(rate);
            b.tokens = b.tokens.min(b.burst);
        }
        self.active.store(rate.is_some(), Ordering::Relaxed);
    }

    /// Account for `n` bytes transferred without waiting (the bucket may go into debt, so what
    /// waits next waits longer): for messages, whose delay would cost more than their bytes.
    pub fn charge(&self, n: usize) {
        if !self.is_limited() {
            return;
        }
        let mut b = self.bucket.lock().expect("rate bucket poisoned");
        b.tokens -= n as f64;
    }

    /// Wait until `n` bytes may be transferred, and account for them.
    pub async fn take(&self, n: usize) {
        loop {
            if !self.is_limited() {
                return;
            }
            let wait = {
                let mut b = self.bucket.lock().expect("rate bucket poisoned");
                let now = Instant::now();
                let elapsed = now.duration_since(b.last).as_secs_f64();
                b.last = now;
                b.tokens = (b.tokens + elapsed * b.rate).min(b.burst);
                if b.tokens >= 0.0 {
                    b.tokens -= n as f64;
                    return;
                }
                Duration::from_secs_f64(-b.tokens / b.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// A quarter second of burst, and at least two blocks, so one block never waits forever.
fn burst(rate: f64) -> f64 {
    (rate / 4.0).max(2.0 * 16_397.0)
}

/// The rate shown to people: bytes over the last [`RateMeter::WINDOW`], from samples of a
/// growing counter. The first sample is only a base (a counter restored from a resume state is
/// not this run's transfer), and less than a second of samples counts as one second, so the
/// first moments never show more than was moved.
#[derive(Debug, Default)]
pub struct RateMeter {
    samples: VecDeque<(std::time::Instant, u64)>,
}

impl RateMeter {
    /// How far back the rate looks.
    pub const WINDOW: Duration = Duration::from_secs(5);

    /// Record the counter's value at `now` (times must not go backwards).
    pub fn record(&mut self, now: std::time::Instant, total: u64) {
        self.samples.push_back((now, total));
        // Keep one sample at or before the window's start, so the window is always covered.
        while self
            .samples
            .get(1)
            .is_some_and(|&(t, _)| now.duration_since(t) >= Self::WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Bytes per second over the window.
    pub fn per_sec(&self) -> f64 {
        let (Some(&(t0, first)), Some(&(t1, last))) = (self.samples.front(), self.samples.back())
        else {
            return 0.0;
        };
        let span = t1.duration_since(t0).max(Duration::from_secs(1));
        last.saturating_sub(first) as f64 / span.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter moved at `rate` bytes per second, sampled four times a second on a virtual clock.
    struct Feed {
        meter: RateMeter,
        start: std::time::Instant,
        at: Duration,
        total: u64,
    }

    impl Feed {
        fn new(restored: u64) -> Self {
            let start = std::time::Instant::now();
            let mut meter = RateMeter::default();
            meter.record(start, restored);
            Feed {
                meter,
                start,
                at: Duration::ZERO,
                total: restored,
            }
        }

        fn run(&mut self, rate: u64, secs: f64) -> f64 {
            let mut peak: f64 = 0.0;
            for _ in 0..(secs * 4.0) as usize {
                self.at += Duration::from_millis(250);
                self.total += rate / 4;
                self.meter.record(self.start + self.at, self.total);
                peak = peak.max(self.meter.per_sec());
            }
            peak
        }
    }

    #[test]
    fn the_meter_shows_the_last_seconds_and_never_overshoots_at_the_start() {
        const LIMIT: u64 = 512 * 1024;
        let mut feed = Feed::new(700 << 20);
        assert_eq!(
            feed.meter.per_sec(),
            0.0,
            "a restored counter is no transfer"
        );
        let peak = feed.run(LIMIT, 1.0);
        assert!(peak <= LIMIT as f64, "{peak} in the first second");
        feed.run(LIMIT, 9.0);
        let steady = feed.meter.per_sec();
        assert!((steady - LIMIT as f64).abs() < 1.0, "{steady}");
        // Twice as fast: the figure follows within the window.
        feed.run(2 * LIMIT, 5.0);
        assert!((feed.meter.per_sec() - 2.0 * LIMIT as f64).abs() < 1.0);
        // The transfer stops: the figure is zero once the window has passed, not 15 s later.
        feed.run(0, 2.5);
        assert!(feed.meter.per_sec() > 0.0);
        feed.run(0, 2.5);
        assert_eq!(feed.meter.per_sec(), 0.0);
        assert!(feed.meter.samples.len() <= 22, "samples are bounded");
    }

    #[tokio::test(start_paused = true)]
    async fn the_long_run_rate_is_the_limit() {
        let limit = RateLimit::new(Some(100_000));
        let start = Instant::now();
        for _ in 0..100 {
            limit.take(10_000).await;
        }
        // One million bytes at 100 kB/s: ten seconds, less the first grant taken at once.
        let took = start.elapsed().as_secs_f64();
        assert!((9.5..=10.5).contains(&took), "{took}");
        let free = RateLimit::new(None);
        let start = Instant::now();
        free.take(usize::MAX).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_charge_never_waits_and_what_takes_next_waits_for_it() {
        let limit = RateLimit::new(Some(100_000));
        limit.take(50_000).await;
        let start = Instant::now();
        // In debt by half a second: a message is charged at once all the same.
        limit.charge(50_000);
        assert_eq!(start.elapsed(), Duration::ZERO);
        // The next upload waits for both: a second.
        limit.take(1).await;
        let waited = start.elapsed().as_secs_f64();
        assert!((0.99..=1.01).contains(&waited), "{waited}");
    }
}
