//! The one place the tracker touches the core's tracker codecs (HTTP query, bencoded replies,
//! scrape, base64url). Everything else works on the registry's own types.

use std::net::{IpAddr, SocketAddr};

use enjambre_core::tracker::{
    base64url, scrape_info_hashes, write_announce_response, write_failure, write_scrape_response,
    AnnounceEvent, AnnounceReply, AnnounceRequest, ReplyPeer, ScrapeEntry,
};
use enjambre_core::{InfoHash, PeerId};

use super::peers::Event;
use super::registry::{AnnounceIn, AnnounceOut};
use super::select::Picked;

/// Most info-hashes answered in one HTTP scrape.
pub const MAX_SCRAPE: usize = 256;

/// Most torrents listed by a full scrape (`/scrape` without `info_hash`): the most populated
/// ones, so the reply stays bounded (about 80 KiB) however many the tracker holds.
pub const MAX_FULL_SCRAPE: usize = 1000;

/// The failure reason for an announce with `port=0`: no peer can be reached there, so the
/// tracker neither stores it nor hands it out.
pub const PORT_ZERO: &str = "invalid port: 0 (announce the port you accept connections on)";

/// The registry's event for a codec event.
pub fn event(e: AnnounceEvent) -> Event {
    match e {
        AnnounceEvent::Started => Event::Started,
        AnnounceEvent::Completed => Event::Completed,
        AnnounceEvent::Stopped => Event::Stopped,
        _ => Event::None,
    }
}

/// Parse an HTTP announce query. `from` is the connection's address (the `ip` parameter is
/// ignored: trusting it would let anyone point the tracker's poller and other peers anywhere).
/// A self-reported bitfield is decoded into `bits`; a malformed one is dropped with a warning.
pub fn parse_announce<'b>(
    query: &[u8],
    from: IpAddr,
    bits: &'b mut Vec<u8>,
    max_pieces: u32,
) -> Result<(AnnounceIn<'b>, bool, Option<&'static str>), &'static str> {
    let r = AnnounceRequest::parse_query(query).map_err(|e| http_reason(&e))?;
    if r.port == 0 {
        return Err(PORT_ZERO);
    }
    let mut warning = None;
    let mut have_bits = false;
    if let Some(text) = r.bitfield {
        bits.clear();
        let max_bytes = (max_pieces as usize).div_ceil(8);
        if text.len() / 4 * 3 > max_bytes + 3 {
            warning = Some("bitfield ignored: too large");
        } else {
            bits.resize(text.len() / 4 * 3 + 3, 0);
            match base64url::decode(text, bits) {
                Ok(n) => {
                    bits.truncate(n);
                    have_bits = true;
                }
                Err(_) => warning = Some("bitfield ignored: not base64url"),
            }
        }
    }
    let a = AnnounceIn {
        info_hash: r.info_hash,
        peer_id: r.peer_id.0,
        addr: SocketAddr::new(from, r.port),
        uploaded: r.uploaded,
        downloaded: r.downloaded,
        left: r.left,
        event: event(r.event),
        numwant: r.numwant,
        bitfield: if have_bits {
            Some(bits.as_slice())
        } else {
            None
        },
    };
    Ok((a, r.compact, warning))
}

fn http_reason(e: &enjambre_core::tracker::TrackerError) -> &'static str {
    use enjambre_core::tracker::TrackerError as E;
    match e {
        E::MissingField("info_hash") => "missing info_hash",
        E::MissingField("peer_id") => "missing peer_id",
        E::MissingField("port") => "missing port",
        E::MissingField(_) => "missing parameter",
        E::BadField("info_hash") => "invalid info_hash",
        E::BadField("peer_id") => "invalid peer_id",
        E::BadField("port") => "invalid port",
        E::BadField(_) => "invalid parameter",
        E::BadUrlEncoding => "bad url encoding",
        _ => "malformed announce",
    }
}

/// Write a bencoded announce reply into `out` (resized as needed).
#[allow(clippy::too_many_arguments)]
pub fn write_http_announce(
    out: &mut Vec<u8>,
    scratch: &mut Vec<ReplyPeer>,
    interval: u32,
    min_interval: u32,
    r: &AnnounceOut,
    compact: bool,
    peers: &[Picked],
) {
    scratch.clear();
    scratch.extend(peers.iter().map(|p| ReplyPeer {
        addr: p.addr,
        // All zeros: a peer another tracker listed, its id unknown.
        peer_id: (p.peer_id != [0; 20]).then_some(PeerId(p.peer_id)),
    }));
    let reply = AnnounceReply {
        interval,
        min_interval: Some(min_interval),
        complete: r.complete,
        incomplete: r.incomplete,
        warning: r.warning,
        compact,
        peers: scratch,
    };
    fill(out, |buf| {
        write_announce_response(buf, &reply).map_err(|e| e.required)
    });
}

/// Write a bencoded `failure reason`.
pub fn write_http_failure(out: &mut Vec<u8>, reason: &str) {
    fill(out, |buf| {
        write_failure(buf, reason).map_err(|e| e.required)
    });
}

/// The info-hashes of a scrape query (at most [`MAX_SCRAPE`]); `Err` when one is malformed.
pub fn parse_scrape(query: &[u8]) -> Result<Vec<InfoHash>, &'static str> {
    let mut v = Vec::new();
    for ih in scrape_info_hashes(query) {
        let ih = ih.map_err(|e| http_reason(&e))?;
        if v.len() >= MAX_SCRAPE {
            return Err("too many info_hash parameters");
        }
        v.push(ih);
    }
    v.sort();
    v.dedup();
    Ok(v)
}

/// Write a bencoded scrape reply; `entries` are (info-hash, seeders, completed, leechers).
pub fn write_http_scrape(out: &mut Vec<u8>, entries: &[(InfoHash, u32, u64, u32)]) {
    let list: Vec<ScrapeEntry> = entries
        .iter()
        .map(
            |&(info_hash, complete, downloaded, incomplete)| ScrapeEntry {
                info_hash,
                complete,
                downloaded: downloaded.min(u64::from(u32::MAX)) as u32,
                incomplete,
            },
        )
        .collect();
    fill(out, |buf| {
        write_scrape_response(buf, &list).map_err(|e| e.required)
    });
}

/// Largest bencoded body the tracker writes (a full scrape of [`MAX_FULL_SCRAPE`] torrents
/// takes about 80 KiB).
const MAX_BODY: usize = 1 << 20;

/// Run an encoder into `out`, growing it to the size the encoder asks for (a lower bound, so
/// possibly more than once). When even [`MAX_BODY`] bytes are not enough, `out` holds a bencoded
/// failure instead: a reply is never empty.
fn fill(out: &mut Vec<u8>, mut f: impl FnMut(&mut [u8]) -> Result<usize, usize>) {
    if out.len() < 512 {
        out.resize(512, 0);
    }
    loop {
        match f(out) {
            Ok(n) => {
                out.truncate(n);
                return;
            }
            Err(_) if out.len() >= MAX_BODY => break,
            Err(required) => {
                let len = required.max(out.len() * 2).min(MAX_BODY);
                out.resize(len, 0);
            }
        }
    }
    out.resize(512, 0);
    match write_failure(out, "response too large") {
        Ok(n) => out.truncate(n),
        Err(_) => out.clear(),
    }
}

/// base64url (no padding) of `bytes`, the encoding of bitfields in the API and in `bitfield=`.
pub fn b64url(bytes: &[u8]) -> String {
    let mut buf = vec![0u8; base64url::encoded_len(bytes.len())];
    let n = base64url::encode_into(bytes, &mut buf).unwrap_or(0);
    buf.truncate(n);
    String::from_utf8(buf).unwrap_or_default()
}
