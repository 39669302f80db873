//! The incoming side's key stream after the exchange. Never parses a byte.

use enjambre_core::mse::{Established, Method, Rc4};

/// What the reader task applies to every byte read.
pub struct ReadCipher {
    rc4: Option<Rc4>,
    /// Bytes of the initial payload still to decrypt (RC4 even when plaintext was selected).
    ia_left: usize,
    /// Whether every byte after the IA is RC4 too.
    all: bool,
}

impl ReadCipher {
    /// Nothing to decrypt: a plaintext connection.
    pub fn none() -> Self {
        ReadCipher {
            rc4: None,
            ia_left: 0,
            all: false,
        }
    }

    /// The incoming stream of a finished exchange.
    pub fn of(e: &Established) -> Self {
        let all = e.method == Method::Rc4;
        if !all && e.ia_len == 0 {
            return ReadCipher::none();
        }
        ReadCipher {
            rc4: Some(e.decrypt.clone()),
            ia_left: e.ia_len as usize,
            all,
        }
    }

    /// Decrypt `buf` in place: the next bytes of the stream.
    pub fn apply(&mut self, buf: &mut [u8]) {
        let Some(rc4) = self.rc4.as_mut() else {
            return;
        };
        if self.all {
            rc4.apply(buf);
            return;
        }
        let n = self.ia_left.min(buf.len());
        rc4.apply(&mut buf[..n]);
        self.ia_left -= n;
        if self.ia_left == 0 {
            self.rc4 = None;
        }
    }
}
