//! The relay's writer toward the page: the peer's bytes as binary WebSocket frames, written
//! straight to the socket. The peer is read into a buffer with room for the frame header in
//! front, so a frame leaves in one write, copied by no one but the kernel, and nothing moves
//! after a partial write. Between frames it sends what tungstenite queued (see [`super::client`]).
//! Progress is kept in the value, so a writer dropped mid-frame leaves its unsent bytes to whoever
//! sends next.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Room for the longest server frame header: two bytes and a 64-bit length.
const HEAD: usize = 10;

/// One frame being written, then the queued control bytes.
pub(super) struct Frames {
    buf: Box<[u8]>,
    /// The unsent part of the frame in `buf`.
    start: usize,
    end: usize,
    control: Vec<u8>,
    control_sent: usize,
}

impl Frames {
    /// A writer of frames of at most `chunk` payload bytes.
    pub fn new(chunk: usize) -> Frames {
        Frames {
            buf: vec![0; HEAD + chunk].into_boxed_slice(),
            start: 0,
            end: 0,
            control: Vec::new(),
            control_sent: 0,
        }
    }

    /// Read the peer once into the next frame (after [`Frames::send`] has emptied this one):
    /// the payload length, 0 when the peer has closed. Cancel-safe.
    pub async fn fill(&mut self, peer: &mut OwnedReadHalf) -> io::Result<usize> {
        debug_assert!(self.start == self.end);
        let n = peer.read(&mut self.buf[HEAD..]).await?;
        if n > 0 {
            let (head, len) = header(n);
            self.start = HEAD - len;
            self.buf[self.start..HEAD].copy_from_slice(&head[..len]);
            self.end = HEAD + n;
        }
        Ok(n)
    }

    /// Queue control bytes (whole frames) to go after the current frame.
    pub fn add_control(&mut self, bytes: Vec<u8>) {
        if self.control_sent == self.control.len() {
            self.control = bytes;
            self.control_sent = 0;
        } else {
            self.control.extend(bytes);
        }
    }

    /// Write the current frame, then the control bytes. Cancel-safe: what was written stays
    /// written.
    pub async fn send(&mut self, wr: &mut OwnedWriteHalf) -> io::Result<()> {
        while self.start < self.end {
            let n = wr.write(&self.buf[self.start..self.end]).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.start += n;
        }
        while self.control_sent < self.control.len() {
            let n = wr.write(&self.control[self.control_sent..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.control_sent += n;
        }
        Ok(())
    }

    /// Every byte not yet written, in order: the rest of the frame, then the control bytes.
    pub fn unsent(&self) -> Vec<u8> {
        let mut out = self.buf[self.start..self.end].to_vec();
        out.extend_from_slice(&self.control[self.control_sent..]);
        out
    }
}

/// The header of a final, unmasked binary frame of `len` payload bytes (RFC 6455 §5.2), and its
/// length.
fn header(len: usize) -> ([u8; HEAD], usize) {
    let mut h = [0u8; HEAD];
    h[0] = 0x82;
    match len {
        0..=125 => {
            h[1] = len as u8;
            (h, 2)
        }
        126..=0xFFFF => {
            h[1] = 126;
            h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            (h, 4)
        }
        _ => {
            h[1] = 127;
            h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            (h, 10)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_of_each_length_form() {
        let head = |n| {
            let (h, len) = header(n);
            h[..len].to_vec()
        };
        assert_eq!(head(5), [0x82, 5]);
        assert_eq!(head(125), [0x82, 125]);
        assert_eq!(head(126), [0x82, 126, 0, 126]);
        assert_eq!(head(65535), [0x82, 126, 0xFF, 0xFF]);
        assert_eq!(head(65536), [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }
}
