//! Numbers as ASCII decimal digits, written into a caller's buffer: no formatting machinery.

/// The most digits a `u64` has.
pub const MAX_DIGITS: usize = 20;

/// `n` in decimal, without leading zeros: the tail of `digits` it was written into.
pub fn decimal(mut n: u64, digits: &mut [u8; MAX_DIGITS]) -> &[u8] {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_display_at_the_edges() {
        let mut d = [0; MAX_DIGITS];
        for n in [0, 7, 10, 65_535, 1_000_000, u64::MAX] {
            assert_eq!(decimal(n, &mut d), std::format!("{n}").as_bytes());
        }
    }
}
