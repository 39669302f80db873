//! One torrent's announces, sans-IO: which tracker to ask next and with what request, in BEP 12
//! order; what each answer means; when to give up. Never opens a socket, resolves a name or
//! speaks TLS: the shell does, for one tracker at a time, and reports back.
//!
//! A round (one announce, to the first tracker that answers):
//! 1. [`Announcer::start`] with the event and the counters;
//! 2. [`Announcer::poll`] says what to do: [`Action::Http`] (send a `GET` with this query,
//!    framed by [`write_get`](super::write_get), or `fetch` it), [`Action::Udp`] (open a socket
//!    to that host, then drive the BEP 15 exchange through [`Announcer::poll_transmit`],
//!    [`Announcer::handle_datagram`] and [`Announcer::handle_timeout`]) or [`Action::GaveUp`];
//! 3. the shell reports the outcome: [`Announcer::handle_http`] with the status and body, or
//!    [`Announcer::handle_failure`] when it could not get one; each returns a [`Step`];
//! 4. back to 2 until a [`Step::Answered`] or an [`Action::GaveUp`] ends the round.
//!
//! Rules applied here, the same for every shell: a tracker that answers moves to the front of
//! its tier; each tracker is tried once per round, so a round is bounded by the list; the
//! self-reported `bitfield=` is left out when the query would exceed [`MAX_QUERY`] or not fit
//! the caller's buffer, and after a tracker answers 414 or 431 to it (that tracker is asked
//! again at once without it, and never sent it again); a `tracker id` is sent back to the
//! tracker that gave it; a missing interval is [`DEFAULT_INTERVAL`](super::DEFAULT_INTERVAL).

use super::answer::Answer;
use super::failure::Failure;
use super::tiers::Tiers;
use super::udp::{Retransmit, UdpAnnounce, UdpOutcome, UdpTracker};
use super::url::{Scheme, TrackerUrl};
use crate::rng::Rng;
use crate::tracker::{AnnounceEvent, AnnounceRequest, AnnounceResponse};
use crate::{InfoHash, Instant, PeerId};

/// The longest announce query sent with a self-reported `bitfield=`: trackers cap request heads
/// (ours and many others at 8 KiB), and a longer report is left out rather than refused.
pub const MAX_QUERY: usize = 6 * 1024;

/// The longest `tracker id` kept to send back; a longer one is not sent back.
pub const MAX_TRACKER_ID: usize = 64;

/// How many peers to ask for unless told otherwise.
pub const NUMWANT: u32 = 80;

/// Who announces: the same in every announce of a torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Identity {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// Our listening port.
    pub port: u16,
    /// Identifies us to trackers across address changes.
    pub key: u32,
    /// How many peers to ask for.
    pub numwant: u32,
}

/// What one announce says: why, and the byte counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Announce {
    /// started / completed / stopped / none.
    pub event: AnnounceEvent,
    /// Payload bytes uploaded.
    pub uploaded: u64,
    /// Payload bytes downloaded.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
}

/// What the shell should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action<'u, 'o> {
    /// Send `GET` with this query to an `http://` or `https://` tracker, then report the status
    /// and body with [`Announcer::handle_http`] (or [`Announcer::handle_failure`]).
    Http {
        /// The tracker's index in the caller's list.
        tracker: u16,
        /// Its URL.
        url: TrackerUrl<'u>,
        /// The query, without `?`, in the caller's buffer.
        query: &'o [u8],
        /// Whether the query carries our `bitfield=`.
        self_report: bool,
    },
    /// Announce to a `udp://` tracker: send what [`Announcer::poll_transmit`] writes, hand its
    /// datagrams to [`Announcer::handle_datagram`], call [`Announcer::handle_timeout`] at
    /// [`Announcer::poll_timeout`].
    Udp {
        /// The tracker's index in the caller's list.
        tracker: u16,
        /// Its URL.
        url: TrackerUrl<'u>,
    },
    /// Every tracker failed: the round is over; [`Announcer::failures`] lists why.
    GaveUp,
}

/// What a report about the tracker being asked led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Step<'a> {
    /// The tracker answered: the round is over.
    Answered(Answer<'a>),
    /// This tracker failed; [`Announcer::poll`] names the next one.
    Failed {
        /// The tracker.
        tracker: u16,
        /// Why.
        failure: Failure,
        /// The tracker's own words, when it refused.
        reason: Option<&'a str>,
    },
    /// The same tracker is to be asked again without the self-report: poll again.
    Again,
}

/// The tracker being asked.
#[derive(Debug, Clone, Copy)]
struct Trying {
    tracker: u16,
    udp: bool,
    self_report: bool,
    /// Ask it again (without the self-report) at the next poll.
    again: bool,
}

#[derive(Debug, Clone, Copy)]
struct Round {
    announce: Announce,
    /// Position in the tier order of the next tracker to try.
    next: usize,
    trying: Option<Trying>,
}

/// One torrent's tracker client: the tier order, what each tracker taught us, and the round in
/// progress. `N` is the most trackers it holds.
#[derive(Debug, Clone)]
pub struct Announcer<const N: usize> {
    identity: Identity,
    tiers: Tiers<N>,
    /// Trackers that refused a request carrying the self-report (HTTP 414 or 431).
    no_self_report: heapless::Vec<u16, N>,
    /// The last `tracker id` given, and by which tracker.
    tracker_id: Option<(u16, heapless::Vec<u8, MAX_TRACKER_ID>)>,
    /// The BEP 15 exchange, and the tracker its connection id belongs to.
    udp: UdpTracker,
    udp_for: Option<u16>,
    schedule: Retransmit,
    rng: Rng,
    round: Option<Round>,
    /// The last round's failures, in the order tried.
    failures: heapless::Vec<(u16, Failure), N>,
}

impl<const N: usize> Announcer<N> {
    /// A client for the trackers `tiers` orders (indices into the caller's list of URLs), with
    /// UDP retransmissions on `schedule` and transaction ids drawn from `seed`.
    pub fn new(identity: Identity, tiers: Tiers<N>, schedule: Retransmit, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        Announcer {
            identity,
            tiers,
            no_self_report: heapless::Vec::new(),
            tracker_id: None,
            udp: UdpTracker::new(schedule, rng.next_u64()),
            udp_for: None,
            schedule,
            rng,
            round: None,
            failures: heapless::Vec::new(),
        }
    }

    /// Whether there is no tracker at all.
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// The tracker indices in the order the next round tries them.
    pub fn order(&self) -> impl Iterator<Item = u16> + '_ {
        self.tiers.order()
    }

    /// Begin a round, dropping any round still in progress.
    pub fn start(&mut self, announce: Announce) {
        self.udp.cancel();
        self.failures.clear();
        self.round = Some(Round {
            announce,
            next: 0,
            trying: None,
        });
    }

    /// Whether a round is in progress.
    pub fn is_busy(&self) -> bool {
        self.round.is_some()
    }

    /// The trackers that failed in the last round, with why, in the order tried.
    pub fn failures(&self) -> impl Iterator<Item = (u16, Failure)> + '_ {
        self.failures.iter().copied()
    }

    /// What to do next; `None` when there is no round or a tracker's answer is awaited.
    ///
    /// `urls` is the list the tiers were built from; `bitfield` our pieces to self-report (the
    /// same in every poll of a round); an HTTP query is written into `out` (`MAX_QUERY` plus a
    /// few hundred bytes always fits; a smaller `out` sends the self-report only when it fits).
    pub fn poll<'u, 'o, S: AsRef<str>>(
        &mut self,
        now: Instant,
        urls: &'u [S],
        bitfield: Option<&[u8]>,
        out: &'o mut [u8],
    ) -> Option<Action<'u, 'o>> {
        loop {
            let round = self.round.as_mut()?;
            let tracker = match round.trying {
                Some(t) if t.again => t.tracker,
                Some(_) => return None,
                None => match self.tiers.order().nth(round.next) {
                    Some(i) => {
                        round.next += 1;
                        i
                    }
                    None => {
                        self.round = None;
                        return Some(Action::GaveUp);
                    }
                },
            };
            let announce = round.announce;
            let Some(url) = urls
                .get(usize::from(tracker))
                .and_then(|u| TrackerUrl::parse(u.as_ref()).ok())
            else {
                self.record(tracker, Failure::BadUrl);
                continue;
            };
            if url.scheme == Scheme::Udp {
                self.start_udp(now, tracker, announce);
                return Some(Action::Udp { tracker, url });
            }
            let offered = bitfield.filter(|_| !self.no_self_report.contains(&tracker));
            let Some((len, self_report)) = self.write_query(tracker, announce, offered, out) else {
                self.record(tracker, Failure::RequestTooLong);
                continue;
            };
            self.set_trying(tracker, false, self_report);
            return Some(Action::Http {
                tracker,
                url,
                query: &out[..len],
                self_report,
            });
        }
    }

    /// The HTTP tracker being asked answered with `status` and `body` (de-chunked).
    ///
    /// Returns `None` when no HTTP tracker is being asked.
    pub fn handle_http<'a>(&mut self, status: u16, body: &'a [u8]) -> Option<Step<'a>> {
        let t = self.trying().filter(|t| !t.udp && !t.again)?;
        if matches!(status, 414 | 431) && t.self_report {
            // Its head limit is below ours: ask again without the self-report, and never
            // offer it to this tracker again.
            if !self.no_self_report.contains(&t.tracker) {
                let _ = self.no_self_report.push(t.tracker);
            }
            if let Some(Round {
                trying: Some(t), ..
            }) = self.round.as_mut()
            {
                t.again = true;
            }
            return Some(Step::Again);
        }
        if status != 200 {
            return Some(self.fail(t.tracker, Failure::Status(status), None));
        }
        let response = match AnnounceResponse::parse(body) {
            Ok(r) => r,
            Err(e) => return Some(self.fail(t.tracker, Failure::BadResponse(e), None)),
        };
        if let Some(reason) = response.failure {
            return Some(self.fail(t.tracker, Failure::Refused, Some(reason)));
        }
        if let Some(id) = response.tracker_id {
            self.tracker_id = heapless::Vec::from_slice(id).ok().map(|id| (t.tracker, id));
        }
        Some(self.answered(Answer::from_http(t.tracker, response)))
    }

    /// The tracker being asked could not be: the shell reports why (no address, refused
    /// connection, TLS, timeout, a malformed response, a scheme it does not speak). Returns
    /// `None` when no tracker is being asked.
    pub fn handle_failure(&mut self, failure: Failure) -> Option<Step<'static>> {
        let t = self.trying()?;
        if t.udp {
            self.udp.cancel();
        }
        Some(self.fail(t.tracker, failure, None))
    }

    /// Write the UDP datagram to send now into `out` (at least
    /// [`MAX_REQUEST`](super::MAX_REQUEST) bytes); `None` when nothing is due.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        self.trying().filter(|t| t.udp)?;
        self.udp.poll_transmit(now, out)
    }

    /// When to call [`Announcer::handle_timeout`] while a UDP tracker is asked.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.trying().filter(|t| t.udp)?;
        self.udp.poll_timeout()
    }

    /// The UDP wait ran out: retransmit (poll for the datagram), or give this tracker up.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Step<'static>> {
        let t = self.trying().filter(|t| t.udp)?;
        match self.udp.handle_timeout(now)? {
            UdpOutcome::GaveUp => Some(self.fail(t.tracker, Failure::TimedOut, None)),
            // A timeout ends nothing else.
            _ => None,
        }
    }

    /// A datagram from the UDP tracker being asked; `v6`: the socket is IPv6, so compact peers
    /// are 18 bytes. `None` while the exchange goes on.
    pub fn handle_datagram<'a>(
        &mut self,
        now: Instant,
        bytes: &'a [u8],
        v6: bool,
    ) -> Option<Step<'a>> {
        let t = self.trying().filter(|t| t.udp)?;
        match self.udp.handle_datagram(now, bytes)? {
            UdpOutcome::Announced {
                interval,
                leechers,
                seeders,
                peers,
            } => {
                let answer = Answer::from_udp(t.tracker, interval, seeders, leechers, peers, v6);
                Some(self.answered(answer))
            }
            UdpOutcome::Refused(message) => {
                let reason = core::str::from_utf8(message).ok();
                Some(self.fail(t.tracker, Failure::Refused, reason))
            }
            UdpOutcome::GaveUp => Some(self.fail(t.tracker, Failure::TimedOut, None)),
        }
    }

    fn trying(&self) -> Option<Trying> {
        self.round.as_ref()?.trying
    }

    fn set_trying(&mut self, tracker: u16, udp: bool, self_report: bool) {
        if let Some(round) = self.round.as_mut() {
            round.trying = Some(Trying {
                tracker,
                udp,
                self_report,
                again: false,
            });
        }
    }

    fn start_udp(&mut self, now: Instant, tracker: u16, a: Announce) {
        if self.udp_for != Some(tracker) {
            // A connection id is one tracker's: start afresh for another.
            self.udp = UdpTracker::new(self.schedule, self.rng.next_u64());
            self.udp_for = Some(tracker);
        }
        let id = self.identity;
        self.udp.announce(
            now,
            UdpAnnounce {
                info_hash: id.info_hash,
                peer_id: id.peer_id,
                downloaded: a.downloaded,
                left: a.left,
                uploaded: a.uploaded,
                event: a.event,
                key: id.key,
                num_want: i32::try_from(id.numwant).unwrap_or(i32::MAX),
                port: id.port,
            },
        );
        self.set_trying(tracker, true, false);
    }

    /// Write the query into `out`, with the self-report only when it fits both [`MAX_QUERY`]
    /// and `out`; returns its length and whether it carries the self-report.
    fn write_query(
        &self,
        tracker: u16,
        a: Announce,
        bitfield: Option<&[u8]>,
        out: &mut [u8],
    ) -> Option<(usize, bool)> {
        let id = self.identity;
        let request = AnnounceRequest {
            info_hash: id.info_hash,
            peer_id: id.peer_id,
            port: id.port,
            uploaded: a.uploaded,
            downloaded: a.downloaded,
            left: a.left,
            event: a.event,
            compact: true,
            numwant: Some(id.numwant),
            key: Some(id.key),
            trackerid: self
                .tracker_id
                .as_ref()
                .filter(|(i, _)| *i == tracker)
                .map(|(_, id)| id.as_slice()),
            ip: None,
            bitfield,
        };
        if bitfield.is_some() {
            match request.write_query(out) {
                Ok(len) if len <= MAX_QUERY => return Some((len, true)),
                _ => {}
            }
        }
        let without = AnnounceRequest {
            bitfield: None,
            ..request
        };
        without.write_query(out).ok().map(|len| (len, false))
    }

    fn record(&mut self, tracker: u16, failure: Failure) {
        // Each tracker is tried once per round, so the list never outgrows `N`.
        let _ = self.failures.push((tracker, failure));
        if let Some(round) = self.round.as_mut() {
            round.trying = None;
        }
    }

    fn fail<'a>(&mut self, tracker: u16, failure: Failure, reason: Option<&'a str>) -> Step<'a> {
        self.record(tracker, failure);
        Step::Failed {
            tracker,
            failure,
            reason,
        }
    }

    fn answered<'a>(&mut self, answer: Answer<'a>) -> Step<'a> {
        self.tiers.promote(answer.tracker);
        self.round = None;
        Step::Answered(answer)
    }
}
