//! `floor-leech`: the least a BitTorrent leech can do, to measure the machine's floor beside
//! `enjambre get` in the transfer benchmark. One thread, one peer, blocking I/O: handshake,
//! interested, requests in order with a fixed pipeline, and for each `Piece` the payload is
//! hashed in the receive buffer and written from it, the payloads of one read gathered into one
//! `pwritev` (nothing is copied in user space). No resume state, no
//! journal, no choking, no second peer, no recovery from anything: it exits on the first
//! surprise. Not a client; a yardstick.
//!
//! Usage: `floor-leech TORRENT OUT_FILE PEER_ADDR` (single-file torrents).

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::FileExt;

use enjambre_core::metainfo::Metainfo;
use sha1::{Digest, Sha1};

const BLOCK: u32 = 16 * 1024;
const PIPELINE: usize = 64;

fn main() {
    if let Err(e) = run() {
        eprintln!("floor-leech: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [torrent, out, peer] = &args[..] else {
        return Err("usage: floor-leech TORRENT OUT_FILE PEER_ADDR".into());
    };
    let bytes = std::fs::read(torrent).map_err(|e| format!("{torrent}: {e}"))?;
    let meta = Metainfo::parse(&bytes).map_err(|e| e.to_string())?;
    let g = meta.geometry();
    let total = g.total_length();
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(out)
        .map_err(|e| format!("{out}: {e}"))?;
    file.set_len(total).map_err(|e| e.to_string())?;
    let mut sock = TcpStream::connect(peer).map_err(|e| format!("{peer}: {e}"))?;
    sock.set_nodelay(true).map_err(|e| e.to_string())?;

    let mut hs = Vec::with_capacity(68);
    hs.push(19);
    hs.extend_from_slice(b"BitTorrent protocol");
    hs.extend_from_slice(&[0; 8]);
    hs.extend_from_slice(&meta.info_hash.0);
    hs.extend_from_slice(b"-FL0001-000000000000");
    hs.extend_from_slice(&[0, 0, 0, 1, 2]); // interested
    sock.write_all(&hs).map_err(|e| e.to_string())?;
    let mut theirs = [0u8; 68];
    sock.read_exact(&mut theirs).map_err(|e| e.to_string())?;

    // Every block in order: (piece, begin, len).
    let blocks: Vec<(u32, u32, u32)> = (0..g.piece_count())
        .flat_map(|p| {
            let len = g.piece_len(g.piece(p).expect("in range"));
            (0..len.div_ceil(BLOCK)).map(move |b| (p, b * BLOCK, BLOCK.min(len - b * BLOCK)))
        })
        .collect();
    let mut next_request = 0usize;
    let mut received = 0usize;
    let mut unchoked = false;
    let mut hasher = Sha1::new();
    let mut buf = vec![0u8; 128 * 1024];
    let (mut start, mut end) = (0usize, 0usize);
    // A Piece payload being streamed: (piece, offset in piece, bytes left).
    let mut payload: Option<(u32, u32, u32)> = None;
    let mut requests = Vec::with_capacity(PIPELINE * 17);
    while received < blocks.len() {
        if unchoked && next_request < blocks.len() && next_request < received + PIPELINE / 2 {
            requests.clear();
            while next_request < blocks.len() && next_request < received + PIPELINE {
                let (p, b, l) = blocks[next_request];
                requests.extend_from_slice(&[0, 0, 0, 13, 6]);
                for v in [p, b, l] {
                    requests.extend_from_slice(&v.to_be_bytes());
                }
                next_request += 1;
            }
            sock.write_all(&requests).map_err(|e| e.to_string())?;
        }
        if start == end {
            (start, end) = (0, 0);
        } else if start > buf.len() / 2 {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        let n = sock.read(&mut buf[end..]).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the peer closed the connection".into());
        }
        end += n;
        // The payloads of this read: (file offset, range in buf).
        let mut runs: Vec<(u64, std::ops::Range<usize>)> = Vec::new();
        loop {
            if let Some((piece, at, left)) = payload {
                let take = (left as usize).min(end - start);
                if take == 0 {
                    break;
                }
                hasher.update(&buf[start..start + take]);
                let offset = g.piece_offset(g.piece(piece).expect("in range")) + u64::from(at);
                runs.push((offset, start..start + take));
                start += take;
                let left = left - take as u32;
                payload = (left > 0).then_some((piece, at + take as u32, left));
                if left == 0 {
                    received += 1;
                    let p = g.piece(piece).expect("in range");
                    if at + take as u32 == g.piece_len(p) {
                        let digest: [u8; 20] = hasher.finalize_reset().into();
                        if digest != meta.piece_hash(p) {
                            return Err(format!("piece {piece} failed its hash check"));
                        }
                    }
                }
                continue;
            }
            if end - start < 4 {
                break;
            }
            let len = u32::from_be_bytes(buf[start..start + 4].try_into().expect("4 bytes"));
            if len == 0 {
                start += 4;
                continue;
            }
            if end - start < 5 {
                break;
            }
            let id = buf[start + 4];
            if id == 7 {
                if end - start < 13 {
                    break;
                }
                let piece = u32::from_be_bytes(buf[start + 5..start + 9].try_into().expect("4"));
                let begin = u32::from_be_bytes(buf[start + 9..start + 13].try_into().expect("4"));
                start += 13;
                payload = Some((piece, begin, len - 9));
                continue;
            }
            if (len as usize) > buf.len() - 4 {
                return Err(format!("message of {len} bytes"));
            }
            if end - start < 4 + len as usize {
                break;
            }
            if id == 1 {
                unchoked = true;
            }
            start += 4 + len as usize;
        }
        write_runs(&file, &buf, &runs)?;
    }
    Ok(())
}

/// Write the payload runs, one `pwritev` per stretch of consecutive file bytes.
fn write_runs(
    file: &std::fs::File,
    buf: &[u8],
    runs: &[(u64, std::ops::Range<usize>)],
) -> Result<(), String> {
    let mut k = 0;
    while k < runs.len() {
        let first = runs[k].0;
        let mut next = first;
        let mut slices = Vec::new();
        while k < runs.len() && runs[k].0 == next {
            next += runs[k].1.len() as u64;
            slices.push(std::io::IoSlice::new(&buf[runs[k].1.clone()]));
            k += 1;
        }
        let total = (next - first) as usize;
        let written = rustix::io::pwritev(file, &slices, first).map_err(|e| e.to_string())?;
        if written != total {
            // Rare: finish the rest one slice at a time.
            let mut at = first;
            let mut skip = written;
            for s in &slices {
                let s: &[u8] = s;
                if skip >= s.len() {
                    skip -= s.len();
                    at += s.len() as u64;
                    continue;
                }
                file.write_all_at(&s[skip..], at + skip as u64)
                    .map_err(|e| e.to_string())?;
                at += s.len() as u64;
                skip = 0;
            }
        }
    }
    Ok(())
}
