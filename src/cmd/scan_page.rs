//! Paging of HSCAN, SSCAN and ZSCAN over a compact collection that Redis 7.0 would keep in a hash table.
//!
//! Velo keeps a hash, set or sorted set of up to a few hundred elements as one compact value, whereas Redis
//! 7.0 leaves its listpack or intset at its `*-max-listpack-*` / `set-max-intset-entries` thresholds (and
//! a set of strings is a hash table from its first member). Redis returns a listpack or intset whole in
//! one SCAN step but walks a hash table about COUNT elements a step, and clients rely on the paging:
//! BullMQ's `getDependencies` pages a hash of 72 fields longer than 64 bytes with COUNT 50 and expects
//! two steps. So a compact collection whose Redis encoding is a hash table (or skiplist) is paged here:
//! its elements in the order of a 63-bit hash of their names, a cursor being the hash value to resume
//! at. Hash values never move, so an element present for the whole iteration is returned exactly once
//! whatever is added or removed meanwhile, the guarantee Redis gives; elements of equal hash are
//! returned in the same step.

use bytes::Bytes;

/// Where `name` sits in the paging order: 1..=2^63 (cursor 0 starts and ends an iteration). FNV-1a, so
/// that a cursor stays valid across a restart.
fn position(name: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in name {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash >> 1) + 1
}

/// One step from `cursor` over `entries` (each named by its first element): about `want` entries (at least
/// one, more when names share a hash) and the next cursor, 0 once the last entry is returned.
pub fn page<T>(entries: Vec<(Bytes, T)>, cursor: u64, want: usize) -> (u64, Vec<(Bytes, T)>) {
    let mut keyed: Vec<(u64, (Bytes, T))> =
        entries.into_iter().map(|entry| (position(&entry.0), entry)).filter(|(at, _)| *at >= cursor).collect();
    keyed.sort_by_key(|(at, _)| *at);
    let mut take = want.max(1).min(keyed.len());
    while take > 0 && keyed.get(take).map(|(at, _)| *at) == keyed.get(take - 1).map(|(at, _)| *at) {
        take += 1;
    }
    let next = keyed.get(take).map_or(0, |(at, _)| *at);
    keyed.truncate(take);
    (next, keyed.into_iter().map(|(_, entry)| entry).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<(Bytes, ())> {
        (0..n).map(|i| (Bytes::from(format!("bull:queue:{i}")), ())).collect()
    }

    #[test]
    fn pages_every_entry_once() {
        let (next, first) = page(names(72), 0, 50);
        assert_eq!(first.len(), 50);
        assert_ne!(next, 0);
        let (last, second) = page(names(72), next, 50);
        assert_eq!((last, second.len()), (0, 22));
        let mut seen: Vec<Bytes> = first.into_iter().chain(second).map(|(name, _)| name).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 72);
    }

    #[test]
    fn survives_removals_between_steps() {
        let (next, first) = page(names(30), 0, 10);
        // Remove what the first step returned and a few others: the rest still comes, once.
        let returned: Vec<Bytes> = first.into_iter().map(|(name, _)| name).collect();
        let mut rest = names(30);
        rest.retain(|(name, _)| !returned.contains(name));
        let removed = rest.split_off(15);
        let mut cursor = next;
        let mut seen = Vec::new();
        loop {
            let (next, step) = page(rest.clone(), cursor, 4);
            seen.extend(step.into_iter().map(|(name, _)| name));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for (name, _) in &rest {
            assert_eq!(seen.iter().filter(|seen| *seen == name).count(), 1);
        }
        assert!(removed.iter().all(|(name, _)| !seen.contains(name)));
    }

    #[test]
    fn small_count_and_empty() {
        assert_eq!(page(Vec::<(Bytes, ())>::new(), 0, 10), (0, Vec::new()));
        let (next, one) = page(names(3), 0, 0);
        assert_eq!(one.len(), 1);
        assert_ne!(next, 0);
    }
}
