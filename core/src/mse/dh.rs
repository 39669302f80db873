//! The MSE Diffie-Hellman exchange: 768-bit keys over the protocol's fixed prime, generator 2.

use crypto_bigint::modular::constant_mod::{Residue, ResidueParams};
use crypto_bigint::U768;

type Mod = Residue<MsePrime, { U768::LIMBS }>;

/// A public key or shared secret on the wire: 96 bytes, big-endian.
pub const KEY_LEN: usize = 96;
/// Bits of the private exponent: the spec's recommended 160.
pub const PRIVATE_LEN: usize = 20;

/// The MSE prime P (768 bits) as crypto-bigint's constant modulus.
mod prime {
    #![allow(missing_docs)]
    use crypto_bigint::{impl_modulus, U768};
    impl_modulus!(
        MsePrime,
        U768,
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563"
    );
}
use prime::MsePrime;

fn exponent(private: &[u8; PRIVATE_LEN]) -> U768 {
    let mut wide = [0u8; KEY_LEN];
    wide[KEY_LEN - PRIVATE_LEN..].copy_from_slice(private);
    U768::from_be_slice(&wide)
}

fn to_bytes(n: &U768) -> [u8; KEY_LEN] {
    let mut out = [0u8; KEY_LEN];
    // Limbs are little-endian; each limb's bytes are written big-endian from the end.
    let limbs = n.as_words();
    let w = core::mem::size_of_val(&limbs[0]);
    for (k, limb) in limbs.iter().enumerate() {
        let be = limb.to_be_bytes();
        let end = KEY_LEN - k * w;
        out[end - w..end].copy_from_slice(&be);
    }
    out
}

/// Our public key `2^private mod P`.
pub fn public_key(private: &[u8; PRIVATE_LEN]) -> [u8; KEY_LEN] {
    let two = Mod::new(&U768::from_u8(2));
    to_bytes(
        &two.pow_bounded_exp(&exponent(private), PRIVATE_LEN * 8)
            .retrieve(),
    )
}

/// The shared secret `theirs^private mod P`, or `None` for a degenerate public key (0, 1,
/// P - 1 or not below P), which would make the secret guessable.
pub fn shared_secret(private: &[u8; PRIVATE_LEN], theirs: &[u8; KEY_LEN]) -> Option<[u8; KEY_LEN]> {
    let y = U768::from_be_slice(theirs);
    let p = <MsePrime as ResidueParams<{ U768::LIMBS }>>::MODULUS;
    if y <= U768::ONE || y >= p.wrapping_sub(&U768::ONE) {
        return None;
    }
    let r = Mod::new(&y);
    Some(to_bytes(
        &r.pow_bounded_exp(&exponent(private), PRIVATE_LEN * 8)
            .retrieve(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_reach_the_same_secret() {
        let a = [0x5au8; PRIVATE_LEN];
        let b = [0xc3u8; PRIVATE_LEN];
        let (ya, yb) = (public_key(&a), public_key(&b));
        assert_ne!(ya, yb);
        assert_eq!(shared_secret(&a, &yb), shared_secret(&b, &ya));
    }

    #[test]
    fn matches_an_independent_modpow() {
        // 2^(0x5a repeated 20 times) mod P, computed with Python's pow().
        let y = public_key(&[0x5a; PRIVATE_LEN]);
        let hex = "75a35a311ec95dd78e7744cabc96191a812d9e4d8479214e0ddc80ff386e9cdbdb585e07b9389bc2678896b402b2a1a4f018f66820d52b5f5a7dfaee489c765829e3e62b82fa7f0e003ed8ea9b6dacf71e0d4ae7a46246bff957eaf0e4a034b5";
        for (k, b) in y.iter().enumerate() {
            assert_eq!(*b, u8::from_str_radix(&hex[2 * k..2 * k + 2], 16).unwrap());
        }
    }

    #[test]
    fn small_exponent_is_a_power_of_two() {
        // 2^10 = 1024: the byte order of keys on the wire is big-endian.
        let mut x = [0u8; PRIVATE_LEN];
        x[PRIVATE_LEN - 1] = 10;
        let y = public_key(&x);
        assert_eq!(y[KEY_LEN - 2..], [0x04, 0x00]);
        assert!(y[..KEY_LEN - 2].iter().all(|&b| b == 0));
    }

    #[test]
    fn degenerate_keys_are_refused() {
        let x = [1u8; PRIVATE_LEN];
        assert!(shared_secret(&x, &[0u8; KEY_LEN]).is_none());
        let mut one = [0u8; KEY_LEN];
        one[KEY_LEN - 1] = 1;
        assert!(shared_secret(&x, &one).is_none());
        assert!(shared_secret(&x, &[0xff; KEY_LEN]).is_none());
    }
}
