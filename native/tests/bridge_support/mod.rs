//! Shared helpers of the bridge's integration tests: a WebSocket client of the tracker's
//! listener, and reading what the bridge relays or the close frame that ends it.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{client_async, WebSocketStream};

use crate::tracker_support::Tracker;

/// A WebSocket of the tracker's HTTP listener.
pub type Ws = WebSocketStream<TcpStream>;

/// Open the WebSocket `path` (`/bridge/…`) of the tracker `t`.
pub async fn ws(t: &Tracker, path: &str) -> Ws {
    let tcp = TcpStream::connect(t.http).await.unwrap();
    let url = format!("ws://{}{path}", t.http);
    client_async(url, tcp).await.expect("handshake").0
}

/// Read until the close frame; bytes before it are returned too.
pub async fn close_frame(ws: &mut Ws) -> (Vec<u8>, Option<CloseFrame>) {
    let mut got = Vec::new();
    let read = async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Binary(b)) => got.extend_from_slice(&b),
                Ok(Message::Close(f)) => return f,
                Ok(_) => {}
                Err(e) => panic!("no close frame: {e}"),
            }
        }
        panic!("connection ended without a close frame")
    };
    let f = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("close frame in time");
    (got, f)
}

/// Read relayed bytes until there are at least `n`.
pub async fn read_exactly(ws: &mut Ws, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => got.extend_from_slice(&b),
            other => panic!("expected bytes, got {other:?}"),
        }
    }
    got
}
