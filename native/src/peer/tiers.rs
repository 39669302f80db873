//! BEP 12 tracker tiers: try trackers tier by tier, in an order shuffled once within each tier,
//! and move the one that answered to the front of its tier.

use rand::seq::SliceRandom;

/// The trackers of one torrent, in BEP 12 order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    tiers: Vec<Vec<String>>,
}

impl Tiers {
    /// Group `(tier, url)` pairs by tier (in tier order) and shuffle within each tier.
    pub fn new(
        trackers: impl IntoIterator<Item = (usize, String)>,
        rng: &mut impl rand::Rng,
    ) -> Self {
        let mut tiers: Vec<(usize, Vec<String>)> = Vec::new();
        for (tier, url) in trackers {
            match tiers.iter_mut().find(|(t, _)| *t == tier) {
                Some((_, urls)) if !urls.contains(&url) => urls.push(url),
                Some(_) => {}
                None => tiers.push((tier, vec![url])),
            }
        }
        tiers.sort_by_key(|(t, _)| *t);
        let mut tiers: Vec<Vec<String>> = tiers.into_iter().map(|(_, urls)| urls).collect();
        for tier in &mut tiers {
            tier.shuffle(rng);
        }
        Tiers { tiers }
    }

    /// Return true when there is no tracker at all.
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// Return the trackers in the order they would be tried.
    pub fn order(&self) -> impl Iterator<Item = &str> {
        self.tiers.iter().flatten().map(String::as_str)
    }

    /// Move `url` to the front of its tier: it answered, so it is tried first next time.
    pub fn promote(&mut self, url: &str) {
        for tier in &mut self.tiers {
            if let Some(i) = tier.iter().position(|u| u == url) {
                let u = tier.remove(i);
                tier.insert(0, u);
                return;
            }
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
