//! Scalable bloom filter properties at scale: no false negatives, false-positive rate within 2×
//! the configured error, storage and `BF.SCANDUMP` round trips.

use velo::types::bloom::{BloomError, ScalableBloom};

/// Adds `count` items, checks none is ever missing, and returns the measured false-positive rate
/// over `count` items that were never added.
fn measure(bloom: &mut ScalableBloom, count: u32) -> f64 {
    for i in 0..count {
        bloom.add(format!("present:{i}").as_bytes()).expect("add");
    }
    for i in 0..count {
        assert!(bloom.exists(format!("present:{i}").as_bytes()), "false negative for {i}");
    }
    let false_positives = (0..count).filter(|i| bloom.exists(format!("absent:{i}").as_bytes())).count();
    false_positives as f64 / f64::from(count)
}

#[test]
fn bloom_false_positive_rate_within_twice_the_error() {
    let cases: &[(f64, u64, u32, bool)] = &[
        (0.01, 100_000, 2, true), // sized right, one filter
        (0.01, 1_000, 2, false),  // scales through 7 sub-filters
        (0.001, 5_000, 4, false), // wider expansion, tighter error
        (0.05, 100, 1, false),    // expansion 1: many equal-size sub-filters
    ];
    for &(error, capacity, expansion, nonscaling) in cases {
        let mut bloom = ScalableBloom::reserve(error, capacity, expansion, nonscaling).expect("reserve");
        let rate = measure(&mut bloom, 100_000);
        let info = bloom.info();
        eprintln!("bloom error {error} capacity {capacity} expansion {expansion}: fp rate {rate:.5}, {info:?}");
        assert!(rate <= 2.0 * error, "error {error}, capacity {capacity}: measured {rate}");
        // Items reported present (false positives) are not added again, so up to ~error × n are
        // missing from the count.
        let min_items = (100_000.0 * (1.0 - 2.0 * error)) as u64;
        assert!(info.items <= 100_000 && info.items >= min_items, "items {}", info.items);
        assert!(info.capacity >= info.items);

        // Storage and chunked round trips give an identical filter.
        let bytes = bloom.to_bytes();
        assert_eq!(ScalableBloom::from_bytes(&bytes).as_ref(), Ok(&bloom));
        let chunks: Vec<(u64, Vec<u8>)> = bloom.dump_chunks(4096).collect();
        let loaded = ScalableBloom::load_chunks(chunks.iter().map(|(c, d)| (*c, d.as_slice()))).expect("load chunks");
        assert_eq!(loaded, bloom);
    }
}

#[test]
fn bloom_nonscaling_refuses_when_full() {
    let mut bloom = ScalableBloom::reserve(0.01, 1000, 2, true).expect("reserve");
    let mut refused = 0;
    for i in 0..2000 {
        match bloom.add(format!("i{i}").as_bytes()) {
            Ok(_) => {}
            Err(BloomError::Full) => refused += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(bloom.info().items, 1000);
    assert!(refused > 900);
    assert_eq!(BloomError::Full.to_string(), "ERR non scaling filter is full");
}
