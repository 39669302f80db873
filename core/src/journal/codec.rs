//! The journal's byte layout, into caller-owned buffers and out of borrowed bytes.
//!
//! ```text
//! file   = MAGIC [u8; 16], boot id [u8; 36], journal id u64, record*
//! record = payload length u32, CRC-32C of payload u32, payload
//! payload = seq u64, entry*
//! entry  = 1 piece u32 start u32 end u32      (write)
//!        | 2 piece u32                        (verified)
//!        | 3 piece u32                        (discard)
//!        | 4 file u32 length u64 mtime_ns i128 (stamp)
//! ```
//! Integers are little-endian. A record is taken whole or not at all: a torn length, a bad CRC,
//! an unknown tag, a short entry or a sequence number not above the previous one ends the
//! records. Decoding never allocates and never panics.

use crc::{Crc, CRC_32_ISCSI};

use super::{BootId, Entry, Stamp, BOOT_ID_LEN, MAGIC, MAX_RECORD};
use crate::BufferTooSmall;

static CRC: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

const WRITE: u8 = 1;
const VERIFIED: u8 = 2;
const DISCARD: u8 = 3;
const STAMP: u8 = 4;

/// A journal file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The boot that wrote the journal.
    pub boot: BootId,
    /// The journal's random id, named by the resume state that continues it.
    pub id: u64,
}

impl Header {
    /// Encoded length.
    pub const LEN: usize = MAGIC.len() + BOOT_ID_LEN + 8;
}

/// Write `header` at the start of `out`; returns the bytes written.
pub fn encode_header(header: &Header, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let out = out.get_mut(..Header::LEN).ok_or(BufferTooSmall {
        required: Header::LEN,
    })?;
    let (magic, rest) = out.split_at_mut(MAGIC.len());
    let (boot, id) = rest.split_at_mut(BOOT_ID_LEN);
    magic.copy_from_slice(MAGIC);
    boot.copy_from_slice(&header.boot);
    id.copy_from_slice(&header.id.to_le_bytes());
    Ok(Header::LEN)
}

fn entry_len(entry: &Entry) -> usize {
    1 + match entry {
        Entry::Write { .. } => 12,
        Entry::Verified(_) | Entry::Discard(_) => 4,
        Entry::Stamp(..) => 4 + 8 + 16,
    }
}

/// Bytes that [`encode_record`] needs for these entries.
pub fn record_len(entries: &[Entry]) -> usize {
    8 + 8 + entries.iter().map(entry_len).sum::<usize>()
}

/// Write one record of `entries` with sequence number `seq` into `out`; returns its length.
/// A record whose payload would pass [`MAX_RECORD`] is refused the same way as a short buffer,
/// with `required` the length it would have had.
pub fn encode_record(seq: u64, entries: &[Entry], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
    let len = record_len(entries);
    if len - 8 > MAX_RECORD {
        return Err(BufferTooSmall { required: len });
    }
    let out = out.get_mut(..len).ok_or(BufferTooSmall { required: len })?;
    let (frame, payload) = out.split_at_mut(8);
    let mut w = Writer {
        buf: payload,
        at: 0,
    };
    w.put(&seq.to_le_bytes());
    for entry in entries {
        match *entry {
            Entry::Write { piece, start, end } => {
                w.put(&[WRITE]);
                for v in [piece, start, end] {
                    w.put(&v.to_le_bytes());
                }
            }
            Entry::Verified(piece) => {
                w.put(&[VERIFIED]);
                w.put(&piece.to_le_bytes());
            }
            Entry::Discard(piece) => {
                w.put(&[DISCARD]);
                w.put(&piece.to_le_bytes());
            }
            Entry::Stamp(file, stamp) => {
                w.put(&[STAMP]);
                w.put(&file.to_le_bytes());
                w.put(&stamp.length.to_le_bytes());
                w.put(&stamp.mtime_ns.to_le_bytes());
            }
        }
    }
    let payload_len = (len - 8) as u32;
    frame[..4].copy_from_slice(&payload_len.to_le_bytes());
    frame[4..].copy_from_slice(&CRC.checksum(payload).to_le_bytes());
    Ok(len)
}

/// Appends into a slice sized exactly by [`record_len`].
struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}

/// Read a journal: its header and its whole records; `None` when the header is missing or
/// damaged.
pub fn read(bytes: &[u8]) -> Option<(Header, Records<'_>)> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (boot, rest) = rest.split_first_chunk::<BOOT_ID_LEN>()?;
    let (id, rest) = rest.split_first_chunk::<8>()?;
    let header = Header {
        boot: *boot,
        id: u64::from_le_bytes(*id),
    };
    Some((
        header,
        Records {
            rest,
            last_seq: None,
        },
    ))
}

/// The whole records of a journal, in order; ends at the first torn or damaged one.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
    last_seq: Option<u64>,
}

impl<'a> Records<'a> {
    /// The bytes not yet read: after the iterator ends, the torn or damaged tail (empty when the
    /// journal ended cleanly).
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let (record, more) = decode_record(self.rest)?;
        if self.last_seq.is_some_and(|last| record.seq <= last) {
            return None;
        }
        self.last_seq = Some(record.seq);
        self.rest = more;
        Some(record)
    }
}

/// One whole, checked record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// Its entries, already checked to decode.
    body: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record's entries, in order.
    pub fn entries(&self) -> Entries<'a> {
        Entries { rest: self.body }
    }
}

/// The entries of one record.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    rest: &'a [u8],
}

impl Iterator for Entries<'_> {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        let (entry, rest) = decode_entry(self.rest)?;
        self.rest = rest;
        Some(entry)
    }
}

fn decode_record(bytes: &[u8]) -> Option<(Record<'_>, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let (crc, rest) = rest.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > MAX_RECORD || rest.len() < len {
        return None;
    }
    let (payload, more) = rest.split_at(len);
    if CRC.checksum(payload) != u32::from_le_bytes(*crc) {
        return None;
    }
    let (seq, body) = payload.split_first_chunk::<8>()?;
    // A record is whole only if every entry in it decodes.
    let mut p = body;
    while !p.is_empty() {
        p = decode_entry(p)?.1;
    }
    let record = Record {
        seq: u64::from_le_bytes(*seq),
        body,
    };
    Some((record, more))
}

fn decode_entry(bytes: &[u8]) -> Option<(Entry, &[u8])> {
    let (&tag, b) = bytes.split_first()?;
    Some(match tag {
        WRITE => {
            let (piece, b) = take_u32(b)?;
            let (start, b) = take_u32(b)?;
            let (end, b) = take_u32(b)?;
            (Entry::Write { piece, start, end }, b)
        }
        VERIFIED => {
            let (piece, b) = take_u32(b)?;
            (Entry::Verified(piece), b)
        }
        DISCARD => {
            let (piece, b) = take_u32(b)?;
            (Entry::Discard(piece), b)
        }
        STAMP => {
            let (file, b) = take_u32(b)?;
            let (length, b) = b.split_first_chunk::<8>()?;
            let (mtime, b) = b.split_first_chunk::<16>()?;
            let stamp = Stamp {
                length: u64::from_le_bytes(*length),
                mtime_ns: i128::from_le_bytes(*mtime),
            };
            (Entry::Stamp(file, stamp), b)
        }
        _ => return None,
    })
}

fn take_u32(b: &[u8]) -> Option<(u32, &[u8])> {
    let (n, rest) = b.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*n), rest))
}
