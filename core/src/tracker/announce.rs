//! Bencoded HTTP announce responses (BEP 3, 7, 23), both directions: our tracker writes them,
//! our peer reads them.
//!
//! Writing always emits sorted keys. Reading accepts keys in any order (third-party trackers do
//! not all sort them) but is otherwise strict about types and ranges.

use core::fmt::Write as _;
use core::net::{IpAddr, SocketAddr};

use super::compact::{self, compact_peers, COMPACT_V4_LEN, COMPACT_V6_LEN};
use super::TrackerError;
use crate::bencode::{self, DecodeOptions, Dict, Encoder, List, Value};
use crate::{BufferTooSmall, PeerId};

/// One peer in a tracker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyPeer {
    /// Where the peer listens. Compact answers put IPv4 (and IPv4-mapped) addresses in `peers`
    /// and IPv6 ones in `peers6`.
    pub addr: SocketAddr,
    /// Written as `peer id` in the dictionary form when known.
    pub peer_id: Option<PeerId>,
}

/// What our tracker answers to an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceReply<'p> {
    /// Seconds the client should wait between regular announces.
    pub interval: u32,
    /// Seconds the client must wait at least, if the tracker enforces it.
    pub min_interval: Option<u32>,
    /// Seeders in the swarm.
    pub complete: u32,
    /// Leechers in the swarm.
    pub incomplete: u32,
    /// A warning shown to the user; the announce still succeeded.
    pub warning: Option<&'p str>,
    /// Compact peer strings (BEP 23, BEP 7) rather than a list of dictionaries (BEP 3).
    pub compact: bool,
    /// The peers to hand out, already filtered and limited to `numwant`.
    pub peers: &'p [ReplyPeer],
}

/// Write the bencoded answer to an announce into `out`; return its length.
///
/// Keys come out sorted. Compact answers always carry `peers` (possibly empty) and carry
/// `peers6` only when there are IPv6 peers; the dictionary form lists every peer under `peers`
/// with its address as text. On `BufferTooSmall`, `required` is a lower bound.
pub fn write_announce_response(
    out: &mut [u8],
    r: &AnnounceReply<'_>,
) -> Result<usize, BufferTooSmall> {
    let mut e = Encoder::new(out);
    e.dict()?;
    e.bytes(b"complete")?.int(i64::from(r.complete))?;
    e.bytes(b"incomplete")?.int(i64::from(r.incomplete))?;
    e.bytes(b"interval")?.int(i64::from(r.interval))?;
    if let Some(min) = r.min_interval {
        e.bytes(b"min interval")?.int(i64::from(min))?;
    }
    e.bytes(b"peers")?;
    if r.compact {
        let v6 = r.peers.iter().filter(|p| is_v6(p)).count();
        let v4 = r.peers.len() - v6;
        compact_string(
            &mut e,
            r.peers.iter().filter(|p| !is_v6(p)),
            v4 * COMPACT_V4_LEN,
        )?;
        if v6 > 0 {
            e.bytes(b"peers6")?;
            compact_string(
                &mut e,
                r.peers.iter().filter(|p| is_v6(p)),
                v6 * COMPACT_V6_LEN,
            )?;
        }
    } else {
        e.list()?;
        for p in r.peers {
            e.dict()?;
            e.bytes(b"ip")?
                .bytes(IpText::new(p.addr.ip().to_canonical()).as_bytes())?;
            if let Some(id) = p.peer_id {
                e.bytes(b"peer id")?.bytes(&id.0)?;
            }
            e.bytes(b"port")?.int(i64::from(p.addr.port()))?;
            e.end()?;
        }
        e.end()?;
    }
    if let Some(w) = r.warning {
        e.bytes(b"warning message")?.bytes(w.as_bytes())?;
    }
    e.end()?;
    Ok(e.finish())
}

/// Write `d14:failure reason<reason>e` into `out`; return its length.
pub fn write_failure(out: &mut [u8], reason: &str) -> Result<usize, BufferTooSmall> {
    let mut e = Encoder::new(out);
    e.dict()?
        .bytes(b"failure reason")?
        .bytes(reason.as_bytes())?
        .end()?;
    Ok(e.finish())
}

fn is_v6(p: &ReplyPeer) -> bool {
    p.addr.ip().to_canonical().is_ipv6()
}

/// Write one bencoded string of `len` bytes made of the compact forms of `peers`.
fn compact_string<'p>(
    e: &mut Encoder<'_>,
    peers: impl Iterator<Item = &'p ReplyPeer>,
    len: usize,
) -> Result<(), BufferTooSmall> {
    let mut digits = [0u8; 20];
    e.raw(super::out::decimal(len as u64, &mut digits))?
        .raw(b":")?;
    for p in peers {
        let (bytes, n) = compact::entry(&p.addr);
        e.raw(bytes.get(..n).unwrap_or_default())?;
    }
    Ok(())
}

/// An IP address formatted as text on the stack (at most 45 bytes for IPv6).
struct IpText {
    buf: [u8; 48],
    len: usize,
}

impl IpText {
    fn new(ip: IpAddr) -> Self {
        let mut t = IpText {
            buf: [0; 48],
            len: 0,
        };
        // Cannot fail: every address fits in 48 bytes.
        let _ = write!(t, "{ip}");
        t
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl core::fmt::Write for IpText {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A tracker's answer to an announce, as our peer reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceResponse<'a> {
    /// Seconds to wait between regular announces.
    pub interval: Option<u32>,
    /// Seconds to wait at least between announces.
    pub min_interval: Option<u32>,
    /// Why the tracker refused the announce (`failure reason`); then nothing else is required.
    /// Text that is not UTF-8 is cut at its first invalid byte.
    pub failure: Option<&'a str>,
    /// `warning message`, cut like `failure`.
    pub warning: Option<&'a str>,
    /// Seeders in the swarm.
    pub complete: Option<u32>,
    /// Leechers in the swarm.
    pub incomplete: Option<u32>,
    /// To send back as `trackerid` in later announces.
    pub tracker_id: Option<&'a [u8]>,
    peers_v4: &'a [u8],
    peers_v6: &'a [u8],
    peer_list: Option<List<'a>>,
}

impl<'a> AnnounceResponse<'a> {
    /// Parse a bencoded announce response.
    ///
    /// Peer lists are checked here (compact strings are whole entries; every dictionary entry
    /// has a byte-string `ip` and a `port` in 0..=65535), so [`peers`](Self::peers) cannot fail.
    pub fn parse(body: &'a [u8]) -> Result<Self, TrackerError> {
        let top = response_dict(body)?;
        let mut r = AnnounceResponse {
            interval: u32_field(top, "interval")?,
            min_interval: u32_field(top, "min interval")?,
            failure: text_field(top, "failure reason")?,
            warning: text_field(top, "warning message")?,
            complete: u32_field(top, "complete")?,
            incomplete: u32_field(top, "incomplete")?,
            tracker_id: match top.get(b"tracker id") {
                None => None,
                Some(v) => Some(v.as_bytes().ok_or(TrackerError::BadField("tracker id"))?),
            },
            peers_v4: &[],
            peers_v6: &[],
            peer_list: None,
        };
        match top.get(b"peers") {
            None => {}
            Some(Value::Bytes(b)) if b.len() % COMPACT_V4_LEN == 0 => r.peers_v4 = b,
            Some(Value::List(list)) => {
                if !list.iter().all(|p| dict_peer(p).is_some()) {
                    return Err(TrackerError::BadField("peers"));
                }
                r.peer_list = Some(list);
            }
            Some(_) => return Err(TrackerError::BadField("peers")),
        }
        match top.get(b"peers6") {
            None => {}
            Some(Value::Bytes(b)) if b.len() % COMPACT_V6_LEN == 0 => r.peers_v6 = b,
            Some(_) => return Err(TrackerError::BadField("peers6")),
        }
        Ok(r)
    }

    /// Iterate every peer address: compact IPv4, then `peers6`, then the dictionary form.
    ///
    /// Dictionary entries whose `ip` is a DNS name rather than an address literal are skipped
    /// (BEP 3 allows names; resolving them is the shell's business, not the core's).
    pub fn peers(&self) -> impl Iterator<Item = SocketAddr> + 'a {
        let listed = self
            .peer_list
            .into_iter()
            .flat_map(|l| l.iter())
            .filter_map(|p| {
                let (ip, port) = dict_peer(p)?;
                let text = core::str::from_utf8(ip).ok()?;
                let text = text
                    .strip_prefix('[')
                    .and_then(|t| t.strip_suffix(']'))
                    .unwrap_or(text);
                Some(SocketAddr::new(text.parse().ok()?, port))
            });
        compact_peers(self.peers_v4, false)
            .chain(compact_peers(self.peers_v6, true))
            .chain(listed)
    }
}

/// Decode a response body leniently (any key order) and require a dictionary.
pub(crate) fn response_dict(body: &[u8]) -> Result<Dict<'_>, TrackerError> {
    bencode::decode_with(body, DecodeOptions::LENIENT)?
        .as_dict()
        .ok_or(TrackerError::BadField("response"))
}

/// An optional integer field that must fit `u32`.
pub(crate) fn u32_field(d: Dict<'_>, name: &'static str) -> Result<Option<u32>, TrackerError> {
    match d.get(name.as_bytes()) {
        None => Ok(None),
        Some(v) => v
            .as_int()
            .and_then(|i| u32::try_from(i).ok())
            .map(Some)
            .ok_or(TrackerError::BadField(name)),
    }
}

/// An optional byte-string field read as text, cut at its first invalid UTF-8 byte.
pub(crate) fn text_field<'a>(
    d: Dict<'a>,
    name: &'static str,
) -> Result<Option<&'a str>, TrackerError> {
    match d.get(name.as_bytes()) {
        None => Ok(None),
        Some(v) => {
            let b = v.as_bytes().ok_or(TrackerError::BadField(name))?;
            let text = match core::str::from_utf8(b) {
                Ok(t) => t,
                Err(e) => b
                    .get(..e.valid_up_to())
                    .and_then(|valid| core::str::from_utf8(valid).ok())
                    .unwrap_or_default(),
            };
            Ok(Some(text))
        }
    }
}

/// The `ip` bytes and `port` of one dictionary-form peer, if it is well formed.
fn dict_peer(v: Value<'_>) -> Option<(&[u8], u16)> {
    let d = v.as_dict()?;
    let ip = d.get(b"ip")?.as_bytes()?;
    let port = u16::try_from(d.get(b"port")?.as_int()?).ok()?;
    Some((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn write(r: &AnnounceReply<'_>) -> Vec<u8> {
        let mut out = vec![0u8; 4096];
        let n = write_announce_response(&mut out, r).unwrap();
        out.truncate(n);
        out
    }

    fn reply(peers: &[ReplyPeer], compact: bool) -> AnnounceReply<'_> {
        AnnounceReply {
            interval: 1800,
            min_interval: None,
            complete: 0,
            incomplete: 0,
            warning: None,
            compact,
            peers,
        }
    }

    fn peer(s: &str) -> ReplyPeer {
        ReplyPeer {
            addr: addr(s),
            peer_id: None,
        }
    }

    /// BEP 7's example response, `d8:intervali1800e5:peers6:iiiipp6:peers618:iiiiiiiiiiiiiiiippe`,
    /// with real addresses in place of the `i`s and `p`s.
    #[test]
    fn bep7_example() {
        let v4 = addr("105.105.105.105:28784"); // "iiiipp"
        let v6 = addr("[6969:6969:6969:6969:6969:6969:6969:6969]:28784");
        let body = b"d8:intervali1800e5:peers6:iiiipp6:peers618:iiiiiiiiiiiiiiiippe";
        let r = AnnounceResponse::parse(body).unwrap();
        assert_eq!(r.interval, Some(1800));
        assert_eq!(r.peers().collect::<Vec<_>>(), [v4, v6]);
        // Our writer emits the same keys, plus the counts BEP 3 trackers send, sorted.
        let peers = [
            peer("105.105.105.105:28784"),
            ReplyPeer {
                addr: v6,
                peer_id: None,
            },
        ];
        assert_eq!(
            write(&reply(&peers, true)),
            b"d8:completei0e10:incompletei0e8:intervali1800e\
              5:peers6:iiiipp6:peers618:iiiiiiiiiiiiiiiippe"
        );
    }

    /// BEP 23: six bytes per peer, address then port, network byte order.
    #[test]
    fn bep23_compact() {
        let peers = [peer("10.0.0.1:6881"), peer("192.168.1.2:51413")];
        let mut expect = b"d8:completei0e10:incompletei0e8:intervali1800e5:peers12:".to_vec();
        expect.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1, 192, 168, 1, 2, 0xc8, 0xd5]);
        expect.push(b'e');
        assert_eq!(write(&reply(&peers, true)), expect);
        let r = AnnounceResponse::parse(&expect).unwrap();
        assert_eq!(
            r.peers().collect::<Vec<_>>(),
            [addr("10.0.0.1:6881"), addr("192.168.1.2:51413")]
        );
    }

    #[test]
    fn empty_compact_reply_still_has_peers() {
        assert_eq!(
            write(&reply(&[], true)),
            b"d8:completei0e10:incompletei0e8:intervali1800e5:peers0:e"
        );
    }

    #[test]
    fn dictionary_form_with_every_key() {
        let peers = [
            ReplyPeer {
                addr: addr("10.0.0.1:6881"),
                peer_id: Some(PeerId(*b"-TR4050-abcdefghijkl")),
            },
            peer("[2001:db8::1]:51413"),
            peer("[::ffff:1.2.3.4]:80"),
        ];
        let r = AnnounceReply {
            interval: 1800,
            min_interval: Some(900),
            complete: 3,
            incomplete: 4,
            warning: Some("slow down"),
            compact: false,
            peers: &peers,
        };
        let body = write(&r);
        assert_eq!(
            core::str::from_utf8(&body).unwrap(),
            "d8:completei3e10:incompletei4e8:intervali1800e12:min intervali900e\
             5:peersld2:ip8:10.0.0.17:peer id20:-TR4050-abcdefghijkl4:porti6881ee\
             d2:ip11:2001:db8::14:porti51413eed2:ip7:1.2.3.44:porti80eee\
             15:warning message9:slow downe"
        );
        // Our own writer's output is canonical bencode.
        assert!(bencode::decode(&body).is_ok());
        let back = AnnounceResponse::parse(&body).unwrap();
        assert_eq!(back.interval, Some(1800));
        assert_eq!(back.min_interval, Some(900));
        assert_eq!((back.complete, back.incomplete), (Some(3), Some(4)));
        assert_eq!(back.warning, Some("slow down"));
        assert_eq!(
            back.peers().collect::<Vec<_>>(),
            [
                addr("10.0.0.1:6881"),
                addr("[2001:db8::1]:51413"),
                addr("1.2.3.4:80")
            ]
        );
    }

    #[test]
    fn bep3_dictionary_peers_from_other_trackers() {
        // Unsorted keys, a DNS name (skipped), a bracketed IPv6 literal, extra keys.
        let body = b"d5:peersld4:porti6881e2:ip9:127.0.0.1e\
                     d2:ip11:example.org4:porti1ee\
                     d2:ip5:[::1]4:porti2e5:extrai0ee\
                     e8:intervali60e10:tracker id3:abce";
        let r = AnnounceResponse::parse(body).unwrap();
        assert_eq!(r.tracker_id, Some(&b"abc"[..]));
        assert_eq!(
            r.peers().collect::<Vec<_>>(),
            [addr("127.0.0.1:6881"), addr("[::1]:2")]
        );
    }

    #[test]
    fn failure_and_write_failure() {
        let mut out = [0u8; 64];
        let n = write_failure(&mut out, "unregistered torrent").unwrap();
        assert_eq!(&out[..n], b"d14:failure reason20:unregistered torrente");
        let r = AnnounceResponse::parse(&out[..n]).unwrap();
        assert_eq!(r.failure, Some("unregistered torrent"));
        assert_eq!(r.peers().count(), 0);
        // Non-UTF-8 reasons are cut, not refused.
        let r = AnnounceResponse::parse(b"d14:failure reason4:ab\xffce").unwrap();
        assert_eq!(r.failure, Some("ab"));
        // `required` is a lower bound: here, what fits up to the refused item.
        let err = write_failure(&mut [0u8; 10], "x").unwrap_err();
        assert!(err.required > 10 && err.required <= 23, "{err:?}");
    }

    #[test]
    fn hostile_responses() {
        use TrackerError::*;
        let cases: [(&[u8], TrackerError); 12] = [
            (b"le", BadField("response")),
            (b"i5e", BadField("response")),
            (b"d8:intervali-1ee", BadField("interval")),
            (b"d8:intervali4294967296ee", BadField("interval")),
            (b"d8:interval2:60e", BadField("interval")),
            (b"d5:peers5:abcdee", BadField("peers")),
            (b"d5:peersi1ee", BadField("peers")),
            (b"d5:peersli1eee", BadField("peers")),
            (b"d5:peersld2:ip1:x4:porti65536eeee", BadField("peers")),
            (b"d5:peersld4:porti1eeee", BadField("peers")),
            (b"d6:peers66:abcdefe", BadField("peers6")),
            (b"d10:tracker idi1ee", BadField("tracker id")),
        ];
        for (body, err) in cases {
            assert_eq!(AnnounceResponse::parse(body), Err(err), "{body:?}");
        }
        assert!(matches!(
            AnnounceResponse::parse(b"d8:intervali60e"),
            Err(Bencode(_))
        ));
        assert!(matches!(
            AnnounceResponse::parse(b"d8:intervali60eeX"),
            Err(Bencode(_))
        ));
    }

    #[test]
    fn truncated_anywhere_is_an_error_never_a_value() {
        let peers = [peer("10.0.0.1:6881"), peer("[2001:db8::1]:51413")];
        let body = write(&AnnounceReply {
            min_interval: Some(60),
            warning: Some("w"),
            ..reply(&peers, true)
        });
        for cut in 0..body.len() {
            assert!(AnnounceResponse::parse(&body[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn buffer_too_small_never_panics() {
        let peers = [peer("10.0.0.1:6881"), peer("[2001:db8::1]:51413")];
        let full = write(&reply(&peers, false)).len();
        for len in 0..full {
            let mut out = vec![0u8; len];
            let err = write_announce_response(&mut out, &reply(&peers, false)).unwrap_err();
            assert!(err.required > len && err.required <= full, "{len}: {err:?}");
        }
    }

    fn arb_peer() -> impl Strategy<Value = ReplyPeer> {
        let ip = prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ];
        (ip, any::<u16>(), any::<Option<[u8; 20]>>()).prop_map(|(ip, port, id)| ReplyPeer {
            addr: SocketAddr::new(ip, port),
            peer_id: id.map(PeerId),
        })
    }

    proptest! {
        #[test]
        fn round_trip(
            peers in proptest::collection::vec(arb_peer(), 0..20),
            compact in any::<bool>(),
            interval in any::<u32>(),
            min_interval in any::<Option<u32>>(),
            complete in any::<u32>(),
            incomplete in any::<u32>(),
            warning in proptest::option::of(".{0,20}"),
        ) {
            let r = AnnounceReply {
                interval, min_interval, complete, incomplete,
                warning: warning.as_deref(), compact, peers: &peers,
            };
            let body = write(&r);
            prop_assert!(bencode::decode(&body).is_ok());
            let back = AnnounceResponse::parse(&body).unwrap();
            prop_assert_eq!(back.interval, Some(interval));
            prop_assert_eq!(back.min_interval, min_interval);
            prop_assert_eq!((back.complete, back.incomplete), (Some(complete), Some(incomplete)));
            prop_assert_eq!(back.warning, warning.as_deref());
            prop_assert_eq!(back.failure, None);
            let canon: Vec<SocketAddr> = peers.iter().map(|p| SocketAddr::new(p.addr.ip().to_canonical(), p.addr.port())).collect();
            let expect: Vec<SocketAddr> = if compact {
                // Compact output groups IPv4 first, then IPv6, each in order.
                canon.iter().filter(|a| a.is_ipv4()).chain(canon.iter().filter(|a| a.is_ipv6())).copied().collect()
            } else {
                canon
            };
            let got: Vec<SocketAddr> = back.peers().collect();
            prop_assert_eq!(got, expect);
        }

        #[test]
        fn any_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(r) = AnnounceResponse::parse(&body) {
                let _ = r.peers().count();
            }
        }
    }
}
