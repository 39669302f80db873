//! Tests of `conn`: the writer's order of messages and blocks.
use super::*;
use crate::peer::storage::{safe_relative, Access, FileLayout};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const BLOCK: u32 = 16384;
const BLOCKS: u32 = 32;

/// An `Interested` message: what the session queues after the blocks in these tests.
const INTERESTED: [u8; 5] = [0, 0, 0, 1, 2];

/// A writer uploading from a file of `blocks` blocks (pieces of four) to a TCP peer that
/// reads only when told to.
struct Rig {
    outbox: Arc<Outbox>,
    limit: Arc<RateLimit>,
    peer: tokio::net::TcpStream,
    sent: tokio::sync::mpsc::UnboundedReceiver<ConnEvent>,
    writer: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn new(blocks: u32, send_buffer: Option<u32>, limit: RateLimit) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let len = u64::from(BLOCK * blocks);
        std::fs::write(dir.path().join("f"), vec![7u8; len as usize]).unwrap();
        let files = [FileLayout {
            rel: safe_relative(["f"]).unwrap(),
            length: len,
            pad: false,
        }];
        let storage = Storage::open(dir.path(), &files, BLOCK * 4, Access::Seed).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(size) = send_buffer {
            sock.set_send_buffer_size(size).unwrap();
        }
        let client = sock.connect(listener.local_addr().unwrap()).await.unwrap();
        let (peer, _) = listener.accept().await.unwrap();
        let (_, write) = client.into_split();
        let outbox = Arc::new(Outbox::default());
        let (events, sent) = tokio::sync::mpsc::unbounded_channel::<ConnEvent>();
        let handle = PeerHandle {
            slot: 0,
            generation: 0,
        };
        let limit = Arc::new(limit);
        let writer = tokio::spawn(writer(
            handle,
            write,
            None,
            outbox.clone(),
            Arc::new(storage),
            limit.clone(),
            events,
        ));
        Rig {
            outbox,
            limit,
            peer,
            sent,
            writer,
            _dir: dir,
        }
    }

    /// Queue block `k` (piece `k / 4`) for upload.
    fn push_block(&self, k: u32) {
        let (piece, offset) = (k / 4, k % 4 * BLOCK);
        let mut header = [0u8; 13];
        header[..4].copy_from_slice(&(9 + BLOCK).to_be_bytes());
        header[4] = 7;
        header[5..9].copy_from_slice(&piece.to_be_bytes());
        header[9..].copy_from_slice(&offset.to_be_bytes());
        self.outbox.push_block(header, piece, offset, BLOCK);
    }
}

/// Queue `BLOCKS` uploads to a peer that reads nothing yet, then a message once the socket is
/// full; return the order in which the peer then receives them: the message ids, 7 for each
/// block.
async fn order_received(passing: bool) -> Vec<u8> {
    let mut rig = Rig::new(BLOCKS, Some(4096), RateLimit::new(None)).await;
    rig.outbox.let_messages_pass_blocks(passing);
    for k in 0..BLOCKS {
        rig.push_block(k);
    }
    // The writer is stuck on a full socket well before the last block.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut got = 0;
    while let Ok(ConnEvent::Sent { bytes, .. }) = rig.sent.try_recv() {
        got += bytes;
    }
    assert!(
        got < (BLOCK * BLOCKS / 2) as usize,
        "the socket took {got} bytes"
    );
    rig.outbox.push_bytes(&INTERESTED);
    let total = (BLOCKS * (13 + BLOCK)) as usize + INTERESTED.len();
    let mut stream = vec![0u8; total];
    rig.peer.read_exact(&mut stream).await.unwrap();
    rig.writer.abort();
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

#[tokio::test]
async fn under_an_upload_limit_a_message_waits_for_no_block_but_the_one_being_sent() {
    // 8 KiB/s and blocks of 16 KiB: the first block goes at once, each next one 2 s later.
    // A message queued meanwhile goes out right after the block being sent, not 2 s later
    // with the next one (before, a leech with `--max-upload-rate` downloaded at that rate:
    // each of its requests waited for an upload's share of the limit).
    let start = std::time::Instant::now();
    let mut rig = Rig::new(4, None, RateLimit::new(Some(8192))).await;
    rig.outbox.let_messages_pass_blocks(true);
    for k in 0..3 {
        rig.push_block(k);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    rig.outbox.push_bytes(&INTERESTED);
    // Read up to the message: two blocks, then it.
    let mut head = vec![0u8; 2 * (13 + BLOCK as usize) + INTERESTED.len()];
    rig.peer.read_exact(&mut head).await.unwrap();
    let at = start.elapsed().as_secs_f64();
    rig.writer.abort();
    assert_eq!(head[head.len() - INTERESTED.len()..], INTERESTED);
    // The second block leaves at 2 s; the third would have at 4 s.
    assert!(at < 3.0, "the message came at {at:.2} s");
}

#[tokio::test]
async fn uploads_tell_the_uplink_their_round_trip_and_a_limit_set_meanwhile_applies_at_once() {
    let mut rig = Rig::new(8, None, RateLimit::new(None)).await;
    rig.push_block(0);
    let mut block = vec![0u8; 13 + BLOCK as usize];
    rig.peer.read_exact(&mut block).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // Loopback: a round trip, and no queue to speak of.
    let now = std::time::Instant::now();
    let delay = rig.limit.uplink.shared_delay(now);
    assert!(
        delay.is_some_and(|d| d < std::time::Duration::from_millis(50)),
        "{delay:?}"
    );
    // An automatic limit of 16 KiB/s (what `uplink::Steer` may set) now paces the next blocks:
    // after the bucket's burst of two, one a second.
    rig.limit.set_auto(Some(16384.0));
    let start = std::time::Instant::now();
    for k in 1..6 {
        rig.push_block(k);
    }
    for _ in 1..6 {
        rig.peer.read_exact(&mut block).await.unwrap();
    }
    let took = start.elapsed().as_secs_f64();
    assert!((2.5..4.5).contains(&took), "five blocks took {took:.2} s");
    // Lifted: the rest go at once.
    rig.limit.set_auto(None);
    let start = std::time::Instant::now();
    rig.push_block(6);
    rig.push_block(7);
    for _ in 0..2 {
        rig.peer.read_exact(&mut block).await.unwrap();
    }
    assert!(start.elapsed().as_secs_f64() < 0.5);
    // A writer that ends (here: aborted, as the driver does) leaves no samples behind.
    rig.writer.abort();
    let _ = (&mut rig.writer).await;
    assert_eq!(
        rig.limit.uplink.shared_delay(std::time::Instant::now()),
        None
    );
}
