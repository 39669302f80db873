//! Which piece to fetch next: rarest first, random among equals.
//!
//! [`Picker`] counts, per piece, how many connected peers have it, and picks for one peer the
//! rarest piece that peer has and we lack. Ties are broken uniformly at random with a seeded
//! xorshift64* generator, so a swarm of clients does not all start on the same piece while a
//! test run stays reproducible. It never allocates; a pick is at most one pass over the pieces
//! that skips whole bytes with nothing to offer, and stops at the first piece nothing is rarer
//! than.

use crate::bitfield::{Bitfield, CapacityError};
use crate::rng::Rng;

/// Availability counts and a random source for choosing pieces: room for `8 * PICK` pieces.
///
/// A picker of zero pieces counts nothing and picks nothing: a seed that never downloads
/// uses `PICK = 0` and pays nothing for it.
#[derive(Debug, Clone)]
pub struct Picker<const PICK: usize> {
    /// `counts[byte][bit]` is the availability of piece `byte * 8 + bit` (BEP 3 bit order).
    counts: [[u16; 8]; PICK],
    piece_count: u32,
    rng: Rng,
}

impl<const PICK: usize> Picker<PICK> {
    /// A picker of zero pieces; [`Picker::reset`] sizes it.
    pub const fn empty() -> Self {
        Picker {
            counts: [[0; 8]; PICK],
            piece_count: 0,
            rng: Rng::new(1),
        }
    }

    /// Create a picker for `piece_count` pieces, all unavailable, with random seed `seed`.
    pub fn new(piece_count: u32, seed: u64) -> Result<Self, CapacityError> {
        let mut picker = Self::empty();
        picker.reset(piece_count, seed)?;
        Ok(picker)
    }

    /// Make this a picker for `piece_count` pieces, all unavailable, in place.
    pub fn reset(&mut self, piece_count: u32, seed: u64) -> Result<(), CapacityError> {
        if piece_count > Bitfield::<PICK>::CAPACITY {
            return Err(CapacityError);
        }
        self.counts.fill([0; 8]);
        self.piece_count = piece_count;
        self.rng = Rng::new(seed);
        Ok(())
    }

    /// Count every piece set in a peer's bitfield (its `BITFIELD` message).
    pub fn add_bitfield<const B: usize>(&mut self, b: &Bitfield<B>) {
        self.apply(b, |c| c.saturating_add(1));
    }

    /// Uncount a departing peer's bitfield.
    pub fn remove_bitfield<const B: usize>(&mut self, b: &Bitfield<B>) {
        self.apply(b, |c| c.saturating_sub(1));
    }

    /// Count one piece a peer announced with `HAVE`; ignores pieces out of range.
    pub fn add_have(&mut self, piece: u32) {
        if let Some(c) = self.count_mut(piece) {
            *c = c.saturating_add(1);
        }
    }

    /// Count every piece once (a `HAVE_ALL` peer).
    pub fn add_all(&mut self) {
        self.apply_all(|c| c.saturating_add(1));
    }

    /// Uncount every piece once (a departing `HAVE_ALL` peer).
    pub fn remove_all(&mut self) {
        self.apply_all(|c| c.saturating_sub(1));
    }

    /// Return how many peers have `piece` (0 when out of range).
    pub fn availability(&self, piece: u32) -> u16 {
        if piece >= self.piece_count {
            return 0;
        }
        self.counts
            .get((piece / 8) as usize)
            .and_then(|byte| byte.get((piece % 8) as usize))
            .copied()
            .unwrap_or(0)
    }

    /// Return the rarest piece that `peer` has, `have` lacks, `wanted` holds (a selection of
    /// files; all pieces when everything is wanted) and `skip` does not exclude (e.g. pieces
    /// already in progress). Among the equally rare, the first one from a random
    /// piece onwards (wrapping round): random, and uniform when the candidates are contiguous.
    ///
    /// `counted`: `peer`'s own pieces are in the counts, so none it offers is rarer than 1 and
    /// the first piece of count 1 ends the search. With one seed every piece has count 1: a
    /// pick then costs one piece, not a pass over all of them.
    ///
    /// Deterministic for a given seed and call sequence; `None` when there is no such piece.
    pub fn pick<const B: usize>(
        &mut self,
        peer: &Bitfield<B>,
        have: &Bitfield<B>,
        wanted: &Bitfield<B>,
        counted: bool,
        skip: impl Fn(u32) -> bool,
    ) -> Option<u32> {
        let used = self.piece_count.div_ceil(8) as usize;
        if used == 0 {
            return None;
        }
        let floor = u16::from(counted);
        let start = self.rng.below(self.piece_count.into()) as u32;
        let (first, head) = ((start / 8) as usize, 0xffu8 >> (start % 8));
        let (theirs, ours, selected) = (peer.raw(), have.raw(), wanted.raw());
        let mut best: Option<(u32, u16)> = None;
        // Byte `first` from bit `start % 8`, every other byte, then `first`'s earlier bits.
        for step in 0..=used {
            let i = (first + step) % used;
            let mask = match step {
                0 => head,
                s if s == used => !head,
                _ => 0xff,
            };
            let mut wanted = theirs[i] & !ours[i] & selected[i] & mask;
            while wanted != 0 {
                let bit = wanted.leading_zeros();
                wanted &= !(0x80 >> bit);
                let piece = i as u32 * 8 + bit;
                if piece >= self.piece_count || skip(piece) {
                    continue;
                }
                let count = self.counts[i][bit as usize];
                if count <= floor {
                    return Some(piece);
                }
                if best.is_none_or(|(_, rarest)| count < rarest) {
                    best = Some((piece, count));
                }
            }
        }
        best.map(|(piece, _)| piece)
    }

    fn count_mut(&mut self, piece: u32) -> Option<&mut u16> {
        if piece >= self.piece_count {
            return None;
        }
        self.counts
            .get_mut((piece / 8) as usize)?
            .get_mut((piece % 8) as usize)
    }

    fn apply<const B: usize>(&mut self, b: &Bitfield<B>, f: impl Fn(u16) -> u16) {
        for piece in b.iter_ones() {
            if let Some(c) = self.count_mut(piece) {
                *c = f(*c);
            }
        }
    }

    fn apply_all(&mut self, f: impl Fn(u16) -> u16) {
        for piece in 0..self.piece_count {
            if let Some(c) = self.count_mut(piece) {
                *c = f(*c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn field(len: u32, ones: &[u32]) -> Bitfield<4> {
        let mut b = Bitfield::new(len).unwrap();
        for &i in ones {
            b.set(i, true);
        }
        b
    }

    /// Every piece wanted.
    fn all() -> Bitfield<4> {
        let mut b = Bitfield::new(32).unwrap();
        b.fill();
        b
    }

    #[test]
    fn only_wanted_pieces_are_picked() {
        let mut p = Picker::<4>::new(20, 7).unwrap();
        let peer = field(20, &(0..20).collect::<Vec<_>>());
        let none = field(20, &[]);
        p.add_bitfield(&peer);
        let wanted = field(20, &[3, 17]);
        let first = p.pick(&peer, &none, &wanted, true, |_| false).unwrap();
        assert!(first == 3 || first == 17);
        let other = 20 - first;
        assert_eq!(
            p.pick(&peer, &field(20, &[first]), &wanted, true, |_| false),
            Some(other)
        );
        assert_eq!(
            p.pick(&peer, &field(20, &[3, 17]), &wanted, true, |_| false),
            None
        );
        assert_eq!(p.pick(&peer, &none, &none, true, |_| false), None);
    }

    #[test]
    fn picks_the_rarest_piece_the_peer_has() {
        let mut p = Picker::<4>::new(20, 1).unwrap();
        p.add_bitfield(&field(20, &[0, 1, 2, 3, 4, 5]));
        p.add_bitfield(&field(20, &[0, 1, 2, 3, 4]));
        p.add_bitfield(&field(20, &[0, 1, 2, 3]));
        p.add_have(17);
        let peer = field(20, &[0, 1, 4, 5, 17, 19]);
        let none = field(20, &[]);
        // Counts: 0..=3 three peers, 4 two, 5 and 17 one, 19 none; the peer offers 19 first.
        assert_eq!(p.availability(19), 0);
        assert_eq!(p.pick(&peer, &none, &all(), false, |_| false), Some(19));
        let tied = p.pick(&peer, &field(20, &[19]), &all(), false, |_| false);
        assert!(tied == Some(5) || tied == Some(17), "{tied:?}");
        // Among 5 (count 1) and 17 (count 1) the choice is random; skip one to force the other.
        assert_eq!(
            p.pick(&peer, &field(20, &[19]), &all(), false, |i| i == 5),
            Some(17)
        );
        assert_eq!(
            p.pick(&peer, &field(20, &[19, 17]), &all(), false, |_| false),
            Some(5)
        );
        assert_eq!(
            p.pick(&peer, &field(20, &[19, 17, 5]), &all(), false, |_| false),
            Some(4)
        );
        assert_eq!(
            p.pick(&peer, &field(20, &[19, 17, 5, 4]), &all(), false, |i| i
                == 0),
            Some(1)
        );
    }

    #[test]
    fn nothing_to_pick() {
        let mut p = Picker::<4>::new(20, 1).unwrap();
        p.add_all();
        let peer = field(20, &[3, 9]);
        assert_eq!(
            p.pick(&peer, &field(20, &[3, 9]), &all(), false, |_| false),
            None
        );
        assert_eq!(
            p.pick(&peer, &field(20, &[3]), &all(), false, |i| i == 9),
            None
        );
        assert_eq!(
            p.pick(&field(20, &[]), &field(20, &[]), &all(), false, |_| false),
            None
        );
    }

    #[test]
    fn ties_are_spread_over_seeds_and_repeatable_per_seed() {
        let mut seen = [0u32; 20];
        let peer = field(20, &(0..20).collect::<Vec<_>>());
        let have = field(20, &[]);
        for seed in 0..2000 {
            let mut p = Picker::<4>::new(20, seed).unwrap();
            let first = p.pick(&peer, &have, &all(), false, |_| false).unwrap();
            seen[first as usize] += 1;
            let mut again = Picker::<4>::new(20, seed).unwrap();
            assert_eq!(
                again.pick(&peer, &have, &all(), false, |_| false),
                Some(first)
            );
        }
        // Each of the 20 tied pieces expects 100 picks; the bounds are about ±5 sigma.
        for (piece, n) in seen.iter().enumerate() {
            assert!((50..=150).contains(n), "piece {piece} picked {n} times");
        }
    }

    #[test]
    fn with_one_counted_seed_a_pick_looks_at_one_piece() {
        let mut p = Picker::<4>::new(32, 3).unwrap();
        let seed = field(32, &(0..32).collect::<Vec<_>>());
        p.add_bitfield(&seed);
        let mut have = field(32, &[]);
        for _ in 0..32 {
            let looked = core::cell::Cell::new(0);
            let picked = p.pick(&seed, &have, &all(), true, |_| {
                looked.set(looked.get() + 1);
                false
            });
            assert_eq!(looked.get(), 1);
            have.set(picked.unwrap(), true);
        }
        assert!(have.is_full());
    }

    #[test]
    fn counts_follow_peers_coming_and_going() {
        let mut p = Picker::<4>::new(10, 0).unwrap();
        let a = field(10, &[1, 2]);
        p.add_bitfield(&a);
        p.add_all();
        assert_eq!((p.availability(0), p.availability(1)), (1, 2));
        p.remove_bitfield(&a);
        p.remove_all();
        p.remove_all();
        assert!((0..10).all(|i| p.availability(i) == 0));
        p.add_have(10);
        p.add_have(u32::MAX);
        assert_eq!(p.availability(10), 0);
        assert_eq!(Picker::<4>::new(33, 0).unwrap_err(), CapacityError);
    }

    proptest! {
        #[test]
        fn picks_a_rarest_eligible_piece(
            len in 1u32..=32,
            peers in proptest::collection::vec(any::<u32>(), 0..6),
            peer in any::<u32>(),
            have in any::<u32>(),
            skipped in any::<u32>(),
            unwanted in any::<u32>(),
            seed in any::<u64>(),
            counted in any::<bool>(),
        ) {
            let bits = |mask: u32| field(len, &(0..len).filter(|i| mask & (1 << i) != 0).collect::<Vec<_>>());
            let mut p = Picker::<4>::new(len, seed).unwrap();
            for &m in &peers {
                p.add_bitfield(&bits(m));
            }
            if counted {
                p.add_bitfield(&bits(peer));
            }
            let eligible = |i: u32| {
                peer & (1 << i) != 0
                    && have & (1 << i) == 0
                    && skipped & (1 << i) == 0
                    && unwanted & (1 << i) == 0
            };
            let rarest = (0..len).filter(|&i| eligible(i)).map(|i| p.availability(i)).min();
            let picked = p.pick(&bits(peer), &bits(have), &bits(!unwanted), counted, |i| skipped & (1 << i) != 0);
            match picked {
                None => prop_assert_eq!(rarest, None),
                Some(i) => {
                    prop_assert!(eligible(i));
                    prop_assert_eq!(Some(p.availability(i)), rarest);
                }
            }
        }
    }
}
