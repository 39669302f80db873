//! Message Stream Encryption (MSE/PE): the obfuscated key exchange some peers insist on before
//! the BitTorrent handshake, as sans-I/O state machines for both roles.
//!
//! A connection's initiator knows the info-hash ([`Initiator`]); the responder learns it from
//! the exchange through a caller-supplied lookup ([`Responder`]). Both take the bytes read from
//! the socket, hand out the bytes to write, and end [`Established`]: the method chosen and the
//! two RC4 streams, positioned where the payload starts. Randomness (the private key, the
//! padding's length) is the caller's. Nothing here reads a socket or allocates.
//!
//! The exchange (A initiates, B responds; S the Diffie-Hellman secret, SKEY the info-hash):
//! 1. A→B: Ya, PadA
//! 2. B→A: Yb, PadB
//! 3. A→B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
//!    ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
//! 4. B→A: ENCRYPT(VC, crypto_select, len(PadD), PadD), then the payload stream
//!
//! Our initiator sends no IA: it writes the BitTorrent handshake once step 4 arrived.
//! The board firmware never calls this module, so it is not linked there.

mod buf;
pub mod dh;
mod initiator;
mod keys;
pub mod rc4;
mod responder;
mod side;
#[cfg(test)]
mod tests;

pub use initiator::Initiator;
pub use rc4::Rc4;
pub use responder::Responder;

/// Longest padding either side may send (PadA to PadD).
pub const PAD_MAX: usize = 512;
/// The verification constant: eight zero bytes, sent encrypted.
const VC: [u8; 8] = [0; 8];

/// How the payload stream travels once the exchange is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Unencrypted (crypto bit 0x01): only the key exchange was obfuscated.
    Plaintext,
    /// RC4 both ways (crypto bit 0x02).
    Rc4,
}

impl Method {
    const fn bit(self) -> u32 {
        match self {
            Method::Plaintext => 0x01,
            Method::Rc4 => 0x02,
        }
    }
}

/// The methods one side offers (crypto_provide) or accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Methods {
    /// Plaintext payload allowed.
    pub plaintext: bool,
    /// RC4 payload allowed.
    pub rc4: bool,
}

impl Methods {
    /// RC4 only.
    pub const RC4: Methods = Methods {
        plaintext: false,
        rc4: true,
    };
    /// Either.
    pub const BOTH: Methods = Methods {
        plaintext: true,
        rc4: true,
    };

    const fn bits(self) -> u32 {
        (self.plaintext as u32) | ((self.rc4 as u32) << 1)
    }

    const fn from_bits(bits: u32) -> Methods {
        Methods {
            plaintext: bits & 0x01 != 0,
            rc4: bits & 0x02 != 0,
        }
    }
}

/// Why an exchange failed; the connection is then closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MseError {
    /// The peer's public key was 0, 1, P - 1 or not below P.
    DegenerateKey,
    /// The synchronisation hash or VC did not come within the padding's bound.
    NoSync,
    /// The decrypted verification constant was not zero: the keys differ.
    BadVc,
    /// A padding length above 512.
    PadTooLong,
    /// The responder serves no torrent whose HASH('req2', SKEY) matches.
    UnknownTorrent,
    /// The methods offered and those accepted have nothing in common.
    NoCommonMethod,
    /// The responder selected a method we did not offer, or more than one.
    BadSelect,
}

impl core::fmt::Display for MseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MseError::DegenerateKey => "degenerate Diffie-Hellman key",
            MseError::NoSync => "no synchronisation marker within the padding bound",
            MseError::BadVc => "wrong verification constant",
            MseError::PadTooLong => "padding longer than 512 bytes",
            MseError::UnknownTorrent => "no torrent here matches the requested info-hash",
            MseError::NoCommonMethod => "no crypto method in common",
            MseError::BadSelect => "the peer selected a method we did not offer",
        })
    }
}

/// A finished exchange: what carries the payload stream from here on.
#[derive(Clone, Debug)]
pub struct Established {
    /// The method selected.
    pub method: Method,
    /// The torrent the connection is for (the responder's lookup answer).
    pub info_hash: [u8; 20],
    /// Our outgoing key stream (used only with [`Method::Rc4`]).
    pub encrypt: Rc4,
    /// The incoming key stream. The first `ia_len` incoming payload bytes go through it
    /// whatever the method; with [`Method::Rc4`], every byte does.
    pub decrypt: Rc4,
    /// Length of the initiator's initial payload (IA), always RC4: responder side only.
    pub ia_len: u16,
}
