//! What the servers, the poller and the live feed share: the registry behind its mutex, the
//! counters, and the limits and settings they serve with. Holds no task and does no I/O.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::config::Limits;
use super::connid::ConnIds;
use super::metrics::{self, Metrics};
use super::registry::Registry;
use super::{api_access, bridge, conn_limit};

/// Everything the servers share.
pub struct State {
    pub(super) registry: Mutex<Registry>,
    /// The shared registry in Redis (`--store`); the in-memory one then stays empty.
    pub(super) store: Option<Arc<super::store::Store>>,
    pub(super) metrics: Metrics,
    pub(super) connids: ConnIds,
    pub(super) limits: Limits,
    pub(super) max_request_bytes: usize,
    pub(super) max_connections: usize,
    /// Open HTTP connections per client address.
    pub(super) per_ip: Arc<conn_limit::PerIp>,
    pub(super) max_subscribers: usize,
    /// Who may read the swarm API.
    pub(super) api: api_access::ApiAccess,
    /// The WebSocket-to-TCP bridge for browser peers.
    pub(super) bridge: bridge::Bridge,
    pub(super) http_idle_timeout: u64,
    pub(super) http_head_timeout: Duration,
    pub(super) started: Instant,
    /// Registry totals for /stats and /metrics, recomputed at most once a second (they walk
    /// every peer under the lock).
    pub(super) totals: Mutex<Option<(Instant, metrics::Totals)>>,
}

impl State {
    /// Lock the registry (a poisoned lock is still usable: the registry has no invariants that a
    /// panic half-way could break beyond counters).
    pub(super) fn reg(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registry totals, at most one second old.
    pub(super) fn totals(&self) -> metrics::Totals {
        let mut cache = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        match *cache {
            Some((at, t)) if at.elapsed() < Duration::from_secs(1) => t,
            _ => {
                let t = metrics::totals(&self.reg());
                *cache = Some((Instant::now(), t));
                t
            }
        }
    }
}
