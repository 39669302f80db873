//! BEP 12 tracker tiers over owned URLs: the order itself (tiers in order, shuffled once within
//! each, the tracker that answered moved to the front of its tier) is the core's
//! `tracker::client::Tiers`, shared with the other shells.

use enjambre_core::tracker::client::{self, Rng};

/// Trackers considered at most; a longer announce list is cut (with a warning).
const MAX_TRACKERS: usize = 512;

/// The trackers of one torrent, in BEP 12 order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    urls: Vec<String>,
    order: client::Tiers<MAX_TRACKERS>,
}

impl Tiers {
    /// Group `(tier, url)` pairs by tier (in tier order) and shuffle within each tier.
    pub fn new(
        trackers: impl IntoIterator<Item = (usize, String)>,
        rng: &mut impl rand::Rng,
    ) -> Self {
        let mut list: Vec<(u16, String)> = trackers
            .into_iter()
            .map(|(tier, url)| (u16::try_from(tier).unwrap_or(u16::MAX), url))
            .collect();
        if list.len() > MAX_TRACKERS {
            tracing::warn!(
                trackers = list.len(),
                "only the first {MAX_TRACKERS} trackers are used"
            );
            list.truncate(MAX_TRACKERS);
        }
        let pairs = list.iter().map(|(tier, url)| (*tier, url.as_str()));
        let order = client::Tiers::new(pairs, &mut Rng::new(rng.gen()))
            .expect("the list is cut to the capacity");
        Tiers {
            urls: list.into_iter().map(|(_, url)| url).collect(),
            order,
        }
    }

    /// Return true when there is no tracker at all.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Return the trackers in the order they would be tried.
    pub fn order(&self) -> impl Iterator<Item = &str> {
        self.order
            .order()
            .map(|i| self.urls[usize::from(i)].as_str())
    }

    /// Move `url` to the front of its tier: it answered, so it is tried first next time.
    pub fn promote(&mut self, url: &str) {
        let found = self
            .order
            .order()
            .find(|&i| self.urls[usize::from(i)] == url);
        if let Some(i) = found {
            self.order.promote(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn urls_come_back_in_tier_order_and_promotion_goes_by_url() {
        let list = [
            (2, "udp://d:1"),
            (0, "http://a"),
            (0, "http://b"),
            (2, "udp://d:1"),
        ];
        let mut t = Tiers::new(
            list.map(|(tier, url)| (tier, url.to_string())),
            &mut rand::rngs::StdRng::seed_from_u64(3),
        );
        let order: Vec<&str> = t.order().collect();
        assert_eq!(order.len(), 3, "the duplicate is dropped");
        assert_eq!(order[2], "udp://d:1", "the later tier last");
        let second = order[1].to_string();
        t.promote(&second);
        t.promote("http://unknown");
        assert_eq!(t.order().next(), Some(second.as_str()));
        assert!(Tiers::new([], &mut rand::rngs::StdRng::seed_from_u64(1)).is_empty());
    }
}
