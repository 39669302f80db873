//! The 68-byte BEP 3 handshake and the extension bits of its reserved bytes.

use super::{Split, Status, WireError};
use crate::{InfoHash, PeerId};

/// Length of a handshake on the wire.
pub const HANDSHAKE_LEN: usize = 68;

/// The first 20 bytes of every handshake: the length 19, then the protocol name.
pub const PROTOCOL: &[u8; 20] = b"\x13BitTorrent protocol";

/// BEP 6 fast extension: `reserved[7] & 0x04`.
const FAST: (usize, u8) = (7, 0x04);
/// BEP 10 extension protocol: `reserved[5] & 0x10`.
const EXTENDED: (usize, u8) = (5, 0x10);
/// BEP 5 DHT: `reserved[7] & 0x01`.
const DHT: (usize, u8) = (7, 0x01);

/// The protocol extensions a peer advertises in its handshake's reserved bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Extensions {
    /// BEP 6 fast extension (HaveAll, HaveNone, Suggest, Reject, AllowedFast).
    pub fast: bool,
    /// BEP 10 extension protocol (message 20).
    pub extended: bool,
    /// BEP 5 DHT (message 9, Port).
    pub dht: bool,
}

/// The first message in each direction: protocol name, reserved bits, info-hash, peer id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Handshake {
    /// Extension bits; bits this crate does not know are kept as received.
    pub reserved: [u8; 8],
    /// The torrent the connection is for.
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: PeerId,
}

impl Handshake {
    /// Return a handshake advertising exactly the extensions in `ext`.
    pub fn new(info_hash: InfoHash, peer_id: PeerId, ext: Extensions) -> Self {
        let mut reserved = [0u8; 8];
        for (on, (byte, mask)) in [(ext.fast, FAST), (ext.extended, EXTENDED), (ext.dht, DHT)] {
            if on {
                reserved[byte] |= mask;
            }
        }
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// Return the extensions the reserved bytes advertise.
    pub fn extensions(&self) -> Extensions {
        let has = |(byte, mask): (usize, u8)| self.reserved[byte] & mask != 0;
        Extensions {
            fast: has(FAST),
            extended: has(EXTENDED),
            dht: has(DHT),
        }
    }

    /// Return the 68 bytes to send.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        let (protocol, rest) = out.split_at_mut(PROTOCOL.len());
        let (reserved, rest) = rest.split_at_mut(8);
        let (info_hash, peer_id) = rest.split_at_mut(20);
        protocol.copy_from_slice(PROTOCOL);
        reserved.copy_from_slice(&self.reserved);
        info_hash.copy_from_slice(&self.info_hash.0);
        peer_id.copy_from_slice(&self.peer_id.0);
        out
    }

    /// Decode a handshake from the start of `a` followed by `b` (a ring buffer's halves).
    ///
    /// Reads exactly [`HANDSHAKE_LEN`] bytes; anything after them is left for
    /// [`Message::decode`](super::Message::decode). A wrong protocol prefix is an error as soon
    /// as its first wrong byte is readable, so a non-BitTorrent peer is dropped early.
    pub fn decode(a: &[u8], b: &[u8]) -> Result<Status<Handshake>, WireError> {
        let bytes = Split::new(a, b);
        let available = bytes.len().min(PROTOCOL.len());
        let protocol_seen = bytes.slice(0, available).unwrap_or_default();
        if !protocol_seen
            .bytes()
            .eq(PROTOCOL.iter().copied().take(available))
        {
            return Err(WireError::BadProtocol);
        }
        let Some(rest) = bytes.slice(PROTOCOL.len(), HANDSHAKE_LEN - PROTOCOL.len()) else {
            return Ok(Status::Partial);
        };
        let mut fixed = [0u8; HANDSHAKE_LEN - PROTOCOL.len()];
        rest.copy_to(&mut fixed);
        let (reserved, ids) = fixed.split_at(8);
        let (info_hash, peer_id) = ids.split_at(20);
        Ok(Status::Complete(Handshake {
            reserved: reserved.try_into().unwrap_or_default(),
            info_hash: InfoHash(info_hash.try_into().unwrap_or_default()),
            peer_id: PeerId(peer_id.try_into().unwrap_or_default()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const INFO_HASH: InfoHash = InfoHash(
        *b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14",
    );
    const PEER_ID: PeerId = PeerId(*b"-EJ0001-abcdefghijkl");

    /// BEP 3: `\x13BitTorrent protocol`, 8 reserved bytes, info-hash, peer id.
    fn bep3_bytes(reserved: [u8; 8]) -> [u8; HANDSHAKE_LEN] {
        let mut v = [0u8; HANDSHAKE_LEN];
        v[0] = 19;
        v[1..20].copy_from_slice(b"BitTorrent protocol");
        v[20..28].copy_from_slice(&reserved);
        v[28..48].copy_from_slice(&INFO_HASH.0);
        v[48..68].copy_from_slice(&PEER_ID.0);
        v
    }

    #[test]
    fn plain_bep3_handshake_has_no_extensions() {
        let h = Handshake::new(INFO_HASH, PEER_ID, Extensions::default());
        assert_eq!(h.encode(), bep3_bytes([0; 8]));
        assert_eq!(h.extensions(), Extensions::default());
    }

    #[test]
    fn extension_bits_sit_where_beps_5_6_10_put_them() {
        let all = Extensions {
            fast: true,
            extended: true,
            dht: true,
        };
        let h = Handshake::new(INFO_HASH, PEER_ID, all);
        assert_eq!(h.reserved, [0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        assert_eq!(h.extensions(), all);
        let fast_only = Handshake::new(
            INFO_HASH,
            PEER_ID,
            Extensions {
                fast: true,
                ..Extensions::default()
            },
        );
        assert_eq!(fast_only.reserved, [0, 0, 0, 0, 0, 0, 0, 0x04]);
    }

    #[test]
    fn unknown_reserved_bits_survive_a_round_trip() {
        // Azureus messaging (0x80 in byte 0), libtorrent's v2 upgrade bit (0x10 in byte 7).
        let bytes = bep3_bytes([0x80, 0, 0, 0, 0, 0x10, 0, 0x15]);
        let h = Handshake::decode(&bytes, &[]).unwrap().complete().unwrap();
        assert_eq!(h.reserved, [0x80, 0, 0, 0, 0, 0x10, 0, 0x15]);
        assert_eq!(h.encode(), bytes);
        let ext = h.extensions();
        assert!(ext.fast && ext.extended && ext.dht);
    }

    #[test]
    fn decodes_split_at_every_position() {
        let bytes = bep3_bytes([0, 0, 0, 0, 0, 0x10, 0, 0x04]);
        let expected = Handshake::decode(&bytes, &[]).unwrap();
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(Handshake::decode(a, b), Ok(expected), "cut at {cut}");
        }
    }

    #[test]
    fn one_byte_at_a_time_is_partial_until_the_last_byte() {
        let bytes = bep3_bytes([0; 8]);
        for n in 0..HANDSHAKE_LEN {
            let (a, b) = bytes[..n].split_at(n / 2);
            assert_eq!(Handshake::decode(a, b), Ok(Status::Partial), "{n} bytes");
        }
        assert!(!Handshake::decode(&bytes, &[]).unwrap().is_partial());
    }

    #[test]
    fn trailing_bytes_are_left_alone() {
        let mut bytes = std::vec::Vec::from(bep3_bytes([0; 8]));
        bytes.extend_from_slice(&[0, 0, 0, 1, 0x0e]); // HaveAll follows immediately
        let h = Handshake::decode(&bytes[..30], &bytes[30..]).unwrap();
        assert_eq!(h.complete().map(|h| h.peer_id), Some(PEER_ID));
    }

    #[test]
    fn a_wrong_protocol_is_rejected_at_its_first_wrong_byte() {
        // An HTTP request sent to the peer port.
        assert_eq!(Handshake::decode(b"G", &[]), Err(WireError::BadProtocol));
        // Length byte right, name wrong at its 4th letter: rejected with only 4 bytes in.
        assert_eq!(Handshake::decode(b"\x13Bit", &[]), Ok(Status::Partial));
        assert_eq!(
            Handshake::decode(b"\x13Bi", b"x"),
            Err(WireError::BadProtocol)
        );
        let mut bytes = bep3_bytes([0; 8]);
        bytes[19] = b'L';
        assert_eq!(Handshake::decode(&bytes, &[]), Err(WireError::BadProtocol));
        assert_eq!(Handshake::decode(&[], &[]), Ok(Status::Partial));
    }

    proptest! {
        #[test]
        fn round_trip(reserved: [u8; 8], ih: [u8; 20], id: [u8; 20], cut in 0usize..=68) {
            let h = Handshake { reserved, info_hash: InfoHash(ih), peer_id: PeerId(id) };
            let bytes = h.encode();
            let (a, b) = bytes.split_at(cut);
            prop_assert_eq!(Handshake::decode(a, b), Ok(Status::Complete(h)));
        }

        #[test]
        fn arbitrary_bytes_are_classified_exactly(
            tail in proptest::collection::vec(any::<u8>(), 0..80),
            good_prefix in 0usize..=20,
            cut: usize,
        ) {
            // Start with some of the real protocol prefix so all three outcomes are reached.
            let mut bytes = PROTOCOL[..good_prefix].to_vec();
            bytes.extend_from_slice(&tail);
            let cut = cut % (bytes.len() + 1);
            let (a, b) = bytes.split_at(cut);
            let seen = bytes.len().min(20);
            let prefix_ok = bytes[..seen] == PROTOCOL[..seen];
            match Handshake::decode(a, b) {
                Ok(Status::Complete(h)) => {
                    prop_assert!(prefix_ok);
                    prop_assert_eq!(&h.encode()[..], &bytes[..HANDSHAKE_LEN]);
                }
                Ok(Status::Partial) => prop_assert!(prefix_ok && bytes.len() < HANDSHAKE_LEN),
                Err(e) => {
                    prop_assert_eq!(e, WireError::BadProtocol);
                    prop_assert!(!prefix_ok);
                }
            }
        }
    }
}
