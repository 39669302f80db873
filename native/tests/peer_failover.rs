//! Failover (R7–R9): a scripted seed stops in the middle of a `Piece` message; the leech keeps
//! the bytes it got, asks another seed for the rest of that block from the exact byte, and the
//! bytes delivered for that piece add up to exactly its length. Both seeds are scripted here, so
//! every request and every byte sent is on record.

mod peer_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use peer_support::{data, enjambre, run};

const PIECE: usize = 65536;
const PIECES: usize = 4;
/// Payload bytes seed A sends of the block it is cut in.
const CUT_AFTER: usize = 5000;

/// What a scripted seed did: each request received, and each byte range actually sent.
#[derive(Default, Debug)]
struct Log {
    requests: Vec<(u32, u32, u32)>,
    sent: Vec<(u32, u32, u32)>,
}

fn read_exact(s: &mut TcpStream, n: usize) -> Option<Vec<u8>> {
    let mut b = vec![0; n];
    s.read_exact(&mut b).ok()?;
    Some(b)
}

/// Serve one connection: handshake, bitfield, unchoke, then answer requests. A cutting seed
/// sends `CUT_AFTER` bytes of its first block and closes.
fn serve(mut s: TcpStream, info_hash: [u8; 20], content: &[u8], log: &Mutex<Log>, cut: bool) {
    let Some(hs) = read_exact(&mut s, 68) else {
        return;
    };
    assert_eq!(&hs[1..20], b"BitTorrent protocol");
    assert_eq!(hs[28..48], info_hash);
    let mut ours = vec![19u8];
    ours.extend_from_slice(b"BitTorrent protocol");
    ours.extend_from_slice(&[0; 8]);
    ours.extend_from_slice(&info_hash);
    ours.extend_from_slice(if cut {
        b"-XX0001-cutcutcutcut"
    } else {
        b"-XX0001-goodgoodgood"
    });
    // Bitfield (all four pieces: 0xf0), then unchoke.
    ours.extend_from_slice(&[0, 0, 0, 2, 5, 0xf0, 0, 0, 0, 1, 1]);
    if s.write_all(&ours).is_err() {
        return;
    }
    loop {
        let Some(len) = read_exact(&mut s, 4) else {
            return;
        };
        let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
        if len == 0 {
            continue;
        }
        let Some(body) = read_exact(&mut s, len) else {
            return;
        };
        if body[0] != 6 || len != 13 {
            continue;
        }
        let word = |i: usize| u32::from_be_bytes(body[i..i + 4].try_into().unwrap());
        let (index, begin, length) = (word(1), word(5), word(9));
        log.lock().unwrap().requests.push((index, begin, length));
        let at = index as usize * PIECE + begin as usize;
        let payload = &content[at..at + length as usize];
        let mut msg = Vec::with_capacity(13 + payload.len());
        msg.extend_from_slice(&(9 + length).to_be_bytes());
        msg.push(7);
        msg.extend_from_slice(&index.to_be_bytes());
        msg.extend_from_slice(&begin.to_be_bytes());
        if cut {
            msg.extend_from_slice(&payload[..CUT_AFTER]);
            let _ = s.write_all(&msg);
            log.lock()
                .unwrap()
                .sent
                .push((index, begin, CUT_AFTER as u32));
            let _ = s.flush();
            // Close in the middle of the message.
            return;
        }
        msg.extend_from_slice(payload);
        if s.write_all(&msg).is_err() {
            return;
        }
        log.lock().unwrap().sent.push((index, begin, length));
    }
}

/// Start a scripted seed on `ip`; it accepts `accepts` connections, serving each in turn, and
/// (with `after`) only once that other seed has sent something. Until then connections wait in
/// the listen backlog, unanswered.
fn scripted_seed(
    ip: &str,
    info_hash: [u8; 20],
    content: Arc<Vec<u8>>,
    cut: bool,
    accepts: usize,
    after: Option<Arc<Mutex<Log>>>,
) -> (u16, Arc<Mutex<Log>>) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Log::default()));
    let l = log.clone();
    std::thread::spawn(move || {
        if let Some(other) = after {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while other.lock().unwrap().sent.is_empty() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        for _ in 0..accepts {
            let Ok((s, _)) = listener.accept() else {
                return;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            serve(s, info_hash, &content, &l, cut);
        }
        // Dropping the listener refuses any later connection.
    });
    (port, log)
}

#[test]
fn a_seed_cut_mid_piece_is_replaced_from_the_exact_byte() {
    let dir = tempfile::tempdir().unwrap();
    let content = Arc::new(data(PIECE * PIECES, 33));
    let file = dir.path().join("f.bin");
    std::fs::write(&file, content.as_slice()).unwrap();
    let torrent = dir.path().join("f.torrent");
    let o = run(
        enjambre()
            .arg("create")
            .arg(&file)
            .arg("-o")
            .arg(&torrent)
            .args(["--piece-length", &PIECE.to_string()]),
        Duration::from_secs(20),
    );
    assert!(o.status.success());
    let hex = String::from_utf8_lossy(&o.stdout)
        .rsplit("info-hash ")
        .next()
        .unwrap()
        .trim()
        .to_string();
    let mut info_hash = [0u8; 20];
    for (i, b) in info_hash.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }

    // Seed A cuts its first block and never comes back; seed B answers only after that.
    let (port_a, log_a) = scripted_seed("127.0.0.5", info_hash, content.clone(), true, 1, None);
    let (port_b, log_b) = scripted_seed(
        "127.0.0.7",
        info_hash,
        content.clone(),
        false,
        4,
        Some(log_a.clone()),
    );
    let out = dir.path().join("out");
    let o = run(
        enjambre()
            .arg("get")
            .arg(&torrent)
            .arg("-o")
            .arg(&out)
            .args([
                "--listen",
                "127.0.0.6",
                "--port",
                "0",
                "--peer",
                &format!("127.0.0.5:{port_a}"),
                "--peer",
                &format!("127.0.0.7:{port_b}"),
            ]),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read(out.join("f.bin")).unwrap() == *content,
        "result differs"
    );

    let a = log_a.lock().unwrap();
    let b = log_b.lock().unwrap();
    let (cut_piece, cut_begin, _) = a.sent[0];
    eprintln!(
        "A requests {:?} sent {:?}; B first requests {:?}",
        a.requests,
        a.sent,
        &b.requests[..4]
    );
    // Every byte of the torrent was delivered exactly once, across both seeds.
    let mut covered = vec![0u8; PIECE * PIECES];
    for &(index, begin, len) in a.sent.iter().chain(b.sent.iter()) {
        for c in &mut covered[index as usize * PIECE + begin as usize..][..len as usize] {
            *c += 1;
        }
    }
    assert!(
        covered.iter().all(|&c| c == 1),
        "some bytes were sent twice or never: {:?}",
        b.requests
    );
    // The cut block continued from the exact byte where A stopped.
    let resume_at = cut_begin + CUT_AFTER as u32;
    assert!(
        b.requests
            .iter()
            .any(|&(i, begin, _)| i == cut_piece && begin == resume_at),
        "no request for piece {cut_piece} at byte {resume_at}: {:?}",
        b.requests
    );
    let piece_bytes: u32 = a
        .sent
        .iter()
        .chain(b.sent.iter())
        .filter(|r| r.0 == cut_piece)
        .map(|r| r.2)
        .sum();
    assert_eq!(
        piece_bytes as usize, PIECE,
        "bytes delivered for the cut piece add up to its length"
    );
}
