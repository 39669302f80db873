//! Length-prefixed peer messages: BEP 3, BEP 5's Port, BEP 6 fast extension, BEP 10 Extended.

use super::{Split, Status, WireError};
use crate::BufferTooSmall;

const CHOKE: u8 = 0;
const UNCHOKE: u8 = 1;
const INTERESTED: u8 = 2;
const NOT_INTERESTED: u8 = 3;
const HAVE: u8 = 4;
pub(crate) const BITFIELD: u8 = 5;
const REQUEST: u8 = 6;
const PIECE: u8 = 7;
const CANCEL: u8 = 8;
const PORT: u8 = 9;
const SUGGEST: u8 = 0x0D;
const HAVE_ALL: u8 = 0x0E;
const HAVE_NONE: u8 = 0x0F;
const REJECT: u8 = 0x10;
const ALLOWED_FAST: u8 = 0x11;
const EXTENDED: u8 = 20;

/// Bytes before a Piece message's data: length prefix, id, index, begin.
const PIECE_HEADER_LEN: usize = 13;

/// One peer wire message. Payloads borrow the receive buffer; nothing is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Message<'a> {
    /// Zero-length message that keeps an idle connection open.
    KeepAlive,
    /// The sender will not serve requests (id 0).
    Choke,
    /// The sender will serve requests (id 1).
    Unchoke,
    /// The sender wants pieces the receiver has (id 2).
    Interested,
    /// The sender wants nothing from the receiver (id 3).
    NotInterested,
    /// The sender now has this piece (id 4).
    Have(u32),
    /// The pieces the sender has, most significant bit of the first byte = piece 0 (id 5).
    Bitfield(Split<'a>),
    /// Ask for `length` bytes at `begin` within piece `index` (id 6).
    Request {
        /// Piece index.
        index: u32,
        /// Byte offset within the piece.
        begin: u32,
        /// Number of bytes.
        length: u32,
    },
    /// Data of piece `index` starting at `begin` (id 7).
    Piece {
        /// Piece index.
        index: u32,
        /// Byte offset within the piece.
        begin: u32,
        /// The block's bytes.
        data: Split<'a>,
    },
    /// Withdraw an earlier request (id 8).
    Cancel {
        /// Piece index.
        index: u32,
        /// Byte offset within the piece.
        begin: u32,
        /// Number of bytes.
        length: u32,
    },
    /// The sender's DHT port (BEP 5, id 9).
    Port(u16),
    /// BEP 6: the receiver might like to download this piece (id 0x0D).
    Suggest(u32),
    /// BEP 6: the sender has every piece (id 0x0E).
    HaveAll,
    /// BEP 6: the sender has no piece (id 0x0F).
    HaveNone,
    /// BEP 6: the sender will not serve this request (id 0x10).
    Reject {
        /// Piece index.
        index: u32,
        /// Byte offset within the piece.
        begin: u32,
        /// Number of bytes.
        length: u32,
    },
    /// BEP 6: the receiver may request this piece even while choked (id 0x11).
    AllowedFast(u32),
    /// BEP 10: an extension message; `id` 0 is the extended handshake (id 20).
    Extended {
        /// The extended message id (0 = handshake, others as the receiver's `m` assigned).
        id: u8,
        /// The extension's payload.
        payload: Split<'a>,
    },
}

/// How long the body (id byte included) of each message id may be.
enum Body {
    Exactly(u32),
    AtLeast(u32),
}

fn body_shape(id: u8) -> Option<Body> {
    Some(match id {
        CHOKE | UNCHOKE | INTERESTED | NOT_INTERESTED | HAVE_ALL | HAVE_NONE => Body::Exactly(1),
        HAVE | SUGGEST | ALLOWED_FAST => Body::Exactly(5),
        REQUEST | CANCEL | REJECT => Body::Exactly(13),
        PORT => Body::Exactly(3),
        BITFIELD => Body::AtLeast(1),
        PIECE => Body::AtLeast(9),
        EXTENDED => Body::AtLeast(2),
        _ => return None,
    })
}

impl<'a> Message<'a> {
    /// Decode one message from the start of `a` followed by `b` (a ring buffer's halves).
    ///
    /// Returns the message and the number of bytes it took, or [`Status::Partial`] while the
    /// message is incomplete. Never waits for a body that cannot be valid: a length prefix
    /// above `max_len` is [`WireError::MessageTooLong`] as soon as the prefix is readable, and an
    /// unknown id or a length that does not fit the id is an error as soon as the id is.
    pub fn decode(
        a: &'a [u8],
        b: &'a [u8],
        max_len: u32,
    ) -> Result<Status<(Message<'a>, usize)>, WireError> {
        let bytes = Split::new(a, b);
        let Some(len) = bytes.u32_at(0) else {
            return Ok(Status::Partial);
        };
        let too_long = WireError::MessageTooLong { len, max: max_len };
        if len > max_len {
            return Err(too_long);
        }
        if len == 0 {
            return Ok(Status::Complete((Message::KeepAlive, 4)));
        }
        let Some(id) = bytes.get(4) else {
            return Ok(Status::Partial);
        };
        let fits = match body_shape(id) {
            None => return Err(WireError::UnknownMessage { id }),
            Some(Body::Exactly(n)) => len == n,
            Some(Body::AtLeast(n)) => len >= n,
        };
        if !fits {
            return Err(WireError::BadLength { id, len });
        }
        // Only reachable where usize is narrower than a u32 prefix: treat as too long.
        let body_len = usize::try_from(len).map_err(|_| too_long)?;
        let consumed = body_len.checked_add(4).ok_or(too_long)?;
        let Some(body) = bytes.slice(5, body_len - 1) else {
            return Ok(Status::Partial);
        };
        let message = parse_body(id, body).ok_or(WireError::BadLength { id, len })?;
        Ok(Status::Complete((message, consumed)))
    }

    /// Return the message id, or `None` for a keep-alive (which has none).
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => CHOKE,
            Message::Unchoke => UNCHOKE,
            Message::Interested => INTERESTED,
            Message::NotInterested => NOT_INTERESTED,
            Message::Have(_) => HAVE,
            Message::Bitfield(_) => BITFIELD,
            Message::Request { .. } => REQUEST,
            Message::Piece { .. } => PIECE,
            Message::Cancel { .. } => CANCEL,
            Message::Port(_) => PORT,
            Message::Suggest(_) => SUGGEST,
            Message::HaveAll => HAVE_ALL,
            Message::HaveNone => HAVE_NONE,
            Message::Reject { .. } => REJECT,
            Message::AllowedFast(_) => ALLOWED_FAST,
            Message::Extended { .. } => EXTENDED,
        })
    }

    /// Return how many bytes [`encode`](Self::encode) writes, length prefix included.
    pub fn encoded_len(&self) -> usize {
        let (head, payload) = self.head();
        head.len + payload.len()
    }

    /// Write the message, length prefix included, and return the number of bytes written.
    ///
    /// Fails without writing when `out` is shorter than [`encoded_len`](Self::encoded_len), and
    /// also when a payload is too large to frame (over 4 GiB), which no real buffer can hold.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let (mut head, payload) = self.head();
        let total = head.len + payload.len();
        let too_small = BufferTooSmall { required: total };
        let prefix = u32::try_from(total - 4).map_err(|_| too_small)?;
        let out = out.get_mut(..total).ok_or(too_small)?;
        head.bytes[..4].copy_from_slice(&prefix.to_be_bytes());
        let (out_head, out_payload) = out.split_at_mut(head.len);
        out_head.copy_from_slice(&head.bytes[..head.len]);
        payload.copy_to(out_payload);
        Ok(total)
    }

    /// Return the fixed-size part (length prefix left zero) and the variable payload.
    fn head(&self) -> (Head, Split<'a>) {
        let mut head = Head {
            bytes: [0; 17],
            len: 4,
        };
        let mut payload = Split::default();
        if let Some(id) = self.id() {
            head.push(&[id]);
        }
        match *self {
            Message::Have(i) | Message::Suggest(i) | Message::AllowedFast(i) => {
                head.push(&i.to_be_bytes());
            }
            Message::Request {
                index,
                begin,
                length,
            }
            | Message::Cancel {
                index,
                begin,
                length,
            }
            | Message::Reject {
                index,
                begin,
                length,
            } => {
                head.push(&index.to_be_bytes());
                head.push(&begin.to_be_bytes());
                head.push(&length.to_be_bytes());
            }
            Message::Piece { index, begin, data } => {
                head.push(&index.to_be_bytes());
                head.push(&begin.to_be_bytes());
                payload = data;
            }
            Message::Port(port) => head.push(&port.to_be_bytes()),
            Message::Bitfield(bits) => payload = bits,
            Message::Extended { id, payload: p } => {
                head.push(&[id]);
                payload = p;
            }
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => {}
        }
        (head, payload)
    }
}

/// Build the message from a body whose length already fits `id`; `None` cannot happen then.
fn parse_body(id: u8, body: Split<'_>) -> Option<Message<'_>> {
    let u32_at = |i| body.u32_at(i);
    Some(match id {
        CHOKE => Message::Choke,
        UNCHOKE => Message::Unchoke,
        INTERESTED => Message::Interested,
        NOT_INTERESTED => Message::NotInterested,
        HAVE_ALL => Message::HaveAll,
        HAVE_NONE => Message::HaveNone,
        HAVE => Message::Have(u32_at(0)?),
        SUGGEST => Message::Suggest(u32_at(0)?),
        ALLOWED_FAST => Message::AllowedFast(u32_at(0)?),
        REQUEST | CANCEL | REJECT => {
            let (index, begin, length) = (u32_at(0)?, u32_at(4)?, u32_at(8)?);
            match id {
                REQUEST => Message::Request {
                    index,
                    begin,
                    length,
                },
                CANCEL => Message::Cancel {
                    index,
                    begin,
                    length,
                },
                _ => Message::Reject {
                    index,
                    begin,
                    length,
                },
            }
        }
        PORT => Message::Port(u16::from_be_bytes([body.get(0)?, body.get(1)?])),
        BITFIELD => Message::Bitfield(body),
        PIECE => Message::Piece {
            index: u32_at(0)?,
            begin: u32_at(4)?,
            data: body.slice(8, body.len().checked_sub(8)?)?,
        },
        EXTENDED => Message::Extended {
            id: body.get(0)?,
            payload: body.slice(1, body.len().checked_sub(1)?)?,
        },
        _ => return None,
    })
}

/// The fixed-size start of an encoded message: at most prefix + id + 3 integers.
struct Head {
    bytes: [u8; 17],
    len: usize,
}

impl Head {
    fn push(&mut self, field: &[u8]) {
        if let Some(slot) = self.bytes.get_mut(self.len..self.len + field.len()) {
            slot.copy_from_slice(field);
            self.len += field.len();
        }
    }
}

/// Return the 13 bytes that precede a block's data in a Piece message: length prefix
/// (`9 + data_len`), id 7, `index`, `begin`.
///
/// For serving uploads without copying the block: write this, then the data straight from
/// storage. `data_len` above `u32::MAX - 9` cannot be framed and saturates the prefix.
pub fn piece_header(index: u32, begin: u32, data_len: u32) -> [u8; 13] {
    let mut out = [0u8; PIECE_HEADER_LEN];
    let (prefix, rest) = out.split_at_mut(4);
    let (id, rest) = rest.split_at_mut(1);
    let (index_bytes, begin_bytes) = rest.split_at_mut(4);
    prefix.copy_from_slice(&data_len.saturating_add(9).to_be_bytes());
    id.copy_from_slice(&[PIECE]);
    index_bytes.copy_from_slice(&index.to_be_bytes());
    begin_bytes.copy_from_slice(&begin.to_be_bytes());
    out
}
