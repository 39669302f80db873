//! Which piece to fetch next: rarest first, random among equals.
