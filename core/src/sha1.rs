//! The incremental SHA-1 hasher the session verifies pieces with.
//!
//! The core ships [`Sha1Smol`] (portable, no_std). A shell may plug in a faster implementation
//! (SHA-NI on x86, say) by implementing [`Sha1`] for it.

/// An incremental SHA-1 hasher.
pub trait Sha1: Default {
    /// Feed more bytes.
    fn update(&mut self, bytes: &[u8]);
    /// Return the digest of everything fed, consuming the hasher.
    fn finish(self) -> [u8; 20];
}

/// The portable hasher from `sha1_smol`.
#[derive(Default, Clone)]
pub struct Sha1Smol(sha1_smol::Sha1);

impl Sha1 for Sha1Smol {
    fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(self) -> [u8; 20] {
        self.0.digest().bytes()
    }
}

/// Return the SHA-1 of `bytes` with hasher `H`.
pub fn digest<H: Sha1>(bytes: &[u8]) -> [u8; 20] {
    let mut h = H::default();
    h.update(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // FIPS 180 test vector "abc".
        let d = digest::<Sha1Smol>(b"abc");
        assert_eq!(d[..4], [0xa9, 0x99, 0x3e, 0x36]);
    }
}
