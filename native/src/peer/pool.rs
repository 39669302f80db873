//! Reusable byte buffers, so the steady state of a transfer allocates nothing.

use std::sync::Mutex;

/// A stack of equally sized buffers; at most `keep` are kept when returned.
#[derive(Debug)]
pub struct BufPool {
    size: usize,
    keep: usize,
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufPool {
    /// A pool of `size`-byte buffers keeping at most `keep` spare ones.
    pub fn new(size: usize, keep: usize) -> Self {
        BufPool {
            size,
            keep,
            free: Mutex::new(Vec::with_capacity(keep)),
        }
    }

    /// Take a buffer of exactly `size` bytes (contents unspecified).
    pub fn get(&self) -> Vec<u8> {
        let spare = self.free.lock().expect("pool poisoned").pop();
        spare.unwrap_or_else(|| vec![0; self.size])
    }

    /// Give a buffer back; one of the wrong size is dropped.
    pub fn put(&self, mut buf: Vec<u8>) {
        if buf.capacity() < self.size {
            return;
        }
        buf.resize(self.size, 0);
        let mut free = self.free.lock().expect("pool poisoned");
        if free.len() < self.keep {
            free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BufPool;

    #[test]
    fn buffers_are_reused_up_to_the_limit() {
        let pool = BufPool::new(8, 1);
        let a = pool.get();
        let ptr = a.as_ptr();
        pool.put(a);
        pool.put(vec![0; 8]);
        let again = pool.get();
        assert_eq!(again.as_ptr(), ptr);
        assert_eq!(again.len(), 8);
        pool.put(vec![1; 2]);
        assert_eq!(pool.get().len(), 8);
    }
}
