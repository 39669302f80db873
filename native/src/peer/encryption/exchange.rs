//! The key exchange on a fresh socket, before the session sees it: dialling (MSE first or
//! plaintext, per policy) and accepting (a plaintext handshake or an MSE exchange, told apart
//! by its first bytes).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use enjambre_core::mse::{Established, Initiator, Method, MseError, Rc4, Responder, PAD_MAX};
use rand::Rng;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Encryption, Opening, Policy, ReadCipher};

/// A whole exchange, from the first byte to the last.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// What a plaintext BitTorrent handshake starts with: its first two bytes decide. The rest is
/// the session's to check (it closes a wrong protocol string at its first wrong byte). A key
/// exchange whose Ya starts so (once in 65,536) is taken for plaintext and closed; its peer
/// dials again.
const PLAIN_START: &[u8; 2] = b"\x13B";

/// A connection ready for the session: its socket, the streams to apply, and the bytes
/// already read past the exchange (decrypted).
pub struct Secured {
    /// The socket.
    pub stream: TcpStream,
    /// Applied to every byte read from now on.
    pub read: ReadCipher,
    /// Applied to every byte written (`None`: plaintext).
    pub write: Option<Rc4>,
    /// Payload already read, as plaintext: the session's first input.
    pub first: Vec<u8>,
    /// Whether the payload is RC4-encrypted.
    pub encrypted: bool,
    /// How it opened: in plaintext, or with the key exchange.
    pub opening: Opening,
}

impl Secured {
    fn plain(stream: TcpStream, first: Vec<u8>) -> Self {
        Secured {
            stream,
            read: ReadCipher::none(),
            write: None,
            first,
            encrypted: false,
            opening: Opening::Plaintext,
        }
    }

    fn of(stream: TcpStream, e: &Established, mut first: Vec<u8>) -> Self {
        let mut read = ReadCipher::of(e);
        read.apply(&mut first);
        let encrypted = e.method == Method::Rc4;
        Secured {
            stream,
            read,
            write: encrypted.then(|| e.encrypt.clone()),
            first,
            encrypted,
            opening: Opening::Mse,
        }
    }
}

fn refused(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, what.to_string())
}

fn mse_error(e: MseError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("MSE: {e}"))
}

/// Random private key and padding length for one exchange.
fn secrets() -> ([u8; 20], u16) {
    let mut rng = rand::thread_rng();
    (rng.gen(), rng.gen_range(0..=PAD_MAX as u16))
}

/// Connect to `addr` and prepare the connection as `enc.policy` says: plaintext, or MSE first
/// (`prefer-encrypted` dials again in plaintext when the exchange fails).
pub async fn dial(addr: SocketAddr, bind: Option<IpAddr>, enc: Encryption) -> io::Result<Secured> {
    dial_as(addr, bind, enc, enc.policy.opening()).await
}

/// As [`dial`], opening as `opening` says (what worked with the address before): plaintext, or
/// MSE first, dialled again in plaintext when the exchange fails and the policy allows both.
pub async fn dial_as(
    addr: SocketAddr,
    bind: Option<IpAddr>,
    enc: Encryption,
    opening: Opening,
) -> io::Result<Secured> {
    let connect = || crate::peer::http_tracker::connect_from(addr, bind);
    if opening == Opening::Plaintext {
        return Ok(Secured::plain(connect().await?, Vec::new()));
    }
    match initiate(connect().await?, enc).await {
        Ok(s) => Ok(s),
        Err(e) if enc.policy.falls_back() => {
            tracing::debug!(%addr, error = %e, "MSE failed; dialling again in plaintext");
            Ok(Secured::plain(connect().await?, Vec::new()))
        }
        Err(e) => Err(e),
    }
}

/// Run the exchange as the initiator on a connected socket.
pub async fn initiate(stream: TcpStream, enc: Encryption) -> io::Result<Secured> {
    let (private, pad) = secrets();
    let hs = Initiator::new(enc.info_hash, private, pad, enc.policy.methods());
    run(stream, Role::Initiator(hs), Vec::new()).await
}

/// Run the exchange on a socket dialled again because a plaintext handshake there was closed
/// unanswered, as a peer that requires encryption closes it: both payload methods offered, the
/// peer selects. The peer's dials and the tracker's poller fall back so, once.
pub async fn initiate_after_plaintext(
    stream: TcpStream,
    info_hash: [u8; 20],
) -> io::Result<Secured> {
    let enc = Encryption {
        policy: Policy::PreferEncrypted,
        info_hash,
    };
    initiate(stream, enc).await
}

/// Dial `addr` again with the key exchange, after a plaintext handshake there was closed
/// unanswered (see [`initiate_after_plaintext`]).
pub async fn redial_with_mse(
    addr: SocketAddr,
    bind: Option<IpAddr>,
    info_hash: [u8; 20],
) -> io::Result<Secured> {
    let stream = crate::peer::http_tracker::connect_from(addr, bind).await?;
    initiate_after_plaintext(stream, info_hash).await
}

/// Take an accepted connection: a plaintext handshake or an MSE exchange, as `enc.policy`
/// allows (refused otherwise).
pub async fn accept(mut stream: TcpStream, enc: Encryption) -> io::Result<Secured> {
    let sniff = async {
        let mut seen = Vec::with_capacity(PLAIN_START.len());
        let mut buf = [0u8; 2048];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            seen.extend_from_slice(&buf[..n]);
            let k = seen.len().min(PLAIN_START.len());
            if seen[..k] != PLAIN_START[..k] || k == PLAIN_START.len() {
                return Ok::<_, io::Error>((seen[..k] == PLAIN_START[..k], seen));
            }
        }
    };
    let (plain, seen) = tokio::time::timeout(EXCHANGE_TIMEOUT, sniff)
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    if plain {
        if !enc.policy.accepts_plaintext() {
            return Err(refused("plaintext handshake refused: encryption required"));
        }
        return Ok(Secured::plain(stream, seen));
    }
    if !enc.policy.accepts_mse() {
        return Err(refused("MSE handshake refused: plaintext only"));
    }
    let (private, pad) = secrets();
    let hs = Responder::new(
        private,
        pad,
        enc.policy.methods(),
        enc.policy == Policy::PreferPlaintext,
    );
    run(stream, Role::Responder(hs, enc.info_hash), seen).await
}

enum Role {
    Initiator(Initiator),
    Responder(Responder, [u8; 20]),
}

impl Role {
    fn transmit(&self) -> &[u8] {
        match self {
            Role::Initiator(h) => h.transmit(),
            Role::Responder(h, _) => h.transmit(),
        }
    }

    fn sent(&mut self, n: usize) {
        match self {
            Role::Initiator(h) => h.sent(n),
            Role::Responder(h, _) => h.sent(n),
        }
    }

    fn receive(&mut self, input: &[u8]) -> Result<usize, MseError> {
        match self {
            Role::Initiator(h) => h.receive(input),
            Role::Responder(h, info_hash) => {
                let ih = *info_hash;
                let req2: [u8; 20] = Sha1::new()
                    .chain_update(b"req2")
                    .chain_update(ih)
                    .finalize()
                    .into();
                h.receive(input, |asked| (*asked == req2).then_some(ih))
            }
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Role::Initiator(h) => h.is_done(),
            Role::Responder(h, _) => h.is_done(),
        }
    }

    fn established(&self) -> Option<(Established, &[u8])> {
        match self {
            Role::Initiator(h) => h.established().map(|e| (e, h.leftover())),
            Role::Responder(h, _) => h.established().map(|e| (e, h.leftover())),
        }
    }
}

/// Exchange bytes until the exchange is done and its last message sent. `seen`: bytes
/// already read from the socket.
async fn run(mut stream: TcpStream, mut role: Role, seen: Vec<u8>) -> io::Result<Secured> {
    let work = async {
        let mut input = seen;
        let mut buf = [0u8; 4096];
        loop {
            let mut at = 0;
            while at < input.len() && !role.is_done() {
                match role.receive(&input[at..]).map_err(mse_error)? {
                    0 => break,
                    n => at += n,
                }
            }
            let out = role.transmit().to_vec();
            if !out.is_empty() {
                stream.write_all(&out).await?;
                role.sent(out.len());
            }
            if let Some((e, leftover)) = role.established() {
                let mut first = leftover.to_vec();
                first.extend_from_slice(&input[at..]);
                return Ok(Secured::of(stream, &e, first));
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the MSE exchange",
                ));
            }
            input = buf[..n].to_vec();
        }
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, work)
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
}
