//! Tracker protocols: HTTP announce/scrape (BEP 3, 7, 23, 48) and UDP (BEP 15), both directions.
