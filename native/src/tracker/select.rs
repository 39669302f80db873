//! Which peers an announce gets back: piece-aware when the asker's bitfield is known (peers
//! holding pieces it lacks, rarest of those first), then a random sample.

use std::net::SocketAddr;

use super::bits::{get_bit, Arena, Have};
use super::peers::{IpBytes, PeerSet};

/// One peer chosen for a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Picked {
    pub addr: SocketAddr,
    pub peer_id: [u8; 20],
}

/// What the asker is known to have.
#[derive(Clone, Copy, Debug)]
pub enum AskerBits<'a> {
    Unknown,
    None,
    All,
    Some(&'a [u8]),
}

/// Peers examined at most by the piece-aware pass, to bound the work per announce.
const MAX_SCORED: usize = 512;

/// A small xorshift64* generator: peer sampling needs speed, not secrecy.
pub fn next_rand(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Choose up to `want` peers of `set` into `out`, never the peer at `asker` nor one whose peer id
/// is `asker_id`, nor any already in `out`.
#[allow(clippy::too_many_arguments)]
pub fn select<I: IpBytes>(
    set: &PeerSet<I>,
    arena: &Arena,
    piece_count: usize,
    asker: Option<usize>,
    asker_id: &[u8; 20],
    bits: AskerBits<'_>,
    want: usize,
    rng: &mut u64,
    out: &mut Vec<Picked>,
) {
    let n = set.peers.len();
    if n == 0 || want == 0 {
        return;
    }
    let limit = out.len() + want;
    let start = (next_rand(rng) % n as u64) as usize;
    let mut chosen: Vec<u32> = Vec::new();
    match bits {
        AskerBits::Unknown => {}
        AskerBits::All => {
            // A seed needs leechers, not other seeds.
            for k in 0..n.min(MAX_SCORED * 4) {
                let i = (start + k) % n;
                let p = &set.peers[i];
                if out.len() >= limit {
                    break;
                }
                if Some(i) != asker && &p.peer_id != asker_id && !p.is_seed() && p.have != Have::All
                {
                    out.push(Picked {
                        addr: p.addr(),
                        peer_id: p.peer_id,
                    });
                    chosen.push(i as u32);
                }
            }
        }
        AskerBits::None | AskerBits::Some(_) => {
            let asker_bytes = match bits {
                AskerBits::Some(b) => b,
                _ => &[],
            };
            let lacks = |piece: usize| !get_bit(asker_bytes, piece);
            // The rarest piece the asker lacks: what a peer with everything is worth.
            let mut rarest_lacked: Option<u32> = None;
            let mut scored: Vec<(u32, u32)> = Vec::new();
            for k in 0..n.min(MAX_SCORED) {
                let i = (start + k) % n;
                let p = &set.peers[i];
                if Some(i) == asker || &p.peer_id == asker_id {
                    continue;
                }
                let score = match p.have {
                    Have::All => *rarest_lacked.get_or_insert_with(|| {
                        (0..piece_count)
                            .filter(|&j| lacks(j))
                            .map(|j| arena.availability(j))
                            .min()
                            .unwrap_or(u32::MAX)
                    }),
                    Have::Some => {
                        let theirs = arena.slot(p.slot);
                        let mut best = u32::MAX;
                        for (byte_i, &b) in theirs.iter().enumerate() {
                            let useful = b & !asker_bytes.get(byte_i).copied().unwrap_or(0);
                            super::bits::for_each_bit(useful, |bit| {
                                best = best.min(arena.availability(byte_i * 8 + bit));
                            });
                        }
                        best
                    }
                    Have::None | Have::Unknown => u32::MAX,
                };
                if score != u32::MAX {
                    scored.push((score, i as u32));
                }
            }
            scored.sort_by_key(|&(score, _)| score);
            for &(_, i) in scored.iter().take(want) {
                let p = &set.peers[i as usize];
                out.push(Picked {
                    addr: p.addr(),
                    peer_id: p.peer_id,
                });
                chosen.push(i);
            }
        }
    }
    chosen.sort_unstable();
    // Random fill.
    for k in 0..n {
        if out.len() >= limit {
            break;
        }
        let i = (start + k) % n;
        let p = &set.peers[i];
        if Some(i) == asker || &p.peer_id == asker_id || chosen.binary_search(&(i as u32)).is_ok() {
            continue;
        }
        out.push(Picked {
            addr: p.addr(),
            peer_id: p.peer_id,
        });
    }
}
