//! Keeping our own uplink's queue short while we download.
//!
//! A peer that uploads as fast as its uplink takes fills the queue in front of that link (its
//! modem's, its emulated link's), and the acknowledgements of what it downloads wait in the same
//! queue: on a 100 kB/s uplink a second or two of queue slows a 5 MB/s download to a crawl
//! (the laboratory's scenario 2). TCP cannot see it (nothing is lost), so this module does, the
//! way LEDBAT does for uTP: a smoothed round-trip time above the lowest any connection had in
//! the last minutes is queueing delay, and when **every** connection that uploaded in the last
//! moments sees more than 400 ms of it, the queue is ours (one slow receiver only delays its own
//! connection). Then the upload rate is limited to what the link was seen to carry, and the
//! limit follows the queue to a target of 100 ms: down while the queue is longer, up while shorter.
//! Measured in the laboratory (README, Performance): scenario 2's slow leeches finish 15–25 s
//! sooner, and scenario 1, whose uplinks are full too but whose downloads need far less room
//! for acknowledgements, is unchanged.
//!
//! It never limits a session that is not downloading (a seed's full uplink delays nobody's
//! acknowledgements of its own), and it only ever lowers a `--max-upload-rate`, never raises it.

use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// The queueing delay a limit steers to: short enough for acknowledgements, long enough that
/// the link never idles.
const TARGET: Duration = Duration::from_millis(100);
/// Queueing delay that starts a limit: a queue this long is the uplink's own bloat, not a
/// moment's burst (nor, as often, the queue of the receivers' uplinks their acknowledgements
/// cross, which a round trip cannot tell apart).
const START: Duration = Duration::from_millis(400);
/// A connection's round trip older than this says nothing about now.
const FRESH: Duration = Duration::from_secs(2);
/// How often the rate is reconsidered.
const STEP: Duration = Duration::from_secs(1);
/// The uplink's capacity is learned from the rates of this long.
const CAPACITY_WINDOW: Duration = Duration::from_secs(10);
/// The most a limit moves per step, as a share of the capacity: all of it while the queue is
/// [`TARGET`] too long or more, in proportion to the difference nearer the target.
const GAIN: f64 = 0.1;
/// Never below this many bytes per second (a block still leaves every few seconds).
const FLOOR: f64 = 16.0 * 1024.0;

/// The base round trip is the lowest seen over this many [`BASE_SLOT`]s (as LEDBAT keeps it:
/// a path that got longer is learned in minutes, not never).
const BASE_SLOTS: usize = 5;
const BASE_SLOT: Duration = Duration::from_secs(60);

/// Round-trip samples of the upload connections, by connection.
#[derive(Debug, Default)]
pub struct UplinkDelay {
    inner: Mutex<Samples>,
}

#[derive(Debug, Default)]
struct Samples {
    /// Each connection's latest round trip and when it came.
    conns: Vec<(u64, Duration, Instant)>,
    /// The lowest round trip of each of the last [`BASE_SLOTS`] slots, newest last.
    base: VecDeque<(Instant, Duration)>,
}

impl UplinkDelay {
    /// Connection `id` (one per connection, never reused) uploaded and now has smoothed round
    /// trip `rtt`.
    pub fn observe(&self, id: u64, rtt: Duration, now: Instant) {
        let mut s = self.inner.lock().expect("uplink samples poisoned");
        match s.conns.iter_mut().find(|c| c.0 == id) {
            Some(c) => *c = (id, rtt, now),
            None => s.conns.push((id, rtt, now)),
        }
        match s.base.back_mut() {
            Some((start, low)) if now.saturating_duration_since(*start) < BASE_SLOT => {
                *low = (*low).min(rtt);
            }
            _ => {
                s.base.push_back((now, rtt));
                if s.base.len() > BASE_SLOTS {
                    s.base.pop_front();
                }
            }
        }
    }

    /// Read connection `id`'s smoothed round trip from the kernel (`TCP_INFO`) and observe it.
    pub fn sample(&self, id: u64, stream: &TcpStream, now: Instant) {
        if let Some(rtt) = smoothed_rtt(stream) {
            self.observe(id, rtt, now);
        }
    }

    /// Connection `id` is gone.
    pub fn forget(&self, id: u64) {
        let mut s = self.inner.lock().expect("uplink samples poisoned");
        s.conns.retain(|c| c.0 != id);
    }

    /// The queueing delay every connection that uploaded lately shares: the least of their
    /// round trips above the base; `None` when none uploaded.
    pub fn shared_delay(&self, now: Instant) -> Option<Duration> {
        let s = self.inner.lock().expect("uplink samples poisoned");
        let base = s.base.iter().map(|&(_, low)| low).min()?;
        s.conns
            .iter()
            .filter(|c| now.saturating_duration_since(c.2) <= FRESH)
            .map(|c| c.1.saturating_sub(base))
            .min()
    }
}

/// A connection's smoothed round-trip time, as the kernel estimates it.
fn smoothed_rtt(stream: &TcpStream) -> Option<Duration> {
    let mut info = MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the buffer is a zeroed `tcp_info` of `len` bytes, which the kernel fills at most.
    let r = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    // SAFETY: zeroed is a valid `tcp_info` (plain integers), filled or not.
    let info = unsafe { info.assume_init() };
    (r == 0 && info.tcpi_rtt > 0).then(|| Duration::from_micros(info.tcpi_rtt.into()))
}

/// The automatic upload limit: what it decides from the shared delay and the measured rate.
#[derive(Debug, Default)]
pub struct Steer {
    /// The limit in bytes per second, when one applies.
    limit: Option<f64>,
    last: Option<(Instant, u64)>,
    /// Upload rates of the last [`CAPACITY_WINDOW`], one per step, and whether the uplink's
    /// queue was long then.
    rates: VecDeque<(Instant, f64, bool)>,
}

impl Steer {
    /// No limit yet.
    pub fn new() -> Steer {
        Steer::default()
    }

    /// Reconsider, at most once per [`STEP`]: `uploaded` is the session's upload counter,
    /// `delay` the uplink's shared queueing delay, `downloading` whether the session still
    /// wants pieces. Returns the new limit when it changed (`Some(None)`: no limit).
    pub fn step(
        &mut self,
        now: Instant,
        uploaded: u64,
        delay: Option<Duration>,
        downloading: bool,
    ) -> Option<Option<f64>> {
        let Some((then, before)) = self.last else {
            self.last = Some((now, uploaded));
            return None;
        };
        let elapsed = now.saturating_duration_since(then);
        if elapsed < STEP {
            return None;
        }
        self.last = Some((now, uploaded));
        let rate = uploaded.saturating_sub(before) as f64 / elapsed.as_secs_f64();
        // What the link carries shows while its queue is long and our own limit is not what
        // holds the rate back.
        let full =
            delay.is_some_and(|d| d > TARGET / 2) && self.limit.is_none_or(|l| rate < 0.9 * l);
        self.rates.push_back((now, rate, full));
        while self
            .rates
            .front()
            .is_some_and(|&(t, ..)| now.saturating_duration_since(t) > CAPACITY_WINDOW)
        {
            self.rates.pop_front();
        }
        let capacity = capacity(&self.rates);
        let next = match (downloading, delay, self.limit) {
            (false, ..) => None,
            // Only a queue well past the target starts a limit, at what the link carries.
            (true, Some(d), None) if d > START => Some(capacity.max(FLOOR)),
            (true, _, None) => None,
            // A limit follows the queue to the target (a queue that short keeps the link busy
            // and delays acknowledgements little); far above what was carried it binds
            // nothing and goes.
            (true, d, Some(l)) => {
                let (d, target) = (d.unwrap_or_default().as_secs_f64(), TARGET.as_secs_f64());
                let off = ((target - d) / target).clamp(-1.0, 1.0);
                let moved = (l + off * GAIN * capacity).max(FLOOR);
                (moved <= 1.5 * capacity.max(FLOOR)).then_some(moved)
            }
        };
        if next == self.limit {
            return None;
        }
        self.limit = next;
        Some(next)
    }
}

/// What the uplink carries: the (lower) median rate of the steps when its queue was long (the socket
/// buffers are full then, so what they take is what the link sends; a step that filled them
/// took more), else the best rate seen.
fn capacity(rates: &VecDeque<(Instant, f64, bool)>) -> f64 {
    let mut full: Vec<f64> = rates.iter().filter(|r| r.2).map(|r| r.1).collect();
    if full.is_empty() {
        return rates.iter().map(|r| r.1).fold(0.0, f64::max);
    }
    full.sort_by(f64::total_cmp);
    full[(full.len() - 1) / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_shared_delay_is_the_least_of_the_connections_that_uploaded_lately() {
        let d = UplinkDelay::default();
        let t0 = Instant::now();
        assert_eq!(d.shared_delay(t0), None);
        d.observe(1, 40 * MS, t0);
        d.observe(2, 45 * MS, t0);
        d.observe(1, 900 * MS, t0 + 500 * MS);
        // Connection 2 has seen no queue: the uplink is not what delays connection 1.
        assert_eq!(d.shared_delay(t0 + 500 * MS), Some(5 * MS));
        d.observe(2, 760 * MS, t0 + 600 * MS);
        assert_eq!(d.shared_delay(t0 + 600 * MS), Some(720 * MS));
        // A connection that starts while the queue is full sees it too.
        d.observe(3, 800 * MS, t0 + 700 * MS);
        assert_eq!(d.shared_delay(t0 + 700 * MS), Some(720 * MS));
        // A connection that stopped uploading no longer counts; a closed one neither.
        assert_eq!(d.shared_delay(t0 + 2600 * MS), Some(720 * MS));
        d.forget(2);
        assert_eq!(d.shared_delay(t0 + 2600 * MS), Some(760 * MS));
        assert_eq!(d.shared_delay(t0 + 2701 * MS), None);
    }

    #[test]
    fn the_base_round_trip_is_forgotten_after_five_minutes() {
        let d = UplinkDelay::default();
        let t0 = Instant::now();
        d.observe(1, 40 * MS, t0);
        // The path got longer: 140 ms from now on, with no queue.
        for m in 1..=4 {
            d.observe(1, 140 * MS, t0 + Duration::from_secs(60 * m));
        }
        let at = t0 + Duration::from_secs(240);
        assert_eq!(d.shared_delay(at), Some(100 * MS));
        let at = t0 + Duration::from_secs(300);
        d.observe(1, 140 * MS, at);
        assert_eq!(d.shared_delay(at), Some(Duration::ZERO));
    }

    /// A simulated uplink of `link` bytes per second: what the limit does to the upload rate.
    fn run(steer: &mut Steer, link: f64, delays: &[u64], downloading: bool) -> Vec<Option<f64>> {
        let t0 = Instant::now();
        let mut uploaded = 0u64;
        let mut out = Vec::new();
        steer.step(t0, 0, None, downloading);
        for (k, &d) in delays.iter().enumerate() {
            let rate = steer.limit.unwrap_or(f64::INFINITY).min(link);
            uploaded += rate as u64;
            let now = t0 + Duration::from_secs(k as u64 + 1);
            steer.step(now, uploaded, Some(Duration::from_millis(d)), downloading);
            out.push(steer.limit);
        }
        out
    }

    #[test]
    fn a_long_queue_starts_a_limit_that_follows_it_to_the_target() {
        let mut s = Steer::new();
        let limits = run(
            &mut s,
            100_000.0,
            &[1500, 1200, 800, 300, 100, 40, 70],
            true,
        );
        let kb = |l: &Option<f64>| l.map(|l| (l / 1000.0).round() as u64);
        let limits: Vec<_> = limits.iter().map(kb).collect();
        // At what the link carried; down by a tenth of it a second while the queue is long;
        // still at the target; up in proportion below it.
        assert_eq!(
            limits,
            [
                Some(100),
                Some(90),
                Some(80),
                Some(70),
                Some(70),
                Some(76),
                Some(79)
            ]
        );
    }

    #[test]
    fn a_seed_and_an_uncongested_uplink_are_never_limited() {
        let mut s = Steer::new();
        assert!(run(&mut s, 100_000.0, &[1500, 1500, 1500], false)
            .iter()
            .all(Option::is_none));
        let mut s = Steer::new();
        assert!(run(&mut s, 100_000.0, &[20, 30, 40, 150, 300, 20], true)
            .iter()
            .all(Option::is_none));
    }

    #[test]
    fn a_limit_that_binds_nothing_goes_and_finishing_the_download_lifts_it() {
        let mut s = Steer::new();
        let mut delays = vec![1500];
        delays.extend([10; 40]);
        let limits = run(&mut s, 100_000.0, &delays, true);
        assert_eq!(limits[0], Some(100_000.0));
        // Raised past the link, then half again past what was carried: gone.
        assert_eq!(*limits.last().unwrap(), None);
        let mut s = Steer::new();
        run(&mut s, 100_000.0, &[1500], true);
        assert_eq!(s.limit, Some(100_000.0));
        let t = Instant::now() + Duration::from_secs(60);
        assert_eq!(s.step(t, 10_000_000, Some(1500 * MS), false), Some(None));
    }

    #[test]
    fn a_slow_link_is_never_limited_below_the_floor() {
        let mut s = Steer::new();
        let limits = run(&mut s, 10_000.0, &[3000, 3000], true);
        assert_eq!(limits[0], Some(FLOOR));
    }
}
