//! An announce: the asker inserted, updated or removed, its counters and bitfield, and the
//! peers chosen for it.

use hashbrown::DefaultHashBuilder;

use super::event::{emit, peer_changed, SwarmEvent};
use super::swarm::{learn_count_from_seed, with_family, Parts};
use super::{AnnounceIn, AnnounceOut, Families, Refusal, Refused, Registry};
use crate::tracker::bits::{BitsError, Have, NewBits, Source};
use crate::tracker::config::Limits;
use crate::tracker::peers::{Event, IpBytes, Peer, PeerSet, COUNTED};
use crate::tracker::select::{select, AskerBits, Picked};

/// Whether an announce stores its asker.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Asker {
    /// An ordinary peer: inserted, updated, or removed on `stopped`.
    Register,
    /// A peer nobody can dial yet (a page behind the bridge): it gets the swarm's peers and is
    /// never stored; an unknown swarm is not created for it.
    Unlisted,
}

impl Registry {
    /// Handle one announce: update the registry, then choose peers for the asker into `out`.
    pub fn announce(
        &mut self,
        now: u32,
        a: &AnnounceIn<'_>,
        families: Families,
        out: &mut Vec<Picked>,
    ) -> Result<AnnounceOut, Refusal> {
        self.announce_as(now, a, families, Asker::Register, out)
    }

    /// [`Registry::announce`], storing the asker or not.
    pub fn announce_as(
        &mut self,
        now: u32,
        a: &AnnounceIn<'_>,
        families: Families,
        who: Asker,
        out: &mut Vec<Picked>,
    ) -> Result<AnnounceOut, Refusal> {
        out.clear();
        let unknown = !self.swarms.contains_key(&a.info_hash);
        if unknown && (a.event == Event::Stopped || who == Asker::Unlisted) {
            if self.limits.allow_only_registered {
                self.refused.unregistered += 1;
                return Err(Refusal::Unregistered);
            }
            return Ok(AnnounceOut {
                complete: 0,
                incomplete: 0,
                warning: None,
            });
        }
        let numwant = a
            .numwant
            .unwrap_or(self.limits.numwant_default)
            .min(self.limits.numwant_max) as usize;
        let limits = self.limits.clone();
        let hasher = self.hasher;
        let mut rng = self.rng;
        let mut peer_total = self.peer_total;
        let mut refused = self.refused;
        let mut scratch = std::mem::take(&mut self.scratch);
        let swarm = self.swarm_mut(a.info_hash)?;
        let mut warning = None;
        let ctx = Ctx {
            limits: &limits,
            hasher: &hasher,
            now,
        };
        let (complete, incomplete) = with_family!(swarm, a.addr.ip(), |set, other, parts, key| {
            let asker = match who {
                Asker::Register => ctx.upsert(
                    &mut parts,
                    set,
                    key,
                    a,
                    &mut peer_total,
                    &mut refused,
                    &mut warning,
                ),
                Asker::Unlisted => None,
            };
            if a.event != Event::Stopped {
                let set_ref = &*set;
                scratch.clear();
                let bits = match asker.map(|i| (set_ref.peers[i].have, set_ref.peers[i].slot)) {
                    Some((Have::All, _)) => AskerBits::All,
                    Some((Have::None, _)) => AskerBits::None,
                    Some((Have::Some, slot)) => {
                        scratch.extend_from_slice(parts.arena.slot(slot));
                        AskerBits::Some(&scratch)
                    }
                    _ => AskerBits::Unknown,
                };
                let pc = parts.piece_count();
                select(
                    set_ref,
                    parts.arena,
                    pc,
                    asker,
                    &a.peer_id,
                    bits,
                    numwant,
                    &mut rng,
                    out,
                );
                if families == Families::Both && out.len() < numwant {
                    let want = numwant - out.len();
                    select(
                        &*other,
                        parts.arena,
                        pc,
                        None,
                        &a.peer_id,
                        AskerBits::Unknown,
                        want,
                        &mut rng,
                        out,
                    );
                }
            }
            (*parts.seeders, *parts.leechers)
        });
        let reply = AnnounceOut {
            complete,
            incomplete,
            warning,
        };
        let peers_cap_hit = refused.peers_cap > self.refused.peers_cap;
        self.rng = rng;
        self.peer_total = peer_total;
        self.refused = refused;
        self.scratch = scratch;
        if peers_cap_hit {
            self.warn_caps();
        }
        Ok(reply)
    }
}

struct Ctx<'c> {
    limits: &'c Limits,
    hasher: &'c DefaultHashBuilder,
    now: u32,
}

impl Ctx<'_> {
    /// Insert, update or (on `stopped`) remove the asker; returns its position if it is present.
    #[allow(clippy::too_many_arguments)]
    fn upsert<I: IpBytes>(
        &self,
        parts: &mut Parts<'_>,
        set: &mut PeerSet<I>,
        key: I,
        a: &AnnounceIn<'_>,
        peer_total: &mut usize,
        refused: &mut Refused,
        warning: &mut Option<&'static str>,
    ) -> Option<usize> {
        let port = a.addr.port();
        let found = set.find(self.hasher, key, port);
        if a.event == Event::Stopped {
            if let Some(i) = found {
                let p = set.remove(self.hasher, i);
                parts.forget(&p);
                *peer_total = peer_total.saturating_sub(1);
                emit(parts.feed, || SwarmEvent::Left(p.addr()));
            }
            return None;
        }
        let i = match found {
            Some(i) => {
                let p = &mut set.peers[i];
                let was_seed = p.is_seed();
                let finished = a.left == 0
                    && p.flags & COUNTED == 0
                    && (a.event == Event::Completed || !was_seed);
                if finished {
                    *parts.completed += 1;
                    p.flags |= COUNTED;
                }
                if was_seed != (a.left == 0) {
                    if was_seed {
                        *parts.seeders = parts.seeders.saturating_sub(1);
                        *parts.leechers += 1;
                    } else {
                        *parts.leechers = parts.leechers.saturating_sub(1);
                        *parts.seeders += 1;
                    }
                }
                p.peer_id = a.peer_id;
                p.uploaded = a.uploaded;
                p.downloaded = a.downloaded;
                p.left = a.left;
                p.event = a.event;
                p.last_seen = self.now;
                i
            }
            None => {
                let per_torrent = (*parts.seeders + *parts.leechers) as usize;
                if *peer_total >= self.limits.max_peers
                    || per_torrent >= self.limits.max_peers_per_torrent
                {
                    refused.peers_cap += 1;
                    return None;
                }
                let mut flags = 0;
                if a.left == 0 {
                    // A seed counts as a completion only when it says it just completed.
                    if a.event == Event::Completed {
                        *parts.completed += 1;
                    }
                    flags |= COUNTED;
                    *parts.seeders += 1;
                } else {
                    *parts.leechers += 1;
                }
                *peer_total += 1;
                set.insert(
                    self.hasher,
                    Peer {
                        ip: key,
                        port,
                        event: a.event,
                        have: Have::Unknown,
                        source: Source::Report,
                        poll_fails: 0,
                        flags,
                        peer_id: a.peer_id,
                        uploaded: a.uploaded,
                        downloaded: a.downloaded,
                        left: a.left,
                        last_seen: self.now,
                        have_at: 0,
                        next_poll: self.now.saturating_add(self.limits.poll_grace),
                        slot: u32::MAX,
                    },
                )
            }
        };
        if a.left == 0 {
            // Nothing left to download means every piece, whatever was learned before.
            if let Some(bytes) = a.bitfield {
                learn_count_from_seed(parts.pieces, parts.arena, bytes, self.limits.max_pieces);
            }
            let p = &mut set.peers[i];
            if p.have != Have::All {
                parts.learn(p, &NewBits::All, Source::Report, self.now);
            }
        } else if let Some(bytes) = a.bitfield {
            match parts
                .arena
                .check(bytes, *parts.pieces, self.limits.max_pieces)
            {
                Ok(()) => {
                    let bits = NewBits::Bytes(bytes.to_vec());
                    parts.learn(&mut set.peers[i], &bits, Source::Report, self.now);
                }
                Err(e) => {
                    refused.bad_bitfield += 1;
                    *warning = Some(match e {
                        BitsError::WrongLength => "bitfield ignored: wrong length for this torrent",
                        BitsError::SpareBits => "bitfield ignored: spare bits set",
                        BitsError::TooLarge => "bitfield ignored: too large",
                    });
                }
            }
        } else {
            let p = &mut set.peers[i];
            if p.have == Have::All && p.source == Source::Report {
                // "Every piece" came from an earlier `left=0`; this peer now lacks some.
                parts.arena.release(p.have, p.slot);
                p.have = Have::Unknown;
                p.slot = u32::MAX;
            }
        }
        let (arena, pieces) = (&*parts.arena, *parts.pieces);
        emit(parts.feed, || {
            peer_changed(&set.peers[i], arena, pieces, self.now)
        });
        Some(i)
    }
}
