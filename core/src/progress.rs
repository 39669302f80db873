//! Per-piece byte ranges received so far: the holes still to fetch, at any byte offset.
//!
//! [`PieceProgress`] is an assembler in the manner of smoltcp's: it keeps the received bytes of
//! one piece as sorted, merged, non-adjacent `[start, end)` ranges in a fixed-capacity list, so a
//! block cut off after 5000 bytes leaves exactly the hole `[5000, 16384)` for any peer to fill.
//! Ranges reaching past the piece are clamped to it; it never allocates and never panics.

use core::fmt;

/// Recording a range would need more than `RANGES` separate ranges; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TooManyRanges;

impl fmt::Display for TooManyRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("too many separate ranges in one piece")
    }
}

impl core::error::Error for TooManyRanges {}

/// The byte ranges present in one piece, at most `RANGES` separate ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceProgress<const RANGES: usize> {
    piece: u32,
    piece_len: u32,
    /// Sorted by start; each range non-empty, within the piece, and separated from the next by
    /// at least one missing byte.
    ranges: heapless::Vec<(u32, u32), RANGES>,
}

impl<const RANGES: usize> PieceProgress<RANGES> {
    /// Start tracking piece `piece` of `piece_len` bytes, with nothing received.
    pub const fn new(piece: u32, piece_len: u32) -> Self {
        PieceProgress {
            piece,
            piece_len,
            ranges: heapless::Vec::new(),
        }
    }

    /// Rebuild from stored ranges; `None` unless they are non-empty, sorted, separated by gaps
    /// and within `piece_len` (the form [`Self::ranges`] yields), and at most `RANGES` of them.
    pub fn from_ranges(piece: u32, piece_len: u32, ranges: &[(u32, u32)]) -> Option<Self> {
        let mut prev_end = None;
        for &(start, end) in ranges {
            let separated = prev_end.is_none_or(|p| start > p);
            if !(separated && start < end && end <= piece_len) {
                return None;
            }
            prev_end = Some(end);
        }
        let ranges = heapless::Vec::from_slice(ranges).ok()?;
        Some(PieceProgress {
            piece,
            piece_len,
            ranges,
        })
    }

    /// Return the piece index.
    pub const fn piece(&self) -> u32 {
        self.piece
    }

    /// Return the piece length in bytes.
    pub const fn piece_len(&self) -> u32 {
        self.piece_len
    }

    /// Record bytes `[start, end)` as received and return how many of them were new.
    ///
    /// The range is clamped to the piece; an empty one adds nothing. Fails, changing nothing,
    /// only when the bytes would form a new separate range and `RANGES` are already in use.
    pub fn add(&mut self, start: u32, end: u32) -> Result<u32, TooManyRanges> {
        let end = end.min(self.piece_len);
        if start >= end {
            return Ok(0);
        }
        // Ranges that overlap or touch [start, end) merge with it.
        let first = self.ranges.partition_point(|&(_, e)| e < start);
        let last = self.ranges.partition_point(|&(s, _)| s <= end);
        let merged = self.ranges.get(first..last).unwrap_or(&[]);
        let old: u32 = merged.iter().map(|&(s, e)| e - s).sum();
        let new_start = merged.first().map_or(start, |&(s, _)| s.min(start));
        let new_end = merged.last().map_or(end, |&(_, e)| e.max(end));
        self.splice(first, last, &[(new_start, new_end)])?;
        Ok(new_end - new_start - old)
    }

    /// Forget bytes `[start, end)` (e.g. a request given up); clamped to the piece.
    ///
    /// Fails, changing nothing, only when this splits a range in two and `RANGES` are in use.
    pub fn remove(&mut self, start: u32, end: u32) -> Result<(), TooManyRanges> {
        let end = end.min(self.piece_len);
        if start >= end {
            return Ok(());
        }
        // Ranges that share at least one byte with [start, end).
        let first = self.ranges.partition_point(|&(_, e)| e <= start);
        let last = self.ranges.partition_point(|&(s, _)| s < end);
        let cut = self.ranges.get(first..last).unwrap_or(&[]);
        let (Some(&(head, _)), Some(&(_, tail))) = (cut.first(), cut.last()) else {
            return Ok(());
        };
        let mut rest = [(0, 0); 2];
        let mut n = 0;
        for (s, e) in [(head, start), (end, tail)] {
            if s < e {
                rest[n] = (s, e);
                n += 1;
            }
        }
        self.splice(first, last, &rest[..n])
    }

    /// Forget everything received (e.g. after a failed hash check).
    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    /// Return true when every byte of `[start, end)` is present (true for an empty range).
    pub fn contains(&self, start: u32, end: u32) -> bool {
        if start >= end {
            return true;
        }
        let i = self.ranges.partition_point(|&(_, e)| e <= start);
        self.ranges
            .get(i)
            .is_some_and(|&(s, e)| s <= start && end <= e)
    }

    /// Return the number of bytes present.
    pub fn received(&self) -> u32 {
        self.ranges.iter().map(|&(s, e)| e - s).sum()
    }

    /// Return true when every byte of the piece is present.
    pub fn is_complete(&self) -> bool {
        self.received() == self.piece_len
    }

    /// Iterate over the missing `[start, end)` ranges, in order.
    pub fn missing(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let mut cursor = 0;
        let mut present = self.ranges.iter();
        core::iter::from_fn(move || loop {
            if cursor >= self.piece_len {
                return None;
            }
            let (start, end) = present
                .next()
                .copied()
                .unwrap_or((self.piece_len, self.piece_len));
            let hole = (cursor, start);
            cursor = end;
            if hole.0 < hole.1 {
                return Some(hole);
            }
        })
    }

    /// Iterate over the present `[start, end)` ranges, in order.
    pub fn ranges(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.ranges.iter().copied()
    }

    /// Return the present ranges as a slice (the form [`Self::from_ranges`] accepts).
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// Return how many bytes are present from offset 0 without a hole.
    pub fn contiguous_prefix(&self) -> u32 {
        match self.ranges.first() {
            Some(&(0, end)) => end,
            _ => 0,
        }
    }

    /// Replace `ranges[first..last]` with `with`, or change nothing if it would not fit.
    fn splice(
        &mut self,
        first: usize,
        last: usize,
        with: &[(u32, u32)],
    ) -> Result<(), TooManyRanges> {
        let len = self.ranges.len();
        let new_len = len - (last - first) + with.len();
        if new_len > RANGES {
            return Err(TooManyRanges);
        }
        while self.ranges.len() < new_len {
            self.ranges.push((0, 0)).map_err(|_| TooManyRanges)?;
        }
        self.ranges.copy_within(last..len, first + with.len());
        self.ranges.truncate(new_len);
        if let Some(slot) = self.ranges.get_mut(first..first + with.len()) {
            slot.copy_from_slice(with);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const PIECE: u32 = 4 * 16384;

    fn ranges<const R: usize>(p: &PieceProgress<R>) -> Vec<(u32, u32)> {
        p.ranges().collect()
    }

    fn missing<const R: usize>(p: &PieceProgress<R>) -> Vec<(u32, u32)> {
        p.missing().collect()
    }

    #[test]
    fn blocks_arriving_out_of_order_fill_the_piece() {
        let mut p = PieceProgress::<4>::new(7, PIECE);
        assert_eq!(missing(&p), [(0, PIECE)]);
        assert_eq!(p.add(32768, 49152), Ok(16384));
        assert_eq!(p.add(0, 16384), Ok(16384));
        assert_eq!(ranges(&p), [(0, 16384), (32768, 49152)]);
        assert_eq!(missing(&p), [(16384, 32768), (49152, PIECE)]);
        assert_eq!(p.contiguous_prefix(), 16384);
        assert_eq!(p.add(49152, PIECE), Ok(16384));
        assert_eq!(p.add(16384, 32768), Ok(16384));
        assert_eq!(ranges(&p), [(0, PIECE)]);
        assert!(p.is_complete());
        assert_eq!(p.received(), PIECE);
        assert_eq!(missing(&p), []);
        assert_eq!(p.piece(), 7);
    }

    #[test]
    fn a_block_cut_at_byte_5000_leaves_exactly_the_rest() {
        let mut p = PieceProgress::<4>::new(0, 16384);
        assert_eq!(p.add(0, 5000), Ok(5000));
        assert_eq!(missing(&p), [(5000, 16384)]);
        assert_eq!(p.contiguous_prefix(), 5000);
        // Another peer sends the rest of the block from byte 5000.
        assert_eq!(p.add(5000, 16384), Ok(11384));
        assert!(p.is_complete());
    }

    #[test]
    fn duplicates_and_overlaps_count_only_new_bytes() {
        let mut p = PieceProgress::<4>::new(0, PIECE);
        assert_eq!(p.add(100, 200), Ok(100));
        assert_eq!(p.add(100, 200), Ok(0));
        assert_eq!(p.add(150, 250), Ok(50));
        assert_eq!(p.add(300, 400), Ok(100));
        // Bridges the gap and covers both ranges.
        assert_eq!(p.add(50, 450), Ok(400 - 250));
        assert_eq!(ranges(&p), [(50, 450)]);
        // Adjacent ranges merge into one.
        assert_eq!(p.add(450, 500), Ok(50));
        assert_eq!(p.add(10, 50), Ok(40));
        assert_eq!(ranges(&p), [(10, 500)]);
        assert!(p.contains(10, 500));
        assert!(!p.contains(9, 500));
        assert!(!p.contains(10, 501));
    }

    #[test]
    fn too_many_ranges_leaves_state_unchanged() {
        let mut p = PieceProgress::<2>::new(0, PIECE);
        p.add(0, 10).unwrap();
        p.add(20, 30).unwrap();
        let before = p.clone();
        assert_eq!(p.add(40, 50), Err(TooManyRanges));
        assert_eq!(p, before);
        // Splitting a range in two needs a third slot too.
        assert_eq!(p.remove(3, 5), Err(TooManyRanges));
        assert_eq!(p, before);
        // Merging into existing ranges still works when full.
        assert_eq!(p.add(10, 20), Ok(10));
        assert_eq!(ranges(&p), [(0, 30)]);
    }

    #[test]
    fn remove_unclaims_bytes() {
        let mut p = PieceProgress::<4>::new(0, 1000);
        p.add(0, 1000).unwrap();
        p.remove(100, 200).unwrap();
        assert_eq!(ranges(&p), [(0, 100), (200, 1000)]);
        p.remove(50, 300).unwrap();
        assert_eq!(ranges(&p), [(0, 50), (300, 1000)]);
        p.remove(0, 50).unwrap();
        p.remove(900, 5000).unwrap();
        assert_eq!(ranges(&p), [(300, 900)]);
        p.remove(0, 1000).unwrap();
        assert_eq!(ranges(&p), []);
        p.add(1, 2).unwrap();
        p.clear();
        assert_eq!(p.received(), 0);
    }

    #[test]
    fn ranges_past_the_piece_are_clamped() {
        let mut p = PieceProgress::<4>::new(0, 1000);
        assert_eq!(p.add(900, u32::MAX), Ok(100));
        assert_eq!(p.add(1000, 2000), Ok(0));
        assert_eq!(p.add(u32::MAX, 0), Ok(0));
        assert_eq!(ranges(&p), [(900, 1000)]);
        assert!(!p.contains(900, 1001));
    }

    #[test]
    fn from_ranges_accepts_only_the_canonical_form() {
        assert!(PieceProgress::<4>::from_ranges(0, 100, &[(0, 10), (20, 100)]).is_some());
        assert!(PieceProgress::<4>::from_ranges(0, 100, &[]).is_some());
        for bad in [
            &[(0, 10), (10, 20)][..], // adjacent: would have been merged
            &[(20, 30), (0, 10)],     // unsorted
            &[(0, 10), (5, 20)],      // overlapping
            &[(5, 5)],                // empty
            &[(90, 101)],             // past the piece
        ] {
            assert!(
                PieceProgress::<4>::from_ranges(0, 100, bad).is_none(),
                "{bad:?}"
            );
        }
        assert!(PieceProgress::<1>::from_ranges(0, 100, &[(0, 10), (20, 30)]).is_none());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u32, u32),
        Remove(u32, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        (any::<bool>(), 0u32..70, 0u32..70).prop_map(|(add, a, b)| {
            if add {
                Op::Add(a, b)
            } else {
                Op::Remove(a, b)
            }
        })
    }

    proptest! {
        #[test]
        fn matches_a_bool_array(ops in proptest::collection::vec(op(), 0..60)) {
            const LEN: u32 = 64;
            let mut p = PieceProgress::<4>::new(0, LEN);
            let mut model = [false; LEN as usize];
            for op in ops {
                let before = p.clone();
                let (add, start, end) = match op {
                    Op::Add(s, e) => (true, s, e),
                    Op::Remove(s, e) => (false, s, e),
                };
                let span = start.min(LEN) as usize..end.min(LEN) as usize;
                let result = if add {
                    p.add(start, end).map(|n| n as usize)
                } else {
                    p.remove(start, end).map(|()| 0)
                };
                match result {
                    Ok(n) => {
                        let fresh = span.clone().filter(|&i| model[i] != add).count();
                        if add {
                            prop_assert_eq!(n, fresh);
                        }
                        for i in span {
                            model[i] = add;
                        }
                    }
                    Err(TooManyRanges) => prop_assert_eq!(&p, &before),
                }
                // The ranges are exactly the runs of the model.
                let mut runs = Vec::new();
                let mut i = 0;
                while i < LEN as usize {
                    if model[i] {
                        let s = i;
                        while i < LEN as usize && model[i] {
                            i += 1;
                        }
                        runs.push((s as u32, i as u32));
                    }
                    i += 1;
                }
                prop_assert_eq!(ranges(&p), runs.clone());
                prop_assert_eq!(p.received() as usize, model.iter().filter(|b| **b).count());
                let holes: usize = p.missing().map(|(s, e)| (e - s) as usize).sum();
                prop_assert_eq!(holes, model.iter().filter(|b| !**b).count());
                prop_assert_eq!(p.contiguous_prefix() as usize, model.iter().take_while(|b| **b).count());
                prop_assert_eq!(p.is_complete(), model.iter().all(|b| *b));
                prop_assert!(PieceProgress::<4>::from_ranges(0, LEN, p.as_slice()).is_some());
            }
        }
    }
}
