//! Bridged connections counted three ways (in total, per client, per torrent), so that one
//! client or one swarm fills only its own share of the bridge.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use enjambre_core::InfoHash;

use super::super::conn_limit;

/// Which cap a new connection hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapHit {
    Total,
    Client,
    Torrent,
}

impl CapHit {
    /// The close reason the client reads.
    pub fn reason(self) -> &'static str {
        match self {
            CapHit::Total => "too many connections: the bridge is full",
            CapHit::Client => "too many connections from this address",
            CapHit::Torrent => "too many connections into this torrent's swarm",
        }
    }
}

/// The caps and the connections open now.
pub struct Caps {
    total: usize,
    per_client: usize,
    per_torrent: usize,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    total: usize,
    clients: HashMap<IpAddr, usize>,
    torrents: HashMap<InfoHash, usize>,
}

/// One counted connection; dropping it gives the slot back.
pub struct Slot {
    owner: Arc<Caps>,
    client: IpAddr,
    torrent: InfoHash,
}

impl Caps {
    /// Caps of `total`, `per_client` and `per_torrent` open connections.
    pub fn new(total: usize, per_client: usize, per_torrent: usize) -> Arc<Caps> {
        Arc::new(Caps {
            total,
            per_client,
            per_torrent,
            open: Mutex::new(Open::default()),
        })
    }

    /// Take a slot for a connection from `client` into `torrent`'s swarm.
    pub fn take(self: &Arc<Self>, client: IpAddr, torrent: InfoHash) -> Result<Slot, CapHit> {
        let client = conn_limit::key(client);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.total {
            return Err(CapHit::Total);
        }
        if open.clients.get(&client).copied().unwrap_or(0) >= self.per_client {
            return Err(CapHit::Client);
        }
        if open.torrents.get(&torrent).copied().unwrap_or(0) >= self.per_torrent {
            return Err(CapHit::Torrent);
        }
        open.total += 1;
        *open.clients.entry(client).or_insert(0) += 1;
        *open.torrents.entry(torrent).or_insert(0) += 1;
        Ok(Slot {
            owner: self.clone(),
            client,
            torrent,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        release(&mut open.clients, &self.client);
        release(&mut open.torrents, &self.torrent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_cap_holds_and_slots_come_back() {
        let caps = Caps::new(4, 2, 2);
        let (a, b) = (InfoHash([1; 20]), InfoHash([2; 20]));
        let first = caps.take(ip("10.0.0.1"), a).unwrap();
        let _second = caps.take(ip("10.0.0.1"), b).unwrap();
        assert_eq!(caps.take(ip("10.0.0.1"), b).err(), Some(CapHit::Client));
        let _third = caps.take(ip("10.0.0.2"), a).unwrap();
        assert_eq!(caps.take(ip("10.0.0.3"), a).err(), Some(CapHit::Torrent));
        let _fourth = caps.take(ip("10.0.0.3"), b).unwrap();
        assert_eq!(caps.take(ip("10.0.0.4"), b).err(), Some(CapHit::Total));
        drop(first);
        assert_eq!(caps.open(), 3);
        assert!(caps.take(ip("10.0.0.4"), a).is_ok());
    }
}
