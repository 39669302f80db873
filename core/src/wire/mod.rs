//! The BitTorrent peer wire protocol (BEP 3, BEP 6 fast extension, BEP 10 extension protocol).
