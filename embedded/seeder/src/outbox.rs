//! What one peer's socket has not taken yet, in order: small messages the session transmitted
//! (copied, at most `BYTES`) and blocks it asked to serve (only their place in the file: the
//! data is read from the file straight into the socket when there is room).

use heapless::Deque;

use crate::source::{BlockSource, ReadError};

/// One pending thing to send.
#[derive(Debug, Clone, Copy)]
enum Item {
    /// The next `n` bytes of the byte queue.
    Bytes(usize),
    /// A `Piece` message: its 13-byte header, then `len` bytes of the file from `start`;
    /// `done` of the `13 + len` bytes are sent.
    Block {
        header: [u8; 13],
        start: u64,
        len: u32,
        done: u32,
    },
}

/// The outbox is full: the peer has not been reading what it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// A peer's unsent bytes: up to `BYTES` bytes of messages and `ITEMS` pending items.
pub struct Outbox<const BYTES: usize, const ITEMS: usize> {
    bytes: Deque<u8, BYTES>,
    items: Deque<Item, ITEMS>,
}

impl<const BYTES: usize, const ITEMS: usize> Default for Outbox<BYTES, ITEMS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const BYTES: usize, const ITEMS: usize> Outbox<BYTES, ITEMS> {
    /// An empty outbox.
    pub const fn new() -> Self {
        Outbox {
            bytes: Deque::new(),
            items: Deque::new(),
        }
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Forget everything (the peer is gone).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
    }

    /// Queue `b` after what is queued; nothing is queued when it does not all fit.
    pub fn push_bytes(&mut self, b: &[u8]) -> Result<(), Full> {
        if b.is_empty() {
            return Ok(());
        }
        if self.bytes.capacity() - self.bytes.len() < b.len() {
            return Err(Full);
        }
        match self.items.back_mut() {
            Some(Item::Bytes(n)) => *n += b.len(),
            _ => self
                .items
                .push_back(Item::Bytes(b.len()))
                .map_err(|_| Full)?,
        }
        for &x in b {
            // Room was checked above.
            let _ = self.bytes.push_back(x);
        }
        Ok(())
    }

    /// Queue a block: `header`, then `len` bytes of the file from `start`.
    pub fn push_block(&mut self, header: [u8; 13], start: u64, len: u32) -> Result<(), Full> {
        let block = Item::Block {
            header,
            start,
            len,
            done: 0,
        };
        self.items.push_back(block).map_err(|_| Full)
    }

    /// Move the next queued bytes into `out` (a socket's free transmit space), reading blocks
    /// from `file`; returns how many were written, each one sent from now on.
    pub fn fill<S: BlockSource>(
        &mut self,
        file: &mut S,
        out: &mut [u8],
    ) -> Result<usize, ReadError> {
        let mut at = 0;
        while at < out.len() {
            let Some(item) = self.items.front_mut() else {
                break;
            };
            match item {
                Item::Bytes(n) => {
                    let k = (*n).min(out.len() - at);
                    for slot in &mut out[at..at + k] {
                        *slot = self.bytes.pop_front().unwrap_or(0);
                    }
                    at += k;
                    *n -= k;
                    if *n == 0 {
                        self.items.pop_front();
                    }
                }
                Item::Block {
                    header,
                    start,
                    len,
                    done,
                } => {
                    if (*done as usize) < header.len() {
                        let from = *done as usize;
                        let k = (header.len() - from).min(out.len() - at);
                        out[at..at + k].copy_from_slice(&header[from..from + k]);
                        at += k;
                        *done += k as u32;
                    }
                    let sent = (*done as usize).saturating_sub(header.len()) as u32;
                    let k = ((*len - sent) as usize).min(out.len() - at);
                    if k > 0 {
                        file.read(*start + u64::from(sent), &mut out[at..at + k])?;
                        at += k;
                        *done += k as u32;
                    }
                    if *done as usize == header.len() + *len as usize {
                        self.items.pop_front();
                    }
                }
            }
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// Drain through a socket that takes `chunk` bytes at a time.
    fn drain<const B: usize, const I: usize>(
        o: &mut Outbox<B, I>,
        file: &[u8],
        chunk: usize,
    ) -> Vec<u8> {
        let mut file = file;
        let mut sent = Vec::new();
        let mut buf = [0u8; 64];
        while !o.is_empty() {
            let n = o.fill(&mut file, &mut buf[..chunk]).unwrap();
            assert!(n > 0);
            sent.extend_from_slice(&buf[..n]);
        }
        sent
    }

    #[test]
    fn messages_and_blocks_leave_in_order_whatever_the_socket_takes_at_once() {
        let file: Vec<u8> = (0..=255u8).collect();
        for chunk in 1..40 {
            let mut o = Outbox::<32, 4>::new();
            o.push_bytes(b"hello").unwrap();
            o.push_bytes(b"!").unwrap();
            o.push_block([9; 13], 100, 20).unwrap();
            o.push_bytes(b"bye").unwrap();
            let sent = drain(&mut o, &file, chunk);
            let mut want = b"hello!".to_vec();
            want.extend_from_slice(&[9; 13]);
            want.extend_from_slice(&file[100..120]);
            want.extend_from_slice(b"bye");
            assert_eq!(sent, want, "socket taking {chunk} bytes at a time");
        }
    }

    #[test]
    fn a_full_outbox_refuses_and_keeps_what_it_had() {
        let mut o = Outbox::<4, 2>::new();
        o.push_bytes(b"abc").unwrap();
        assert_eq!(o.push_bytes(b"de"), Err(Full));
        o.push_block([0; 13], 0, 1).unwrap();
        assert_eq!(o.push_block([0; 13], 0, 1), Err(Full));
        let sent = drain(&mut o, &[7], 64);
        assert_eq!(&sent[..3], b"abc");
        assert_eq!(sent.len(), 3 + 13 + 1);
    }

    #[test]
    fn a_block_past_the_end_of_the_file_is_a_read_error() {
        let mut o = Outbox::<4, 2>::new();
        o.push_block([0; 13], 10, 10).unwrap();
        let mut file: &[u8] = &[0; 12];
        let mut buf = [0u8; 64];
        assert_eq!(o.fill(&mut file, &mut buf), Err(ReadError));
    }
}
