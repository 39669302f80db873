//! A fixed-capacity byte ring buffer: each peer's receive queue.
//!
//! Bytes go in at the back with [`RingBuffer::write`] and come out of the front with
//! [`RingBuffer::consume`]. The buffered bytes are read in place through
//! [`RingBuffer::as_slices`], which returns them as at most two contiguous halves; the wire
//! decoders read across both halves, so a message is never copied just because it wraps.
//! Storage is an inline `[u8; N]`; the buffer never allocates and never grows.

/// A byte queue of at most `N` bytes held in inline storage.
#[derive(Clone)]
pub struct RingBuffer<const N: usize> {
    storage: [u8; N],
    /// Index of the first buffered byte; always `< N` (or 0 when `N == 0`).
    head: usize,
    /// Number of buffered bytes; always `<= N`.
    len: usize,
}

impl<const N: usize> RingBuffer<N> {
    /// Return an empty buffer.
    pub const fn new() -> Self {
        RingBuffer {
            storage: [0; N],
            head: 0,
            len: 0,
        }
    }

    /// Return the number of buffered bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Return whether no bytes are buffered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Return how many more bytes [`write`](Self::write) would accept.
    pub fn free(&self) -> usize {
        N - self.len
    }

    /// Return the total capacity, `N`.
    pub fn capacity(&self) -> usize {
        N
    }

    /// Append as much of `bytes` as fits and return how many bytes were accepted.
    ///
    /// Never overwrites buffered bytes: when the buffer is full the rest of `bytes` is left to
    /// the caller.
    pub fn write(&mut self, bytes: &[u8]) -> usize {
        let accepted = bytes.len().min(self.free());
        let first = bytes.get(..accepted).unwrap_or_default();
        let tail = self.wrap(self.head + self.len);
        // The free space is `tail..N` followed by `0..head` (or `tail..head` when not wrapped).
        let until_end = (N - tail).min(accepted);
        let (to_end, to_start) = first.split_at(until_end);
        self.storage[tail..tail + to_end.len()].copy_from_slice(to_end);
        self.storage[..to_start.len()].copy_from_slice(to_start);
        self.len += accepted;
        accepted
    }

    /// Return the buffered bytes, oldest first, as two halves: `a` then `b`.
    ///
    /// `b` is empty unless the bytes wrap around the end of the storage.
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        let first_len = (N - self.head).min(self.len);
        let a = &self.storage[self.head..self.head + first_len];
        let b = &self.storage[..self.len - first_len];
        (a, b)
    }

    /// Drop the `n` oldest bytes (all of them when `n > len()`).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.len -= n;
        self.head = if self.len == 0 {
            // Rewind so that the next writes are contiguous.
            0
        } else {
            self.wrap(self.head + n)
        };
    }

    /// Move the buffered bytes to the start of the storage, so that [`as_slices`](Self::as_slices)
    /// returns them all in `a`. Costs a rotation of the storage when they wrap, nothing otherwise.
    pub fn make_contiguous(&mut self) {
        if self.head + self.len > N {
            self.storage.rotate_left(self.head);
            self.head = 0;
        }
    }

    /// Drop every buffered byte.
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Reduce an index in `0..2N` into `0..N`.
    fn wrap(&self, i: usize) -> usize {
        if i >= N {
            i - N
        } else {
            i
        }
    }
}

impl<const N: usize> Default for RingBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> core::fmt::Debug for RingBuffer<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RingBuffer")
            .field("capacity", &N)
            .field("len", &self.len)
            .field("head", &self.head)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::vec::Vec;

    fn contents<const N: usize>(r: &RingBuffer<N>) -> Vec<u8> {
        let (a, b) = r.as_slices();
        [a, b].concat()
    }

    #[test]
    fn write_stops_at_capacity_and_reports_accepted() {
        let mut r = RingBuffer::<8>::new();
        assert_eq!(r.write(b"hello"), 5);
        assert_eq!(r.write(b"world"), 3);
        assert_eq!(r.free(), 0);
        assert_eq!(r.write(b"!"), 0);
        assert_eq!(contents(&r), b"hellowor");
    }

    #[test]
    fn wrapped_bytes_come_back_in_order_as_two_halves() {
        let mut r = RingBuffer::<8>::new();
        r.write(b"abcdef");
        r.consume(4);
        assert_eq!(r.write(b"ghijkl"), 6);
        let (a, b) = r.as_slices();
        assert_eq!(a, b"efgh");
        assert_eq!(b, b"ijkl");
        assert_eq!(r.len(), 8);
    }

    #[test]
    fn draining_rewinds_to_the_start_of_storage() {
        let mut r = RingBuffer::<8>::new();
        r.write(b"abcde");
        r.consume(5);
        assert!(r.is_empty());
        r.write(b"12345678");
        let (a, b) = r.as_slices();
        assert_eq!((a, b), (&b"12345678"[..], &b""[..]));
    }

    #[test]
    fn wrapped_bytes_made_contiguous_stay_in_order_and_keep_taking_writes() {
        let mut r = RingBuffer::<8>::new();
        r.write(b"abcdef");
        r.consume(4);
        r.write(b"ghij");
        r.make_contiguous();
        assert_eq!(r.as_slices(), (&b"efghij"[..], &b""[..]));
        assert_eq!(r.write(b"klm"), 2);
        assert_eq!(contents(&r), b"efghijkl");
    }

    #[test]
    fn consuming_more_than_buffered_empties() {
        let mut r = RingBuffer::<4>::new();
        r.write(b"ab");
        r.consume(100);
        assert!(r.is_empty());
        assert_eq!(r.free(), 4);
    }

    #[test]
    fn zero_capacity_accepts_nothing_and_never_panics() {
        let mut r = RingBuffer::<0>::new();
        assert_eq!(r.write(b"abc"), 0);
        r.consume(3);
        assert_eq!(r.as_slices(), (&b""[..], &b""[..]));
        assert_eq!(r.capacity(), 0);
    }

    #[test]
    fn clear_forgets_everything() {
        let mut r = RingBuffer::<4>::new();
        r.write(b"abcd");
        r.consume(3);
        r.write(b"ef");
        r.clear();
        assert!(r.is_empty());
        assert_eq!(r.write(b"wxyz"), 4);
        assert_eq!(contents(&r), b"wxyz");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(Vec<u8>),
        Consume(usize),
        Clear,
        MakeContiguous,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(Op::Write),
            3 => (0usize..20).prop_map(Op::Consume),
            1 => Just(Op::Clear),
            1 => Just(Op::MakeContiguous),
        ]
    }

    proptest! {
        /// The ring behaves exactly like a bounded VecDeque.
        #[test]
        fn matches_a_bounded_deque(ops in proptest::collection::vec(op(), 0..64)) {
            let mut r = RingBuffer::<13>::new();
            let mut model = VecDeque::new();
            for op in ops {
                match op {
                    Op::Write(bytes) => {
                        let n = r.write(&bytes);
                        prop_assert_eq!(n, bytes.len().min(13 - model.len()));
                        model.extend(&bytes[..n]);
                    }
                    Op::Consume(n) => {
                        r.consume(n);
                        model.drain(..n.min(model.len()));
                    }
                    Op::Clear => {
                        r.clear();
                        model.clear();
                    }
                    Op::MakeContiguous => {
                        r.make_contiguous();
                        prop_assert!(r.as_slices().1.is_empty());
                    }
                }
                prop_assert_eq!(r.len(), model.len());
                prop_assert_eq!(r.free(), 13 - model.len());
                prop_assert_eq!(contents(&r), model.iter().copied().collect::<Vec<u8>>());
            }
        }
    }
}
