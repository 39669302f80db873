//! The session's outputs: draining `poll_output` until `Timeout` and dispatching each output to
//! its concern. `Transmit` bytes go to the peer's writer; a `Write` hands over the output buffer
//! itself (its bytes start it, by the core's contract) and takes a fresh one; `PieceVerified`
//! and `PieceDiscarded` go to the journal in order with the writes.

use enjambre_core::session::{Command, DiscardCause, Event, Output};

use super::Driver;
use crate::peer::io_thread::IoOp;
use crate::peer::journal::Entry;

impl<const BYTES: usize, const RX: usize> Driver<BYTES, RX> {
    /// Drain outputs until the session is idle; return its deadline.
    pub(super) fn drain(&mut self) -> enjambre_core::Instant {
        loop {
            let deadline = self.drain_once();
            if !self.retry_pending() {
                return deadline;
            }
        }
    }

    /// Drain outputs once, without offering stalled socket bytes again; return the deadline.
    pub(super) fn drain_once(&mut self) -> enjambre_core::Instant {
        loop {
            let now = self.now();
            let out = self.session.poll_output(now, &mut self.out_buf);
            let write = match out {
                Output::Timeout(t) => return t,
                Output::Transmit { peer, bytes } => {
                    if let Some(c) = self.conns.get_mut(&peer) {
                        c.send(bytes);
                    } else if let Some(p) = self.redials.get_mut(&peer) {
                        // Dialled again (`fallback`): sent once the new socket is up.
                        p.record(bytes);
                    }
                    continue;
                }
                Output::Write {
                    op,
                    piece,
                    offset,
                    bytes,
                } => {
                    if !self.got_payload {
                        self.got_payload = true;
                        let ms = self.epoch.elapsed().as_secs_f64() * 1000.0;
                        tracing::info!("first payload byte {ms:.1} ms after start");
                    }
                    // A `Write`'s bytes start the buffer (the core's contract): hand it over.
                    (op, piece.get(), offset, bytes.len())
                }
                Output::Command(c) => {
                    self.command(c);
                    continue;
                }
                Output::Event(e) => {
                    self.event(e);
                    continue;
                }
            };
            let (op, piece, offset, len) = write;
            let buf = std::mem::replace(&mut self.out_buf, self.out_pool.get());
            self.io(IoOp::Write {
                op,
                piece,
                offset,
                buf,
                len,
            });
        }
    }

    /// Carry out one command.
    fn command(&mut self, c: Command) {
        match c {
            Command::Connect { peer, addr } => self.dial(peer, addr),
            Command::Close { peer, reason } => {
                self.web_seed_left(peer, Some(reason));
                self.close(peer);
            }
            Command::SendBlock {
                peer,
                header,
                piece,
                offset,
                len,
            } => {
                let passing = self.session.messages_may_pass_blocks(peer);
                if let Some(c) = self.conns.get_mut(&peer) {
                    c.outbox.let_messages_pass_blocks(passing);
                    c.send_block(header, piece.get(), offset, len);
                }
            }
            Command::Read {
                op,
                piece,
                offset,
                len,
            } => {
                self.io(IoOp::Read {
                    op,
                    piece: piece.get(),
                    offset,
                    len: len as usize,
                });
            }
            Command::Announce {
                event,
                uploaded,
                downloaded,
                left,
            } => self.announce(event, uploaded, downloaded, left),
            Command::PersistResume => self.persist(),
            Command::PieceVerified { piece } => {
                self.io(IoOp::Note(Entry::Verified(piece.get())));
                self.progress.fact(piece, None);
                if self.session.is_done() {
                    self.completed();
                }
            }
            Command::PieceDiscarded { piece, cause } => {
                self.io(IoOp::Note(Entry::Discard(piece.get())));
                self.progress.fact(piece, Some(cause));
                if let DiscardCause::Storage(e) = cause {
                    tracing::warn!(piece = piece.get(), error = %e, "reading a piece back failed");
                }
            }
        }
    }

    /// Show one event; note the first peer met and completion.
    fn event(&mut self, e: Event) {
        self.progress.event(&e);
        match e {
            Event::PeerHandshake { .. } => self.met_a_peer = true,
            Event::Completed => self.completed(),
            _ => {}
        }
    }
}
