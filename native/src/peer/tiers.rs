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

    fn tiers() -> Tiers {
        let list = [
            (1, "c"),
            (0, "a1"),
            (0, "a2"),
            (0, "a3"),
            (1, "c"),
            (2, "d"),
        ];
        Tiers::new(
            list.map(|(t, u)| (t, u.to_string())),
            &mut rand::rngs::StdRng::seed_from_u64(7),
        )
    }

    #[test]
    fn tiers_keep_their_order_and_shuffle_inside() {
        let t = tiers();
        let order: Vec<_> = t.order().collect();
        assert_eq!(order.len(), 5, "the duplicate is dropped");
        let mut first: Vec<_> = order[..3].to_vec();
        first.sort();
        assert_eq!(first, ["a1", "a2", "a3"]);
        assert_eq!(&order[3..], ["c", "d"]);
        let shuffled_somewhere = (0..20u64).any(|seed| {
            let list = (0..3).map(|i| (0, format!("a{i}")));
            let t = Tiers::new(list, &mut rand::rngs::StdRng::seed_from_u64(seed));
            let first = t.order().next() != Some("a0");
            first
        });
        assert!(shuffled_somewhere);
    }

    #[test]
    fn the_tracker_that_answered_moves_to_the_front_of_its_tier() {
        let mut t = tiers();
        let before: Vec<String> = t.order().map(String::from).collect();
        t.promote(&before[2]);
        let after: Vec<String> = t.order().map(String::from).collect();
        assert_eq!(
            after,
            [&before[2], &before[0], &before[1], &before[3], &before[4]].map(String::clone)
        );
        t.promote("d");
        t.promote("unknown");
        assert_eq!(
            t.order().collect::<Vec<_>>()[3..],
            ["c", "d"],
            "tiers never mix"
        );
    }
}
