//! What every board's `main` derives from its random seed: its settings (a peer id
//! `-EJ0001-board` and seven digits) and a locally administered MAC address.

use enjambre_core::PeerId;

use crate::Settings;

impl Settings {
    /// A board listening on `port`, its peer id and random choices drawn from `seed`.
    pub fn board(port: u16, seed: u64) -> Settings {
        let mut peer_id = *b"-EJ0001-board0000000";
        for (i, b) in peer_id[13..].iter_mut().enumerate() {
            *b = b'0' + ((seed >> (4 * i)) % 10) as u8;
        }
        Settings {
            port,
            peer_id: PeerId(peer_id),
            seed,
        }
    }
}

/// A locally administered unicast MAC address, `02:45:4a` ("EJ") and three bytes of `seed`.
pub fn mac_address(seed: u64) -> [u8; 6] {
    [
        0x02,
        0x45,
        0x4a,
        seed as u8,
        (seed >> 8) as u8,
        (seed >> 16) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boards_peer_id_and_mac_come_from_its_seed() {
        let s = Settings::board(6881, 0x0123_4567_89ab_cdef);
        assert_eq!(&s.peer_id.0[..13], b"-EJ0001-board");
        assert!(s.peer_id.0[13..].iter().all(u8::is_ascii_digit));
        assert_ne!(Settings::board(6881, 1).peer_id, s.peer_id);
        assert_eq!(mac_address(0x0a0b0c), [0x02, 0x45, 0x4a, 0x0c, 0x0b, 0x0a]);
    }
}
