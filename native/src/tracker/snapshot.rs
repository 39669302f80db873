//! Registry persistence: `registry.snapshot` in the state directory, written atomically (temp
//! file, fsync, rename, fsync of the directory) and loaded at start.
//!
//! Format: the magic `ENJTRK01`, a postcard body, then a CRC-32C of the body (4 bytes, little
//! endian). A file that fails any check is renamed `registry.snapshot.corrupt-<unix time>` and
//! reported; it is never fatal. Peers older than the peer timeout are dropped on load.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use enjambre_core::InfoHash;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::bits::{Have, NewBits, Source};
use super::peers::{Event, IpBytes, Peer, PeerSet};
use super::registry::Registry;

const MAGIC: &[u8; 8] = b"ENJTRK01";
const FILE: &str = "registry.snapshot";
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

#[derive(Serialize, Deserialize)]
struct Snap {
    saved_at: u32,
    swarms: Vec<SwarmSnap>,
}

#[derive(Serialize, Deserialize)]
struct SwarmSnap {
    info_hash: [u8; 20],
    completed: u64,
    pieces: Option<u32>,
    stride: u32,
    peers: Vec<PeerSnap>,
}

#[derive(Serialize, Deserialize)]
struct PeerSnap {
    ip: Vec<u8>,
    port: u16,
    peer_id: [u8; 20],
    uploaded: u64,
    downloaded: u64,
    left: u64,
    last_seen: u32,
    event: u8,
    flags: u8,
    /// 0 unknown, 1 none, 2 all, 3 some (then `bits`).
    have: u8,
    source: u8,
    have_at: u32,
    poll_fails: u8,
    bits: Vec<u8>,
}

/// The snapshot's path in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

fn peers_of<I: IpBytes>(set: &PeerSet<I>, arena: &super::bits::Arena, out: &mut Vec<PeerSnap>) {
    for p in &set.peers {
        out.push(PeerSnap {
            ip: p.ip.octets().to_vec(),
            port: p.port,
            peer_id: p.peer_id,
            uploaded: p.uploaded,
            downloaded: p.downloaded,
            left: p.left,
            last_seen: p.last_seen,
            event: p.event as u8,
            flags: p.flags,
            have: p.have as u8,
            source: p.source as u8,
            have_at: p.have_at,
            poll_fails: p.poll_fails,
            bits: if p.have == Have::Some {
                arena.slot(p.slot).to_vec()
            } else {
                Vec::new()
            },
        });
    }
}

/// Encode the registry (call with the lock held; the bytes are written without it).
pub fn encode(reg: &Registry, now: u32) -> Vec<u8> {
    let mut snap = Snap {
        saved_at: now,
        swarms: Vec::with_capacity(reg.swarms.len()),
    };
    for (ih, s) in &reg.swarms {
        let mut peers = Vec::with_capacity(s.len());
        peers_of(&s.v4, &s.arena, &mut peers);
        peers_of(&s.v6, &s.arena, &mut peers);
        snap.swarms.push(SwarmSnap {
            info_hash: ih.0,
            completed: s.completed,
            pieces: s.pieces,
            stride: s.arena.stride() as u32,
            peers,
        });
    }
    let body = postcard::to_allocvec(&snap).unwrap_or_default();
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&body);
    out.extend_from_slice(&CRC.checksum(&body).to_le_bytes());
    out
}

/// Write `bytes` to the snapshot in `dir` atomically.
pub fn write(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path(dir))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Why a snapshot was not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapError {
    Magic,
    Checksum,
    Body,
}

impl std::fmt::Display for SnapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SnapError::Magic => "not an enjambre registry snapshot (bad magic)",
            SnapError::Checksum => "checksum mismatch",
            SnapError::Body => "undecodable body",
        })
    }
}

/// Decode snapshot bytes into `reg`; returns (swarms, peers) loaded.
pub fn decode_into(
    bytes: &[u8],
    reg: &mut Registry,
    now: u32,
) -> Result<(usize, usize), SnapError> {
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(SnapError::Magic)?;
    if body.len() < 4 {
        return Err(SnapError::Checksum);
    }
    let (body, crc) = body.split_at(body.len() - 4);
    if CRC.checksum(body).to_le_bytes() != crc {
        return Err(SnapError::Checksum);
    }
    let snap: Snap = postcard::from_bytes(body).map_err(|_| SnapError::Body)?;
    let deadline = now.saturating_sub(reg.limits.peer_timeout);
    let max_pieces = reg.limits.max_pieces;
    let (mut swarms, mut peers) = (0, 0);
    let hasher = reg.hasher;
    let (max_per_torrent, max_total) = (reg.limits.max_peers_per_torrent, reg.limits.max_peers);
    let mut total = reg.peer_total;
    for ss in snap.swarms {
        let ih = InfoHash(ss.info_hash);
        let Ok(swarm) = reg.swarm_mut(ih) else {
            continue;
        };
        swarms += 1;
        swarm.completed = swarm.completed.max(ss.completed);
        if swarm.pieces.is_none() && (ss.stride as u64) * 8 <= u64::from(max_pieces) + 7 {
            if let Some(n) = ss
                .pieces
                .filter(|&n| (n as usize).div_ceil(8) == ss.stride as usize)
            {
                swarm.pieces = Some(n);
            }
            if ss.stride > 0 {
                swarm.arena.set_stride(ss.stride as usize);
            }
        }
        for p in ss.peers {
            if p.last_seen < deadline || p.last_seen > now.saturating_add(86_400) {
                continue;
            }
            if swarm.len() >= max_per_torrent || total >= max_total {
                break;
            }
            let bits = match p.have {
                1 => Some(NewBits::None),
                2 => Some(NewBits::All),
                3 if swarm.arena.check(&p.bits, swarm.pieces, max_pieces).is_ok()
                    && !p.bits.is_empty() =>
                {
                    Some(NewBits::Bytes(p.bits.clone()))
                }
                _ => None,
            };
            let (have, slot) = match &bits {
                Some(b) => swarm.arena.store(b, swarm.pieces),
                None => (Have::Unknown, u32::MAX),
            };
            let addr = match p.ip.len() {
                4 => SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(p.ip[0], p.ip[1], p.ip[2], p.ip[3])),
                    p.port,
                ),
                16 => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(&p.ip);
                    SocketAddr::new(IpAddr::V6(Ipv6Addr::from(o)), p.port)
                }
                _ => continue,
            };
            let seed = p.left == 0;
            let inserted = match addr {
                SocketAddr::V4(a) => {
                    restore(&mut swarm.v4, &hasher, a.ip().octets(), &p, have, slot, now)
                }
                SocketAddr::V6(a) => {
                    restore(&mut swarm.v6, &hasher, a.ip().octets(), &p, have, slot, now)
                }
            };
            if inserted {
                peers += 1;
                total += 1;
                if seed {
                    swarm.seeders += 1;
                } else {
                    swarm.leechers += 1;
                }
            } else {
                swarm.arena.release(have, slot);
            }
        }
    }
    reg.peer_total = reg.swarms.values().map(|s| s.len()).sum();
    Ok((swarms, peers))
}

fn restore<I: IpBytes>(
    set: &mut PeerSet<I>,
    hasher: &hashbrown::DefaultHashBuilder,
    ip: I,
    p: &PeerSnap,
    have: Have,
    slot: u32,
    now: u32,
) -> bool {
    if set.find(hasher, ip, p.port).is_some() {
        return false;
    }
    set.insert(
        hasher,
        Peer {
            ip,
            port: p.port,
            event: Event::from_u8(p.event),
            have,
            source: if p.source == 1 {
                Source::Poll
            } else {
                Source::Report
            },
            poll_fails: p.poll_fails,
            flags: p.flags,
            peer_id: p.peer_id,
            uploaded: p.uploaded,
            downloaded: p.downloaded,
            left: p.left,
            last_seen: p.last_seen,
            have_at: p.have_at,
            next_poll: now,
            slot,
        },
    );
    true
}

/// Load the snapshot in `dir` into `reg`. A corrupt file is set aside with a warning.
pub fn load(dir: &Path, reg: &mut Registry, now: u32) {
    let p = path(dir);
    let bytes = match fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            warn!(path = %p.display(), error = %e, "cannot read registry snapshot; starting empty");
            return;
        }
    };
    match decode_into(&bytes, reg, now) {
        Ok((swarms, peers)) => {
            info!(path = %p.display(), swarms, peers, "registry snapshot loaded")
        }
        Err(e) => {
            let aside = dir.join(format!("{FILE}.corrupt-{now}"));
            let moved = fs::rename(&p, &aside);
            warn!(
                path = %p.display(),
                error = %e,
                set_aside = %aside.display(),
                moved = moved.is_ok(),
                "corrupt registry snapshot set aside; starting empty"
            );
        }
    }
}
