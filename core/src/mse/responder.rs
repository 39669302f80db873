//! The side that accepted: it learns the torrent from the exchange and selects the method.

use super::buf::{find, Buf};
use super::dh::{shared_secret, KEY_LEN, PRIVATE_LEN};
use super::keys;
use super::rc4::Rc4;
use super::side::{self, Side, RX};
use super::{Established, Method, Methods, MseError, PAD_MAX, VC};

/// Send room: Yb and PadB, then step 4 (14 bytes, no PadD).
const TX: usize = KEY_LEN + PAD_MAX + 14;

#[derive(Clone, Copy, Debug)]
enum State {
    /// Waiting for Ya.
    Key,
    /// Looking for HASH('req1', S) past PadA.
    SyncReq1,
    /// Waiting for HASH('req2', SKEY) xor HASH('req3', S).
    Req2,
    /// Waiting for ENCRYPT(VC, crypto_provide, len(PadC)).
    Vc,
    /// Skipping PadC.
    PadC {
        left: usize,
        provide: Methods,
    },
    /// Waiting for ENCRYPT(len(IA)).
    IaLen {
        provide: Methods,
    },
    Done(Method),
    Failed(MseError),
}

/// The responding side's exchange (B in the spec).
pub struct Responder {
    private: [u8; PRIVATE_LEN],
    accept: Methods,
    prefer_plaintext: bool,
    state: State,
    rx: Buf<RX>,
    tx: Buf<TX>,
    secret: [u8; KEY_LEN],
    req1: [u8; 20],
    info_hash: [u8; 20],
    streams: Option<(Rc4, Rc4)>,
    pad_len: u16,
    ia_len: u16,
}

impl Responder {
    /// Answer an exchange with a random `private` key and a random `pad_len` (clamped to
    /// 512), selecting among `accept` (plaintext first when `prefer_plaintext`, else RC4).
    pub fn new(
        private: [u8; PRIVATE_LEN],
        pad_len: u16,
        accept: Methods,
        prefer_plaintext: bool,
    ) -> Self {
        Responder {
            private,
            accept,
            prefer_plaintext,
            state: State::Key,
            rx: Buf::new(),
            tx: Buf::new(),
            secret: [0; KEY_LEN],
            req1: [0; 20],
            info_hash: [0; 20],
            streams: None,
            // Yb and PadB wait for Ya: they are queued once it arrived.
            pad_len,
            ia_len: 0,
        }
    }

    /// Bytes to write to the peer now.
    pub fn transmit(&self) -> &[u8] {
        self.tx.as_slice()
    }

    /// The socket took `n` bytes of [`Responder::transmit`].
    pub fn sent(&mut self, n: usize) {
        self.tx.consume(n);
    }

    /// Take bytes read from the peer; returns how many were taken (all, unless the exchange
    /// is done or failed). `lookup` maps HASH('req2', SKEY) to the info-hash of a torrent
    /// served here. Bytes past the exchange's end (the IA, then the payload) are kept as
    /// [`Responder::leftover`].
    pub fn receive<F>(&mut self, input: &[u8], mut lookup: F) -> Result<usize, MseError>
    where
        F: FnMut(&[u8; 20]) -> Option<[u8; 20]>,
    {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        side::receive(self, input, |s| s.step(&mut lookup))
    }

    /// Whether the exchange finished.
    pub fn is_done(&self) -> bool {
        self.done().is_some()
    }

    /// Bytes received past the end of the exchange: the IA then the payload stream, still as
    /// they came over the wire.
    pub fn leftover(&self) -> &[u8] {
        side::leftover(self.is_done(), &self.rx)
    }

    /// The streams that carry the payload, once done (and [`Responder::transmit`] is sent).
    pub fn established(&self) -> Option<Established> {
        side::established(self.done(), &self.streams, self.info_hash, self.ia_len)
    }

    fn step<F>(&mut self, lookup: &mut F) -> Result<(), MseError>
    where
        F: FnMut(&[u8; 20]) -> Option<[u8; 20]>,
    {
        loop {
            let len = self.rx.len();
            match self.state {
                State::Key if len >= KEY_LEN => {
                    let mut ya = [0u8; KEY_LEN];
                    ya.copy_from_slice(&self.rx.as_slice()[..KEY_LEN]);
                    self.rx.consume(KEY_LEN);
                    self.secret =
                        shared_secret(&self.private, &ya).ok_or(MseError::DegenerateKey)?;
                    self.req1 = keys::req1(&self.secret);
                    let mut first = [0u8; KEY_LEN + PAD_MAX];
                    let n = keys::key_and_pad(&self.private, self.pad_len, &mut first);
                    self.tx.push(&first[..n]);
                    self.state = State::SyncReq1;
                }
                State::SyncReq1 => match find(self.rx.as_slice(), &self.req1, PAD_MAX) {
                    Some(at) => {
                        self.rx.consume(at + 20);
                        self.state = State::Req2;
                    }
                    None if len >= PAD_MAX + 20 => return Err(MseError::NoSync),
                    None => return Ok(()),
                },
                State::Req2 if len >= 20 => {
                    let mut got = [0u8; 20];
                    got.copy_from_slice(&self.rx.as_slice()[..20]);
                    self.rx.consume(20);
                    let req3 = keys::hash(&[b"req3", &self.secret]);
                    let wanted = keys::xor(&got, &req3);
                    let skey = lookup(&wanted).ok_or(MseError::UnknownTorrent)?;
                    self.info_hash = skey;
                    self.streams = Some((
                        keys::stream_b(&self.secret, &skey),
                        keys::stream_a(&self.secret, &skey),
                    ));
                    self.state = State::Vc;
                }
                State::Vc if len >= 14 => {
                    let mut head = [0u8; 14];
                    head.copy_from_slice(&self.rx.as_slice()[..14]);
                    self.decrypt(&mut head);
                    self.rx.consume(14);
                    if head[..8] != VC {
                        return Err(MseError::BadVc);
                    }
                    let provide = Methods::from_bits(u32::from_be_bytes([
                        head[8], head[9], head[10], head[11],
                    ]));
                    let left = u16::from_be_bytes([head[12], head[13]]) as usize;
                    if left > PAD_MAX {
                        return Err(MseError::PadTooLong);
                    }
                    self.state = State::PadC { left, provide };
                }
                State::PadC { left, provide } => {
                    let n = left.min(len);
                    let (_, dec) = self.streams.as_mut().expect("keys set");
                    dec.apply(&mut self.rx.as_mut_slice()[..n]);
                    self.rx.consume(n);
                    if n < left {
                        self.state = State::PadC {
                            left: left - n,
                            provide,
                        };
                        return Ok(());
                    }
                    self.state = State::IaLen { provide };
                }
                State::IaLen { provide } if len >= 2 => {
                    let mut head = [0u8; 2];
                    head.copy_from_slice(&self.rx.as_slice()[..2]);
                    self.decrypt(&mut head);
                    self.rx.consume(2);
                    self.ia_len = u16::from_be_bytes(head);
                    let method = self.select(provide)?;
                    let mut msg = [0u8; 14];
                    msg[8..12].copy_from_slice(&method.bit().to_be_bytes());
                    self.streams.as_mut().expect("keys set").0.apply(&mut msg);
                    self.tx.push(&msg);
                    self.state = State::Done(method);
                }
                _ => return Ok(()),
            }
        }
    }

    fn select(&self, provide: Methods) -> Result<Method, MseError> {
        let both = Methods::from_bits(provide.bits() & self.accept.bits());
        match (both.plaintext, both.rc4) {
            (true, true) if self.prefer_plaintext => Ok(Method::Plaintext),
            (_, true) => Ok(Method::Rc4),
            (true, false) => Ok(Method::Plaintext),
            (false, false) => Err(MseError::NoCommonMethod),
        }
    }

    fn decrypt(&mut self, buf: &mut [u8]) {
        self.streams.as_mut().expect("keys set").1.apply(buf);
    }
}

impl Side for Responder {
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
