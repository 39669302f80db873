//! Which pieces a peer has: a fixed-capacity bitfield in BEP 3 bit order.
