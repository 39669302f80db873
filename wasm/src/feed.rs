//! A peer's socket as the session wants it: a byte stream, whatever the message boundaries.
//!
//! A WebSocket delivers the bridge's TCP reads as messages of any size; they are queued in an
//! [`Inbox`] and offered to the session by [`feed`], draining the session's output between
//! offers (the shell contract), until the session takes no more. A socket that ended has every
//! byte read before the end offered first, and only then is the peer closed.

use crate::prelude::*;
use enjambre_core::session::PeerHandle;

/// What `feed` needs from the session's owner.
pub trait Sink {
    /// Offer bytes of `peer`'s stream; returns how many were taken.
    fn offer(&mut self, peer: PeerHandle, bytes: &[u8]) -> usize;
    /// Drain the session's output until it returns `Timeout`.
    fn drain(&mut self);
    /// The socket of `peer` ended and every byte it read was taken.
    fn closed(&mut self, peer: PeerHandle);
}

/// Bytes read from one peer's socket not yet taken by the session, and whether it ended.
#[derive(Debug, Default, Clone)]
pub struct Inbox {
    bytes: Vec<u8>,
    start: usize,
    ended: bool,
}

/// Where a peer's stream stands after [`feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// Every byte was taken; the socket is still open.
    Empty,
    /// Bytes remain that the session cannot take yet: offer them again later.
    Waiting,
    /// The socket ended, every byte was taken, and the session was told.
    Closed,
}

impl Inbox {
    /// Queue one message's bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
        }
        self.bytes.extend_from_slice(bytes);
    }

    /// The socket ended: nothing follows what was pushed.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// Whether no byte waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn take(&mut self, n: usize) {
        self.start += n;
        if self.start > 64 * 1024 && self.start * 2 > self.bytes.len() {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
    }
}

/// Offer `peer`'s queued bytes to the session, draining between offers, until it takes no
/// more; then, if the socket ended and nothing is left, close the peer.
pub fn feed(sink: &mut impl Sink, peer: PeerHandle, inbox: &mut Inbox) -> Fed {
    while !inbox.is_empty() {
        let taken = sink.offer(peer, &inbox.bytes[inbox.start..]);
        inbox.take(taken);
        sink.drain();
        if taken == 0 {
            return Fed::Waiting;
        }
    }
    if inbox.ended {
        sink.closed(peer);
        return Fed::Closed;
    }
    Fed::Empty
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: PeerHandle = PeerHandle {
        slot: 0,
        generation: 1,
    };

    /// A session stand-in with a receive ring of `room` bytes that `drain` empties.
    #[derive(Default)]
    struct Ring {
        room: usize,
        ring: usize,
        got: Vec<u8>,
        drains: usize,
        closed_after: Option<usize>,
    }

    impl Sink for Ring {
        fn offer(&mut self, _: PeerHandle, bytes: &[u8]) -> usize {
            let n = bytes.len().min(self.room - self.ring);
            self.ring += n;
            self.got.extend_from_slice(&bytes[..n]);
            n
        }
        fn drain(&mut self) {
            self.drains += 1;
            self.ring = 0;
        }
        fn closed(&mut self, _: PeerHandle) {
            self.closed_after = Some(self.got.len());
        }
    }

    #[test]
    fn messages_larger_than_the_ring_go_in_offers_with_drains_between() {
        let mut sink = Ring {
            room: 1000,
            ..Ring::default()
        };
        let mut inbox = Inbox::default();
        let stream: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        inbox.push(&stream);
        assert_eq!(feed(&mut sink, PEER, &mut inbox), Fed::Empty);
        assert_eq!(sink.got, stream);
        assert_eq!(sink.drains, 5);
    }

    #[test]
    fn the_bytes_read_before_the_end_are_all_taken_before_the_close() {
        let mut sink = Ring {
            room: 7,
            ..Ring::default()
        };
        let mut inbox = Inbox::default();
        inbox.push(b"last words of a peer");
        inbox.end();
        assert_eq!(feed(&mut sink, PEER, &mut inbox), Fed::Closed);
        assert_eq!(sink.closed_after, Some(20));
    }

    #[test]
    fn a_session_that_takes_nothing_leaves_the_bytes_waiting() {
        let mut sink = Ring {
            room: 0,
            ..Ring::default()
        };
        let mut inbox = Inbox::default();
        inbox.push(b"abc");
        inbox.end();
        assert_eq!(feed(&mut sink, PEER, &mut inbox), Fed::Waiting);
        assert_eq!((inbox.len(), sink.closed_after), (3, None));
    }
}
