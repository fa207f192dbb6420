//! An in-place MSD radix sort (American flag sort) for the large sorts of the bulk tools: the bulk
//! loader's cell index and `ingest-parquet`'s duplicate-detection entries (millions of entries each,
//! keyed by uniform hashes).
//!
//! Keys are integers; the bytes every entry shares are skipped, the others partition the entries in
//! place (no second buffer: these are the largest allocations of their threads), and small partitions
//! are finished by a comparison sort. Not for dense keys that share most of their bytes (`velo check`'s
//! index of segment locations): there the comparison sort measured faster.

/// Partitions at most this long are finished with a comparison sort (cheaper than another pass of 256
/// buckets for them).
const SMALL: usize = 192;

/// Sorts `items` by `key` (ascending; the order among equal keys is unspecified). Only the low `bytes`
/// bytes of the key are looked at: keys must fit in them.
pub fn sort_by_key<T, F: Fn(&T) -> u128 + Copy>(items: &mut [T], bytes: u32, key: F) {
    if bytes > 0 {
        sort_digit(items, bytes - 1, key);
    }
}

fn sort_digit<T, F: Fn(&T) -> u128 + Copy>(items: &mut [T], mut digit: u32, key: F) {
    if items.len() <= SMALL {
        items.sort_unstable_by_key(key);
        return;
    }
    let byte = |item: &T, digit: u32| ((key(item) >> (digit * 8)) & 0xff) as usize;
    // Skip the bytes every entry shares (the top of every key, in practice): the bits that differ
    // somewhere are those set in some key and clear in another.
    let (mut any, mut all) = (0u128, u128::MAX);
    for item in items.iter() {
        let k = key(item);
        any |= k;
        all &= k;
    }
    let varying = (any ^ all) & (u128::MAX >> (120 - digit * 8));
    if varying == 0 {
        return;
    }
    digit = (127 - varying.leading_zeros()) / 8;
    let mut counts = [0usize; 256];
    for item in items.iter() {
        counts[byte(item, digit)] += 1;
    }
    // Bucket b occupies starts[b]..ends[b]; `next[b]` is its first entry not yet known to belong there.
    let mut starts = [0usize; 256];
    let mut at = 0;
    for (b, &n) in counts.iter().enumerate() {
        starts[b] = at;
        at += n;
    }
    let mut next = starts;
    for b in 0..256 {
        let end = starts[b] + counts[b];
        while next[b] < end {
            // Move the entry at next[b] to its bucket until one that belongs here arrives.
            let mut home = byte(&items[next[b]], digit);
            while home != b {
                items.swap(next[b], next[home]);
                next[home] += 1;
                home = byte(&items[next[b]], digit);
            }
            next[b] += 1;
        }
    }
    if digit == 0 {
        return;
    }
    for b in 0..256 {
        let range = starts[b]..starts[b] + counts[b];
        if range.len() > 1 {
            sort_digit(&mut items[range], digit - 1, key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_a_comparison_sort() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (len, spread) in [(0usize, 1u64), (1, 1), (50, 3), (1000, 1 << 20), (100_000, 1 << 24), (70_000, 5)] {
            let mut items: Vec<(u32, u32, u32, u64)> = (0..len)
                .map(|i| ((next() % 4) as u32, (next() % spread) as u32, (next() % 4096) as u32, i as u64))
                .collect();
            let key = |t: &(u32, u32, u32, u64)| (t.0 as u128) << 64 | (t.1 as u128) << 32 | t.2 as u128;
            let mut expected = items.clone();
            expected.sort_by_key(key);
            sort_by_key(&mut items, 12, key);
            let keys: Vec<u128> = items.iter().map(key).collect();
            assert_eq!(keys, expected.iter().map(key).collect::<Vec<_>>(), "len {len} spread {spread}");
            let mut ids: Vec<u64> = items.iter().map(|t| t.3).collect();
            ids.sort_unstable();
            assert_eq!(ids, (0..len as u64).collect::<Vec<_>>());
        }
    }

    #[test]
    fn full_width_keys() {
        let mut items: Vec<u128> = vec![u128::MAX, 0, 1 << 95, (1 << 95) - 1, 7, u128::MAX - 1];
        items.extend((0..500u128).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)));
        let mut expected = items.clone();
        expected.sort_unstable();
        sort_by_key(&mut items, 16, |&k| k);
        assert_eq!(items, expected);
    }
}
