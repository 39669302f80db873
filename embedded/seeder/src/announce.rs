//! Announces over plain HTTP/1.1, driven by the core's tracker client: the [`Announcer`] picks
//! the tracker and writes the query, [`write_get`] frames the request, [`read_response`] the
//! answer. Here are only the socket, the name lookup and a timeout. `https://` and `udp://`
//! trackers are reported as unsupported and the next tracker is tried.

use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::TcpSocket;
use embassy_net::Stack;
use embassy_time::{with_timeout, Duration};
use enjambre_core::tracker::client::{
    read_response, write_get, Action, Announce, Announcer, Failure, Step, TrackerUrl,
};

use crate::time;

/// The longest request and response an announce handles (a seed asks for no peers).
pub const HTTP_BUF: usize = 1024;
/// How long one tracker has to answer.
const TRACKER_TIMEOUT: Duration = Duration::from_secs(10);

/// What an announce round ended with: the tracker's intervals, or every tracker failed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    Answered {
        interval: enjambre_core::Duration,
        min_interval: Option<enjambre_core::Duration>,
    },
    GaveUp,
}

/// Memory for announcing: the socket's buffers and the request/response buffers. The socket's
/// are small: the request and the response are both in `http`, and the socket's buffers only
/// carry them through in parts.
pub struct AnnounceBuffers {
    rx: [u8; SOCKET_BUF],
    tx: [u8; SOCKET_BUF],
    query: [u8; 512],
    http: [u8; HTTP_BUF],
}

/// Each of the announce socket's buffers.
const SOCKET_BUF: usize = 256;

impl AnnounceBuffers {
    /// Zeroed buffers, for a `static`.
    pub const fn new() -> Self {
        AnnounceBuffers {
            rx: [0; SOCKET_BUF],
            tx: [0; SOCKET_BUF],
            query: [0; 512],
            http: [0; HTTP_BUF],
        }
    }
}

impl Default for AnnounceBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// Run one announce round over `urls`, one tracker at a time.
pub(crate) async fn round<const N: usize>(
    stack: Stack<'_>,
    announcer: &mut Announcer<N>,
    urls: &[&str],
    announce: Announce,
    bufs: &mut AnnounceBuffers,
) -> Outcome {
    announcer.start(announce);
    loop {
        let AnnounceBuffers {
            rx,
            tx,
            query,
            http,
        } = bufs;
        let (tracker, url, query_len) = match announcer.poll(time::now(), urls, None, query) {
            Some(Action::Http {
                tracker,
                url,
                query,
                ..
            }) => (tracker, url, query.len()),
            Some(Action::Udp { tracker, .. }) => {
                warn!("tracker {}: udp is not supported on the board", tracker);
                announcer.handle_failure(Failure::Unsupported);
                continue;
            }
            Some(Action::GaveUp) | None => return Outcome::GaveUp,
        };
        if url.scheme != enjambre_core::tracker::client::Scheme::Http {
            warn!("tracker {}: https is not supported on the board", tracker);
            announcer.handle_failure(Failure::Unsupported);
            continue;
        }
        let mut socket = TcpSocket::new(stack, rx, tx);
        let fetched = with_timeout(
            TRACKER_TIMEOUT,
            get(stack, &mut socket, &url, &query[..query_len], http),
        )
        .await
        .unwrap_or(Err(Failure::TimedOut));
        socket.abort();
        let step = match fetched {
            Ok((status, body)) => announcer.handle_http(status, &http[body]),
            Err(failure) => announcer.handle_failure(failure),
        };
        match step {
            Some(Step::Answered(answer)) => {
                info!(
                    "announced to tracker {}: next in {} s, {:?} seeds, {:?} leeches",
                    answer.tracker,
                    answer.interval.as_secs(),
                    answer.seeders,
                    answer.leechers
                );
                return Outcome::Answered {
                    interval: answer.interval,
                    min_interval: answer.min_interval,
                };
            }
            Some(Step::Failed {
                tracker, failure, ..
            }) => {
                warn!("tracker {} failed: {:?}", tracker, failure);
            }
            Some(Step::Again) | None => {}
        }
    }
}

/// `GET` the announce and read the whole response into `http`: its status and body range.
async fn get(
    stack: Stack<'_>,
    socket: &mut TcpSocket<'_>,
    url: &TrackerUrl<'_>,
    query: &[u8],
    http: &mut [u8],
) -> Result<(u16, core::ops::Range<usize>), Failure> {
    let addrs = stack
        .dns_query(url.host, DnsQueryType::A)
        .await
        .map_err(|_| Failure::Unreachable)?;
    let addr = *addrs.first().ok_or(Failure::Unreachable)?;
    socket
        .connect((addr, url.port))
        .await
        .map_err(|_| Failure::Unreachable)?;
    let len =
        write_get(http, url, query, "Enjambre-board/0.1").map_err(|_| Failure::RequestTooLong)?;
    let mut sent = 0;
    while sent < len {
        sent += socket
            .write(&http[sent..len])
            .await
            .map_err(|_| Failure::Unreachable)?;
    }
    let mut filled = 0;
    loop {
        if filled == http.len() {
            return Err(Failure::Malformed);
        }
        let n = socket
            .read(&mut http[filled..])
            .await
            .map_err(|_| Failure::Unreachable)?;
        filled += n;
        match read_response(&mut http[..filled], n == 0) {
            Ok(Some(reply)) => return Ok((reply.status, reply.body)),
            Ok(None) => {}
            Err(_) => return Err(Failure::Malformed),
        }
    }
}
