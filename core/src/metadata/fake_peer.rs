//! A fake peer built from the wire codecs, and links that join it to a fetch machine.

use super::*;
use crate::sha1::{digest, Sha1Smol};
use crate::wire::{
    metadata_piece, ExtendedHandshake, Extensions, Handshake, Message, MetadataMessage, Status,
};
use crate::{Duration, InfoHash, Instant, PeerId};
use core::num::NonZeroU8;
use std::boxed::Box;
use std::vec::Vec;

pub(super) type Asm<'b> = MetadataAssembler<'b, Sha1Smol, u32, 8>;
pub(super) type Fetch = MetadataFetch<u32, FETCH_RX_LEN>;

pub(super) const TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const OURS: PeerId = PeerId(*b"-EJ0001-metadatafetc");
pub(super) const OUR_UT: u8 = 5;
pub(super) const THEIR_UT: u8 = 3;

pub(super) fn config() -> FetchConfig {
    FetchConfig {
        ut_metadata: NonZeroU8::new(OUR_UT).unwrap(),
        listen_port: Some(6881),
        ..FetchConfig::new(OURS)
    }
}

pub(super) fn hash(info: &[u8]) -> InfoHash {
    InfoHash(digest::<Sha1Smol>(info))
}

/// How a fake peer answers requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Serve {
    Honestly,
    Rejecting,
    Silently,
    /// With one bit flipped in every piece.
    Corrupted,
    /// One byte short.
    Short,
}

/// A peer that has the metadata, speaking through the wire codecs.
pub(super) struct FakePeer {
    pub(super) info: Vec<u8>,
    pub(super) serve: Serve,
    /// What it sends us, not yet taken.
    pub(super) outbox: Vec<u8>,
    /// What we sent it, not yet parsed.
    pub(super) inbox: Vec<u8>,
    pub(super) their_handshake: Option<Handshake>,
    pub(super) our_ext: Option<(Option<u8>, Option<std::string::String>)>,
    pub(super) requests: Vec<u32>,
    pub(super) rejects_from_us: Vec<u32>,
}

impl FakePeer {
    pub(super) fn new(info: &[u8], serve: Serve) -> Self {
        let mut peer = FakePeer::silent(info, serve);
        peer.outbox = greeting(hash(info), Some(info.len() as u32));
        peer
    }

    /// A peer that has said nothing yet.
    pub(super) fn silent(info: &[u8], serve: Serve) -> Self {
        FakePeer {
            info: info.to_vec(),
            serve,
            outbox: Vec::new(),
            inbox: Vec::new(),
            their_handshake: None,
            our_ext: None,
            requests: Vec::new(),
            rejects_from_us: Vec::new(),
        }
    }

    /// Read what we sent and answer requests.
    pub(super) fn take(&mut self, bytes: &[u8]) {
        self.inbox.extend_from_slice(bytes);
        if self.their_handshake.is_none() {
            match Handshake::decode(&self.inbox, &[]).unwrap() {
                Status::Complete(h) => self.their_handshake = Some(h),
                Status::Partial => return,
            }
            self.inbox.drain(..68);
        }
        while let Status::Complete((m, used)) = Message::decode(&self.inbox, &[], 1 << 20).unwrap()
        {
            let Message::Extended { id, payload } = m else {
                panic!("we only send extended messages: {m:?}");
            };
            let payload = payload.as_contiguous().unwrap().to_vec();
            self.inbox.drain(..used);
            if id == 0 {
                let h = ExtendedHandshake::decode(&payload).unwrap();
                self.our_ext = Some((h.ut_metadata, h.client.map(Into::into)));
                continue;
            }
            assert_eq!(id, THEIR_UT);
            match MetadataMessage::decode(&payload).unwrap() {
                MetadataMessage::Request { piece } => self.answer(piece),
                MetadataMessage::Reject { piece } => self.rejects_from_us.push(piece),
                MetadataMessage::Data { .. } => panic!("we have no data to send"),
            }
        }
    }

    fn answer(&mut self, piece: u32) {
        self.requests.push(piece);
        let mut data = metadata_piece(&self.info, piece).unwrap().to_vec();
        let m = match self.serve {
            Serve::Silently => return,
            Serve::Rejecting => MetadataMessage::Reject { piece },
            Serve::Honestly | Serve::Corrupted | Serve::Short => {
                if self.serve == Serve::Corrupted {
                    data[0] ^= 0x80;
                } else if self.serve == Serve::Short {
                    data.pop();
                }
                MetadataMessage::Data {
                    piece,
                    total_size: self.info.len() as u32,
                    data: &data,
                }
            }
        };
        self.outbox.extend(encode(m));
    }
}

pub(super) fn encode(m: MetadataMessage<'_>) -> Vec<u8> {
    let mut out = std::vec![0u8; m.encoded_len()];
    m.encode(OUR_UT, &mut out).unwrap();
    out
}

/// A peer's handshake and extended handshake.
pub(super) fn greeting(info_hash: InfoHash, metadata_size: Option<u32>) -> Vec<u8> {
    let ext = Extensions {
        extended: true,
        fast: true,
        ..Extensions::default()
    };
    let mut v = Handshake::new(info_hash, PeerId([7; 20]), ext)
        .encode()
        .to_vec();
    let h = ExtendedHandshake {
        ut_metadata: Some(THEIR_UT),
        ut_pex: Some(1),
        metadata_size,
        client: Some("Fake 1.0"),
        ..ExtendedHandshake::default()
    };
    let mut buf = [0u8; 128];
    let n = h.encode_message(&mut buf).unwrap();
    v.extend_from_slice(&buf[..n]);
    v
}

/// Something a fetch machine reported, other than transmits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ev {
    Done,
    Failed(FetchError),
    Mismatch(Vec<u32>),
}

/// A connection: the fetch machine and the peer at the other end.
pub(super) struct Link {
    pub(super) fetch: Box<Fetch>,
    pub(super) peer: FakePeer,
    pub(super) closed: bool,
    pub(super) timeout: Option<Instant>,
}

pub(super) fn link(key: u32, info_hash: InfoHash, peer: FakePeer) -> Link {
    Link {
        fetch: Box::new(Fetch::new(key, info_hash, config())),
        peer,
        closed: false,
        timeout: None,
    }
}

/// Drain one link's outputs into its peer, then offer it the peer's bytes.
pub(super) fn step(
    l: &mut Link,
    asm: &mut Asm<'_>,
    now: Instant,
    events: &mut Vec<(u32, Ev)>,
) -> bool {
    let key = l.fetch.peer();
    let mut progress = false;
    let mut out = [0u8; 512];
    loop {
        match l.fetch.poll_output(now, asm, &mut out) {
            FetchOutput::Transmit(bytes) => {
                l.peer.take(bytes);
                progress = true;
            }
            FetchOutput::Timeout(t) => {
                l.timeout = t;
                break;
            }
            FetchOutput::Mismatch(peers) => {
                events.push((key, Ev::Mismatch(peers.to_vec())));
                return true;
            }
            FetchOutput::Done => (l.closed, progress) = (true, true),
            FetchOutput::Failed(e) => {
                events.push((key, Ev::Failed(e)));
                (l.closed, progress) = (true, true);
            }
        }
        if l.closed {
            if asm.info().is_some() && !events.iter().any(|e| e.1 == Ev::Done) {
                events.push((key, Ev::Done));
            }
            return progress;
        }
    }
    let taken = l.fetch.handle_input(&l.peer.outbox);
    l.peer.outbox.drain(..taken);
    progress || taken > 0
}

/// Run every open link until nothing moves or a mismatch is reported.
pub(super) fn run(links: &mut [Link], asm: &mut Asm<'_>, now: Instant) -> Vec<(u32, Ev)> {
    let mut events = Vec::new();
    loop {
        let mut progress = false;
        for l in links.iter_mut().filter(|l| !l.closed) {
            progress |= step(l, asm, now, &mut events);
            if events.iter().any(|e| matches!(e.1, Ev::Mismatch(_))) {
                return events;
            }
        }
        if !progress {
            return events;
        }
    }
}

pub(super) fn framed(ext: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = ((payload.len() + 2) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&[20, ext]);
    v.extend_from_slice(payload);
    v
}
