//! RC4, the stream cipher MSE encrypts with. It is what the protocol specifies, not a secure
//! cipher: MSE only obfuscates traffic.

/// One direction's RC4 key stream.
#[derive(Clone)]
pub struct Rc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    /// The key stream for `key` (1 to 256 bytes), nothing discarded.
    pub fn new(key: &[u8]) -> Self {
        let mut s = [0u8; 256];
        for (n, b) in s.iter_mut().enumerate() {
            *b = n as u8;
        }
        let mut j = 0u8;
        for n in 0..256 {
            j = j.wrapping_add(s[n]).wrapping_add(key[n % key.len()]);
            s.swap(n, j as usize);
        }
        Rc4 { s, i: 0, j: 0 }
    }

    /// The key stream for `key` with its first 1024 bytes discarded, as MSE uses it.
    pub fn mse(key: &[u8; 20]) -> Self {
        let mut r = Rc4::new(key);
        let mut skip = [0u8; 256];
        for _ in 0..4 {
            r.apply(&mut skip);
        }
        r
    }

    /// XOR `buf` with the next `buf.len()` bytes of key stream: encrypts and decrypts alike.
    pub fn apply(&mut self, buf: &mut [u8]) {
        let (mut i, mut j) = (self.i, self.j);
        for b in buf {
            i = i.wrapping_add(1);
            j = j.wrapping_add(self.s[i as usize]);
            self.s.swap(i as usize, j as usize);
            let k = self.s[i as usize].wrapping_add(self.s[j as usize]);
            *b ^= self.s[k as usize];
        }
        self.i = i;
        self.j = j;
    }
}

impl core::fmt::Debug for Rc4 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Rc4(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::Rc4;

    #[test]
    fn known_vectors() {
        // The classic vectors: ("Key", "Plaintext") and ("Wiki", "pedia").
        let mut buf = *b"Plaintext";
        Rc4::new(b"Key").apply(&mut buf);
        assert_eq!(buf, [0xBB, 0xF3, 0x16, 0xE8, 0xD9, 0x40, 0xAF, 0x0A, 0xD3]);
        let mut buf = *b"pedia";
        Rc4::new(b"Wiki").apply(&mut buf);
        assert_eq!(buf, [0x10, 0x21, 0xBF, 0x04, 0x20]);
    }

    #[test]
    fn split_applies_match_one_apply() {
        let mut whole = [7u8; 100];
        Rc4::new(b"secret").apply(&mut whole);
        let mut parts = [7u8; 100];
        let mut r = Rc4::new(b"secret");
        r.apply(&mut parts[..33]);
        r.apply(&mut parts[33..]);
        assert_eq!(whole, parts);
    }
}
