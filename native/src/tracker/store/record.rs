//! The bytes stored per peer: its announce record (fixed 45 bytes) and its bitfield record
//! (source, when learned, what kind, and the raw bytes). Written by the announce script and the
//! poller, read back into the registry's [`PeerView`].

use std::net::SocketAddr;

use crate::tracker::bits::{Have, Source};
use crate::tracker::peers::Event;
use crate::tracker::registry::PeerView;

/// Bytes of a [`PeerRecord`].
pub const PEER_RECORD_LEN: usize = 45;

/// What the last announce of a peer said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    pub peer_id: [u8; 20],
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Event,
}

impl PeerRecord {
    /// peer id, uploaded, downloaded, left (big-endian), event byte.
    pub fn encode(&self) -> [u8; PEER_RECORD_LEN] {
        let mut b = [0u8; PEER_RECORD_LEN];
        b[..20].copy_from_slice(&self.peer_id);
        b[20..28].copy_from_slice(&self.uploaded.to_be_bytes());
        b[28..36].copy_from_slice(&self.downloaded.to_be_bytes());
        b[36..44].copy_from_slice(&self.left.to_be_bytes());
        b[44] = self.event as u8;
        b
    }

    /// The record in `b`, `None` when it is not one.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != PEER_RECORD_LEN {
            return None;
        }
        let u = |r: std::ops::Range<usize>| u64::from_be_bytes(b[r].try_into().unwrap_or([0; 8]));
        Some(PeerRecord {
            peer_id: b[..20].try_into().ok()?,
            uploaded: u(20..28),
            downloaded: u(28..36),
            left: u(36..44),
            event: Event::from_u8(b[44]),
        })
    }
}

/// The kind byte of a bitfield record: every piece (`left=0` or HaveAll).
pub const KIND_ALL: u8 = b'A';
/// No piece (HaveNone, or silence when polled).
pub const KIND_NONE: u8 = b'N';
/// Raw bitfield bytes follow.
pub const KIND_BYTES: u8 = b'B';

/// A peer's known pieces: 1 source byte (`R` report, `P` poll), 4 bytes Unix seconds
/// (big-endian) when learned, 1 kind byte, then the bitfield for [`KIND_BYTES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitsRecord {
    pub source: Source,
    pub at: u32,
    pub kind: u8,
    pub bytes: Vec<u8>,
}

impl BitsRecord {
    /// The record as stored (the announce script writes its own).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(6 + self.bytes.len());
        v.push(match self.source {
            Source::Report => b'R',
            Source::Poll => b'P',
        });
        v.extend_from_slice(&self.at.to_be_bytes());
        v.push(self.kind);
        v.extend_from_slice(&self.bytes);
        v
    }

    /// The record in `b`, `None` when it is not one.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let source = match b.first()? {
            b'R' => Source::Report,
            b'P' => Source::Poll,
            _ => return None,
        };
        let at = u32::from_be_bytes(b.get(1..5)?.try_into().ok()?);
        let kind = *b.get(5)?;
        if ![KIND_ALL, KIND_NONE, KIND_BYTES].contains(&kind) {
            return None;
        }
        Some(BitsRecord {
            source,
            at,
            kind,
            bytes: b[6..].to_vec(),
        })
    }

    /// What the peer has, given the torrent's exact piece count when known: a full or an empty
    /// bitfield reads as every piece or none, as in the in-memory registry.
    pub fn have(&self, pieces: Option<u32>) -> Have {
        match self.kind {
            KIND_ALL => Have::All,
            KIND_NONE => Have::None,
            _ => {
                let ones: u32 = self.bytes.iter().map(|b| b.count_ones()).sum();
                if ones == 0 {
                    Have::None
                } else if pieces == Some(ones) {
                    Have::All
                } else {
                    Have::Some
                }
            }
        }
    }
}

/// The registry's view of one stored peer.
pub fn view(
    addr: SocketAddr,
    last_seen: u32,
    rec: &PeerRecord,
    bits: Option<&BitsRecord>,
    poll_fails: u8,
    pieces: Option<u32>,
    stride: usize,
) -> PeerView<Box<[u8]>> {
    let have = bits.map_or(Have::Unknown, |b| b.have(pieces));
    PeerView {
        addr,
        peer_id: rec.peer_id,
        uploaded: rec.uploaded,
        downloaded: rec.downloaded,
        left: rec.left,
        event: rec.event,
        last_seen,
        have,
        source: bits.map_or(Source::Report, |b| b.source),
        have_at: bits.map_or(0, |b| b.at),
        poll_fails,
        bits: bits
            .filter(|_| have == Have::Some)
            .map(|b| b.bytes.clone().into_boxed_slice()),
        pieces,
        stride,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_record_round_trips() {
        let r = PeerRecord {
            peer_id: *b"-EJ0001-abcdefghijkl",
            uploaded: 1,
            downloaded: u64::MAX,
            left: 1 << 40,
            event: Event::Completed,
        };
        assert_eq!(PeerRecord::decode(&r.encode()), Some(r));
        assert_eq!(PeerRecord::decode(&[0; 44]), None);
    }

    #[test]
    fn a_bits_record_round_trips_and_reads_as_have() {
        let r = BitsRecord {
            source: Source::Poll,
            at: 1_800_000_000,
            kind: KIND_BYTES,
            bytes: vec![0xff, 0xe0],
        };
        assert_eq!(BitsRecord::decode(&r.encode()), Some(r.clone()));
        assert_eq!(r.have(Some(11)), Have::All);
        assert_eq!(r.have(Some(12)), Have::Some);
        assert_eq!(r.have(None), Have::Some);
        let none = BitsRecord {
            bytes: vec![0, 0],
            ..r.clone()
        };
        assert_eq!(none.have(Some(11)), Have::None);
        assert_eq!(BitsRecord::decode(b"X\0\0\0\0A"), None);
        assert_eq!(BitsRecord::decode(b"R\0\0\0\0Z"), None);
        assert_eq!(BitsRecord::decode(b"R\0\0"), None);
    }
}
