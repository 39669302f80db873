//! The UDP tracker (BEP 15): one OS thread per socket, blocking receive, answer in place.
//!
//! Connection ids come from [`super::connid`]. A packet that does not decode is answered with an
//! error packet only when it carries a valid connection id for its source (so garbage from a
//! forged source is never reflected); a forged or expired id gets an error packet no larger than
//! the request.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use enjambre_core::tracker::udp::{
    write_announce_response, write_scrape_response, Request, Response, ScrapeStats,
};
use futures_util::FutureExt;
use tracing::{debug, warn};

use super::metrics::inc;
use super::mmsg::{Batch, SendBatch};
use super::proto;
use super::registry::{unix_now, AnnounceIn, Asker, Families};
use super::select::Picked;
use super::state::State;
use super::store::UNAVAILABLE;

/// Info-hashes answered in one UDP scrape (BEP 15: about 74 fit a packet).
const MAX_UDP_SCRAPE: usize = 74;

/// Reusable buffers of one UDP thread.
pub struct UdpScratch {
    picked: Vec<Picked>,
    stats: Vec<ScrapeStats>,
}

impl UdpScratch {
    /// Empty buffers.
    pub fn new() -> Self {
        UdpScratch {
            picked: Vec::with_capacity(256),
            stats: Vec::with_capacity(MAX_UDP_SCRAPE),
        }
    }
}

/// Datagrams taken per system call.
const BATCH: usize = 32;

/// Serve `sock` until `stop` is set: receive a batch, answer each in place, send the replies
/// as one batch.
pub fn run(sock: UdpSocket, st: Arc<State>, stop: Arc<AtomicBool>) {
    if let Err(e) = sock.set_read_timeout(Some(Duration::from_millis(200))) {
        warn!(error = %e, "cannot set UDP read timeout");
    }
    let mut rx = Batch::new(BATCH);
    let mut tx = SendBatch::new(BATCH);
    let mut out = vec![[0u8; 2048]; BATCH];
    let mut lens: Vec<(usize, SocketAddr)> = Vec::with_capacity(BATCH);
    let mut scratch: Vec<UdpScratch> = (0..BATCH).map(|_| UdpScratch::new()).collect();
    while !stop.load(Relaxed) {
        let got = match rx.recv(&sock) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => {
                debug!(error = %e, "UDP receive failed");
                continue;
            }
        };
        // Each packet answers into its own slot. In memory every answer is ready at once;
        // with --store the batch's Redis calls run together (pipelined on the store's
        // connection) instead of one round trip after another.
        let answers = out.iter_mut().zip(scratch.iter_mut()).take(got);
        let answers = answers.enumerate().map(|(i, (o, sc))| {
            let rx = &rx;
            let st = &st;
            async move {
                let (packet, from) = rx.get(i)?;
                handle(packet, from, st, sc, o).await.map(|len| (len, from))
            }
        });
        lens.clear();
        match &st.store {
            Some(store) => {
                let done = store.block_on(futures_util::future::join_all(answers));
                lens.extend(done.into_iter().map(|a| a.unwrap_or((0, UNSENT))));
            }
            None => lens.extend(answers.map(|a| a.now_or_never().flatten().unwrap_or((0, UNSENT)))),
        }
        let replies: Vec<(&[u8], SocketAddr)> = lens
            .iter()
            .zip(out.iter())
            .filter(|((_, to), _)| *to != UNSENT)
            .map(|(&(len, to), buf)| (&buf[..len.min(buf.len())], to))
            .collect();
        if let Err(e) = tx.send(&sock, &replies) {
            debug!(error = %e, "UDP send failed");
        }
    }
}

/// Marks a slot whose packet gets no answer.
const UNSENT: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));

fn error_packet(out: &mut [u8], transaction_id: u32, message: &str) -> Option<usize> {
    Response::Error {
        transaction_id,
        message: message.as_bytes(),
    }
    .encode(out)
    .ok()
}

/// Answer one packet into `out`; `None` means send nothing. Awaits only the shared store (with
/// the registry in memory it is ready at its first poll).
pub async fn handle(
    packet: &[u8],
    from: SocketAddr,
    st: &State,
    sc: &mut UdpScratch,
    out: &mut [u8],
) -> Option<usize> {
    let ip = from.ip().to_canonical();
    let now = unix_now();
    let req = match Request::decode(packet) {
        Ok(r) => r,
        Err(_) => {
            inc(&st.metrics.udp_bad_packets);
            // Answer only a packet that proves its source with a valid connection id.
            let cid = packet
                .get(..8)
                .map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))?;
            let tid = packet
                .get(12..16)
                .map(|b| u32::from_be_bytes(b.try_into().unwrap_or([0; 4])))?;
            if st.connids.check(cid, ip, u64::from(now)) {
                debug!(%from, len = packet.len(), "refusing malformed UDP request");
                return error_packet(out, tid, "malformed request");
            }
            return None;
        }
    };
    match req {
        Request::Connect { transaction_id } => {
            inc(&st.metrics.udp_connects);
            let connection_id = st.connids.issue(ip, u64::from(now));
            Response::Connect {
                transaction_id,
                connection_id,
            }
            .encode(out)
            .ok()
        }
        Request::Announce {
            connection_id,
            transaction_id,
            info_hash,
            peer_id,
            downloaded,
            left,
            uploaded,
            event,
            num_want,
            port,
            ..
        } => {
            if !st.connids.check(connection_id, ip, u64::from(now)) {
                inc(&st.metrics.udp_bad_connection_ids);
                debug!(%from, "refusing UDP announce: forged or expired connection id");
                return error_packet(out, transaction_id, "bad connection id");
            }
            if port == 0 {
                inc(&st.metrics.udp_bad_packets);
                debug!(%from, "refusing UDP announce with port 0");
                return error_packet(out, transaction_id, proto::PORT_ZERO);
            }
            let a = AnnounceIn {
                info_hash,
                peer_id: peer_id.0,
                addr: SocketAddr::new(ip, port),
                uploaded,
                downloaded,
                left,
                event: proto::event(event),
                numwant: if num_want > 0 {
                    Some(num_want as u32)
                } else {
                    None
                },
                bitfield: None,
            };
            let r = match &st.store {
                Some(store) => {
                    let fut = store.announce(
                        now,
                        &a,
                        Families::Same,
                        Asker::Register,
                        false,
                        &mut sc.picked,
                    );
                    match fut.await {
                        Ok(r) => r,
                        Err(e) => {
                            store.failed(&e);
                            return error_packet(out, transaction_id, UNAVAILABLE);
                        }
                    }
                }
                None => st.reg().announce(now, &a, Families::Same, &mut sc.picked),
            };
            match r {
                Ok(reply) => {
                    inc(&st.metrics.udp_announces);
                    // The asker's family only: the packet format fixes it (BEP 15).
                    write_announce_response(
                        out,
                        transaction_id,
                        st.limits.interval,
                        reply.incomplete,
                        reply.complete,
                        ip.is_ipv6(),
                        sc.picked.iter().map(|p| p.addr),
                    )
                    .ok()
                }
                Err(refusal) => {
                    debug!(%from, info_hash = %info_hash, reason = refusal.reason(), "refusing UDP announce");
                    error_packet(out, transaction_id, refusal.reason())
                }
            }
        }
        Request::Scrape {
            connection_id,
            transaction_id,
            info_hashes,
        } => {
            if !st.connids.check(connection_id, ip, u64::from(now)) {
                inc(&st.metrics.udp_bad_connection_ids);
                debug!(%from, "refusing UDP scrape: forged or expired connection id");
                return error_packet(out, transaction_id, "bad connection id");
            }
            inc(&st.metrics.udp_scrapes);
            sc.stats.clear();
            if let Some(store) = &st.store {
                let hashes: Vec<_> = info_hashes
                    .chunks_exact(20)
                    .take(MAX_UDP_SCRAPE)
                    .filter_map(|c| Some(enjambre_core::InfoHash(c.try_into().ok()?)))
                    .collect();
                match store.scrape(now, &hashes).await {
                    Ok(entries) => {
                        sc.stats
                            .extend(entries.iter().map(|&(_, s, c, l)| ScrapeStats {
                                seeders: s,
                                completed: c.min(u64::from(u32::MAX)) as u32,
                                leechers: l,
                            }))
                    }
                    Err(e) => {
                        store.failed(&e);
                        return error_packet(out, transaction_id, UNAVAILABLE);
                    }
                }
            } else {
                let reg = st.reg();
                for chunk in info_hashes.chunks_exact(20).take(MAX_UDP_SCRAPE) {
                    let mut ih = [0u8; 20];
                    ih.copy_from_slice(chunk);
                    let (seeders, completed, leechers) = reg.scrape(&enjambre_core::InfoHash(ih));
                    sc.stats.push(ScrapeStats {
                        seeders,
                        completed: completed.min(u64::from(u32::MAX)) as u32,
                        leechers,
                    });
                }
            }
            write_scrape_response(out, transaction_id, sc.stats.iter().copied()).ok()
        }
    }
}
