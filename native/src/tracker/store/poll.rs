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

type Hash = HashMap<Vec<u8>, Vec<u8>>;

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
        let hexes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys::INDEX)
            .query_async(&mut self.conn())
            .await?;
        for hex in hexes {
            if out.len() >= max {
                break;
            }
            let Some(ih) = InfoHash::from_hex(&hex) else {
                continue;
            };
            let k = TorrentKeys::of(&ih);
            type Scan = (
                Vec<Vec<u8>>,
                Vec<Vec<u8>>,
                Hash,
                Hash,
                (Option<u32>, Option<usize>),
            );
            let (seeders, leechers, fails, bits, (pieces, stride)): Scan = redis::pipe()
                .zrangebyscore(&k.seeders, dl, "+inf")
                .zrangebyscore(&k.leechers, dl, "+inf")
                .hgetall(&k.fails)
                .hgetall(&k.bits)
                .hmget(&k.meta, &["pieces", "stride"])
                .query_async(&mut self.conn())
                .await?;
            let stride = stride.unwrap_or(0);
            // This node's due peers as read; the claim script then takes, in one step, those
            // no other node claimed meanwhile.
            let mut due: Vec<(&[u8], bool)> = Vec::new();
            let all = seeders.iter().map(|m| (m, true));
            for (m, seed) in all.chain(leechers.iter().map(|m| (m, false))) {
                if out.len() + due.len() >= max {
                    break;
                }
                let Some(addr) = keys::parse_member(m) else {
                    continue;
                };
                // Shares go by IP address: all polls to one address come from one node, which
                // spaces them (`--poll-spacing`) as a single tracker does.
                if owner(&live, addr.ip().to_canonical().to_string().as_bytes()) != Some(me) {
                    continue;
                }
                let (next, _) = fails.get(m).map_or((0, 0), |e| parse_entry(e));
                if next <= now {
                    due.push((m, seed));
                }
            }
            if due.is_empty() {
                continue;
            }
            let mut inv = self.claim_script.prepare_invoke();
            inv.key(&k.fails).key(&k.seeders).key(&k.leechers);
            inv.arg(now).arg(step);
            for (m, _) in &due {
                inv.arg(*m);
            }
            let seeds: std::collections::HashSet<&[u8]> =
                due.iter().filter(|d| d.1).map(|d| d.0).collect();
            let claimed: Vec<Vec<u8>> = inv.invoke_async(&mut self.conn()).await?;
            for m in claimed {
                let Some(addr) = keys::parse_member(&m) else {
                    continue;
                };
                let seed = seeds.contains(m.as_slice());
                let b = bits.get(&m).and_then(|b| BitsRecord::decode(b));
                if needs_poll(seed, b.as_ref(), pieces, now, step) {
                    out.push(PollTarget {
                        info_hash: ih,
                        addr,
                        stride,
                    });
                    self.lock_pieces().insert(ih, (pieces, stride));
                }
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
