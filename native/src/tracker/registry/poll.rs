//! The poller's bookkeeping: which peers are due, and what a poll taught.

use super::event::{emit, peer_changed};
use super::swarm::{learn_count_from_seed, with_family};
use super::{PollTarget, Registry};
use crate::tracker::bits::{Have, NewBits, Source};
use crate::tracker::peers::{IpBytes, Peer};

impl Registry {
    /// Collect up to `max` peers due for a poll, and push their next poll out by one interval.
    /// Peers whose pieces are known without a poll are skipped (see [`needs_poll`]).
    pub fn due_polls(&mut self, now: u32, max: usize, out: &mut Vec<PollTarget>) {
        let Some(interval) = self.limits.poll_interval else {
            return;
        };
        let step = (interval.as_secs_f64().ceil() as u32).max(1);
        for (ih, swarm) in self.swarms.iter_mut() {
            let stride = swarm.arena.stride();
            let pieces = swarm.pieces;
            macro_rules! scan {
                ($set:expr) => {
                    for p in $set.peers.iter_mut() {
                        if out.len() >= max {
                            return;
                        }
                        if p.next_poll <= now && p.port != 0 {
                            p.next_poll = now.saturating_add(step);
                            if needs_poll(p, pieces, now, step) {
                                out.push(PollTarget {
                                    info_hash: *ih,
                                    addr: p.addr(),
                                    stride,
                                });
                            }
                        }
                    }
                };
            }
            scan!(swarm.v4);
            scan!(swarm.v6);
        }
    }

    /// Record a poll: `Ok(bits)` learned, or `Err(why)` (peer unreachable or refused; it keeps its
    /// last known bitfield and is backed off).
    pub fn record_poll(&mut self, now: u32, t: &PollTarget, result: Result<NewBits, &'static str>) {
        let step = self
            .limits
            .poll_interval
            .map(|d| (d.as_secs_f64().ceil() as u32).max(1))
            .unwrap_or(60);
        let max_pieces = self.limits.max_pieces;
        let hasher = self.hasher;
        let Some(swarm) = self.swarms.get_mut(&t.info_hash) else {
            return;
        };
        let mut bad = false;
        with_family!(swarm, t.addr.ip(), |set, _other, parts, key| {
            let Some(i) = set.find(&hasher, key, t.addr.port()) else {
                return;
            };
            match result {
                Err(_) => {
                    let p = &mut set.peers[i];
                    p.poll_fails = p.poll_fails.saturating_add(1);
                    // A peer that refused (or is away) is left alone for longer each time,
                    // starting at 10 s however short the interval.
                    let base = step.max(10);
                    let backoff = base
                        .saturating_mul(1 << u32::from(p.poll_fails.min(6) - 1))
                        .clamp(base, 3600.max(base));
                    p.next_poll = now.saturating_add(backoff);
                }
                Ok(bits) => {
                    let is_seed = set.peers[i].is_seed();
                    if let NewBits::Bytes(b) = &bits {
                        if is_seed {
                            learn_count_from_seed(parts.pieces, parts.arena, b, max_pieces);
                        }
                        bad = parts.arena.check(b, *parts.pieces, max_pieces).is_err();
                    }
                    let p = &mut set.peers[i];
                    p.poll_fails = if bad {
                        p.poll_fails.saturating_add(1)
                    } else {
                        0
                    };
                    p.next_poll = now.saturating_add(step);
                    if !bad {
                        parts.learn(p, &bits, Source::Poll, now);
                    }
                }
            }
            let (arena, pieces) = (&*parts.arena, *parts.pieces);
            emit(parts.feed, || {
                peer_changed(&set.peers[i], arena, pieces, now)
            });
        });
        if bad {
            self.refused.bad_bitfield += 1;
        }
    }
}

/// Whether polling `p` could teach the tracker anything: not for a seed (`left=0` is every
/// piece) once the piece count is known or the seed itself said HaveAll, nor for a peer whose
/// own report is younger than one poll interval. Every poll not made is a connection the
/// peer's real swarm does not compete with.
fn needs_poll<I: IpBytes>(p: &Peer<I>, pieces: Option<u32>, now: u32, step: u32) -> bool {
    if p.is_seed() {
        return pieces.is_none() && !(p.source == Source::Poll && p.have == Have::All);
    }
    let fresh_report = p.source == Source::Report
        && p.have != Have::Unknown
        && now.saturating_sub(p.have_at) <= step;
    !fresh_report
}
