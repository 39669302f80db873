//! The HTTP requests answered from the shared store (`--store`): announce, scrape, the swarm
//! API, `/stats`, `/metrics` and the live feed. Parsing and reply formats are the in-memory
//! tracker's; only where the registry lives differs. A request that cannot reach the store gets
//! a bencoded `failure reason` (announce, scrape) or a 503 (the API), never an empty success.

use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use enjambre_core::InfoHash;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::debug;

use super::metrics::{inc, render};
use super::proto;
use super::registry::{unix_now, Asker, Families};
use super::sse::{self, frame};
use super::state::State;
use super::store::{self, StoreError, UNAVAILABLE};
use super::swarm_api::stats_json;

/// A request for the store.
pub enum StoreReq {
    /// An announce: `who` is stored or not (a page behind the bridge); `extra` are peers
    /// other trackers listed (the bridge's announce relay), added after the store's.
    Announce {
        who: Asker,
        extra: Vec<std::net::SocketAddr>,
    },
    Scrape,
    Swarms {
        offset: usize,
        limit: usize,
    },
    Swarm(InfoHash),
    Stats,
    Metrics,
}

/// What a path asks of the store; `None` for paths served as without a store.
pub fn route(path: &str, query: &str) -> Option<Result<StoreReq, InfoHash>> {
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse::<usize>().ok())
    };
    Some(Ok(match path {
        "/announce" => StoreReq::Announce {
            who: Asker::Register,
            extra: Vec::new(),
        },
        "/scrape" => StoreReq::Scrape,
        "/swarms" => StoreReq::Swarms {
            offset: param("offset").unwrap_or(0),
            limit: param("limit").unwrap_or(1000).min(10_000),
        },
        "/stats" => StoreReq::Stats,
        "/metrics" => StoreReq::Metrics,
        _ => {
            let rest = path.strip_prefix("/swarm/")?;
            return match rest.strip_suffix("/events") {
                Some(hex) => InfoHash::from_hex(hex).map(Err),
                None => InfoHash::from_hex(rest).map(|ih| Ok(StoreReq::Swarm(ih))),
            };
        }
    }))
}

/// A response: status, content type, body.
pub type Response = (&'static str, &'static str, Vec<u8>);

/// Answer one request from the store.
pub async fn serve(
    req: StoreReq,
    query: &str,
    from: IpAddr,
    st: &State,
    bits: &mut Vec<u8>,
    picked: &mut Vec<super::select::Picked>,
    reply: &mut Vec<enjambre_core::tracker::ReplyPeer>,
) -> Response {
    let Some(store) = st.store.as_deref() else {
        return ("404 Not Found", "text/plain", b"not found\n".to_vec());
    };
    let now = unix_now();
    let mut body = Vec::new();
    match req {
        StoreReq::Announce { who, extra } => {
            let parsed = proto::parse_announce(query.as_bytes(), from, bits, st.limits.max_pieces);
            let (a, compact, warn_bits) = match parsed {
                Ok(x) => x,
                Err(reason) => {
                    inc(&st.metrics.http_bad_requests);
                    debug!(%from, reason, "refusing HTTP announce");
                    proto::write_http_failure(&mut body, reason);
                    return ("200 OK", "text/plain", body);
                }
            };
            match store
                .announce(now, &a, Families::Both, who, !compact, picked)
                .await
            {
                Ok(Ok(mut out)) => {
                    inc(&st.metrics.http_announces);
                    out.warning = out.warning.or(warn_bits);
                    for addr in extra {
                        if !picked.iter().any(|p| p.addr == addr) {
                            picked.push(super::select::Picked {
                                addr,
                                peer_id: [0; 20],
                            });
                        }
                    }
                    let l = &st.limits;
                    proto::write_http_announce(
                        &mut body,
                        reply,
                        l.interval,
                        l.min_interval,
                        &out,
                        compact,
                        picked,
                    );
                }
                Ok(Err(refusal)) => proto::write_http_failure(&mut body, refusal.reason()),
                Err(e) => {
                    store.failed(&e);
                    proto::write_http_failure(&mut body, UNAVAILABLE);
                }
            }
            ("200 OK", "text/plain", body)
        }
        StoreReq::Scrape => {
            let hashes = match proto::parse_scrape(query.as_bytes()) {
                Ok(h) => h,
                Err(reason) => {
                    inc(&st.metrics.http_bad_requests);
                    proto::write_http_failure(&mut body, reason);
                    return ("200 OK", "text/plain", body);
                }
            };
            inc(&st.metrics.http_scrapes);
            match scrape(store, now, hashes).await {
                Ok(entries) => proto::write_http_scrape(&mut body, &entries),
                Err(e) => {
                    store.failed(&e);
                    proto::write_http_failure(&mut body, UNAVAILABLE);
                }
            }
            ("200 OK", "text/plain", body)
        }
        StoreReq::Swarm(ih) => match store.swarm(now, &ih).await {
            Ok(Some(d)) => json(store::swarm_json(&ih, &d, now)),
            Ok(None) => (
                "404 Not Found",
                "application/json",
                b"{\"error\":\"unknown info-hash\"}".to_vec(),
            ),
            Err(e) => unavailable(store, &e),
        },
        StoreReq::Swarms { offset, limit } => match store.summaries(now).await {
            Ok(mut list) => json(store::swarms_json(&mut list, offset, limit)),
            Err(e) => unavailable(store, &e),
        },
        StoreReq::Stats => match store.totals(now).await {
            Ok(t) => json(stats_json(&st.metrics, &t, st.started.elapsed().as_secs())),
            Err(e) => unavailable(store, &e),
        },
        StoreReq::Metrics => {
            // The node's own counters are served even while the store is away.
            let t = match store.totals(now).await {
                Ok(t) => t,
                Err(e) => {
                    store.failed(&e);
                    Default::default()
                }
            };
            let mut text = render(&st.metrics, &t, &st.reg());
            store.render(&mut text);
            ("200 OK", "text/plain; version=0.0.4", text.into_bytes())
        }
    }
}

/// A full scrape (no info-hash) lists the most populated torrents, as without a store.
async fn scrape(
    store: &store::Store,
    now: u32,
    hashes: Vec<InfoHash>,
) -> Result<Vec<(InfoHash, u32, u64, u32)>, StoreError> {
    if !hashes.is_empty() {
        return store.scrape(now, &hashes).await;
    }
    let mut all: Vec<_> = store
        .summaries(now)
        .await?
        .into_iter()
        .map(|s| (s.info_hash, s.seeders, s.completed, s.leechers))
        .collect();
    let peers = |e: &(InfoHash, u32, u64, u32)| u64::from(e.1) + u64::from(e.3);
    all.sort_unstable_by(|a, b| peers(b).cmp(&peers(a)).then(a.0.cmp(&b.0)));
    all.truncate(proto::MAX_FULL_SCRAPE);
    all.sort_unstable_by_key(|e| e.0);
    Ok(all)
}

fn json(body: String) -> Response {
    ("200 OK", "application/json", body.into_bytes())
}

fn unavailable(store: &store::Store, e: &StoreError) -> Response {
    store.failed(e);
    (
        "503 Service Unavailable",
        "application/json",
        format!("{{\"error\":\"{UNAVAILABLE}\"}}").into_bytes(),
    )
}

/// Serve the live feed of `ih` from the store: subscribe on every node's channel first, then
/// send the snapshot, then forward each message; a fresh snapshot replaces what a lost
/// subscription may have missed.
pub async fn stream(
    mut sock: TcpStream,
    st: Arc<State>,
    ih: InfoHash,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let Some(store) = st.store.clone() else {
        return Ok(());
    };
    if st.metrics.sse_subscribers.load(Relaxed) >= st.max_subscribers {
        sock.write_all(b"HTTP/1.1 503 Service Unavailable\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await?;
        return Ok(());
    }
    let now = unix_now();
    let opened = async {
        let sub = store.subscribe(&ih).await?;
        let snap = store.swarm(now, &ih).await?;
        Ok::<_, StoreError>((sub, snap))
    }
    .await;
    let (mut sub, snap) = match opened {
        Ok(x) => x,
        Err(e) => {
            store.failed(&e);
            return sse::refuse(&mut sock, "503 Service Unavailable", UNAVAILABLE).await;
        }
    };
    let empty = store::SwarmData::empty();
    let snapshot = store::swarm_json(&ih, snap.as_ref().unwrap_or(&empty), now);
    let _guard = sse::open(&mut sock, &st, &snapshot).await?;
    let watched = sub.watched_key().to_owned();
    let (mut rd, mut wr) = sock.split();
    let mut ping = tokio::time::interval(std::time::Duration::from_secs(15));
    ping.tick().await;
    let mut sink = [0u8; 512];
    loop {
        tokio::select! {
            m = sub.next() => match m {
                Some(json) => wr.write_all(frame(None, &json).as_bytes()).await?,
                None => return Ok(()),
            },
            _ = ping.tick() => {
                if let Err(e) = store.keep_watched(&watched).await {
                    store.failed(&e);
                }
                wr.write_all(b": ping\n\n").await?;
            }
            r = rd.read(&mut sink) => match r {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            },
            _ = stop.changed() => return Ok(()),
        }
    }
}
