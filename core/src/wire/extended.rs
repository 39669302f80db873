//! The BEP 10 extended handshake: the bencoded dictionary in extended message 0.

use super::WireError;
use crate::bencode::{self, DecodeOptions, Dict, Encoder, Value};
use crate::BufferTooSmall;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The extended message id of the extended handshake (BEP 10).
pub const EXTENDED_HANDSHAKE_ID: u8 = 0;

/// Bytes before the dictionary in a whole extended handshake message: prefix, id 20, id 0.
const MESSAGE_HEAD_LEN: usize = 6;

/// The fields of a BEP 10 extended handshake this crate uses; other keys are ignored.
///
/// Decoding is lenient about fields, as BEP 10 asks: a field of the wrong type or out of range
/// reads as absent, and an extension id of 0 (BEP 10's "disabled") reads as `None`. Only a
/// payload that is not bencode, or not a dictionary, is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExtendedHandshake<'a> {
    /// The id the sender wants BEP 9 `ut_metadata` messages sent to it with (`m.ut_metadata`).
    pub ut_metadata: Option<u8>,
    /// The id the sender wants BEP 11 `ut_pex` messages sent to it with (`m.ut_pex`).
    pub ut_pex: Option<u8>,
    /// The id the sender wants our `enjambre_partial` messages sent to it with
    /// (`m.enjambre_partial`): only an enjambre peer names it.
    pub enjambre_partial: Option<u8>,
    /// Client name and version (`v`); absent when not UTF-8.
    pub client: Option<&'a str>,
    /// The sender's TCP listen port (`p`).
    pub listen_port: Option<u16>,
    /// How many outstanding requests the sender accepts (`reqq`).
    pub reqq: Option<u32>,
    /// Size of the info dictionary in bytes, for BEP 9 (`metadata_size`).
    pub metadata_size: Option<u32>,
    /// The receiver's address as the sender sees it (`yourip`), raw: 4 or 16 bytes when sane.
    pub yourip: Option<&'a [u8]>,
}

impl<'a> ExtendedHandshake<'a> {
    /// Read the handshake from an extended message 0 payload (the bencoded dictionary).
    pub fn decode(payload: &'a [u8]) -> Result<Self, WireError> {
        // Keys in any order: BEP 10 dictionaries come from many hand-written encoders.
        let value = bencode::decode_with(payload, DecodeOptions::LENIENT)?;
        let dict = value.as_dict().ok_or(WireError::BadExtendedHandshake)?;
        let (ut_metadata, ut_pex, enjambre_partial) = match dict.get(b"m") {
            None => (None, None, None),
            Some(m) => {
                let m = m.as_dict().ok_or(WireError::BadExtendedHandshake)?;
                (
                    extension_id(m, b"ut_metadata"),
                    extension_id(m, b"ut_pex"),
                    extension_id(m, b"enjambre_partial"),
                )
            }
        };
        Ok(ExtendedHandshake {
            ut_metadata,
            ut_pex,
            enjambre_partial,
            client: dict.get(b"v").and_then(|v| v.as_str()),
            listen_port: int_field(dict, b"p"),
            reqq: int_field(dict, b"reqq"),
            metadata_size: int_field(dict, b"metadata_size"),
            yourip: dict.get(b"yourip").and_then(|v| v.as_bytes()),
        })
    }

    /// Return `yourip` as an address when it is 4 (IPv4) or 16 (IPv6) bytes.
    pub fn yourip_addr(&self) -> Option<IpAddr> {
        let bytes = self.yourip?;
        if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
            return Some(IpAddr::V4(Ipv4Addr::from(v4)));
        }
        let v6 = <[u8; 16]>::try_from(bytes).ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(v6)))
    }

    /// Write the bencoded dictionary (the payload of extended message 0); return its length.
    ///
    /// `m` is always written, possibly empty; absent fields are left out. An id of `Some(0)` is
    /// written as 0, which tells the peer the extension is disabled.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut e = Encoder::new(out);
        // Keys in sorted byte order, as bencode requires.
        e.dict()?.bytes(b"m")?.dict()?;
        if let Some(id) = self.enjambre_partial {
            e.bytes(b"enjambre_partial")?.int(id.into())?;
        }
        if let Some(id) = self.ut_metadata {
            e.bytes(b"ut_metadata")?.int(id.into())?;
        }
        if let Some(id) = self.ut_pex {
            e.bytes(b"ut_pex")?.int(id.into())?;
        }
        e.end()?;
        if let Some(size) = self.metadata_size {
            e.bytes(b"metadata_size")?.int(size.into())?;
        }
        if let Some(port) = self.listen_port {
            e.bytes(b"p")?.int(port.into())?;
        }
        if let Some(reqq) = self.reqq {
            e.bytes(b"reqq")?.int(reqq.into())?;
        }
        if let Some(client) = self.client {
            e.bytes(b"v")?.bytes(client.as_bytes())?;
        }
        if let Some(ip) = self.yourip {
            e.bytes(b"yourip")?.bytes(ip)?;
        }
        e.end()?;
        Ok(e.finish())
    }

    /// Write the whole extended message 0 (length prefix, id 20, id 0, dictionary); return its
    /// length.
    pub fn encode_message(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let short = |e: BufferTooSmall| BufferTooSmall {
            required: e.required + MESSAGE_HEAD_LEN,
        };
        let (head, body) = out
            .split_at_mut_checked(MESSAGE_HEAD_LEN)
            .ok_or(BufferTooSmall {
                required: MESSAGE_HEAD_LEN,
            })?;
        let dict_len = self.encode(body).map_err(short)?;
        let total = dict_len + MESSAGE_HEAD_LEN;
        let prefix = u32::try_from(total - 4).map_err(|_| BufferTooSmall { required: total })?;
        let (prefix_bytes, ids) = head.split_at_mut(4);
        prefix_bytes.copy_from_slice(&prefix.to_be_bytes());
        ids.copy_from_slice(&[20, EXTENDED_HANDSHAKE_ID]);
        Ok(total)
    }
}

impl From<bencode::BencodeError> for WireError {
    fn from(e: bencode::BencodeError) -> Self {
        WireError::Bencode(e)
    }
}

/// Return `m[name]` when it is a usable id (1 to 255).
fn extension_id(m: Dict<'_>, name: &[u8]) -> Option<u8> {
    let id = m.get(name)?.as_int()?;
    u8::try_from(id).ok().filter(|&id| id != 0)
}

/// Return an integer field when present and in range for `T`.
fn int_field<T: TryFrom<i64>>(dict: Dict<'_>, key: &[u8]) -> Option<T> {
    dict.get(key)
        .and_then(|v: Value<'_>| v.as_int())?
        .try_into()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Message, Split, Status};
    use proptest::prelude::*;

    #[test]
    fn bep10_example_payload() {
        // The example in BEP 10 itself: an extension named LT_metadata (not ut_metadata).
        let payload = b"d1:md11:LT_metadatai1e6:ut_pexi2ee1:pi6881e1:v12:uTorrent 1.2e";
        let h = ExtendedHandshake::decode(payload).unwrap();
        assert_eq!(
            h,
            ExtendedHandshake {
                ut_pex: Some(2),
                listen_port: Some(6881),
                client: Some("uTorrent 1.2"),
                ..ExtendedHandshake::default()
            }
        );
    }

    #[test]
    fn every_field_decodes_and_encodes_to_the_same_bytes() {
        let payload: &[u8] = b"d1:md16:enjambre_partiali3e11:ut_metadatai2e6:ut_pexi1ee\
            13:metadata_sizei31235e\
            1:pi51413e4:reqqi500e1:v16:Transmission 4.06:yourip4:\x7f\x00\x00\x01e";
        let h = ExtendedHandshake::decode(payload).unwrap();
        assert_eq!(h.enjambre_partial, Some(3));
        assert_eq!(h.ut_metadata, Some(2));
        assert_eq!(h.ut_pex, Some(1));
        assert_eq!(h.metadata_size, Some(31235));
        assert_eq!(h.listen_port, Some(51413));
        assert_eq!(h.reqq, Some(500));
        assert_eq!(h.client, Some("Transmission 4.0"));
        assert_eq!(h.yourip_addr(), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let mut out = [0u8; 200];
        let n = h.encode(&mut out).unwrap();
        assert_eq!(&out[..n], payload);
    }

    #[test]
    fn odd_fields_read_as_absent_not_as_errors() {
        // Unsorted keys, a disabled extension (0), an id above 255, a negative port, a
        // non-UTF-8 client name, an unknown key and a 5-byte yourip.
        let payload = b"d1:v2:\xff\xfe1:pi-1e1:md6:ut_pexi0e11:ut_metadatai256ee\
            4:reqqi99999999999e1:ei1e6:yourip5:abcdee";
        let h = ExtendedHandshake::decode(payload).unwrap();
        assert_eq!(h.ut_metadata, None);
        assert_eq!(h.ut_pex, None);
        assert_eq!(h.client, None);
        assert_eq!(h.listen_port, None);
        assert_eq!(h.reqq, None);
        assert_eq!(h.yourip, Some(&b"abcde"[..]));
        assert_eq!(h.yourip_addr(), None);
        assert_eq!(
            ExtendedHandshake::decode(b"de").unwrap(),
            ExtendedHandshake::default()
        );
    }

    #[test]
    fn not_a_dictionary_or_not_bencode_is_an_error() {
        assert_eq!(
            ExtendedHandshake::decode(b"li1ee"),
            Err(WireError::BadExtendedHandshake)
        );
        assert_eq!(
            ExtendedHandshake::decode(b"d1:mi1ee"),
            Err(WireError::BadExtendedHandshake)
        );
        assert!(matches!(
            ExtendedHandshake::decode(b"d1:md"),
            Err(WireError::Bencode(_))
        ));
        assert!(matches!(
            ExtendedHandshake::decode(b"dei0e"),
            Err(WireError::Bencode(_))
        ));
        assert!(matches!(
            ExtendedHandshake::decode(b""),
            Err(WireError::Bencode(_))
        ));
    }

    #[test]
    fn a_whole_message_decodes_as_extended_zero() {
        let h = ExtendedHandshake {
            ut_metadata: Some(1),
            listen_port: Some(6881),
            client: Some("enjambre 0.1"),
            ..ExtendedHandshake::default()
        };
        let mut out = [0u8; 100];
        let n = h.encode_message(&mut out).unwrap();
        let Ok(Status::Complete((Message::Extended { id: 0, payload }, consumed))) =
            Message::decode(&out[..n], &[], 1 << 16)
        else {
            panic!("not an extended handshake");
        };
        assert_eq!(consumed, n);
        let payload = payload.as_contiguous().unwrap();
        assert_eq!(ExtendedHandshake::decode(payload), Ok(h));
    }

    #[test]
    fn short_buffers_fail_with_a_useful_size() {
        let h = ExtendedHandshake {
            client: Some("enjambre"),
            ..ExtendedHandshake::default()
        };
        let mut big = [0u8; 64];
        let n = h.encode_message(&mut big).unwrap();
        for len in 0..n {
            let mut out = std::vec![0u8; len];
            let e = h.encode_message(&mut out).unwrap_err();
            assert!(e.required > len && e.required <= n, "{len}: {e:?}");
        }
    }

    proptest! {
        #[test]
        fn round_trips(
            ut_metadata in proptest::option::of(1u8..),
            ut_pex in proptest::option::of(1u8..),
            enjambre_partial in proptest::option::of(1u8..),
            client in proptest::option::of("\\PC{0,20}"),
            listen_port: Option<u16>,
            reqq: Option<u32>,
            metadata_size: Option<u32>,
            yourip in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..17)),
            cut in 0usize..256,
        ) {
            let h = ExtendedHandshake {
                ut_metadata,
                ut_pex,
                enjambre_partial,
                client: client.as_deref(),
                listen_port,
                reqq,
                metadata_size,
                yourip: yourip.as_deref(),
            };
            // Room for the largest case: 20 four-byte characters of client name with every
            // other field at its longest is 201 bytes.
            let mut out = [0u8; 256];
            let n = h.encode_message(&mut out).unwrap();
            let (a, b) = out[..n].split_at(cut.min(n));
            let Ok(Status::Complete((Message::Extended { id: 0, payload }, _))) =
                Message::decode(a, b, 1 << 16) else {
                return Err(TestCaseError::fail("not an extended handshake"));
            };
            let mut flat = std::vec![0u8; payload.len()];
            payload.copy_to(&mut flat);
            prop_assert!(Split::contiguous(&flat) == payload);
            prop_assert_eq!(ExtendedHandshake::decode(&flat), Ok(h));
        }

        #[test]
        fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(h) = ExtendedHandshake::decode(&bytes) {
                // Whatever was read re-encodes into something that reads back the same.
                let mut out = [0u8; 256];
                let n = h.encode(&mut out).unwrap();
                prop_assert_eq!(ExtendedHandshake::decode(&out[..n]), Ok(h));
            }
        }
    }
}
