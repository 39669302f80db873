//! The live feed (`GET /swarm/<hex>/events`, Server-Sent Events): a `snapshot` event with the
//! whole swarm, then a `peer` event per change (announce, poll result) and a `leave` event per
//! peer that announced `stopped` (peers that expire are not announced). A subscriber too slow to
//! keep up gets a fresh `snapshot` instead of the lost events.
//!
//! The registry hands over typed [`SwarmEvent`]s; their JSON is written here, in the
//! subscriber's task, never under the registry's lock.

use std::net::SocketAddr;

use serde::Serialize;

use super::registry::{unix_now, SwarmEvent};
use super::state::State;
use super::swarm_api::{peer_json, swarm_json, to_json, PeerJson};

/// A feed message as JSON: `{"type":"peer","peer":{…}}` or `{"type":"leave","addr":"…"}`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Message<'a> {
    Peer { peer: PeerJson<'a> },
    Leave { addr: SocketAddr },
}

/// The message for one registry event.
pub fn event_json(e: &SwarmEvent) -> String {
    match e {
        SwarmEvent::Peer { at, peer } => {
            let view = peer.borrowed();
            to_json(
                512,
                &Message::Peer {
                    peer: peer_json(&view, *at),
                },
            )
        }
        SwarmEvent::Left(addr) => to_json(64, &Message::Leave { addr: *addr }),
    }
}

/// Frame one message for the wire: `event: <name>` when named, then `data:`.
pub fn frame(event: Option<&str>, data: &str) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// Refuse a live feed with `status` and a JSON `{"error": reason}`.
pub async fn refuse(
    sock: &mut tokio::net::TcpStream,
    status: &str,
    reason: &str,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let body = serde_json::json!({ "error": reason }).to_string();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body.as_bytes()).await
}

/// A live-feed subscriber counted in `/metrics` while it lives.
pub struct Subscriber<'a>(&'a State);

impl Drop for Subscriber<'_> {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.0.metrics.sse_subscribers.fetch_sub(1, Relaxed);
    }
}

/// Count a subscriber, send the event-stream head and the `snapshot` event.
pub async fn open<'a>(
    sock: &mut tokio::net::TcpStream,
    st: &'a State,
    snapshot: &str,
) -> std::io::Result<Subscriber<'a>> {
    use std::sync::atomic::Ordering::Relaxed;
    use tokio::io::AsyncWriteExt;
    st.metrics.sse_subscribers.fetch_add(1, Relaxed);
    let guard = Subscriber(st);
    sock.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nAccess-Control-Allow-Origin: *\r\nConnection: keep-alive\r\n\r\n",
    )
    .await?;
    sock.write_all(frame(Some("snapshot"), snapshot).as_bytes())
        .await?;
    Ok(guard)
}

/// Serve the live feed of one swarm on `sock` until the client leaves or `stop` flips.
pub async fn stream(
    mut sock: tokio::net::TcpStream,
    st: std::sync::Arc<State>,
    ih: enjambre_core::InfoHash,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::broadcast::error::RecvError;

    if st.metrics.sse_subscribers.load(Relaxed) >= st.max_subscribers {
        tracing::warn!(info_hash = %ih, cap = st.max_subscribers, "refusing live feed: subscriber cap reached");
        sock.write_all(b"HTTP/1.1 503 Service Unavailable\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await?;
        return Ok(());
    }
    let now = unix_now();
    let subscribed = st
        .reg()
        .swarm_mut(ih)
        .map(|s| (s.subscribe(), swarm_json(&ih, s, now)));
    let (mut rx, snapshot) = match subscribed {
        Ok(x) => x,
        Err(r) => {
            return refuse(&mut sock, "404 Not Found", r.reason()).await;
        }
    };
    let _guard = open(&mut sock, &st, &snapshot).await?;
    let (mut rd, mut wr) = sock.split();
    let mut ping = tokio::time::interval(std::time::Duration::from_secs(15));
    ping.tick().await;
    let mut sink = [0u8; 512];
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Ok(e) => wr.write_all(frame(None, &event_json(&e)).as_bytes()).await?,
                Err(RecvError::Lagged(_)) => {
                    let snap = {
                        let reg = st.reg();
                        reg.swarms.get(&ih).map(|s| swarm_json(&ih, s, unix_now()))
                    };
                    if let Some(s) = snap {
                        wr.write_all(frame(Some("snapshot"), &s).as_bytes()).await?;
                    }
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            _ = ping.tick() => wr.write_all(b": ping\n\n").await?,
            r = rd.read(&mut sink) => match r {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            },
            _ = stop.changed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::tracker::bits::{Have, Source};
    use crate::tracker::peers::Event;
    use crate::tracker::registry::PeerView;

    fn polled_leech() -> PeerView<Box<[u8]>> {
        PeerView {
            addr: "10.0.0.1:6001".parse().unwrap(),
            peer_id: *b"-EJ0001-abcdefghijkl",
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Started,
            last_seen: 100,
            have: Have::Some,
            source: Source::Poll,
            have_at: 90,
            poll_fails: 2,
            bits: Some(Box::new([0xa0])),
            pieces: Some(3),
            stride: 1,
        }
    }

    #[test]
    fn a_changed_peer_reads_as_the_page_expects() {
        let e = SwarmEvent::Peer {
            at: 105,
            peer: Arc::new(polled_leech()),
        };
        assert_eq!(
            event_json(&e),
            concat!(
                r#"{"type":"peer","peer":{"addr":"10.0.0.1:6001","#,
                r#""peer_id":"2d454a303030312d6162636465666768696a6b6c","client":"-EJ0001-","#,
                r#""uploaded":1,"downloaded":2,"left":3,"seed":false,"event":"started","#,
                r#""last_seen_age":5,"have":"some","pieces_have":2,"progress":0.6667,"#,
                r#""bitfield":"oA","source":"poll","bitfield_age":15,"reachable":false,"#,
                r#""poll_failures":2}}"#
            )
        );
    }

    #[test]
    fn a_peer_nothing_is_known_of_shows_nulls() {
        let mut p = polled_leech();
        (p.have, p.bits, p.poll_fails, p.peer_id[0]) = (Have::Unknown, None, 0, b'"');
        let json = event_json(&SwarmEvent::Peer {
            at: 100,
            peer: Arc::new(p),
        });
        assert!(
            json.contains(r#""client":"\"EJ0001-","#),
            "client text is escaped: {json}"
        );
        assert!(
            json.contains(
                r#""have":"unknown","pieces_have":null,"progress":null,"bitfield":null,"source":null,"bitfield_age":null,"reachable":true,"#
            ),
            "{json}"
        );
    }

    #[test]
    fn a_seed_is_complete_and_a_leaver_is_named_by_address() {
        let mut p = polled_leech();
        (p.left, p.have, p.bits) = (0, Have::All, None);
        let json = event_json(&SwarmEvent::Peer {
            at: 100,
            peer: Arc::new(p),
        });
        assert!(
            json.contains(r#""have":"all","pieces_have":3,"progress":1.0,"bitfield":"4A""#),
            "{json}"
        );
        let left = SwarmEvent::Left("[2001:db8::1]:6881".parse().unwrap());
        assert_eq!(
            event_json(&left),
            r#"{"type":"leave","addr":"[2001:db8::1]:6881"}"#
        );
    }
}
