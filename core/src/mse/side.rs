//! What both sides of the exchange share: the receive loop that feeds bytes to a side's parser
//! until it stalls, and what a finished exchange hands over.

use super::buf::Buf;
use super::rc4::Rc4;
use super::{Established, Method, MseError};

/// Receive room of either side: the longest stretch parsed at once is a pad and the marker
/// searched for past it (PadB and ENCRYPT(VC), 520 bytes; PadA and HASH('req1', S), 532).
pub(super) const RX: usize = 640;

/// One side of the exchange, as the shared loop sees it.
pub(super) trait Side {
    /// The method chosen, once the exchange is done.
    fn done(&self) -> Option<Method>;
    /// Record a failure; every later call returns it.
    fn fail(&mut self, e: MseError);
    /// What was received and not parsed yet.
    fn rx(&mut self) -> &mut Buf<RX>;
}

/// Push `input` into `side` and parse with `step` until nothing moves; returns how many bytes
/// were taken (all, unless the exchange finished or failed).
pub(super) fn receive<S: Side>(
    side: &mut S,
    input: &[u8],
    mut step: impl FnMut(&mut S) -> Result<(), MseError>,
) -> Result<usize, MseError> {
    let mut taken = 0;
    loop {
        if side.done().is_some() {
            return Ok(taken);
        }
        let pushed = side.rx().push(&input[taken..]);
        taken += pushed;
        let before = side.rx().len();
        if let Err(e) = step(side) {
            side.fail(e);
            return Err(e);
        }
        let stalled = side.rx().len() == before && side.done().is_none();
        if stalled && side.rx().len() == RX {
            // Unreachable within the spec's bounds; refused rather than stuck.
            side.fail(MseError::NoSync);
            return Err(MseError::NoSync);
        }
        if stalled && pushed == 0 {
            return Ok(taken);
        }
    }
}

/// What `rx` holds past the exchange's end, once it is done.
pub(super) fn leftover(done: bool, rx: &Buf<RX>) -> &[u8] {
    if done {
        rx.as_slice()
    } else {
        &[]
    }
}

/// The streams that carry the payload, once the exchange chose `method`.
pub(super) fn established(
    method: Option<Method>,
    streams: &Option<(Rc4, Rc4)>,
    info_hash: [u8; 20],
    ia_len: u16,
) -> Option<Established> {
    let method = method?;
    let (encrypt, decrypt) = streams.clone()?;
    Some(Established {
        method,
        info_hash,
        encrypt,
        decrypt,
        ia_len,
    })
}
