//! A fixed-capacity byte ring buffer: each peer's receive queue.
