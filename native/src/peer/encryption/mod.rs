//! Message Stream Encryption on our sockets: the `--encryption` policy, the key exchange run
//! on a fresh connection (dialled or accepted) before the session sees it, and the RC4
//! streams the reader and writer tasks apply afterwards. The session only ever sees
//! plaintext.

mod cipher;
mod exchange;

pub use cipher::ReadCipher;
pub use exchange::{accept, dial, dial_as, initiate_after_plaintext, redial_with_mse, Secured};

use enjambre_core::mse::Methods;

/// Whether connections are encrypted (`--encryption`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Never: MSE handshakes are refused, connections dialled in plaintext.
    Plaintext,
    /// Accept both; dial in plaintext (again with MSE, once, when the peer closes the
    /// handshake unanswered); when a peer offers both methods, choose plaintext.
    #[default]
    PreferPlaintext,
    /// Accept both; dial with MSE (RC4 chosen when offered), falling back to plaintext when the
    /// key exchange fails.
    PreferEncrypted,
    /// Only RC4-encrypted connections, both ways: plaintext handshakes are refused.
    Require,
}

impl Policy {
    /// Whether an incoming plaintext BitTorrent handshake is taken.
    pub fn accepts_plaintext(self) -> bool {
        self != Policy::Require
    }

    /// Whether an incoming MSE key exchange is answered.
    pub fn accepts_mse(self) -> bool {
        self != Policy::Plaintext
    }

    /// Whether connections we dial start with the key exchange.
    pub fn dials_mse(self) -> bool {
        matches!(self, Policy::PreferEncrypted | Policy::Require)
    }

    /// How a dial opens when nothing is known of the address.
    pub fn opening(self) -> Opening {
        if self.dials_mse() {
            Opening::Mse
        } else {
            Opening::Plaintext
        }
    }

    /// Whether a dial that failed one way is made again the other way (once): both ways are
    /// allowed.
    pub fn falls_back(self) -> bool {
        matches!(self, Policy::PreferPlaintext | Policy::PreferEncrypted)
    }

    /// The payload methods offered and accepted in a key exchange.
    pub fn methods(self) -> Methods {
        if self == Policy::Require {
            Methods::RC4
        } else {
            Methods::BOTH
        }
    }
}

/// How a connection opened: a plaintext BitTorrent handshake, or the key exchange (whichever
/// payload method it selected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opening {
    /// The BitTorrent handshake in the clear.
    Plaintext,
    /// The MSE key exchange first.
    Mse,
}

/// What a connection needs to run the key exchange: the policy and the torrent.
#[derive(Clone, Copy, Debug)]
pub struct Encryption {
    /// The policy.
    pub policy: Policy,
    /// The torrent's info-hash: the exchange's SKEY.
    pub info_hash: [u8; 20],
}
