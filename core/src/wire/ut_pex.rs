//! BEP 11 `ut_pex` messages: the peers a peer has connected to and dropped since its last one.
//!
//! A message is the payload of an extended message (BEP 10) sent with the id the receiver chose
//! for `ut_pex` in its extended handshake: a bencoded dictionary of compact peer lists, `added`
//! (6 bytes per IPv4 peer, as BEP 23) with `added.f` (one flag byte per added peer),
//! `dropped`, and their IPv6 twins `added6` (18 bytes per peer), `added6.f` and `dropped6`.
//!
//! [`PexMessage::decode`] borrows the payload and never panics. A missing key is an empty
//! list; a key that is not a byte string, or an address list that is not a whole number of
//! entries, makes the whole message an error (nothing of it is used). Flags are lenient: a
//! flag string shorter than its list reads as 0 for the peers it misses, and extra flag bytes
//! are ignored. [`PexUpdate::encode`] writes a whole wire message into a caller-owned slice.
//! What a message is worth (how many of its peers to try, how often a peer may send one) is
//! the session's business.

use core::fmt;
use core::net::{IpAddr, SocketAddr};

use crate::bencode::{self, BencodeError, DecodeOptions, Dict, Encoder};
use crate::decimal::{decimal, MAX_DIGITS};
use crate::tracker::{compact_peers, COMPACT_V4_LEN, COMPACT_V6_LEN};
use crate::BufferTooSmall;

/// Bytes before the dictionary in a whole message: length prefix, id 20, extended id.
const HEAD_LEN: usize = 6;

/// The flag byte BEP 11 sends with each added peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// The peer prefers encrypted connections.
    pub const ENCRYPTION: PexFlags = PexFlags(0x01);
    /// The peer is a seed (or upload only).
    pub const SEED: PexFlags = PexFlags(0x02);
    /// The peer speaks uTP.
    pub const UTP: PexFlags = PexFlags(0x04);
    /// The peer speaks the `ut_holepunch` extension.
    pub const HOLEPUNCH: PexFlags = PexFlags(0x08);
    /// The sender connected to the peer: it accepts incoming connections.
    pub const REACHABLE: PexFlags = PexFlags(0x10);

    /// Return whether every bit of `other` is set.
    pub fn contains(self, other: PexFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// A dictionary key of a `ut_pex` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PexField {
    /// `added`.
    Added,
    /// `added.f`.
    AddedFlags,
    /// `dropped`.
    Dropped,
    /// `added6`.
    Added6,
    /// `added6.f`.
    Added6Flags,
    /// `dropped6`.
    Dropped6,
}

impl PexField {
    /// Return the key as it is on the wire.
    pub fn key(self) -> &'static str {
        match self {
            PexField::Added => "added",
            PexField::AddedFlags => "added.f",
            PexField::Dropped => "dropped",
            PexField::Added6 => "added6",
            PexField::Added6Flags => "added6.f",
            PexField::Dropped6 => "dropped6",
        }
    }
}

/// Why a payload is not a `ut_pex` message we can use. Each means a broken peer; none is
/// worth closing the connection for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PexError {
    /// The payload is not one valid bencoded value.
    Bencode(BencodeError),
    /// The payload is bencode but not a dictionary.
    NotADict,
    /// A key is not a byte string, or an address list is not a whole number of entries.
    BadField(PexField),
}

impl fmt::Display for PexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PexError::Bencode(e) => write!(f, "ut_pex: {e}"),
            PexError::NotADict => f.write_str("ut_pex: not a dictionary"),
            PexError::BadField(key) => write!(f, "ut_pex: malformed `{}`", key.key()),
        }
    }
}

impl core::error::Error for PexError {}

impl From<BencodeError> for PexError {
    fn from(e: BencodeError) -> Self {
        PexError::Bencode(e)
    }
}

/// One `ut_pex` message, borrowing the payload it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PexMessage<'a> {
    added: &'a [u8],
    added_flags: &'a [u8],
    dropped: &'a [u8],
    added6: &'a [u8],
    added6_flags: &'a [u8],
    dropped6: &'a [u8],
}

impl<'a> PexMessage<'a> {
    /// Read a message from an extended message's payload (the bytes after its extended id).
    ///
    /// Keys may come in any order and unknown keys are ignored.
    pub fn decode(payload: &'a [u8]) -> Result<Self, PexError> {
        let value = bencode::decode_with(payload, DecodeOptions::LENIENT)?;
        let dict = value.as_dict().ok_or(PexError::NotADict)?;
        Ok(PexMessage {
            added: list(dict, PexField::Added, COMPACT_V4_LEN)?,
            added_flags: list(dict, PexField::AddedFlags, 1)?,
            dropped: list(dict, PexField::Dropped, COMPACT_V4_LEN)?,
            added6: list(dict, PexField::Added6, COMPACT_V6_LEN)?,
            added6_flags: list(dict, PexField::Added6Flags, 1)?,
            dropped6: list(dict, PexField::Dropped6, COMPACT_V6_LEN)?,
        })
    }

    /// Iterate the added peers with their flags: IPv4 (`added`), then IPv6 (`added6`). An
    /// IPv4-mapped address in `added6` comes out as IPv4.
    pub fn added(&self) -> impl Iterator<Item = (SocketAddr, PexFlags)> + Clone + 'a {
        let flags = |f: &'a [u8]| {
            (f.iter().map(|&b| PexFlags(b))).chain(core::iter::repeat(PexFlags::default()))
        };
        let v4 = compact_peers(self.added, false).zip(flags(self.added_flags));
        let v6 = compact_peers(self.added6, true).zip(flags(self.added6_flags));
        v4.chain(v6).map(|(a, f)| (canonical(a), f))
    }

    /// Iterate the dropped peers: IPv4 (`dropped`), then IPv6 (`dropped6`). An IPv4-mapped
    /// address in `dropped6` comes out as IPv4.
    pub fn dropped(&self) -> impl Iterator<Item = SocketAddr> + Clone + 'a {
        let v4 = compact_peers(self.dropped, false);
        v4.chain(compact_peers(self.dropped6, true)).map(canonical)
    }

    /// Return how many peers are added.
    pub fn added_len(&self) -> usize {
        self.added.len() / COMPACT_V4_LEN + self.added6.len() / COMPACT_V6_LEN
    }

    /// Return how many peers are dropped.
    pub fn dropped_len(&self) -> usize {
        self.dropped.len() / COMPACT_V4_LEN + self.dropped6.len() / COMPACT_V6_LEN
    }
}

/// Return `dict[field]` when it is absent (empty) or a byte string of whole `stride`s.
fn list<'a>(dict: Dict<'a>, field: PexField, stride: usize) -> Result<&'a [u8], PexError> {
    let Some(value) = dict.get(field.key().as_bytes()) else {
        return Ok(&[]);
    };
    (value.as_bytes())
        .filter(|b| b.len() % stride == 0)
        .ok_or(PexError::BadField(field))
}

/// The peers to tell a peer about: what [`PexUpdate::encode`] writes as a `ut_pex` message.
///
/// Both are iterated more than once (once per address family, and to count), so they must be
/// cheap to clone: `slice.iter().copied()`, or a filter over one. IPv4-mapped IPv6 addresses go
/// out as IPv4; an IPv6 address's flow info and scope are not sent.
#[derive(Debug, Clone)]
pub struct PexUpdate<A, D> {
    /// Peers connected since the last message, with their flags.
    pub added: A,
    /// Peers gone since the last message.
    pub dropped: D,
}

impl<A, D> PexUpdate<A, D>
where
    A: Iterator<Item = (SocketAddr, PexFlags)> + Clone,
    D: Iterator<Item = SocketAddr> + Clone,
{
    /// Return how many bytes [`encode`](Self::encode) writes, length prefix included.
    pub fn encoded_len(&self) -> usize {
        let (a4, a6) = count(self.added.clone().map(|(a, _)| a));
        let (d4, d6) = count(self.dropped.clone());
        let string =
            |len: usize, key: &str| key.len() + digits(key.len()) + 1 + len + digits(len) + 1;
        HEAD_LEN
            + 2
            + string(a4 * COMPACT_V4_LEN, "added")
            + string(a4, "added.f")
            + string(a6 * COMPACT_V6_LEN, "added6")
            + string(a6, "added6.f")
            + string(d4 * COMPACT_V4_LEN, "dropped")
            + string(d6 * COMPACT_V6_LEN, "dropped6")
    }

    /// Write the whole wire message (length prefix, id 20, `ext_id`, dictionary) and return its
    /// length. `ext_id` is the receiver's id for `ut_pex`. Every key is written, empty or not,
    /// in the sorted order bencode asks for.
    ///
    /// Fails without writing when `out` is shorter than [`encoded_len`](Self::encoded_len).
    pub fn encode(&self, ext_id: u8, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let total = self.encoded_len();
        let too_small = BufferTooSmall { required: total };
        let prefix = u32::try_from(total - 4).map_err(|_| too_small)?;
        let out = out.get_mut(..total).ok_or(too_small)?;
        let (head, body) = out.split_at_mut(HEAD_LEN);
        let (prefix_bytes, ids) = head.split_at_mut(4);
        prefix_bytes.copy_from_slice(&prefix.to_be_bytes());
        ids.copy_from_slice(&[20, ext_id]);
        let (a4, a6) = count(self.added.clone().map(|(a, _)| a));
        let (d4, d6) = count(self.dropped.clone());
        let added = || self.added.clone().map(|(a, f)| (canonical(a), f));
        let dropped = || self.dropped.clone().map(canonical);
        let mut e = Encoder::new(body);
        e.dict()?;
        e.bytes(b"added")?;
        header(&mut e, a4 * COMPACT_V4_LEN)?;
        for (a, _) in added().filter(|(a, _)| a.is_ipv4()) {
            entry(&mut e, a)?;
        }
        e.bytes(b"added.f")?;
        header(&mut e, a4)?;
        for (_, f) in added().filter(|(a, _)| a.is_ipv4()) {
            e.raw(&[f.0])?;
        }
        e.bytes(b"added6")?;
        header(&mut e, a6 * COMPACT_V6_LEN)?;
        for (a, _) in added().filter(|(a, _)| a.is_ipv6()) {
            entry(&mut e, a)?;
        }
        e.bytes(b"added6.f")?;
        header(&mut e, a6)?;
        for (_, f) in added().filter(|(a, _)| a.is_ipv6()) {
            e.raw(&[f.0])?;
        }
        e.bytes(b"dropped")?;
        header(&mut e, d4 * COMPACT_V4_LEN)?;
        for a in dropped().filter(|a| a.is_ipv4()) {
            entry(&mut e, a)?;
        }
        e.bytes(b"dropped6")?;
        header(&mut e, d6 * COMPACT_V6_LEN)?;
        for a in dropped().filter(|a| a.is_ipv6()) {
            entry(&mut e, a)?;
        }
        e.end()?;
        Ok(total)
    }
}

/// Count the IPv4 (mapped ones included) and the IPv6 addresses.
fn count(addrs: impl Iterator<Item = SocketAddr>) -> (usize, usize) {
    addrs.fold((0, 0), |(v4, v6), a| {
        if canonical(a).is_ipv4() {
            (v4 + 1, v6)
        } else {
            (v4, v6 + 1)
        }
    })
}

/// `addr` with an IPv4-mapped IPv6 address made IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Write the `<len>:` that opens a byte string whose bytes follow.
fn header(e: &mut Encoder<'_>, len: usize) -> Result<(), BufferTooSmall> {
    let mut d = [0u8; MAX_DIGITS];
    e.raw(decimal(len as u64, &mut d))?.raw(b":")?;
    Ok(())
}

/// Write the compact form of `addr` (already canonical): address, then port, big-endian.
fn entry(e: &mut Encoder<'_>, addr: SocketAddr) -> Result<(), BufferTooSmall> {
    match addr.ip() {
        IpAddr::V4(ip) => e.raw(&ip.octets())?,
        IpAddr::V6(ip) => e.raw(&ip.octets())?,
    };
    e.raw(&addr.port().to_be_bytes())?;
    Ok(())
}

/// Return how many decimal digits `v` has.
fn digits(v: usize) -> usize {
    v.checked_ilog10().map_or(1, |d| d as usize + 1)
}
