//! Duplicate keys, found by sorting instead of a hash map: every valid row contributes one 16-byte entry
//! (the low 64 bits of its key's 128-bit hash, its global row number), appended in row order to a vector
//! sized once from the footers. Sorting it puts the rows of one 64-bit hash next to each other; almost
//! every hash occurs once and needs nothing more. The rows of a repeated 64-bit hash ("contested") are
//! then told apart by the other 64 bits of the key's hash, read back for those rows only
//! ([`super::scan::key_hashes`]): two rows are the same key when all 128 bits agree, as before.
//!
//! Why not a hash map: at 10M rows a map from 128-bit hash to row is 400 MB and every insert and lookup
//! is a cache miss (a third of the CPU time in the profile of the old code); the sorted vector is 160 MB,
//! written sequentially, and sorted in well under a second.

use super::OnDuplicate;

/// The sort entry of a row: 64-bit hash in the high half, global row in the low half.
pub fn entry(hash: u128, row: u64) -> u128 {
    (hash as u64 as u128) << 64 | row as u128
}

/// The two halves of a key's 128-bit hash used here: (sort hash, verification hash).
pub fn halves(hash: u128) -> (u64, u64) {
    (hash as u64, (hash >> 64) as u64)
}

/// Sorted entries → the rows of every 64-bit hash that occurs more than once, each list ascending.
pub fn contested(sorted: &[u128]) -> Vec<Vec<u64>> {
    let mut groups = Vec::new();
    let mut at = 0;
    while at < sorted.len() {
        let hash = (sorted[at] >> 64) as u64;
        let mut end = at + 1;
        while end < sorted.len() && (sorted[end] >> 64) as u64 == hash {
            end += 1;
        }
        if end - at > 1 {
            groups.push(sorted[at..end].iter().map(|e| *e as u64).collect());
        }
        at = end;
    }
    groups
}

/// A row that does not win its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loser {
    /// Its global row.
    pub row: u64,
    /// The key's first row (for `--on-duplicate error`'s message).
    pub first: u64,
}

/// Splits each contested group into keys by the verification hash (`check(row)`) and returns the rows that
/// lose under `mode`, ascending: `last` keeps each key's last row, `first` and `error` its first.
pub fn losers(groups: &[Vec<u64>], check: impl Fn(u64) -> u64, mode: OnDuplicate) -> Vec<Loser> {
    let mut out = Vec::new();
    for group in groups {
        let mut keyed: Vec<(u64, u64)> = group.iter().map(|&row| (check(row), row)).collect();
        keyed.sort_unstable();
        let mut at = 0;
        while at < keyed.len() {
            let mut end = at + 1;
            while end < keyed.len() && keyed[end].0 == keyed[at].0 {
                end += 1;
            }
            let rows = &keyed[at..end];
            let first = rows[0].1;
            let keep = match mode {
                OnDuplicate::Last => rows[rows.len() - 1].1,
                OnDuplicate::First | OnDuplicate::Error => first,
            };
            out.extend(rows.iter().filter(|(_, row)| *row != keep).map(|&(_, row)| Loser { row, first }));
            at = end;
        }
    }
    out.sort_unstable_by_key(|l| l.row);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(entries: &[(u64, u64)]) -> Vec<u128> {
        let mut out: Vec<u128> = entries.iter().map(|&(h, row)| entry(h as u128, row)).collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn only_repeated_hashes_are_contested() {
        let entries = sorted(&[(5, 0), (9, 1), (5, 2), (7, 3), (5, 4), (7, 5)]);
        assert_eq!(contested(&entries), vec![vec![0, 2, 4], vec![3, 5]]);
        assert!(contested(&sorted(&[(1, 0), (2, 1)])).is_empty());
        assert!(contested(&[]).is_empty());
    }

    #[test]
    fn a_64_bit_collision_is_not_a_duplicate() {
        // Rows 0, 2 and 4 share a 64-bit hash; rows 0 and 4 are one key, row 2 another (a collision).
        let groups = vec![vec![0, 2, 4]];
        let check = |row: u64| if row == 2 { 111 } else { 222 };
        assert_eq!(losers(&groups, check, OnDuplicate::Last), vec![Loser { row: 0, first: 0 }]);
        assert_eq!(losers(&groups, check, OnDuplicate::First), vec![Loser { row: 4, first: 0 }]);
        assert_eq!(losers(&groups, check, OnDuplicate::Error), vec![Loser { row: 4, first: 0 }]);
    }

    #[test]
    fn losers_come_out_in_row_order() {
        let groups = vec![vec![3, 10], vec![1, 2, 7]];
        let out = losers(&groups, |_| 0, OnDuplicate::First);
        assert_eq!(out.iter().map(|l| l.row).collect::<Vec<_>>(), vec![2, 7, 10]);
        assert_eq!(out[2].first, 3);
    }
}
