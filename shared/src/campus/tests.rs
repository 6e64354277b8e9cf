//! The tests of `campus.rs`: the campus configuration's and the blacklist's checks.

use super::*;

fn uid(n: u32) -> CardUid {
    CardUid::new(&n.to_be_bytes()).unwrap()
}

#[test]
fn lookup_finds_exactly_the_listed_cards() {
    let list = Blacklist::new(3, UnixMillis(5), vec![uid(9), uid(2), uid(9), uid(4)]).unwrap();
    assert_eq!(list.len(), 3);
    assert!(list.contains(&uid(2)) && list.contains(&uid(4)) && list.contains(&uid(9)));
    assert!(!list.contains(&uid(3)) && !list.contains(&uid(10)));
}

/// The bytes of a list of this shape, whatever it holds (the fields are private).
fn encoded(version: u64, uids: Vec<Vec<u8>>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Raw {
        version: u64,
        issued_at: UnixMillis,
        uids: Vec<(u8, [u8; 10])>,
    }
    let uids = uids
        .into_iter()
        .map(|bytes| {
            let mut padded = [0u8; 10];
            padded[..bytes.len()].copy_from_slice(&bytes);
            (bytes.len() as u8, padded)
        })
        .collect();
    postcard::to_stdvec(&Raw {
        version,
        issued_at: UnixMillis(0),
        uids,
    })
    .unwrap()
}

#[test]
fn unsorted_lists_bad_uids_and_huge_versions_from_outside_are_refused() {
    let decode = |bytes: Vec<u8>| postcard::from_bytes::<Blacklist>(&bytes);
    let good = encoded(1, vec![vec![1, 2, 3, 4], vec![1, 2, 3, 4, 5, 6, 7]]);
    assert_eq!(decode(good).map(|list| list.len()), Ok(2));
    assert!(decode(encoded(1, vec![vec![0, 0, 0, 5], vec![0, 0, 0, 1]])).is_err());
    assert!(decode(encoded(1, vec![vec![1, 2, 3, 4, 5]])).is_err());
    assert!(decode(encoded(1, vec![vec![]])).is_err());
    assert!(decode(encoded(u64::MAX, vec![])).is_err());
    assert!(decode(encoded(MAX_DOWNLINK_VERSION, vec![])).is_ok());
    assert_eq!(
        Blacklist::new(u64::MAX, UnixMillis(0), vec![]),
        Err(BlacklistError::Version(u64::MAX))
    );
}
