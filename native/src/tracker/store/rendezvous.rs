//! Rendezvous (highest random weight) hashing: which live node polls the peers of an address. Every node computes
//! the same owner from the same list of live nodes, and when a node leaves or joins only the
//! peers it owned (or comes to own) change hands.

use std::hash::Hasher;

use siphasher::sip::SipHasher13;

/// The weight of `node` for `key`: a fixed-key SipHash of both, the same on every node.
fn weight(node: &str, key: &[u8]) -> u64 {
    let mut h = SipHasher13::new_with_keys(0x656e_6a61_6d62_7265, 0x706f_6c6c_6572_0015);
    h.write(node.as_bytes());
    h.write_u8(0xff);
    h.write(key);
    h.finish()
}

/// The node among `nodes` that owns `key` (ties, which need equal hashes, go to the smaller
/// name); `None` when no node is live.
pub fn owner<'a>(nodes: &'a [String], key: &[u8]) -> Option<&'a str> {
    nodes
        .iter()
        .map(|n| (weight(n, key), n.as_str()))
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(a.1)))
        .map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("node-{i}")).collect()
    }

    fn key(i: u32) -> Vec<u8> {
        format!("{:040x}/10.0.{}.{}:6881", i, i / 256 % 256, i % 256).into_bytes()
    }

    #[test]
    fn every_key_has_one_owner_whatever_the_order_of_the_list() {
        let n = nodes(3);
        let mut rev = n.clone();
        rev.reverse();
        for i in 0..1000 {
            assert_eq!(owner(&n, &key(i)), owner(&rev, &key(i)));
        }
        assert_eq!(owner(&[], b"x"), None);
    }

    #[test]
    fn shares_are_about_even() {
        let n = nodes(3);
        let mut count = [0usize; 3];
        for i in 0..30_000 {
            let o = owner(&n, &key(i)).unwrap();
            count[n.iter().position(|x| x == o).unwrap()] += 1;
        }
        for c in count {
            assert!((9_000..11_000).contains(&c), "{count:?}");
        }
    }

    #[test]
    fn a_node_leaving_moves_only_its_own_keys_and_joining_takes_only_new_ones() {
        let three = nodes(3);
        let two: Vec<String> = three[..2].to_vec();
        for i in 0..5000 {
            let (before, after) = (
                owner(&three, &key(i)).unwrap(),
                owner(&two, &key(i)).unwrap(),
            );
            if before != "node-2" {
                assert_eq!(before, after, "key {i} moved though its owner stayed");
            }
        }
        // Joining is the same change seen the other way: a key moves only to the newcomer.
        for i in 0..5000 {
            let (before, after) = (
                owner(&two, &key(i)).unwrap(),
                owner(&three, &key(i)).unwrap(),
            );
            assert!(after == before || after == "node-2");
        }
    }
}
