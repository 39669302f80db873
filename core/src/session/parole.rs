//! Parole: a piece that fails verification with bytes from several addresses blames none of
//! them (an honest peer that shared a piece with a corrupt one, a web seed say, must not be
//! banned for it); it is then fetched from one address alone, so its next failure names the
//! culprit. Sessions that never download (`PARTIAL` 0) hold no parole list and skip this code.

use core::net::IpAddr;

use super::Session;
use crate::sha1::Sha1;

impl<
        H: Sha1,
        P: AsRef<[u8]>,
        const PEERS: usize,
        const BYTES: usize,
        const PARTIAL: usize,
        const RX: usize,
        const Q: usize,
        const PICK: usize,
        const KNOWN: usize,
        const OPS: usize,
        const EVENTS: usize,
        const HAVES: usize,
        const BANS: usize,
        const PEX: usize,
    > Session<H, P, PEERS, BYTES, PARTIAL, RX, Q, PICK, KNOWN, OPS, EVENTS, HAVES, BANS, PEX>
{
    /// Whether peer `i` may be given bytes of `piece`: yes, unless the piece is on parole and
    /// another live peer sent some of it, is sending some, or was asked for some.
    pub(crate) fn parole_allows(&self, i: usize, piece: u32) -> bool {
        if PARTIAL == 0 || !self.parole.contains(&piece) {
            return true;
        }
        let Some(k) = self.partial_index(piece) else {
            return true;
        };
        let me = self.peers[i].addr.map(|a| a.ip());
        let contributors = &self.partials[k].contributors;
        let others = (self.peers.iter().enumerate()).filter(|&(j, p)| j != i && p.is_live());
        others.map(|(_, p)| p).all(|p| {
            let ip = p.addr.map(|a| a.ip());
            let sent = ip.is_some_and(|ip| Some(ip) != me && contributors.contains(&ip));
            let asked = p.requests.iter().any(|r| r.piece == piece);
            let sending = p.inbound.is_some_and(|b| b.piece == piece && b.wanted);
            !sent && !asked && !sending
        })
    }

    /// `piece` failed with bytes from `contributors`: return whether to strike them (one
    /// address alone); several put the piece on parole instead.
    pub(crate) fn blame(&mut self, piece: u32, contributors: &[IpAddr]) -> bool {
        if PARTIAL == 0 || contributors.len() <= 1 {
            self.parole_over(piece);
            return true;
        }
        if !self.parole.contains(&piece) {
            if self.parole.is_full() {
                self.parole.remove(0);
            }
            let _ = self.parole.push(piece);
        }
        false
    }

    /// `piece` verified, or failed with one culprit: off parole.
    pub(crate) fn parole_over(&mut self, piece: u32) {
        if PARTIAL != 0 {
            self.parole.retain(|&p| p != piece);
        }
    }
}
