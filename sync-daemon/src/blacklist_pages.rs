//! Reassembles the blacklist from its pages (sans-IO). The campus server retains each page of
//! a version on its own topic, every page well under the MQTT packet limit, so no single
//! message grows with the list; the till still receives one whole list over the link, and only
//! once every page of one version arrived.
//!
//! Rules (docs/mqtt.md, "Blacklist pages"):
//! - pages of one version are collected; a page of a newer version starts that version afresh
//!   (what was collected of the older one is dropped: memory holds at most one version,
//!   [`MAX_BLACKLIST_PAGES`] × [`MAX_BLACKLIST_PAGE_ENTRIES`] UIDs);
//! - a page of an older version than the one collected or already passed on is ignored
//!   (a retained page left over from a longer old version, or a late one);
//! - a page whose topic number differs from its own, or whose page count or issue time
//!   differs from the other pages of its version, is refused;
//! - a missing page keeps the version incomplete: the till keeps its previous list (and the
//!   offline age limit eventually says so), nothing half is ever passed on.

use shared::campus::Blacklist;
use shared::mqtt::{BlacklistPage, MAX_BLACKLIST_PAGES, MAX_BLACKLIST_PAGE_ENTRIES};
use shared::{CardUid, UnixMillis};

/// What one page did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageOutcome {
    /// Kept; the version still misses pages.
    Incomplete { version: u64, have: u32, pages: u32 },
    /// The last missing page: the whole version, to pass on.
    Complete(Blacklist),
    /// A page of a version older than the one collected or passed on: ignored.
    Stale { got: u64, newest: u64 },
    /// A page that contradicts its topic or the other pages of its version: refused.
    Refused(String),
}

/// The version being collected.
#[derive(Debug)]
struct Collecting {
    version: u64,
    issued_at: UnixMillis,
    pages: Vec<Option<Vec<CardUid>>>,
}

impl Collecting {
    /// Pages received so far.
    fn held(&self) -> usize {
        self.pages.iter().filter(|p| p.is_some()).count()
    }
}

/// Collects pages until one version is whole.
#[derive(Debug, Default)]
pub struct PageAssembler {
    collecting: Option<Collecting>,
    /// The newest version completed (and handed out).
    completed: Option<u64>,
}

impl PageAssembler {
    pub fn new() -> PageAssembler {
        PageAssembler::default()
    }

    /// A decoded page that arrived on the topic of page `topic_page`.
    pub fn handle_page(&mut self, topic_page: u32, page: BlacklistPage) -> PageOutcome {
        if page.page != topic_page {
            return PageOutcome::Refused(format!(
                "page {} arrived on the topic of page {topic_page}",
                page.page
            ));
        }
        let newest = self
            .collecting
            .as_ref()
            .map(|c| c.version)
            .max(self.completed);
        if let Some(newest) = newest.filter(|&newest| page.version < newest) {
            return PageOutcome::Stale {
                got: page.version,
                newest,
            };
        }
        // A page of the version already passed on (retained pages come again after every
        // reconnect) starts collecting it afresh: the uploader decides whether to pass it on.
        let collecting = match &mut self.collecting {
            Some(c) if c.version == page.version => c,
            slot => slot.insert(Collecting {
                version: page.version,
                issued_at: page.issued_at,
                // At most MAX_BLACKLIST_PAGES (checked when decoded).
                pages: vec![None; page.pages.min(MAX_BLACKLIST_PAGES) as usize],
            }),
        };
        if collecting.pages.len() != page.pages as usize || collecting.issued_at != page.issued_at {
            return PageOutcome::Refused(format!(
                "page {} of version {} says {} pages issued at {}; its other pages say {} \
                 issued at {}",
                page.page,
                page.version,
                page.pages,
                page.issued_at.0,
                collecting.pages.len(),
                collecting.issued_at.0
            ));
        }
        let Some(slot) = collecting.pages.get_mut(page.page as usize) else {
            return PageOutcome::Refused(format!("page {} of {}", page.page, page.pages));
        };
        debug_assert!(page.uids.len() <= MAX_BLACKLIST_PAGE_ENTRIES);
        *slot = Some(page.uids);
        let have = collecting.held() as u32;
        if have < page.pages {
            return PageOutcome::Incomplete {
                version: page.version,
                have,
                pages: page.pages,
            };
        }
        let Some(collecting) = self.collecting.take() else {
            return PageOutcome::Refused("no version is being collected".to_string());
        };
        self.completed = self.completed.max(Some(collecting.version));
        let uids: Vec<CardUid> = collecting.pages.into_iter().flatten().flatten().collect();
        match Blacklist::new(collecting.version, collecting.issued_at, uids) {
            Ok(list) => PageOutcome::Complete(list),
            Err(error) => PageOutcome::Refused(format!("version {}: {error}", collecting.version)),
        }
    }

    /// Pages held for the version being collected (for the log and tests).
    pub fn pages_held(&self) -> usize {
        self.collecting.as_ref().map_or(0, Collecting::held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(n: u32) -> CardUid {
        CardUid::new(&n.to_be_bytes()).unwrap()
    }

    fn pages_of(version: u64, count: u32) -> Vec<BlacklistPage> {
        let uids: Vec<CardUid> = (0..count).map(uid).collect();
        BlacklistPage::paginate(version, UnixMillis(1_000), &uids)
    }

    fn feed(assembler: &mut PageAssembler, page: BlacklistPage) -> PageOutcome {
        assembler.handle_page(page.page, page)
    }

    #[test]
    fn a_version_is_passed_on_only_once_every_page_arrived_in_any_order() {
        let mut assembler = PageAssembler::new();
        let mut pages = pages_of(3, 120_000);
        assert_eq!(pages.len(), 3);
        pages.reverse();
        let last = pages.pop().unwrap();
        for page in pages {
            assert!(matches!(
                feed(&mut assembler, page),
                PageOutcome::Incomplete { version: 3, .. }
            ));
        }
        let PageOutcome::Complete(list) = feed(&mut assembler, last) else {
            panic!("the last page completes the version");
        };
        assert_eq!((list.version(), list.len()), (3, 120_000));
        assert!(list.contains(&uid(0)) && list.contains(&uid(119_999)));
        assert_eq!(assembler.pages_held(), 0, "nothing is kept once passed on");
    }

    #[test]
    fn a_newer_version_replaces_a_half_collected_one_and_older_pages_are_ignored() {
        let mut assembler = PageAssembler::new();
        let old = pages_of(4, 100_000);
        feed(&mut assembler, old[0].clone());
        let new = pages_of(5, 60_000);
        assert!(matches!(
            feed(&mut assembler, new[1].clone()),
            PageOutcome::Incomplete {
                version: 5,
                have: 1,
                pages: 2
            }
        ));
        assert_eq!(assembler.pages_held(), 1, "version 4's page was dropped");
        assert_eq!(
            feed(&mut assembler, old[1].clone()),
            PageOutcome::Stale { got: 4, newest: 5 }
        );
        let PageOutcome::Complete(list) = feed(&mut assembler, new[0].clone()) else {
            panic!("version 5 is whole");
        };
        assert_eq!(list.version(), 5);
        // A retained page of a longer old version, delivered after the new one completed.
        assert_eq!(
            feed(&mut assembler, pages_of(4, 150_000)[2].clone()),
            PageOutcome::Stale { got: 4, newest: 5 }
        );
    }

    #[test]
    fn a_missing_page_passes_nothing_on() {
        let mut assembler = PageAssembler::new();
        let pages = pages_of(6, 150_000);
        for page in [&pages[0], &pages[2], &pages[0]] {
            assert!(matches!(
                feed(&mut assembler, page.clone()),
                PageOutcome::Incomplete {
                    version: 6,
                    have: 2,
                    pages: 3
                } | PageOutcome::Incomplete { have: 1, .. }
            ));
        }
        assert_eq!(assembler.pages_held(), 2);
    }

    #[test]
    fn pages_that_contradict_their_topic_or_their_version_are_refused() {
        let mut assembler = PageAssembler::new();
        let pages = pages_of(7, 100_000);
        assert!(matches!(
            assembler.handle_page(1, pages[0].clone()),
            PageOutcome::Refused(_)
        ));
        feed(&mut assembler, pages[0].clone());
        let other_count = BlacklistPage {
            pages: 3,
            ..pages[1].clone()
        };
        assert!(matches!(
            feed(&mut assembler, other_count),
            PageOutcome::Refused(_)
        ));
        let other_time = BlacklistPage {
            issued_at: UnixMillis(2_000),
            ..pages[1].clone()
        };
        assert!(matches!(
            feed(&mut assembler, other_time),
            PageOutcome::Refused(_)
        ));
        assert!(matches!(
            feed(&mut assembler, pages[1].clone()),
            PageOutcome::Complete(_)
        ));
    }

    #[test]
    fn the_same_version_again_is_assembled_again_for_a_till_that_needs_it() {
        let mut assembler = PageAssembler::new();
        let pages = pages_of(8, 10);
        assert!(matches!(
            feed(&mut assembler, pages[0].clone()),
            PageOutcome::Complete(_)
        ));
        assert!(matches!(
            feed(&mut assembler, pages[0].clone()),
            PageOutcome::Complete(_)
        ));
    }
}
