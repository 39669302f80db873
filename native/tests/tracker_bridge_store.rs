//! The browser bridge on tracker nodes sharing one Redis (`--store`): a page on one node dials a
//! peer announced to another, learns the swarm through `/bridge/announce` on any node without
//! being stored, and is refused a peer no node lists; `--bridge-ports` says plainly it is not
//! served with a store yet.

mod bridge_support;
mod peer_support;
mod redis_support;
mod tracker_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;

use bridge_support::*;
use enjambre_core::InfoHash;
use futures_util::SinkExt;
use redis_support::{ports_of, Redis};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tracker_support::*;

/// A TCP echo server on loopback.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_one_node_reaches_a_peer_announced_to_another() {
    let Some(redis) = Redis::start(false) else {
        return;
    };
    let (a, b) = (redis.node(&[]), redis.node(&[]));
    let ih = InfoHash([0x3c; 20]);
    let peer = echo_server();
    b.announce(&ih, &peer_id(1), peer.port(), 100, "&event=started");

    // Through node A, which never heard from the peer itself.
    let mut page = ws(&a, &format!("/bridge/{ih}/{peer}")).await;
    page.send(Message::Binary(Bytes::from_static(b"over the store")))
        .await
        .unwrap();
    assert_eq!(read_exactly(&mut page, 14).await, b"over the store");
    page.close(None).await.unwrap();

    // A peer no node lists is refused with a reason, on either node.
    let stranger = echo_server();
    for node in [&a, &b] {
        let mut ws = ws(node, &format!("/bridge/{ih}/{stranger}")).await;
        let (bytes, frame) = close_frame(&mut ws).await;
        let frame = frame.expect("a close frame with a reason");
        assert_eq!(u16::from(frame.code), 4403);
        assert!(frame.reason.contains("not listed"), "{}", frame.reason);
        assert!(bytes.is_empty());
    }

    // The page's announce on node A gets the swarm and is not stored: node B still lists one.
    let q = format!(
        "/bridge/announce?info_hash={}&peer_id={}&port=1&uploaded=0&downloaded=0&left=100&compact=1",
        pct(&ih.0),
        pct(&peer_id(2))
    );
    let (status, _, body) = a.get(&q);
    assert_eq!(status, 200);
    assert_eq!(ports_of(&body), vec![peer.port()]);
    let (_, _, body) = b.get(&format!(
        "/announce?info_hash={}&peer_id={}&port=9&uploaded=0&downloaded=0&left=100&compact=1&event=started",
        pct(&ih.0),
        pct(&peer_id(3))
    ));
    assert_eq!(
        ports_of(&body),
        vec![peer.port()],
        "the page was not stored"
    );
}

#[test]
fn bridge_ports_with_a_store_are_refused_at_start_with_a_reason() {
    let Some(redis) = Redis::start(false) else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_enjambre"))
        .args([
            "tracker",
            "--listen",
            "127.0.0.1:0",
            "--store",
            &redis.url(),
        ])
        .args(["--bridge-ports", "41000-41010"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--bridge-ports is not served with --store"),
        "{err}"
    );
}
