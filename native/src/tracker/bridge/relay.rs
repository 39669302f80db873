//! One bridged connection: the WebSocket on one side, the listed peer's TCP stream on the other,
//! bytes copied both ways until either ends, the client goes idle or sends what it may not.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

use super::super::State;
use super::Upgrade;

/// Time allowed to dial the peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read from the peer per WebSocket message.
const CHUNK: usize = 64 * 1024;
/// Time a closing client has to answer the close frame before the socket is dropped.
const LINGER: Duration = Duration::from_secs(2);

/// Why a relay ended: the close code and reason the client gets.
struct End(u16, String);

/// Serve one upgraded connection; `early` holds bytes read past the handshake.
pub async fn relay(
    sock: TcpStream,
    early: Vec<u8>,
    up: Upgrade,
    st: Arc<State>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let b = &st.bridge;
    let config = WebSocketConfig::default()
        .max_message_size(Some(b.max_message))
        .max_frame_size(Some(b.max_message))
        .max_write_buffer_size(4 * CHUNK);
    let ws = WebSocketStream::from_partially_read(sock, early, Role::Server, Some(config)).await;
    let target = up.target;
    let slot = match up.verdict {
        Ok(slot) => slot,
        Err((code, why)) => {
            debug!(%target.addr, info_hash = %target.info_hash, why, "bridge refused");
            return close(ws, End(code, why.into())).await;
        }
    };
    let peer = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target.addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            b.counters.connect_failed.fetch_add(1, Relaxed);
            return close(ws, End(4502, format!("connect failed: {e}"))).await;
        }
        Err(_) => {
            b.counters.connect_failed.fetch_add(1, Relaxed);
            let why = format!(
                "connect failed: no answer in {}s",
                CONNECT_TIMEOUT.as_secs()
            );
            return close(ws, End(4502, why)).await;
        }
    };
    let _ = peer.set_nodelay(true);
    b.counters.accepted.fetch_add(1, Relaxed);
    debug!(%target.addr, info_hash = %target.info_hash, "bridge relaying");
    let (mut peer_rd, mut peer_wr) = peer.into_split();
    let (mut sink, mut stream) = ws.split();
    // When a byte last moved either way, in milliseconds from `start`.
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let touch = || last.store(start.elapsed().as_millis() as u64, Relaxed);
    let to_peer = async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Binary(data))) => {
                    if let Err(e) = peer_wr.write_all(&data).await {
                        return End(1000, format!("peer connection ended: {e}"));
                    }
                    b.counters
                        .bytes_to_peers
                        .fetch_add(data.len() as u64, Relaxed);
                    touch();
                }
                Some(Ok(Message::Text(_))) => {
                    return End(1003, "text messages are not relayed: send binary".into())
                }
                Some(Ok(Message::Close(_))) | None => return End(1000, String::new()),
                Some(Ok(_)) => {}
                Some(Err(WsError::Capacity(e))) => {
                    b.counters.bad_frames.fetch_add(1, Relaxed);
                    let code = match e {
                        CapacityError::MessageTooLong { .. } => 1009,
                        _ => 1002,
                    };
                    return End(code, format!("{e}"));
                }
                Some(Err(WsError::Protocol(e))) => {
                    b.counters.bad_frames.fetch_add(1, Relaxed);
                    return End(1002, format!("malformed frame: {e}"));
                }
                Some(Err(e)) => return End(1000, format!("client connection ended: {e}")),
            }
        }
    };
    let to_client = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match peer_rd.read(&mut buf).await {
                Ok(0) => return End(1000, "peer closed the connection".into()),
                Ok(n) => n,
                Err(e) => return End(1000, format!("peer connection ended: {e}")),
            };
            let msg = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
            if let Err(e) = sink.send(msg).await {
                return End(1000, format!("client connection ended: {e}"));
            }
            b.counters.bytes_to_clients.fetch_add(n as u64, Relaxed);
            touch();
        }
    };
    let idle = async {
        loop {
            let due = start + Duration::from_millis(last.load(Relaxed)) + b.idle;
            if due <= Instant::now() {
                b.counters.closed_idle.fetch_add(1, Relaxed);
                return End(4408, format!("idle: no bytes for {}s", b.idle.as_secs()));
            }
            tokio::time::sleep_until(due).await;
        }
    };
    let end = tokio::select! {
        e = to_peer => e,
        e = to_client => e,
        e = idle => e,
        _ = stop.changed() => End(1001, "tracker shutting down".into()),
    };
    debug!(%target.addr, code = end.0, reason = %end.1, "bridge connection ended");
    // The peer and the slot go now; only the closing handshake remains.
    drop((peer_rd, peer_wr, slot));
    match sink.reunite(stream) {
        Ok(ws) => close(ws, end).await,
        Err(_) => Ok(()),
    }
}

/// Send the close frame, then give the client a moment to read it before the socket goes.
async fn close(mut ws: WebSocketStream<TcpStream>, end: End) -> std::io::Result<()> {
    let mut reason = end.1;
    while reason.len() > 123 {
        reason.pop();
    }
    let frame = CloseFrame {
        code: end.0.into(),
        reason: reason.into(),
    };
    // After the client's own close only the queued reply goes out (the send is refused).
    let _ = tokio::time::timeout(LINGER, async {
        let _ = ws.send(Message::Close(Some(frame))).await;
        let _ = ws.flush().await;
    })
    .await;
    let mut sock = ws.into_inner();
    let _ = sock.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    Ok(())
}
