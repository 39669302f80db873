//! The HTTP listener: a keep-alive loop over `httparse` serving announce and scrape (BEP 3, 23,
//! 7, 48), the swarm API, `/metrics` and the live feed, with CORS headers on every response.
//!
//! Bounded: request heads above `--max-request-bytes` get 431 and a close, bodies are refused
//! (but a `.torrent` posted to the bridge's announce relay, within its size cap),
//! connections above `--max-connections` (or `--max-connections-per-ip` from one client) are
//! closed at accept, a request head not complete within `--http-head-timeout` gets 408 and a
//! close however it trickles in, and idle keep-alive connections are closed after a timeout.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use enjambre_core::tracker::ReplyPeer;
use enjambre_core::InfoHash;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::api_access::{is_api_path, Verdict};
use super::metrics::{inc, render};
use super::proto;
use super::registry::{unix_now, Asker, Families};
use super::select::Picked;
use super::sse;
use super::state::State;
use super::swarm_api::{stats_json, swarm_json, swarms_json};
use super::{bridge, store_http, web};

const CORS: &str = "Access-Control-Allow-Origin: *\r\n";

/// Accept connections until `stop` flips.
pub async fn serve(listener: TcpListener, st: Arc<State>, mut stop: watch::Receiver<bool>) {
    let mut last_cap_log = std::time::Instant::now() - Duration::from_secs(60);
    let mut last_ip_cap_log = last_cap_log;
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((sock, from)) => {
                    if st.metrics.http_connections.load(Relaxed) >= st.max_connections {
                        inc(&st.metrics.http_refused_connections);
                        if last_cap_log.elapsed() > Duration::from_secs(10) {
                            warn!(%from, cap = st.max_connections, "refusing HTTP connection: connection cap reached");
                            last_cap_log = std::time::Instant::now();
                        }
                        drop(sock);
                        continue;
                    }
                    let Some(slot) = st.per_ip.take(from.ip()) else {
                        inc(&st.metrics.http_refused_connections);
                        if last_ip_cap_log.elapsed() > Duration::from_secs(10) {
                            warn!(%from, "refusing HTTP connection: this address is at its connection cap");
                            last_ip_cap_log = std::time::Instant::now();
                        }
                        drop(sock);
                        continue;
                    };
                    st.metrics.http_connections.fetch_add(1, Relaxed);
                    let st = st.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        let _slot = slot;
                        let _ = sock.set_nodelay(true);
                        if let Err(e) = connection(sock, from, &st, stop).await {
                            debug!(%from, error = %e, "HTTP connection ended");
                        }
                        st.metrics.http_connections.fetch_sub(1, Relaxed);
                    });
                }
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

/// Per-connection reusable buffers.
#[derive(Default)]
struct Scratch {
    picked: Vec<Picked>,
    reply: Vec<ReplyPeer>,
    body: Vec<u8>,
    bits: Vec<u8>,
}

/// What a request asks the connection to do after its response.
enum After {
    KeepAlive,
    Close,
    Feed(InfoHash),
    Bridge(bridge::Upgrade),
    /// Ask the shared store whether the swarm lists the bridge's target, then write the `101`
    /// head and relay (or refuse).
    BridgeAsk(String, bridge::Target),
    /// Relay a page's announce to other trackers, then answer it (keep-alive or not).
    Forward(Box<bridge::forward::Job>, bool),
    /// Read a posted `.torrent`'s body, then answer.
    Torrent(bridge::forward::Post, bool),
    /// Answer from the shared store (`--store`), then keep alive or not.
    Store(store_http::StoreReq, String, bool),
    /// The live feed from the shared store.
    StoreFeed(InfoHash),
}

async fn connection(
    mut sock: TcpStream,
    from: SocketAddr,
    st: &Arc<State>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    // The address the registry stores: IPv4-mapped IPv6 as IPv4.
    let from_ip = from.ip().to_canonical();
    let mut buf = vec![0u8; st.max_request_bytes.clamp(256, 1 << 20)];
    let mut filled = 0;
    let mut out: Vec<u8> = Vec::with_capacity(2048);
    let mut scratch = Scratch::default();
    let idle = Duration::from_secs(st.http_idle_timeout);
    // When the request head now expected must be complete: set from the connection's opening
    // and from the first byte of each later request, not moved by the bytes that follow (a
    // head dribbled a byte at a time is closed at this deadline all the same).
    let mut head_deadline = Some(Instant::now() + st.http_head_timeout);
    loop {
        let mut start = 0;
        let mut after = After::KeepAlive;
        while start < filled {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[start..filled]) {
                Ok(httparse::Status::Complete(n)) => {
                    start += n;
                    inc(&st.metrics.http_requests);
                    after = handle(&req, from_ip, st, &mut scratch, &mut out);
                    if !matches!(after, After::KeepAlive) {
                        break;
                    }
                }
                Ok(httparse::Status::Partial) => break,
                Err(e) => {
                    inc(&st.metrics.http_bad_requests);
                    debug!(%from, error = %e, "refusing malformed HTTP request");
                    respond(
                        &mut out,
                        "400 Bad Request",
                        "text/plain",
                        b"malformed request\n",
                        false,
                    );
                    after = After::Close;
                    break;
                }
            }
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if start > 0 {
            // A request was answered: the next head's time starts with its first byte.
            head_deadline = (filled > 0).then(|| Instant::now() + st.http_head_timeout);
        }
        if !out.is_empty() {
            sock.write_all(&out).await?;
            out.clear();
        }
        match after {
            After::Close => return Ok(()),
            After::Feed(ih) => return sse::stream(sock, st.clone(), ih, stop).await,
            After::Bridge(up) => {
                let early = buf[..filled].to_vec();
                return bridge::relay(sock, early, up, st.clone(), stop).await;
            }
            After::BridgeAsk(head, target) => {
                let listed = match &st.store {
                    Some(store) => match store
                        .lists(unix_now(), &target.info_hash, target.addr)
                        .await
                    {
                        Ok(l) => Some(l),
                        Err(e) => {
                            store.failed(&e);
                            None
                        }
                    },
                    None => Some(st.reg().lists(&target.info_hash, target.addr)),
                };
                let up = bridge::decide(st, from_ip, target, listed);
                sock.write_all(head.as_bytes()).await?;
                let early = buf[..filled].to_vec();
                return bridge::relay(sock, early, up, st.clone(), stop).await;
            }
            After::Forward(job, keep) => {
                let extra = bridge::forward::relay(st, &job).await;
                if st.store.is_some() {
                    let who = store_http::StoreReq::Announce {
                        who: Asker::Unlisted,
                        extra,
                    };
                    let (status, ctype, body) = store_http::serve(
                        who,
                        &job.query,
                        from_ip,
                        st,
                        &mut scratch.bits,
                        &mut scratch.picked,
                        &mut scratch.reply,
                    )
                    .await;
                    respond(&mut out, status, ctype, &body, keep);
                } else {
                    let q = job.query.as_bytes();
                    announce(q, from_ip, st, &mut scratch, Asker::Unlisted, &extra);
                    respond(&mut out, "200 OK", "text/plain", &scratch.body, keep);
                }
                sock.write_all(&out).await?;
                out.clear();
                if !keep {
                    return Ok(());
                }
                head_deadline = (filled > 0).then(|| Instant::now() + st.http_head_timeout);
                continue;
            }
            After::Torrent(post, keep) => {
                let Some(body) = read_body(&mut sock, &mut buf, &mut filled, post.len).await?
                else {
                    return Ok(());
                };
                let (status, text) = st.bridge.forward.register(post.info_hash, &body);
                respond(&mut out, status, "text/plain", text.as_bytes(), keep);
                sock.write_all(&out).await?;
                out.clear();
                if !keep {
                    return Ok(());
                }
                head_deadline = (filled > 0).then(|| Instant::now() + st.http_head_timeout);
                continue;
            }
            After::Store(req, query, keep) => {
                let (status, ctype, body) = store_http::serve(
                    req,
                    &query,
                    from_ip,
                    st,
                    &mut scratch.bits,
                    &mut scratch.picked,
                    &mut scratch.reply,
                )
                .await;
                respond(&mut out, status, ctype, &body, keep);
                sock.write_all(&out).await?;
                out.clear();
                if !keep {
                    return Ok(());
                }
                head_deadline = (filled > 0).then(|| Instant::now() + st.http_head_timeout);
                continue;
            }
            After::StoreFeed(ih) => return store_http::stream(sock, st.clone(), ih, stop).await,
            After::KeepAlive => {}
        }
        if filled == buf.len() {
            inc(&st.metrics.http_bad_requests);
            debug!(%from, limit = buf.len(), "refusing HTTP request head over the size limit");
            respond(
                &mut out,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"request too large\n",
                false,
            );
            sock.write_all(&out).await?;
            return Ok(());
        }
        let wait_until = match head_deadline {
            Some(d) => d.min(Instant::now() + idle),
            None => Instant::now() + idle,
        };
        let n = tokio::select! {
            r = tokio::time::timeout_at(wait_until, sock.read(&mut buf[filled..])) => match r {
                Err(_) if head_deadline.is_some_and(|d| d <= Instant::now()) => {
                    inc(&st.metrics.http_slow_heads);
                    debug!(%from, buffered = filled, "closing HTTP connection: request head not complete in time");
                    respond(&mut out, "408 Request Timeout", "text/plain", b"request head too slow\n", false);
                    let _ = tokio::time::timeout(Duration::from_secs(1), sock.write_all(&out)).await;
                    return Ok(());
                }
                Err(_) => return Ok(()),
                Ok(r) => r?,
            },
            _ = stop.changed() => return Ok(()),
        };
        if n == 0 {
            return Ok(());
        }
        if filled == 0 && head_deadline.is_none() {
            head_deadline = Some(Instant::now() + st.http_head_timeout);
        }
        filled += n;
    }
}

/// Read a `len`-byte request body: first what `buf` holds past the head, then the socket, within
/// a time bound; `None` when the client went away or was too slow.
async fn read_body(
    sock: &mut TcpStream,
    buf: &mut [u8],
    filled: &mut usize,
    len: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let took = (*filled).min(len);
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(&buf[..took]);
    buf.copy_within(took..*filled, 0);
    *filled -= took;
    let rest = (len - body.len()) as u64;
    let mut rest = AsyncReadExt::take(&mut *sock, rest);
    match tokio::time::timeout(Duration::from_secs(30), rest.read_to_end(&mut body)).await {
        Ok(Ok(_)) if body.len() == len => Ok(Some(body)),
        Ok(Err(e)) => Err(e),
        _ => Ok(None),
    }
}

/// Write a whole response.
fn respond(out: &mut Vec<u8>, status: &str, content_type: &str, body: &[u8], keep_alive: bool) {
    use std::io::Write;
    let _ =
        write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{CORS}{}\r\n",
        body.len(),
        if keep_alive { "" } else { "Connection: close\r\n" }
    );
    out.extend_from_slice(body);
}

fn wants_keep_alive(req: &httparse::Request<'_, '_>) -> bool {
    let conn = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("connection"))
        .map(|h| h.value);
    match req.version {
        Some(1) => !conn.is_some_and(|v| v.eq_ignore_ascii_case(b"close")),
        _ => conn.is_some_and(|v| v.eq_ignore_ascii_case(b"keep-alive")),
    }
}

fn has_body(req: &httparse::Request<'_, '_>) -> bool {
    req.headers.iter().any(|h| {
        (h.name.eq_ignore_ascii_case("content-length") && h.value != b"0")
            || h.name.eq_ignore_ascii_case("transfer-encoding")
    })
}

fn handle(
    req: &httparse::Request<'_, '_>,
    from: IpAddr,
    st: &Arc<State>,
    sc: &mut Scratch,
    out: &mut Vec<u8>,
) -> After {
    let keep = wants_keep_alive(req);
    let ka = if keep { After::KeepAlive } else { After::Close };
    let method = req.method.unwrap_or("");
    let target = req.path.unwrap_or("/");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    if method == "POST" && st.bridge.on {
        if let Some(hex) = path.strip_prefix("/bridge/torrent/") {
            return match st.bridge.forward.post(req, hex) {
                Ok(post) => After::Torrent(post, keep),
                Err((status, why)) => {
                    inc(&st.metrics.http_bad_requests);
                    respond(out, status, "text/plain", why.as_bytes(), false);
                    After::Close
                }
            };
        }
    }
    if has_body(req) {
        inc(&st.metrics.http_bad_requests);
        debug!(%from, path, "refusing HTTP request with a body");
        respond(
            out,
            "400 Bad Request",
            "text/plain",
            b"request bodies are not accepted\n",
            false,
        );
        return After::Close;
    }
    if method == "OPTIONS" {
        out.extend_from_slice(
            format!(
                "HTTP/1.1 204 No Content\r\n{CORS}Access-Control-Allow-Methods: GET, OPTIONS\r\nAccess-Control-Allow-Headers: *\r\nAccess-Control-Max-Age: 86400\r\nContent-Length: 0\r\n{}\r\n",
                if keep { "" } else { "Connection: close\r\n" }
            )
            .as_bytes(),
        );
        return ka;
    }
    if method != "GET" {
        inc(&st.metrics.http_bad_requests);
        respond(
            out,
            "405 Method Not Allowed",
            "text/plain",
            b"only GET\n",
            keep,
        );
        return ka;
    }
    if is_api_path(path) {
        match st.api.check(from) {
            Verdict::Allowed => {}
            Verdict::Forbidden => {
                debug!(%from, path, "refusing swarm API request: not in --api-allow");
                respond(
                    out,
                    "403 Forbidden",
                    "text/plain",
                    b"the swarm API is not open to this address\n",
                    keep,
                );
                return ka;
            }
            Verdict::Off => {
                respond(out, "404 Not Found", "text/plain", b"not found\n", keep);
                return ka;
            }
        }
    }
    if let Some(rest) = path.strip_prefix("/bridge/").filter(|_| st.bridge.on) {
        if rest == "announce" {
            let bridge_port = |ih: &_| {
                let at = st.bridge.inbound.announced_addr(query, ih, from)?;
                Some(at.port())
            };
            if let Some(job) = st.bridge.forward.job(query, bridge_port) {
                return After::Forward(job, keep);
            }
            if st.store.is_some() {
                let who = store_http::StoreReq::Announce {
                    who: Asker::Unlisted,
                    extra: Vec::new(),
                };
                return After::Store(who, query.to_owned(), keep);
            }
            announce(query.as_bytes(), from, st, sc, Asker::Unlisted, &[]);
            respond(out, "200 OK", "text/plain", &sc.body, keep);
            return ka;
        }
        return match bridge::upgrade(req, rest, from, st) {
            Ok(bridge::Opened::Ready(head, up)) => {
                out.extend_from_slice(head.as_bytes());
                After::Bridge(up)
            }
            Ok(bridge::Opened::AskStore(head, target)) => After::BridgeAsk(head, target),
            Err((status, why)) => {
                inc(&st.metrics.http_bad_requests);
                respond(out, status, "text/plain", why.as_bytes(), false);
                After::Close
            }
        };
    }
    if let Some(served) = web::file(path) {
        match served {
            web::Served::File(ctype, bytes) => respond(out, "200 OK", ctype, bytes, keep),
            web::Served::Missing => respond(
                out,
                "404 Not Found",
                "text/plain",
                web::MISSING.as_bytes(),
                keep,
            ),
        }
        return ka;
    }
    if st.store.is_some() {
        match store_http::route(path, query) {
            Some(Ok(req)) => return After::Store(req, query.to_owned(), keep),
            Some(Err(ih)) => return After::StoreFeed(ih),
            None => {}
        }
    }
    match path {
        "/announce" => {
            announce(query.as_bytes(), from, st, sc, Asker::Register, &[]);
            respond(out, "200 OK", "text/plain", &sc.body, keep);
        }
        "/scrape" => {
            scrape(query.as_bytes(), from, st, sc);
            respond(out, "200 OK", "text/plain", &sc.body, keep);
        }
        "/swarms" => {
            let param = |name: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .and_then(|v| v.parse::<usize>().ok())
            };
            let limit = param("limit").unwrap_or(1000).min(10_000);
            let offset = param("offset").unwrap_or(0);
            let body = swarms_json(&st.reg(), offset, limit);
            respond(out, "200 OK", "application/json", body.as_bytes(), keep);
        }
        "/stats" => {
            let t = st.totals();
            let body = stats_json(&st.metrics, &t, st.started.elapsed().as_secs());
            respond(out, "200 OK", "application/json", body.as_bytes(), keep);
        }
        "/metrics" => {
            let t = st.totals();
            let mut body = render(&st.metrics, &t, &st.reg());
            st.bridge.render(&mut body);
            respond(
                out,
                "200 OK",
                "text/plain; version=0.0.4",
                body.as_bytes(),
                keep,
            );
        }
        _ => {
            if let Some(rest) = path.strip_prefix("/swarm/") {
                let (hex, events) = match rest.strip_suffix("/events") {
                    Some(h) => (h, true),
                    None => (rest, false),
                };
                let Some(ih) = InfoHash::from_hex(hex) else {
                    inc(&st.metrics.http_bad_requests);
                    respond(
                        out,
                        "400 Bad Request",
                        "text/plain",
                        b"info-hash must be 40 hex digits\n",
                        keep,
                    );
                    return ka;
                };
                if events {
                    return After::Feed(ih);
                }
                let body = {
                    let reg = st.reg();
                    reg.swarms.get(&ih).map(|s| swarm_json(&ih, s, unix_now()))
                };
                match body {
                    Some(b) => respond(out, "200 OK", "application/json", b.as_bytes(), keep),
                    None => respond(
                        out,
                        "404 Not Found",
                        "application/json",
                        b"{\"error\":\"unknown info-hash\"}",
                        keep,
                    ),
                }
            } else {
                respond(out, "404 Not Found", "text/plain", b"not found\n", keep);
            }
        }
    }
    ka
}

/// Answer an announce into `sc.body`; `extra`: peers other trackers listed (the relay's), added
/// after the registry's.
fn announce(
    query: &[u8],
    from: IpAddr,
    st: &State,
    sc: &mut Scratch,
    who: Asker,
    extra: &[SocketAddr],
) {
    let parsed = proto::parse_announce(query, from, &mut sc.bits, st.limits.max_pieces);
    let (mut a, compact, warn_bits) = match parsed {
        Ok(x) => x,
        Err(reason) => {
            inc(&st.metrics.http_bad_requests);
            debug!(%from, reason, "refusing HTTP announce");
            proto::write_http_failure(&mut sc.body, reason);
            return;
        }
    };
    // A page holding a bridge port is stored at that port (see `bridge::inbound`).
    let mut who = who;
    if who == Asker::Unlisted {
        let q = std::str::from_utf8(query).unwrap_or("");
        if let Some(at) = st.bridge.inbound.announced_addr(q, &a.info_hash, from) {
            (a.addr, who) = (at, Asker::Register);
        }
    }
    let r = st
        .reg()
        .announce_as(unix_now(), &a, Families::Both, who, &mut sc.picked);
    match r {
        Ok(mut reply) => {
            inc(&st.metrics.http_announces);
            if reply.warning.is_none() {
                reply.warning = warn_bits;
            }
            for &addr in extra {
                if !sc.picked.iter().any(|p| p.addr == addr) {
                    let peer_id = [0; 20];
                    sc.picked.push(Picked { addr, peer_id });
                }
            }
            proto::write_http_announce(
                &mut sc.body,
                &mut sc.reply,
                st.limits.interval,
                st.limits.min_interval,
                &reply,
                compact,
                &sc.picked,
            );
        }
        Err(refusal) => {
            debug!(%from, info_hash = %a.info_hash, reason = refusal.reason(), "refusing HTTP announce");
            proto::write_http_failure(&mut sc.body, refusal.reason());
        }
    }
}

fn scrape(query: &[u8], from: IpAddr, st: &State, sc: &mut Scratch) {
    match proto::parse_scrape(query) {
        Ok(hashes) => {
            inc(&st.metrics.http_scrapes);
            let entries: Vec<_> = {
                let reg = st.reg();
                if hashes.is_empty() {
                    // A full scrape: the most populated swarms, bounded.
                    let mut all: Vec<_> = reg
                        .swarms
                        .iter()
                        .map(|(ih, s)| (*ih, s.seeders, s.completed, s.leechers))
                        .collect();
                    let peers = |e: &(InfoHash, u32, u64, u32)| u64::from(e.1) + u64::from(e.3);
                    all.sort_unstable_by(|a, b| peers(b).cmp(&peers(a)).then(a.0.cmp(&b.0)));
                    all.truncate(proto::MAX_FULL_SCRAPE);
                    // A bencoded dictionary's keys are in order.
                    all.sort_unstable_by_key(|e| e.0);
                    all
                } else {
                    hashes
                        .iter()
                        .map(|ih| {
                            let (c, d, i) = reg.scrape(ih);
                            (*ih, c, d, i)
                        })
                        .collect()
                }
            };
            proto::write_http_scrape(&mut sc.body, &entries);
        }
        Err(reason) => {
            inc(&st.metrics.http_bad_requests);
            debug!(%from, reason, "refusing HTTP scrape");
            proto::write_http_failure(&mut sc.body, reason);
        }
    }
}
