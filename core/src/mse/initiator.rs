//! The side that dialled: it knows the info-hash and offers the methods it accepts.

use super::buf::{find, Buf};
use super::dh::{shared_secret, KEY_LEN, PRIVATE_LEN};
use super::keys;
use super::rc4::Rc4;
use super::side::{self, Side, RX};
use super::{Established, Method, Methods, MseError, PAD_MAX, VC};

/// Send room: Ya and PadA, then step 3 (56 bytes, no PadC, no IA).
const TX: usize = KEY_LEN + PAD_MAX + 56;

#[derive(Clone, Copy, Debug)]
enum State {
    /// Waiting for Yb.
    Key,
    /// Looking for ENCRYPT(VC) past PadB.
    SyncVc,
    /// Waiting for crypto_select and len(PadD).
    Select,
    /// Skipping PadD.
    PadD {
        left: usize,
        method: Method,
    },
    Done(Method),
    Failed(MseError),
}

/// The initiating side's exchange (A in the spec).
pub struct Initiator {
    private: [u8; PRIVATE_LEN],
    info_hash: [u8; 20],
    provide: Methods,
    state: State,
    rx: Buf<RX>,
    tx: Buf<TX>,
    streams: Option<(Rc4, Rc4)>,
    vc_sync: [u8; 8],
}

impl Initiator {
    /// Start an exchange for `info_hash`, offering `provide`, with a random `private` key and
    /// a random `pad_len` (clamped to 512): Ya and PadA are queued to send at once.
    pub fn new(
        info_hash: [u8; 20],
        private: [u8; PRIVATE_LEN],
        pad_len: u16,
        provide: Methods,
    ) -> Self {
        let mut tx = Buf::new();
        let mut first = [0u8; KEY_LEN + PAD_MAX];
        let n = keys::key_and_pad(&private, pad_len, &mut first);
        tx.push(&first[..n]);
        Initiator {
            private,
            info_hash,
            provide,
            state: State::Key,
            rx: Buf::new(),
            tx,
            streams: None,
            vc_sync: [0; 8],
        }
    }

    /// Bytes to write to the peer now.
    pub fn transmit(&self) -> &[u8] {
        self.tx.as_slice()
    }

    /// The socket took `n` bytes of [`Initiator::transmit`].
    pub fn sent(&mut self, n: usize) {
        self.tx.consume(n);
    }

    /// Take bytes read from the peer; returns how many were taken (all, unless the exchange
    /// is done or failed). Bytes past the exchange's end are kept as [`Initiator::leftover`].
    pub fn receive(&mut self, input: &[u8]) -> Result<usize, MseError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        side::receive(self, input, Self::step)
    }

    /// Whether the exchange finished.
    pub fn is_done(&self) -> bool {
        self.done().is_some()
    }

    /// Bytes received past the end of the exchange: the start of the payload stream, still as
    /// they came over the wire.
    pub fn leftover(&self) -> &[u8] {
        side::leftover(self.is_done(), &self.rx)
    }

    /// The streams that carry the payload, once done (and [`Initiator::transmit`] is sent).
    pub fn established(&self) -> Option<Established> {
        side::established(self.done(), &self.streams, self.info_hash, 0)
    }

    /// Parse what the buffer holds as far as it goes.
    fn step(&mut self) -> Result<(), MseError> {
        loop {
            let len = self.rx.len();
            match self.state {
                State::Key if len >= KEY_LEN => {
                    let mut yb = [0u8; KEY_LEN];
                    yb.copy_from_slice(&self.rx.as_slice()[..KEY_LEN]);
                    self.rx.consume(KEY_LEN);
                    let s = shared_secret(&self.private, &yb).ok_or(MseError::DegenerateKey)?;
                    self.send_step3(&s);
                    self.state = State::SyncVc;
                }
                State::SyncVc => match find(self.rx.as_slice(), &self.vc_sync, PAD_MAX) {
                    Some(at) => {
                        self.rx.consume(at + VC.len());
                        self.state = State::Select;
                    }
                    None if len >= PAD_MAX + VC.len() => return Err(MseError::NoSync),
                    None => return Ok(()),
                },
                State::Select if len >= 6 => {
                    let mut head = [0u8; 6];
                    head.copy_from_slice(&self.rx.as_slice()[..6]);
                    self.decrypt(&mut head);
                    self.rx.consume(6);
                    let select = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
                    let method = match select {
                        0x01 if self.provide.plaintext => Method::Plaintext,
                        0x02 if self.provide.rc4 => Method::Rc4,
                        _ => return Err(MseError::BadSelect),
                    };
                    let left = u16::from_be_bytes([head[4], head[5]]) as usize;
                    if left > PAD_MAX {
                        return Err(MseError::PadTooLong);
                    }
                    self.state = State::PadD { left, method };
                }
                State::PadD { left, method } => {
                    let n = left.min(len);
                    let (_, dec) = self.streams.as_mut().expect("keys set");
                    dec.apply(&mut self.rx.as_mut_slice()[..n]);
                    self.rx.consume(n);
                    self.state = if n == left {
                        State::Done(method)
                    } else {
                        State::PadD {
                            left: left - n,
                            method,
                        }
                    };
                    if n < left {
                        return Ok(());
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn decrypt(&mut self, buf: &mut [u8]) {
        self.streams.as_mut().expect("keys set").1.apply(buf);
    }

    /// Derive the streams from S and queue step 3.
    fn send_step3(&mut self, s: &[u8; KEY_LEN]) {
        let mut enc = keys::stream_a(s, &self.info_hash);
        let mut dec = keys::stream_b(s, &self.info_hash);
        self.vc_sync = VC;
        dec.apply(&mut self.vc_sync);
        let mut msg = [0u8; 56];
        msg[..20].copy_from_slice(&keys::req1(s));
        msg[20..40].copy_from_slice(&keys::req23(&self.info_hash, s));
        // VC, crypto_provide, len(PadC) = 0, len(IA) = 0.
        msg[48..52].copy_from_slice(&self.provide.bits().to_be_bytes());
        enc.apply(&mut msg[40..]);
        self.tx.push(&msg);
        self.streams = Some((enc, dec));
    }
}

impl Side for Initiator {
    fn done(&self) -> Option<Method> {
        match self.state {
            State::Done(m) => Some(m),
            _ => None,
        }
    }

    fn fail(&mut self, e: MseError) {
        self.state = State::Failed(e);
    }

    fn rx(&mut self) -> &mut Buf<RX> {
        &mut self.rx
    }
}
