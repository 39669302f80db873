//! Expiry: peers that stopped announcing are forgotten, and swarms left with nothing to keep.

use hashbrown::DefaultHashBuilder;

use super::swarm::{split, Parts};
use super::Registry;
use crate::tracker::peers::{IpBytes, PeerSet};

impl Registry {
    /// Forget peers that have not announced within the peer timeout, and empty swarms that carry
    /// nothing worth keeping. Returns the number of peers removed.
    pub fn sweep(&mut self, now: u32) -> usize {
        let deadline = now.saturating_sub(self.limits.peer_timeout);
        let hasher = self.hasher;
        let mut removed = 0;
        for swarm in self.swarms.values_mut() {
            let (v4, v6, mut parts) = split(swarm);
            removed += expire(v4, &mut parts, &hasher, deadline);
            removed += expire(v6, &mut parts, &hasher, deadline);
        }
        self.swarms
            .retain(|_, s| s.len() > 0 || s.registered || s.completed > 0 || s.feed.is_some());
        self.peer_total = self.peer_total.saturating_sub(removed);
        removed
    }
}

fn expire<I: IpBytes>(
    set: &mut PeerSet<I>,
    parts: &mut Parts<'_>,
    hasher: &DefaultHashBuilder,
    deadline: u32,
) -> usize {
    let mut removed = 0;
    let mut i = 0;
    while i < set.peers.len() {
        if set.peers[i].last_seen < deadline {
            parts.forget(&set.remove(hasher, i));
            removed += 1;
        } else {
            i += 1;
        }
    }
    removed
}
