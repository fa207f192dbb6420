//! A byte-bounded cache used for the page cache and the value cache: once the entries' sizes add up past
//! the bound, entries are evicted by the CLOCK (second chance) policy, an approximation of LRU. Counts hits
//! and misses for INFO.
//!
//! Why CLOCK and not a true LRU: a hit in an LRU list moves the entry to the front, which writes the
//! entry and both of its neighbours (three cache misses with a large cache, on every GET that reaches a
//! page). Here a hit only sets the entry's reference bit, in the hash table slot the lookup has just read.

use std::collections::VecDeque;
use std::hash::Hash;

use hashbrown::HashMap;

struct Entry<V> {
    value: V,
    size: usize,
    /// Set by a hit; the clock hand clears it once before evicting the entry.
    referenced: bool,
    /// Which ring position is this entry's (older positions of a removed and re-inserted key are stale).
    generation: u64,
}

/// A map bounded by the total size of its values, evicting by CLOCK.
pub struct ByteLru<K: Hash + Eq + Clone, V> {
    entries: HashMap<K, Entry<V>>,
    /// The clock: keys in insertion order, the hand at the front. May hold stale positions (see `Entry`).
    ring: VecDeque<(K, u64)>,
    next_generation: u64,
    bytes: usize,
    capacity: usize,
    /// Lookups that found their entry.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> ByteLru<K, V> {
    /// An empty cache holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            ring: VecDeque::new(),
            next_generation: 0,
            bytes: 0,
            capacity,
            hits: 0,
            misses: 0,
        }
    }

    /// The entry for `key`, marking it recently used.
    pub fn get(&mut self, key: &K) -> Option<V> {
        self.get_ref(key).cloned()
    }

    /// The entry for `key` by reference, marking it recently used (no clone on the hot path).
    pub fn get_ref(&mut self, key: &K) -> Option<&V> {
        match self.entries.get_mut(key) {
            Some(entry) => {
                self.hits += 1;
                entry.referenced = true;
                Some(&entry.value)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Inserts or replaces an entry of `size` bytes, evicting as needed.
    pub fn insert(&mut self, key: K, value: V, size: usize) {
        self.insert_with_evicted(key, value, size, |_| {});
    }

    /// [`ByteLru::insert`], handing each evicted value to `evicted` (to reuse its allocation).
    pub fn insert_with_evicted(&mut self, key: K, value: V, size: usize, evicted: impl FnMut(V)) {
        if size > self.capacity {
            self.remove(&key);
            return;
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let entry = Entry { value, size, referenced: false, generation };
        if let Some(old) = self.entries.insert(key.clone(), entry) {
            self.bytes -= old.size;
        }
        self.ring.push_back((key, generation));
        self.bytes += size;
        self.evict(evicted);
        // Stale positions (removed keys) would otherwise pile up under remove/insert churn.
        if self.ring.len() > 2 * self.entries.len() + 64 {
            self.ring.retain(|(key, generation)| self.entries.get(key).is_some_and(|e| e.generation == *generation));
        }
    }

    /// Runs the clock hand until the entries fit the bound.
    fn evict(&mut self, mut evicted: impl FnMut(V)) {
        while self.bytes > self.capacity {
            let Some((key, generation)) = self.ring.pop_front() else { break };
            let Some(entry) = self.entries.get_mut(&key) else { continue };
            if entry.generation != generation {
                continue;
            }
            if entry.referenced {
                entry.referenced = false;
                self.ring.push_back((key, generation));
                continue;
            }
            if let Some(entry) = self.entries.remove(&key) {
                self.bytes -= entry.size;
                evicted(entry.value);
            }
        }
    }

    /// Drops an entry.
    pub fn remove(&mut self, key: &K) {
        if let Some(entry) = self.entries.remove(key) {
            self.bytes -= entry.size;
        }
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.ring.clear();
        self.bytes = 0;
    }

    /// Changes the bound, evicting down to it.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.evict(|_| {});
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_unreferenced_first_past_the_bound() {
        let mut cache = ByteLru::new(10);
        cache.insert(1, "a", 4);
        cache.insert(2, "b", 4);
        assert_eq!(cache.get(&1), Some("a"));
        cache.insert(3, "c", 4);
        // 1 was used since it was inserted (second chance); 2 was not.
        assert_eq!(cache.get(&2), None);
        assert_eq!(cache.get(&1), Some("a"));
        assert_eq!(cache.bytes(), 8);
        cache.insert(4, "d", 11);
        assert_eq!(cache.get(&4), None);
        assert_eq!((cache.hits, cache.misses), (2, 2));
    }

    #[test]
    fn replaced_and_removed_entries_keep_the_byte_count() {
        let mut cache = ByteLru::new(100);
        for round in 0..1000 {
            cache.insert(round % 7, round, 10);
            if round % 3 == 0 {
                cache.remove(&(round % 5));
            }
        }
        let held: usize = (0..7).filter(|k| cache.get_ref(k).is_some()).count() * 10;
        assert_eq!(cache.bytes(), held);
        assert!(cache.ring.len() <= 2 * cache.entries.len() + 65);
        cache.set_capacity(25);
        assert!(cache.bytes() <= 25);
        assert_eq!((0..7).filter(|k| cache.get_ref(k).is_some()).count() * 10, cache.bytes());
    }
}
