//! Transfer rates for the page: bytes per second from counter samples, smoothed.

use enjambre_core::Instant;

/// A smoothed rate of one growing counter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rate {
    last: Option<(Instant, u64)>,
    per_second: f64,
}

impl Rate {
    /// Take a sample of the counter; returns the rate in bytes per second.
    pub fn sample(&mut self, now: Instant, total: u64) -> f64 {
        if let Some((at, before)) = self.last {
            let ms = now.saturating_since(at).as_millis();
            if ms == 0 {
                return self.per_second;
            }
            let now_rate = total.saturating_sub(before) as f64 * 1000.0 / ms as f64;
            // The last second carries half the weight.
            let k = 1.0 - half_to_the(ms as f64 / 1000.0);
            self.per_second += (now_rate - self.per_second) * k;
        }
        self.last = Some((now, total));
        self.per_second
    }
}

/// `0.5^x`: JavaScript's `Math.pow` in the browser (no libm `pow` and its tables in the wasm).
#[cfg(target_arch = "wasm32")]
fn half_to_the(x: f64) -> f64 {
    js_sys::Math::pow(0.5, x)
}

#[cfg(not(target_arch = "wasm32"))]
fn half_to_the(x: f64) -> f64 {
    0.5f64.powf(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_counter_converges_to_its_rate_and_a_stopped_one_decays() {
        let mut r = Rate::default();
        let mut total = 0;
        for s in 0..10u64 {
            total += 1_000_000;
            r.sample(Instant::from_millis(s * 1000), total);
        }
        let steady = r.sample(Instant::from_millis(10_000), total + 1_000_000);
        assert!((steady - 1e6).abs() < 1e4, "{steady}");
        let mut last = f64::MAX;
        for s in 11..14u64 {
            let v = r.sample(Instant::from_millis(s * 1000), total + 1_000_000);
            assert!(v < last);
            last = v;
        }
    }
}
