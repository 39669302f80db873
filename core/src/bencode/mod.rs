//! Bencode: a zero-copy validating reader and an encoder into caller-owned buffers.
