//! Test support for Enjambre: a deterministic swarm simulator over the core `Session`.

pub mod clients;
pub mod sim;
