//! Per-piece byte ranges received so far: the holes still to fetch, at any byte offset.
