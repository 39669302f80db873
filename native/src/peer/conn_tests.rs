//! Tests of `conn`: the writer's order of messages and blocks.
use super::*;
use crate::peer::storage::{safe_relative, Access, FileLayout};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const BLOCK: u32 = 16384;
const BLOCKS: u32 = 32;

/// An `Interested` message: what the session queues after the blocks in these tests.
const INTERESTED: [u8; 5] = [0, 0, 0, 1, 2];

/// Queue `BLOCKS` uploads to a peer that reads nothing yet, then a message once the socket is
/// full; return the order in which the peer then receives them: the message ids, 7 for each
/// block.
async fn order_received(passing: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let len = u64::from(BLOCK * BLOCKS);
    std::fs::write(dir.path().join("f"), vec![7u8; len as usize]).unwrap();
    let files = [FileLayout {
        rel: safe_relative(["f"]).unwrap(),
        length: len,
        pad: false,
    }];
    let storage = Arc::new(Storage::open(dir.path(), &files, BLOCK * 4, Access::Seed).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_send_buffer_size(4096).unwrap();
    let client = sock.connect(listener.local_addr().unwrap()).await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    let (_, write) = client.into_split();
    let outbox = Arc::new(Outbox::default());
    outbox.let_messages_pass_blocks(passing);
    let (events, mut sent) = tokio::sync::mpsc::unbounded_channel::<ConnEvent>();
    let peer = PeerHandle {
        slot: 0,
        generation: 0,
    };
    let writer = tokio::spawn(writer(
        peer,
        write,
        None,
        outbox.clone(),
        storage,
        Arc::new(RateLimit::new(None)),
        events,
    ));
    for k in 0..BLOCKS {
        let (piece, offset) = (k / 4, k % 4 * BLOCK);
        let mut header = [0u8; 13];
        header[..4].copy_from_slice(&(9 + BLOCK).to_be_bytes());
        header[4] = 7;
        header[5..9].copy_from_slice(&piece.to_be_bytes());
        header[9..].copy_from_slice(&offset.to_be_bytes());
        outbox.push_block(header, piece, offset, BLOCK);
    }
    // The writer is stuck on a full socket well before the last block.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut got = 0;
    while let Ok(ConnEvent::Sent { bytes, .. }) = sent.try_recv() {
        got += bytes;
    }
    assert!(
        got < (BLOCK * BLOCKS / 2) as usize,
        "the socket took {got} bytes"
    );
    outbox.push_bytes(&INTERESTED);
    let total = (BLOCKS * (13 + BLOCK)) as usize + INTERESTED.len();
    let mut stream = vec![0u8; total];
    server.read_exact(&mut stream).await.unwrap();
    writer.abort();
    let mut ids = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let n = u32::from_be_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        ids.push(stream[at + 4]);
        at += 4 + n;
    }
    ids
}

#[tokio::test]
async fn a_message_queued_behind_a_slow_uplinks_blocks_goes_before_those_not_started() {
    let ids = order_received(true).await;
    assert_eq!(ids.len(), BLOCKS as usize + 1);
    let at = ids.iter().position(|&id| id == 2).unwrap();
    // Behind the blocks the kernel already held and the one being sent, not behind 32.
    assert!(
        at < BLOCKS as usize / 2,
        "the message came after {at} blocks"
    );
}

#[tokio::test]
async fn without_the_fast_extension_messages_keep_their_place_behind_blocks() {
    let ids = order_received(false).await;
    assert_eq!(ids.iter().position(|&id| id == 2), Some(BLOCKS as usize));
}
