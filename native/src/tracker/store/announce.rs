//! An announce against the store: one script call (see `announce.lua`), plus, in one round trip,
//! an `SADD` to the torrent index for a torrent's first peer and a `ZADD` to the index of due
//! torrents for a peer new to it, plus a `PUBLISH` to its live feed while watched.

use std::sync::Arc;

use redis::Value;

use super::keys::{self, TorrentKeys};
use super::record::{self, BitsRecord, PeerRecord};
use super::{Store, StoreError};
use crate::tracker::peers::Event;
use crate::tracker::registry::{AnnounceIn, AnnounceOut, Asker, Families, Refusal, SwarmEvent};
use crate::tracker::select::{next_rand, Picked};

/// A reply's fields, in the script's order (the completed count, third, is not needed here).
struct Reply {
    seeders: u32,
    leechers: u32,
    warning: Option<&'static str>,
    fresh: bool,
    watched: bool,
    asker_bits: Option<BitsRecord>,
    pieces: Option<u32>,
    stride: usize,
    left: bool,
    /// The asker's first poll (unix second) when it is new to the torrent, else 0.
    first_poll: u32,
}

impl Store {
    /// Handle one announce: the store's answer (or its refusal), and the peers chosen into
    /// `out` (with their peer ids when `ids`, else zeros); `Err` when Redis could not be asked.
    #[allow(clippy::too_many_arguments)]
    pub async fn announce(
        &self,
        now: u32,
        a: &AnnounceIn<'_>,
        families: Families,
        who: Asker,
        ids: bool,
        out: &mut Vec<Picked>,
    ) -> Result<Result<AnnounceOut, Refusal>, StoreError> {
        out.clear();
        let l = &self.limits;
        let numwant = a.numwant.unwrap_or(l.numwant_default).min(l.numwant_max) as usize;
        let k = TorrentKeys::of(&a.info_hash);
        let me = keys::member(a.addr);
        let rec = PeerRecord {
            peer_id: a.peer_id,
            uploaded: a.uploaded,
            downloaded: a.downloaded,
            left: a.left,
            event: a.event,
        };
        let mut warning = None;
        let bits = match a.bitfield {
            Some(b) if b.len() as u64 * 8 > u64::from(l.max_pieces) + 7 => {
                warning = Some("bitfield ignored: too large");
                &[][..]
            }
            Some(b) => b,
            None => &[][..],
        };
        let mut inv = self.script.prepare_invoke();
        for key in k.script_keys() {
            inv.key(key);
        }
        inv.arg(&me)
            .arg(&rec.encode()[..])
            .arg(now)
            .arg(self.deadline(now))
            .arg(l.peer_timeout.max(1))
            .arg(u8::from(a.left == 0))
            .arg(a.event as u8)
            .arg(numwant)
            .arg(bits)
            .arg(u8::from(who == Asker::Register))
            .arg(u8::from(l.allow_only_registered))
            .arg(l.max_peers_per_torrent)
            .arg(l.poll_grace)
            .arg(u8::from(ids));
        let v: Value = inv.invoke_async(&mut self.conn()).await?;
        let Value::Array(items) = v else {
            return Err(StoreError::Reply("announce: not an array"));
        };
        if matches!(items.first(), Some(Value::BulkString(s)) if s == b"refused") {
            return Ok(Err(Refusal::Unregistered));
        }
        let r = parse(&items)?;
        let index = r.fresh && who == Asker::Register && a.event != Event::Stopped;
        if index || r.first_poll > 0 {
            // Both keys share the `{index}` slot: one pipeline. The due index only ever gets
            // an earlier time here (`LT`): the scan raises it again after claiming.
            let hex = a.info_hash.to_string();
            let mut pipe = redis::pipe();
            if index {
                pipe.sadd(keys::INDEX, &hex).ignore();
            }
            if r.first_poll > 0 {
                pipe.cmd("ZADD")
                    .arg(keys::DUE)
                    .arg("LT")
                    .arg(r.first_poll)
                    .arg(&hex)
                    .ignore();
            }
            pipe.exec_async(&mut self.conn()).await?;
        }
        let mut rng = rand::random::<u64>() | 1;
        let mut found = Vec::new();
        for pair in items[12..].chunks_exact(2) {
            let (Value::BulkString(m), Value::BulkString(pr)) = (&pair[0], &pair[1]) else {
                continue;
            };
            let Some(addr) = keys::parse_member(m) else {
                continue;
            };
            let peer_id = PeerRecord::decode(pr).map_or([0; 20], |r| r.peer_id);
            let same_family = addr.is_ipv4() == a.addr.ip().to_canonical().is_ipv4();
            if (ids && peer_id == a.peer_id) || (families == Families::Same && !same_family) {
                continue;
            }
            found.push(Picked { addr, peer_id });
        }
        // A random order of what the script drew, then the number asked for.
        for i in (1..found.len()).rev() {
            found.swap(i, (next_rand(&mut rng) % (i as u64 + 1)) as usize);
        }
        found.truncate(numwant);
        out.extend(found);
        if r.watched {
            self.publish_change(now, a, &k, &rec, &r);
        }
        Ok(Ok(AnnounceOut {
            complete: r.seeders,
            incomplete: r.leechers,
            warning: warning.or(r.warning),
        }))
    }

    /// Tell every node's live feed of this torrent what the announce changed.
    fn publish_change(
        &self,
        now: u32,
        a: &AnnounceIn<'_>,
        k: &TorrentKeys,
        rec: &PeerRecord,
        r: &Reply,
    ) {
        let event = if r.left {
            SwarmEvent::Left(a.addr)
        } else if a.event == Event::Stopped {
            return;
        } else {
            let view = record::view(
                a.addr,
                now,
                rec,
                r.asker_bits.as_ref(),
                0,
                r.pieces,
                r.stride,
            );
            SwarmEvent::Peer {
                at: now,
                peer: Arc::new(view),
            }
        };
        self.publish(k, &event);
    }
}

fn int(v: &Value) -> Result<i64, StoreError> {
    match v {
        Value::Int(i) => Ok(*i),
        _ => Err(StoreError::Reply("announce: expected an integer")),
    }
}

fn bytes(v: &Value) -> &[u8] {
    match v {
        Value::BulkString(b) => b,
        _ => &[],
    }
}

fn parse(items: &[Value]) -> Result<Reply, StoreError> {
    if items.len() < 12 || bytes(&items[0]) != b"ok" {
        return Err(StoreError::Reply("announce: short reply"));
    }
    let num = |v: &Value| std::str::from_utf8(bytes(v)).ok()?.parse::<u64>().ok();
    Ok(Reply {
        seeders: int(&items[1])?.clamp(0, i64::from(u32::MAX)) as u32,
        leechers: int(&items[2])?.clamp(0, i64::from(u32::MAX)) as u32,
        warning: match bytes(&items[4]) {
            b"length" => Some("bitfield ignored: wrong length for this torrent"),
            b"spare" => Some("bitfield ignored: spare bits set"),
            _ => None,
        },
        fresh: int(&items[5])? == 1,
        watched: int(&items[6])? == 1,
        asker_bits: BitsRecord::decode(bytes(&items[7])),
        pieces: num(&items[8]).and_then(|n| u32::try_from(n).ok()),
        stride: num(&items[9]).unwrap_or(0) as usize,
        left: int(&items[10])? == 1,
        first_poll: int(&items[11])?.clamp(0, i64::from(u32::MAX)) as u32,
    })
}
