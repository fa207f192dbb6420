//! A byte-bounded LRU used for the page cache and the value cache: entries are evicted oldest first once
//! their sizes add up past the bound. Counts hits and misses for INFO.

use std::hash::Hash;

use lru::LruCache;

/// A least-recently-used map bounded by the total size of its values.
pub struct ByteLru<K: Hash + Eq, V> {
    entries: LruCache<K, (V, usize)>,
    bytes: usize,
    capacity: usize,
    /// Lookups that found their entry.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
}

impl<K: Hash + Eq, V: Clone> ByteLru<K, V> {
    /// An empty cache holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Self { entries: LruCache::unbounded(), bytes: 0, capacity, hits: 0, misses: 0 }
    }

    /// The entry for `key`, marking it recently used.
    pub fn get(&mut self, key: &K) -> Option<V> {
        match self.entries.get(key) {
            Some((value, _)) => {
                self.hits += 1;
                Some(value.clone())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Inserts or replaces an entry of `size` bytes, evicting as needed.
    pub fn insert(&mut self, key: K, value: V, size: usize) {
        if size > self.capacity {
            self.remove(&key);
            return;
        }
        if let Some((_, old)) = self.entries.put(key, (value, size)) {
            self.bytes -= old;
        }
        self.bytes += size;
        while self.bytes > self.capacity {
            match self.entries.pop_lru() {
                Some((_, (_, evicted))) => self.bytes -= evicted,
                None => break,
            }
        }
    }

    /// Drops an entry.
    pub fn remove(&mut self, key: &K) {
        if let Some((_, size)) = self.entries.pop(key) {
            self.bytes -= size;
        }
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    /// Changes the bound, evicting the oldest entries down to it.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        while self.bytes > self.capacity {
            match self.entries.pop_lru() {
                Some((_, (_, evicted))) => self.bytes -= evicted,
                None => break,
            }
        }
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
    fn evicts_oldest_past_the_bound() {
        let mut cache = ByteLru::new(10);
        cache.insert(1, "a", 4);
        cache.insert(2, "b", 4);
        assert_eq!(cache.get(&1), Some("a"));
        cache.insert(3, "c", 4);
        assert_eq!(cache.get(&2), None);
        assert_eq!(cache.get(&1), Some("a"));
        assert_eq!(cache.bytes(), 8);
        cache.insert(4, "d", 11);
        assert_eq!(cache.get(&4), None);
    }
}
