//! When seeding stops by itself: `--seed-ratio` and `--seed-time`.

use std::time::Duration;

/// The limits given; seeding goes on until Ctrl-C when neither is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SeedUntil {
    /// Stop once this many times the torrent's size has been uploaded.
    pub ratio: Option<f64>,
    /// Stop after seeding this long.
    pub time: Option<Duration>,
}

impl SeedUntil {
    /// Why to stop now, having uploaded `uploaded` bytes of a `total`-byte torrent and seeded for
    /// `seeding_for`; `None` to go on.
    pub fn reached(&self, uploaded: u64, total: u64, seeding_for: Duration) -> Option<String> {
        if let Some(ratio) = self.ratio {
            let reached = uploaded as f64 / total.max(1) as f64;
            if reached >= ratio {
                return Some(format!("seed ratio {ratio} reached ({reached:.2})"));
            }
        }
        match self.time {
            Some(t) if seeding_for >= t => Some(format!("seeded for {} s", t.as_secs())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_stops_at_the_ratio_or_the_time_whichever_comes_first() {
        let both = SeedUntil {
            ratio: Some(1.5),
            time: Some(Duration::from_secs(3600)),
        };
        let minute = Duration::from_secs(60);
        assert_eq!(both.reached(1_000, 1_000, minute), None);
        assert!(both.reached(1_500, 1_000, minute).unwrap().contains("1.5"));
        assert!(both.reached(0, 1_000, 60 * minute).is_some());
        let forever = SeedUntil::default();
        assert_eq!(forever.reached(u64::MAX, 1, Duration::MAX), None);
    }
}
