//! The poller and a peer that requires encryption: the peer closes the plaintext handshake,
//! the poller dials again with MSE, and the bitfield it reads through RC4 is recorded.

mod tracker_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use enjambre_core::mse::{Methods, Responder};
use enjambre_core::wire::{Extensions, Handshake, HANDSHAKE_LEN};
use enjambre_core::{InfoHash, PeerId};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracker_support::*;

/// Counts of what the peer saw: plaintext handshakes closed, key exchanges completed.
#[derive(Default)]
struct Seen {
    plaintext_closed: AtomicUsize,
    encrypted: AtomicUsize,
}

/// Answer one connection as a peer that requires RC4 and has pieces 0 and 2 of 12.
async fn answer(mut s: TcpStream, ih: InfoHash, seen: Arc<Seen>) -> Option<()> {
    let mut buf = [0u8; 2048];
    let mut n = s.read(&mut buf).await.ok()?;
    if n == 0 {
        return None;
    }
    if buf[0] == 19 {
        seen.plaintext_closed.fetch_add(1, Ordering::SeqCst);
        return None;
    }
    let req2: [u8; 20] = Sha1::new()
        .chain_update(b"req2")
        .chain_update(ih.0)
        .finalize()
        .into();
    let mut hs = Responder::new([0x3c; 20], 77, Methods::RC4, false);
    loop {
        hs.receive(&buf[..n], |asked| (*asked == req2).then_some(ih.0))
            .ok()?;
        let out = hs.transmit().to_vec();
        s.write_all(&out).await.ok()?;
        hs.sent(out.len());
        if hs.is_done() {
            break;
        }
        n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
    }
    let e = hs.established()?;
    let (mut dec, mut enc) = (e.decrypt, e.encrypt);
    let mut theirs = hs.leftover().to_vec();
    while theirs.len() < HANDSHAKE_LEN {
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        theirs.extend_from_slice(&buf[..n]);
    }
    dec.apply(&mut theirs);
    assert!(theirs.starts_with(b"\x13BitTorrent protocol"));
    seen.encrypted.fetch_add(1, Ordering::SeqCst);
    let ext = Extensions {
        fast: false,
        extended: false,
        dht: false,
    };
    let mut reply = Handshake::new(ih, PeerId(*b"-SP0001-encryptedpee"), ext)
        .encode()
        .to_vec();
    reply.extend_from_slice(&[0, 0, 0, 3, 5, 0b1010_0000, 0]);
    enc.apply(&mut reply);
    s.write_all(&reply).await.ok()?;
    while s.read(&mut buf).await.ok()? > 0 {}
    Some(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_requires_encryption_is_polled_through_mse() {
    let dir = scratch_dir("poller-mse");
    let (torrent, ih) = write_torrent(&dir, "polled", 12);
    let t = Arc::new(Tracker::start(&[
        "--poll-grace",
        "0",
        "--poll-interval",
        "1",
        "--poll-read-time",
        "2",
        "--torrent",
        torrent.to_str().unwrap(),
    ]));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let s2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(answer(s, ih, s2.clone()));
        }
    });
    let tt = t.clone();
    tokio::task::spawn_blocking(move || tt.announce(&ih, &peer_id(1), port, 100, "&event=started"))
        .await
        .unwrap();
    let tt = t.clone();
    let v = tokio::task::spawn_blocking(move || {
        tt.wait_swarm(&ih, Duration::from_secs(20), |v| {
            v["peers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["bitfield"] == "oAA")
        })
    })
    .await
    .unwrap();
    let peer = &v["peers"][0];
    assert_eq!(peer["source"], "poll", "{v}");
    assert!(seen.plaintext_closed.load(Ordering::SeqCst) >= 1);
    assert!(seen.encrypted.load(Ordering::SeqCst) >= 1);
}
