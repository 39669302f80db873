//! BEP 12 tiers: try trackers tier by tier, in an order shuffled once within each tier, and move
//! the one that answered to the front of its tier.

use crate::rng::Rng;

/// The order to try a torrent's trackers in, as indices into the caller's list of URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers<const N: usize> {
    /// `(tier, index)` in the order to try.
    order: heapless::Vec<(u16, u16), N>,
}

/// More trackers than the capacity `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TooManyTrackers;

impl<const N: usize> Tiers<N> {
    /// Order `(tier, url)` pairs, indexed by their position in `list`: tiers in ascending order,
    /// shuffled within each tier, a URL seen before dropped.
    pub fn new<'a>(
        list: impl IntoIterator<Item = (u16, &'a str)> + Clone,
        rng: &mut Rng,
    ) -> Result<Self, TooManyTrackers> {
        let mut order: heapless::Vec<(u16, u16), N> = heapless::Vec::new();
        for (i, (tier, url)) in list.clone().into_iter().enumerate() {
            let seen = list.clone().into_iter().take(i).any(|(_, u)| u == url);
            if !seen {
                let index = u16::try_from(i).map_err(|_| TooManyTrackers)?;
                order.push((tier, index)).map_err(|_| TooManyTrackers)?;
            }
        }
        // Insertion sort by (tier, index): a torrent lists a handful of trackers, and the
        // library's sort costs a board about 6.5 KiB of code.
        for i in 1..order.len() {
            let mut j = i;
            while j > 0 && order[j - 1] > order[j] {
                order.swap(j - 1, j);
                j -= 1;
            }
        }
        // Fisher–Yates inside each run of one tier.
        let mut start = 0;
        while start < order.len() {
            let tier = order[start].0;
            let end = start + order[start..].iter().take_while(|t| t.0 == tier).count();
            for i in (start + 1..end).rev() {
                let j = start + rng.below((i - start + 1) as u64) as usize;
                order.swap(i, j);
            }
            start = end;
        }
        Ok(Tiers { order })
    }

    /// Whether there is no tracker at all.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The indices in the order to try.
    pub fn order(&self) -> impl Iterator<Item = u16> + '_ {
        self.order.iter().map(|&(_, index)| index)
    }

    /// `index` answered: try it first within its tier from now on.
    pub fn promote(&mut self, index: u16) {
        let Some(at) = self.order.iter().position(|&(_, i)| i == index) else {
            return;
        };
        let tier = self.order[at].0;
        let first = self
            .order
            .iter()
            .position(|&(t, _)| t == tier)
            .unwrap_or(at);
        self.order[first..=at].rotate_right(1);
    }
}
