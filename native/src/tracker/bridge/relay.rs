//! One bridged connection: the WebSocket on one side, the listed peer's TCP stream on the other,
//! bytes copied both ways until either ends, the client goes idle or sends what it may not.

use std::future::Future;
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
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

use super::super::State;
use super::client::Client;
use super::frames::Frames;
use super::{Bridge, Kind, Upgrade};

/// Time allowed to dial the peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read from the peer per WebSocket frame at most (fewer, larger writes to the page).
const CHUNK: usize = 256 * 1024;
/// Bytes tungstenite may hold unsent (control and close frames, a port's text messages).
const WRITE_BUFFER: usize = 256 * 1024;
/// Bytes tungstenite reads from the page at a time (it zeroes that much before each read, even
/// one that finds nothing; the page mostly sends short requests).
const READ_BUFFER: usize = 16 * 1024;
/// Time a closing client has to answer the close frame before the socket is dropped.
const LINGER: Duration = Duration::from_secs(2);

/// Why a relay ended: the close code and reason the client gets.
pub(super) struct End(pub u16, pub String);

/// Serve one upgraded connection; `early` holds bytes read past the handshake.
pub async fn relay(
    sock: TcpStream,
    early: Vec<u8>,
    up: Upgrade,
    st: Arc<State>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let local = sock.local_addr()?;
    let ws = websocket(sock, early, &st.bridge).await;
    let dial = match up.0 {
        Kind::Dial(dial) => dial,
        Kind::Inbound(up) => return super::inbound::serve(ws, local, up, st, stop).await,
    };
    let b = &st.bridge;
    let target = dial.target;
    let slot = match dial.verdict {
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
    b.counters.accepted.fetch_add(1, Relaxed);
    debug!(%target.addr, info_hash = %target.info_hash, "bridge relaying");
    pipe(ws, peer, b, stop, std::future::pending(), slot).await
}

/// The WebSocket the bridge serves: tungstenite over the page's socket.
pub(super) type Ws = WebSocketStream<Client>;

/// The server side of an upgraded connection, with the bridge's frame and buffer bounds.
pub(super) async fn websocket(sock: TcpStream, early: Vec<u8>, b: &Bridge) -> Ws {
    let config = WebSocketConfig::default()
        .max_message_size(Some(b.max_message))
        .max_frame_size(Some(b.max_message))
        .read_buffer_size(READ_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER);
    WebSocketStream::from_partially_read(Client::new(sock), early, Role::Server, Some(config)).await
}

/// Copy bytes both ways between the WebSocket and `peer` until either ends, the client goes idle
/// or sends what it may not, the tracker stops or `gone` ends it; then `hold` (a cap's slot) is
/// dropped with the peer, and the client gets the close frame. Tungstenite reads the client's
/// frames; the peer's bytes go out as frames of our own (see [`Frames`]).
pub(super) async fn pipe(
    mut ws: Ws,
    peer: TcpStream,
    b: &Bridge,
    mut stop: watch::Receiver<bool>,
    gone: impl Future<Output = End>,
    hold: impl Sized,
) -> std::io::Result<()> {
    let _ = peer.set_nodelay(true);
    let addr = peer.peer_addr().ok();
    let (mut peer_rd, mut peer_wr) = peer.into_split();
    let Some((mut client_wr, queue)) = ws.get_mut().lend() else {
        return close(ws, End(1011, "bridge error: socket already lent".into())).await;
    };
    let mut frames = Frames::new(CHUNK);
    // When a byte last moved either way, in milliseconds from `start`.
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let touch = || last.store(start.elapsed().as_millis() as u64, Relaxed);
    let to_peer = async {
        loop {
            match ws.next().await {
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
        loop {
            if let Err(e) = frames.send(&mut client_wr).await {
                return End(1000, format!("client connection ended: {e}"));
            }
            let read = tokio::select! {
                biased;
                _ = queue.ready.notified() => None,
                r = frames.fill(&mut peer_rd) => Some(r),
            };
            match read {
                None => frames.add_control(queue.take()),
                Some(Ok(0)) => return End(1000, "peer closed the connection".into()),
                Some(Ok(n)) => {
                    b.counters.bytes_to_clients.fetch_add(n as u64, Relaxed);
                    touch();
                }
                Some(Err(e)) => return End(1000, format!("peer connection ended: {e}")),
            }
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
        e = gone => e,
        _ = stop.changed() => End(1001, "tracker shutting down".into()),
    };
    debug!(?addr, code = end.0, reason = %end.1, "bridge connection ended");
    // The peer and the slot go now; only the closing handshake remains, after what was unsent.
    drop((peer_rd, peer_wr, hold));
    ws.get_mut().give_back(client_wr, frames.unsent());
    close(ws, end).await
}

/// Send the close frame, then give the client a moment to read it before the socket goes.
pub(super) async fn close(mut ws: Ws, end: End) -> std::io::Result<()> {
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
    let Some(mut sock) = ws.into_inner().into_inner() else {
        return Ok(());
    };
    let _ = sock.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(sock.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    Ok(())
}
