//! Rate limits: one token bucket per direction, shared by every peer connection.
//!
//! A caller waits until the bucket is not in debt, then takes what it is about to transfer,
//! possibly going into debt; the long-run rate is the configured one. Unlimited costs nothing.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A shared byte-rate limit; `None` inside means unlimited.
#[derive(Debug, Default)]
pub struct RateLimit {
    bucket: Option<Mutex<Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    /// A limit of `rate` bytes per second, or none.
    pub fn new(rate: Option<u64>) -> Self {
        RateLimit {
            bucket: rate.map(|r| {
                let rate = r as f64;
                // A quarter second of burst, and at least two blocks, so one block never waits forever.
                let burst = (rate / 4.0).max(2.0 * 16_397.0);
                Mutex::new(Bucket {
                    rate,
                    burst,
                    tokens: 0.0,
                    last: Instant::now(),
                })
            }),
        }
    }

    /// Wait until `n` bytes may be transferred, and account for them.
    pub async fn take(&self, n: usize) {
        let Some(bucket) = &self.bucket else { return };
        loop {
            let wait = {
                let mut b = bucket.lock().expect("rate bucket poisoned");
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
