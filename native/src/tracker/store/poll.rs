//! The poller's bookkeeping in the store: which peers this node must poll now (its share by
//! rendezvous hashing of their IP address over the live nodes, those whose next poll is due),
//! and what a poll taught. One node polls every peer of an address, so the politeness rules
//! that a single poller keeps per address (spacing, one poll at a time) hold across nodes.
//!
//! Each peer's next poll time is shared, and a node claims its due peers of a torrent with one
//! script (`claim.lua`) that checks and pushes that time in one step: while a node joins or
//! leaves, two nodes may both take a peer for theirs, but only the first to claim it polls it in
//! that interval, and the new owner polls it once it is due (no gap but the heartbeat's delay).

use std::collections::HashMap;
use std::sync::Arc;

use enjambre_core::InfoHash;
use redis::Value;

use super::keys::{self, TorrentKeys};
use super::record::{self, BitsRecord, PeerRecord, KIND_ALL, KIND_BYTES, KIND_NONE};
use super::rendezvous::owner;
use super::{Store, StoreError};
use crate::tracker::bits::{Arena, Have, NewBits, Source};
use crate::tracker::registry::{PollTarget, SwarmEvent};

/// A torrent's piece count and bitfield stride, when known.
type Meta = (Option<u32>, Option<usize>);

/// Due torrents read per scan: a scan stops early anyway once it has `max` peers.
const DUE_TORRENTS_PER_SCAN: usize = 1024;

/// The members of the sorted set `key` scored `now` or earlier, at most `limit`.
fn due_by(key: &str, now: u32, limit: usize) -> redis::Cmd {
    let mut cmd = redis::cmd("ZRANGEBYSCORE");
    cmd.arg(key)
        .arg("-inf")
        .arg(now)
        .arg("LIMIT")
        .arg(0)
        .arg(limit);
    cmd
}

/// A score in a script's reply: a number as text, or nothing (`None`).
fn score(v: Option<&Value>) -> Option<f64> {
    match v {
        Some(Value::BulkString(b)) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// A peer's poll entry: when it is next due, and its consecutive failed polls.
pub fn parse_entry(v: &[u8]) -> (u32, u8) {
    let s = std::str::from_utf8(v).unwrap_or("");
    let (next, fails) = s.split_once(':').unwrap_or((s, "0"));
    (next.parse().unwrap_or(0), fails.parse().unwrap_or(0))
}

impl Store {
    fn poll_step(&self) -> u32 {
        self.limits
            .poll_interval
            .map_or(60, |d| (d.as_secs_f64().ceil() as u32).max(1))
    }

    /// Collect up to `max` peers of this node's share that are due for a poll, and push their
    /// next poll out by one interval. Nothing while this node is cut off from the store.
    ///
    /// Reads only what is due: the torrents whose earliest next poll has come (`keys::DUE`),
    /// and of each, the peers whose next poll has come (`TorrentKeys::due`); never the whole
    /// registry. After claiming, the torrent is rescored with its new earliest next poll, then
    /// that earliest time is read again: an announce that added a peer meanwhile lowered the
    /// score after this write (it writes after its script) or is seen by the read, so no due
    /// peer is left unindexed.
    pub async fn due_polls(
        &self,
        now: u32,
        max: usize,
        out: &mut Vec<PollTarget>,
    ) -> Result<(), StoreError> {
        let Some(live) = self.nodes.as_ref().and_then(|n| n.live()) else {
            return Ok(());
        };
        let me = self.nodes.as_ref().map(|n| n.id.as_str()).unwrap_or("");
        let step = self.poll_step();
        let dl = self.deadline(now);
        let hexes: Vec<String> = due_by(keys::DUE, now, DUE_TORRENTS_PER_SCAN)
            .query_async(&mut self.conn())
            .await?;
        for hex in hexes {
            if out.len() >= max {
                break;
            }
            let Some(ih) = InfoHash::from_hex(&hex) else {
                redis::cmd("ZREM")
                    .arg(keys::DUE)
                    .arg(&hex)
                    .exec_async(&mut self.conn())
                    .await?;
                continue;
            };
            let k = TorrentKeys::of(&ih);
            // Other nodes' due peers come first as often as this node's: read as many more as
            // there are nodes.
            let want = (max - out.len()).saturating_mul(live.len().max(1));
            let (members, (pieces, stride)): (Vec<Vec<u8>>, Meta) = redis::pipe()
                .add_command(due_by(&k.due, now, want))
                .hmget(&k.meta, &["pieces", "stride"])
                .query_async(&mut self.conn())
                .await?;
            let stride = stride.unwrap_or(0);
            // Shares go by IP address: all polls to one address come from one node, which
            // spaces them (`--poll-spacing`) as a single tracker does. Members that no longer
            // parse are handed to the script too, which drops them from the due set.
            let mine = members.iter().filter(|m| {
                keys::parse_member(m).is_none_or(|a| {
                    owner(&live, a.ip().to_canonical().to_string().as_bytes()) == Some(me)
                })
            });
            let mut inv = self.claim_script.prepare_invoke();
            inv.key(&k.fails)
                .key(&k.seeders)
                .key(&k.leechers)
                .key(&k.due)
                .key(&k.bits);
            inv.arg(now).arg(step).arg(dl);
            let mut any = false;
            for m in mine.take(max - out.len()) {
                inv.arg(m.as_slice());
                any = true;
            }
            // With nothing of this node's due, the torrent's score is left to the nodes whose
            // peers are due (or to the next scan, once the shares move).
            let earliest = if any {
                let v: Vec<Value> = inv.invoke_async(&mut self.conn()).await?;
                let before = out.len();
                for c in v.get(1..).unwrap_or(&[]).chunks_exact(3) {
                    let (Value::BulkString(m), Value::Int(seed)) = (&c[0], &c[1]) else {
                        continue;
                    };
                    let Some(addr) = keys::parse_member(m) else {
                        continue;
                    };
                    let b = match &c[2] {
                        Value::BulkString(b) => BitsRecord::decode(b),
                        _ => None,
                    };
                    if needs_poll(*seed == 1, b.as_ref(), pieces, now, step) {
                        out.push(PollTarget {
                            info_hash: ih,
                            addr,
                            stride,
                        });
                    }
                }
                if out.len() > before {
                    self.lock_pieces().insert(ih, (pieces, stride));
                }
                Some(score(v.first()))
            } else if members.is_empty() {
                Some(self.earliest(&k).await?)
            } else {
                None
            };
            if let Some(earliest) = earliest {
                self.rescore(&hex, &k, earliest).await?;
            }
        }
        Ok(())
    }

    /// The earliest next poll in a torrent's due set (`None` when it has none).
    async fn earliest(&self, k: &TorrentKeys) -> Result<Option<f64>, StoreError> {
        let first: Vec<(Vec<u8>, f64)> = redis::cmd("ZRANGE")
            .arg(&k.due)
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .query_async(&mut self.conn())
            .await?;
        Ok(first.first().map(|f| f.1))
    }

    /// Set a torrent's score in the due index to `earliest` (or drop it when nothing is left to
    /// poll), then read its earliest next poll again and lower the score if an announce added
    /// an earlier one in between.
    async fn rescore(
        &self,
        hex: &str,
        k: &TorrentKeys,
        earliest: Option<f64>,
    ) -> Result<(), StoreError> {
        let mut cmd = redis::cmd(if earliest.is_some() { "ZADD" } else { "ZREM" });
        cmd.arg(keys::DUE);
        if let Some(t) = earliest {
            cmd.arg(t);
        }
        cmd.arg(hex).exec_async(&mut self.conn()).await?;
        if let Some(again) = self.earliest(k).await? {
            if earliest.is_none_or(|t| again < t) {
                redis::cmd("ZADD")
                    .arg(keys::DUE)
                    .arg("LT")
                    .arg(again)
                    .arg(hex)
                    .exec_async(&mut self.conn())
                    .await?;
            }
        }
        Ok(())
    }

    fn lock_pieces(&self) -> std::sync::MutexGuard<'_, HashMap<InfoHash, (Option<u32>, usize)>> {
        self.poll_pieces.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a poll: `Ok(bits)` learned (checked against the torrent's piece count), or
    /// `Err(why)`: the peer keeps its last known bitfield and is backed off.
    pub async fn record_poll(
        &self,
        now: u32,
        t: &PollTarget,
        result: Result<NewBits, &'static str>,
    ) -> Result<(), StoreError> {
        let (pieces, stride) = self
            .lock_pieces()
            .get(&t.info_hash)
            .copied()
            .unwrap_or((None, 0));
        let learned = result.ok().and_then(|bits| {
            let (kind, bytes) = match bits {
                NewBits::None => (KIND_NONE, Vec::new()),
                NewBits::All => (KIND_ALL, Vec::new()),
                NewBits::Bytes(b) => {
                    let mut arena = Arena::default();
                    if stride > 0 {
                        arena.set_stride(stride);
                    }
                    arena.check(&b, pieces, self.limits.max_pieces).ok()?;
                    (KIND_BYTES, b)
                }
            };
            Some(BitsRecord {
                source: Source::Poll,
                at: now,
                kind,
                bytes,
            })
        });
        let k = TorrentKeys::of(&t.info_hash);
        let me = keys::member(t.addr);
        let rec = learned.as_ref().map(BitsRecord::encode).unwrap_or_default();
        let mut inv = self.poll_script.prepare_invoke();
        for key in [
            &k.seeders,
            &k.leechers,
            &k.peers,
            &k.bits,
            &k.fails,
            &k.watched,
        ] {
            inv.key(key);
        }
        inv.key(&k.due);
        inv.arg(&me).arg(rec).arg(now).arg(self.poll_step());
        let v: Vec<Value> = inv.invoke_async(&mut self.conn()).await?;
        let int = |i: usize| match v.get(i) {
            Some(Value::Int(n)) => *n,
            _ => 0,
        };
        if int(0) == 1 && int(1) == 1 {
            let peer = match v.get(2) {
                Some(Value::BulkString(b)) => PeerRecord::decode(b),
                _ => None,
            };
            if let Some(peer) = peer {
                let bits = match &learned {
                    Some(b) => Some(b.clone()),
                    None => self.bits_of(&k, &me).await?,
                };
                let fails = int(4).clamp(0, 255) as u8;
                let view = record::view(
                    t.addr,
                    int(3) as u32,
                    &peer,
                    bits.as_ref(),
                    fails,
                    pieces,
                    stride,
                );
                let event = SwarmEvent::Peer {
                    at: now,
                    peer: Arc::new(view),
                };
                self.publish(&k, &event);
            }
        }
        Ok(())
    }

    async fn bits_of(&self, k: &TorrentKeys, me: &str) -> Result<Option<BitsRecord>, StoreError> {
        let b: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(&k.bits)
            .arg(me)
            .query_async(&mut self.conn())
            .await?;
        Ok(b.and_then(|b| BitsRecord::decode(&b)))
    }
}

/// Whether polling could teach anything (as in the in-memory registry): not for a seed once the
/// piece count is known or it said HaveAll to a poll, nor for a peer whose own report is younger
/// than one poll interval.
fn needs_poll(
    seed: bool,
    bits: Option<&BitsRecord>,
    pieces: Option<u32>,
    now: u32,
    step: u32,
) -> bool {
    let have = bits.map_or(Have::Unknown, |b| b.have(pieces));
    let source = bits.map(|b| b.source);
    if seed {
        return pieces.is_none() && !(source == Some(Source::Poll) && have == Have::All);
    }
    let fresh_report = source == Some(Source::Report)
        && have != Have::Unknown
        && now.saturating_sub(bits.map_or(0, |b| b.at)) <= step;
    !fresh_report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_entries_read_back() {
        assert_eq!(parse_entry(b"1800000000:3"), (1_800_000_000, 3));
        assert_eq!(parse_entry(b"12"), (12, 0));
        assert_eq!(parse_entry(b"junk"), (0, 0));
    }

    #[test]
    fn seeds_and_fresh_reports_are_not_polled() {
        let report = BitsRecord {
            source: Source::Report,
            at: 100,
            kind: KIND_BYTES,
            bytes: vec![0x80],
        };
        assert!(
            !needs_poll(true, None, Some(8), 100, 30),
            "a seed of a known count"
        );
        assert!(
            needs_poll(true, None, None, 100, 30),
            "a seed tells the count"
        );
        assert!(!needs_poll(false, Some(&report), Some(8), 120, 30));
        assert!(
            needs_poll(false, Some(&report), Some(8), 131, 30),
            "a stale report"
        );
        assert!(needs_poll(false, None, Some(8), 100, 30));
    }
}
