//! BEP 12 tracker tiers.

use super::MetainfoError;
use crate::bencode::{Dict, List, ListIter};

/// Check `announce-list` (a list of tiers, each a list of UTF-8 URLs); return it if it holds at
/// least one URL, `None` when absent or empty.
pub(super) fn validate<'a>(root: Dict<'a>) -> Result<Option<List<'a>>, MetainfoError> {
    const KEY: &str = "announce-list";
    let Some(tiers) = root.get(KEY.as_bytes()) else {
        return Ok(None);
    };
    let tiers = tiers.as_list().ok_or(MetainfoError::WrongType(KEY))?;
    let mut urls = 0usize;
    for tier in tiers.iter() {
        let tier = tier.as_list().ok_or(MetainfoError::WrongType(KEY))?;
        for url in tier.iter() {
            url.as_str().ok_or(MetainfoError::WrongType(KEY))?;
            urls += 1;
        }
    }
    Ok((urls > 0).then_some(tiers))
}

/// `(tier, url)` pairs: see [`Metainfo::trackers`](super::Metainfo::trackers).
#[derive(Clone)]
pub struct Trackers<'a> {
    tiers: Option<ListIter<'a>>,
    urls: Option<ListIter<'a>>,
    tier: usize,
    tier_used: bool,
    single: Option<&'a str>,
}

impl<'a> Trackers<'a> {
    pub(super) fn new(announce_list: Option<List<'a>>, announce: Option<&'a str>) -> Self {
        match announce_list {
            Some(l) => Trackers {
                tiers: Some(l.iter()),
                urls: None,
                tier: 0,
                tier_used: false,
                single: None,
            },
            None => Trackers {
                tiers: None,
                urls: None,
                tier: 0,
                tier_used: false,
                single: announce,
            },
        }
    }
}

impl<'a> Iterator for Trackers<'a> {
    type Item = (usize, &'a str);
    fn next(&mut self) -> Option<(usize, &'a str)> {
        if let Some(url) = self.single.take() {
            return Some((0, url));
        }
        loop {
            if let Some(url) = self.urls.as_mut().and_then(|u| u.next()) {
                self.tier_used = true;
                return url.as_str().map(|s| (self.tier, s));
            }
            if self.tier_used {
                self.tier += 1;
                self.tier_used = false;
            }
            self.urls = Some(self.tiers.as_mut()?.next()?.as_list()?.iter());
        }
    }
}
