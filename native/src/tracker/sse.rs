//! The live feed (`GET /swarm/<hex>/events`, Server-Sent Events): a `snapshot` event with the
//! whole swarm, then a `peer` event per change (announce, poll result) and a `leave` event per
//! peer gone. A subscriber too slow to keep up gets a fresh `snapshot` instead of the lost events.

use std::net::SocketAddr;

use super::registry::Swarm;
use super::swarm_api::peer_json;

/// Events buffered per swarm before a slow subscriber skips ahead.
pub const FEED_CAPACITY: usize = 1024;

/// The `peer` event for the peer at `addr`, or a `leave` event when it is gone.
pub fn peer_event(s: &Swarm, addr: SocketAddr, now: u32) -> String {
    let json = match addr.ip().to_canonical() {
        std::net::IpAddr::V4(v4) => {
            s.v4.peers
                .iter()
                .find(|p| p.ip == v4.octets() && p.port == addr.port())
                .map(|p| peer_json(p, &s.arena, s.pieces, now))
        }
        std::net::IpAddr::V6(v6) => {
            s.v6.peers
                .iter()
                .find(|p| p.ip == v6.octets() && p.port == addr.port())
                .map(|p| peer_json(p, &s.arena, s.pieces, now))
        }
    };
    match json {
        Some(j) => format!("{{\"type\":\"peer\",\"peer\":{j}}}"),
        None => leave_event(addr),
    }
}

/// The `leave` event.
pub fn leave_event(addr: SocketAddr) -> String {
    format!("{{\"type\":\"leave\",\"addr\":\"{addr}\"}}")
}

/// Frame one message for the wire: `event: <name>` when named, then `data:`.
pub fn frame(event: Option<&str>, data: &str) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// Serve the live feed of one swarm on `sock` until the client leaves or `stop` flips.
pub async fn stream(
    mut sock: tokio::net::TcpStream,
    st: std::sync::Arc<super::State>,
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
    let now = super::registry::unix_now();
    let subscribed = {
        let mut reg = st.reg();
        match reg.swarm_mut(ih) {
            Ok(s) => {
                let tx = s
                    .feed
                    .get_or_insert_with(|| tokio::sync::broadcast::channel(FEED_CAPACITY).0);
                let rx = tx.subscribe();
                Ok((rx, super::swarm_api::swarm_json(&ih, s, now)))
            }
            Err(r) => Err(r),
        }
    };
    let (mut rx, snapshot) = match subscribed {
        Ok(x) => x,
        Err(r) => {
            let body = format!("{{\"error\":\"{}\"}}", r.reason());
            let head = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(body.as_bytes()).await?;
            return Ok(());
        }
    };
    st.metrics.sse_subscribers.fetch_add(1, Relaxed);
    struct Guard<'a>(&'a super::State);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            self.0.metrics.sse_subscribers.fetch_sub(1, Relaxed);
        }
    }
    let _guard = Guard(&st);
    sock.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nAccess-Control-Allow-Origin: *\r\nConnection: keep-alive\r\n\r\n",
    )
    .await?;
    sock.write_all(frame(Some("snapshot"), &snapshot).as_bytes())
        .await?;
    let (mut rd, mut wr) = sock.split();
    let mut ping = tokio::time::interval(std::time::Duration::from_secs(15));
    ping.tick().await;
    let mut sink = [0u8; 512];
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Ok(m) => wr.write_all(frame(None, &m).as_bytes()).await?,
                Err(RecvError::Lagged(_)) => {
                    let snap = {
                        let reg = st.reg();
                        reg.swarms.get(&ih).map(|s| super::swarm_api::swarm_json(&ih, s, super::registry::unix_now()))
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
