//! Torrent metainfo (`.torrent` files): parsing, validation, file mapping, writing.
