//! The persisted resume state: verified pieces, partial byte ranges and counters, with a CRC.
