//! A split list: a doubly linked chain of chunks (docs/format.md §"Split collections").
//!
//! Each chunk is one part holding up to [`CHUNK_ITEMS`] items or about [`CHUNK_BYTES`] bytes, with the
//! part numbers of its neighbours. Pushes and pops touch only the end chunks, so they cost O(1) parts
//! however long the list; indexing walks chunks from the nearer end, as Redis walks its quicklist nodes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use super::{damaged, put_bytes, Home, PartReader, Parts, Result, LAYOUT_CHAIN};
use crate::engine::{BatchOp, Slot};

/// A chunk's bytes with `pending` items added at its head (`front`, each before the previous, as LPUSH
/// adds them) or tail.
fn splice(raw: &[u8], front: bool, pending: &[Bytes]) -> Vec<u8> {
    let held = u32::from_le_bytes(raw[8..12].try_into().expect("4 bytes"));
    let added: usize = pending.iter().map(|item| 4 + item.len()).sum();
    let mut out = Vec::with_capacity(raw.len() + added);
    out.extend_from_slice(&raw[..8]);
    out.extend_from_slice(&(held + pending.len() as u32).to_le_bytes());
    if front {
        for item in pending.iter().rev() {
            put_bytes(&mut out, item);
        }
        out.extend_from_slice(&raw[12..]);
    } else {
        out.extend_from_slice(&raw[12..]);
        for item in pending {
            put_bytes(&mut out, item);
        }
    }
    out
}

/// Most items in one chunk.
pub const CHUNK_ITEMS: usize = 128;
/// A chunk takes no more items once its encoding reaches this size (a bigger item gets a chunk alone).
pub const CHUNK_BYTES: usize = 4096;

/// Redis's default `quicklist-packed-threshold` (1 GiB).
const DEFAULT_PACKED_THRESHOLD: usize = 1 << 30;

/// Items at least this long get a chunk of their own, as Redis puts them in plain quicklist nodes
/// (`DEBUG QUICKLIST-PACKED-THRESHOLD`; server-wide, as Redis's). Chunks written before a change keep
/// their items.
static PACKED_THRESHOLD: AtomicUsize = AtomicUsize::new(DEFAULT_PACKED_THRESHOLD);

/// Sets the size from which an item gets a chunk of its own; 0 restores the default (1 GiB).
pub fn set_packed_threshold(size: usize) {
    let size = if size == 0 { DEFAULT_PACKED_THRESHOLD } else { size };
    PACKED_THRESHOLD.store(size, Ordering::Relaxed);
}

/// True when `item` must be alone in its chunk.
fn is_large(item: &[u8]) -> bool {
    item.len() >= PACKED_THRESHOLD.load(Ordering::Relaxed)
}

/// One chunk: neighbours (0 = none) and items.
#[derive(Debug, Default)]
struct Chunk {
    prev: u32,
    next: u32,
    items: VecDeque<Bytes>,
}

impl Chunk {
    fn encoded_len(&self) -> usize {
        12 + self.items.iter().map(|item| 4 + item.len()).sum::<usize>()
    }

    fn has_room_for(&self, item: &[u8]) -> bool {
        self.items.is_empty()
            || (self.items.len() < CHUNK_ITEMS
                && self.encoded_len() + 4 + item.len() <= CHUNK_BYTES
                && !is_large(item)
                && !self.holds_large())
    }

    /// True when the chunk holds an item that must be alone (with others: it must be split).
    fn holds_large(&self) -> bool {
        self.items.iter().any(|item| is_large(item))
    }

    /// True when the chunk must be split: too many items or bytes, or a large item with others.
    fn overfull(&self) -> bool {
        self.items.len() > CHUNK_ITEMS
            || self.encoded_len() > CHUNK_BYTES
            || (self.items.len() > 1 && self.holds_large())
    }
}

/// True when the items of chunks `a` and `b` fit in one chunk.
fn fit_in_one(a: &Chunk, b: &Chunk) -> bool {
    a.items.len() + b.items.len() <= CHUNK_ITEMS
        && a.encoded_len() + b.encoded_len() - 12 <= CHUNK_BYTES
        && !a.holds_large()
        && !b.holds_large()
}

/// A split list.
#[derive(Debug)]
pub struct Chain {
    parts: Parts,
    count: u64,
    head: u32,
    tail: u32,
    next_part: u32,
    bytes: u64,
}

impl Chain {
    /// A new split list at `home` holding `items`; all its chunks are written.
    pub fn create(home: Home, items: impl IntoIterator<Item = Bytes>) -> Chain {
        let mut chain = Chain { parts: Parts::new(home), count: 0, head: 0, tail: 0, next_part: 1, bytes: 0 };
        let mut chunk = Chunk::default();
        let mut part = chain.alloc();
        chain.head = part;
        for item in items {
            if !chunk.has_room_for(&item) {
                let next = chain.alloc();
                chunk.next = next;
                chain.write_chunk(part, &chunk);
                chunk = Chunk { prev: part, next: 0, items: VecDeque::new() };
                part = next;
            }
            chain.count += 1;
            chain.bytes += item.len() as u64;
            chunk.items.push_back(item);
        }
        chain.write_chunk(part, &chunk);
        chain.tail = part;
        chain
    }

    /// The split list described by header `payload` of `key`.
    pub fn decode(db: u16, key: &[u8], payload: &[u8]) -> Result<Chain> {
        let (layout, home, count, rest) = super::read_header_prefix(db, key, payload)?;
        if layout != LAYOUT_CHAIN || rest.len() != 20 {
            return Err(damaged(key, format!("not a chain header (layout {layout}, {} bytes)", payload.len())));
        }
        let u32_at = |at: usize| u32::from_le_bytes(rest[at..at + 4].try_into().expect("4 bytes"));
        let (head, tail, next_part) = (u32_at(0), u32_at(4), u32_at(8));
        let bytes = u64::from_le_bytes(rest[12..20].try_into().expect("8 bytes"));
        if head == 0 || tail == 0 || head >= next_part || tail >= next_part {
            return Err(damaged(key, format!("impossible chain ends (head {head}, tail {tail}, next {next_part})")));
        }
        Ok(Chain { parts: Parts::new(home), count, head, tail, next_part, bytes })
    }

    /// The header payload.
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(super::HEADER_PREFIX_LEN + 20);
        super::put_header_prefix(&mut out, LAYOUT_CHAIN, self.parts.home(), self.count);
        out.extend_from_slice(&self.head.to_le_bytes());
        out.extend_from_slice(&self.tail.to_le_bytes());
        out.extend_from_slice(&self.next_part.to_le_bytes());
        out.extend_from_slice(&self.bytes.to_le_bytes());
        out
    }

    /// Number of items.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Where the parts live.
    pub fn home(&self) -> Home {
        self.parts.home()
    }

    /// Sum of the items' lengths.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn alloc(&mut self) -> u32 {
        let part = self.next_part;
        // Part numbers are never reused within an incarnation; 2^32 chunk allocations is beyond any list.
        self.next_part = self.next_part.checked_add(1).expect("chunk numbers exhausted");
        part
    }

    fn read_chunk(&mut self, slot: &mut Slot, part: u32) -> Result<Chunk> {
        let bytes = self.parts.expect(slot, part)?;
        let bad = || damaged(&self.parts.home().part_key(part), "chunk does not decode");
        let mut reader = PartReader::new(&bytes);
        let prev = reader.u32().ok_or_else(bad)?;
        let next = reader.u32().ok_or_else(bad)?;
        let n = reader.u32().ok_or_else(bad)? as usize;
        let mut items = VecDeque::with_capacity(n.min(bytes.len() / 4));
        for _ in 0..n {
            items.push_back(reader.bytes().ok_or_else(bad)?);
        }
        if !reader.is_done() {
            return Err(bad());
        }
        Ok(Chunk { prev, next, items })
    }

    fn write_chunk(&mut self, part: u32, chunk: &Chunk) {
        let mut out = Vec::with_capacity(chunk.encoded_len());
        out.extend_from_slice(&chunk.prev.to_le_bytes());
        out.extend_from_slice(&chunk.next.to_le_bytes());
        out.extend_from_slice(&(chunk.items.len() as u32).to_le_bytes());
        for item in &chunk.items {
            put_bytes(&mut out, item);
        }
        self.parts.put(part, out);
    }

    /// Rewrites the `prev` (or `next`) link of chunk `part` (a 4-byte patch of its bytes).
    fn relink(&mut self, slot: &mut Slot, part: u32, set_prev: bool, to: u32) -> Result<()> {
        let mut bytes = self.parts.expect(slot, part)?.to_vec();
        if bytes.len() < 12 {
            return Err(damaged(&self.parts.home().part_key(part), "chunk shorter than its header"));
        }
        let at = if set_prev { 0 } else { 4 };
        bytes[at..at + 4].copy_from_slice(&to.to_le_bytes());
        self.parts.put(part, bytes);
        Ok(())
    }

    /// The end chunk `part`'s bytes and the start offset of each of its items (plus the end), checked;
    /// the fast paths of push and pop edit these bytes without building the items.
    fn raw_chunk(&mut self, slot: &mut Slot, part: u32) -> Result<(Bytes, Vec<usize>)> {
        let bytes = self.parts.expect(slot, part)?;
        let bad = || damaged(&self.parts.home().part_key(part), "chunk does not decode");
        let n = bytes.get(8..12).map(|raw| u32::from_le_bytes(raw.try_into().expect("4 bytes"))).ok_or_else(bad)?;
        let mut offsets = Vec::with_capacity(n as usize + 1);
        let mut at = 12usize;
        for _ in 0..n {
            offsets.push(at);
            let len = bytes
                .get(at..at + 4)
                .map(|raw| u32::from_le_bytes(raw.try_into().expect("4 bytes")))
                .ok_or_else(bad)?;
            at = at.checked_add(4 + len as usize).filter(|end| *end <= bytes.len()).ok_or_else(bad)?;
        }
        if at != bytes.len() {
            return Err(bad());
        }
        offsets.push(at);
        Ok((bytes, offsets))
    }

    /// Pushes `items` one by one at the head (`front`) or tail, as LPUSH/RPUSH do. The end chunk's bytes
    /// are extended in place rather than decoded: a push costs a copy of one chunk, not a rebuild.
    pub fn push(&mut self, slot: &mut Slot, front: bool, items: impl IntoIterator<Item = Bytes>) -> Result<()> {
        let mut end = if front { self.head } else { self.tail };
        let (mut raw, offsets) = self.raw_chunk(slot, end)?;
        let mut held = offsets.len() - 1;
        let mut pending: Vec<Bytes> = Vec::new();
        let mut size = raw.len();
        // Whether the end chunk holds an item that must stay alone (it then takes no other).
        let mut alone = offsets.windows(2).any(|w| is_large(&raw[w[0] + 4..w[1]]));
        for item in items {
            let total = held + pending.len();
            let fits = total == 0
                || (total < CHUNK_ITEMS && size + 4 + item.len() <= CHUNK_BYTES && !alone && !is_large(&item));
            if !fits {
                let fresh = self.alloc();
                let mut bytes = splice(&raw, front, &pending);
                let at = if front { 0 } else { 4 };
                bytes[at..at + 4].copy_from_slice(&fresh.to_le_bytes());
                self.parts.put(end, bytes);
                let (prev, next) = if front { (0, end) } else { (end, 0) };
                let mut header = Vec::with_capacity(12);
                header.extend_from_slice(&prev.to_le_bytes());
                header.extend_from_slice(&next.to_le_bytes());
                header.extend_from_slice(&0u32.to_le_bytes());
                raw = Bytes::from(header);
                if front {
                    self.head = fresh;
                } else {
                    self.tail = fresh;
                }
                end = fresh;
                held = 0;
                size = 12;
                pending.clear();
                alone = false;
            }
            alone |= is_large(&item);
            self.count += 1;
            self.bytes += item.len() as u64;
            size += 4 + item.len();
            pending.push(item);
        }
        self.parts.put(end, splice(&raw, front, &pending));
        Ok(())
    }

    /// Pops up to `n` items from the head (`front`) or tail; with `keep` false they are dropped unread
    /// by the caller (LTRIM), but chunks are still read to find their neighbours. The end chunk's bytes
    /// are cut, not decoded.
    pub fn pop(&mut self, slot: &mut Slot, front: bool, n: u64, keep: bool) -> Result<Vec<Bytes>> {
        let mut out = Vec::new();
        let mut left = n.min(self.count);
        while left > 0 {
            let end = if front { self.head } else { self.tail };
            let (raw, offsets) = self.raw_chunk(slot, end)?;
            let held = offsets.len() - 1;
            let take = (left as usize).min(held);
            // Popped items in pop order: from the head forwards, from the tail backwards.
            let taken: Vec<usize> = if front { (0..take).collect() } else { (held - take..held).rev().collect() };
            for index in taken {
                let item = raw.slice(offsets[index] + 4..offsets[index + 1]);
                self.bytes -= item.len() as u64;
                if keep {
                    out.push(item);
                }
            }
            left -= take as u64;
            self.count -= take as u64;
            let link = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().expect("4 bytes"));
            let neighbour = if front { link(4) } else { link(0) };
            if take == held && neighbour != 0 {
                self.parts.remove(end);
                self.relink(slot, neighbour, front, 0)?;
                if front {
                    self.head = neighbour;
                } else {
                    self.tail = neighbour;
                }
                continue;
            }
            let kept = if front { offsets[take]..offsets[held] } else { offsets[0]..offsets[held - take] };
            let mut bytes = Vec::with_capacity(12 + kept.len());
            bytes.extend_from_slice(&raw[..8]);
            bytes.extend_from_slice(&((held - take) as u32).to_le_bytes());
            bytes.extend_from_slice(&raw[kept]);
            self.parts.put(end, bytes);
            if take == held {
                break;
            }
        }
        Ok(out)
    }

    /// The chunk holding item `index` (< len) and the item's offset in it.
    fn locate(&mut self, slot: &mut Slot, index: u64) -> Result<(u32, Chunk, usize)> {
        let from_head = index < self.count / 2;
        let mut remaining = if from_head { index } else { self.count - 1 - index };
        let mut part = if from_head { self.head } else { self.tail };
        loop {
            // Chunks walked past are read only for their header (links and count), not decoded.
            let bytes = self.parts.expect(slot, part)?;
            let field =
                |at: usize| bytes.get(at..at + 4).map(|raw| u32::from_le_bytes(raw.try_into().expect("4 bytes")));
            let (Some(prev), Some(next), Some(len)) = (field(0), field(4), field(8)) else {
                return Err(damaged(&self.parts.home().part_key(part), "chunk shorter than its header"));
            };
            let len = u64::from(len);
            if remaining < len {
                let chunk = self.read_chunk(slot, part)?;
                let offset = if from_head { remaining } else { len - 1 - remaining };
                return Ok((part, chunk, offset as usize));
            }
            remaining -= len;
            part = if from_head { next } else { prev };
            if part == 0 {
                return Err(damaged(&self.parts.home().part_key(0), "chain shorter than its count"));
            }
        }
    }

    /// Item `index` (0-based from the head), if it exists.
    pub fn get(&mut self, slot: &mut Slot, index: u64) -> Result<Option<Bytes>> {
        if index >= self.count {
            return Ok(None);
        }
        let (_, mut chunk, offset) = self.locate(slot, index)?;
        Ok(chunk.items.swap_remove_back(offset))
    }

    /// Replaces item `index`; false if it does not exist.
    pub fn set(&mut self, slot: &mut Slot, index: u64, value: Bytes) -> Result<bool> {
        if index >= self.count {
            return Ok(false);
        }
        let (part, mut chunk, offset) = self.locate(slot, index)?;
        self.bytes = self.bytes - chunk.items[offset].len() as u64 + value.len() as u64;
        chunk.items[offset] = value;
        if chunk.overfull() {
            self.split_chunk(slot, part, chunk)?;
        } else {
            self.write_chunk(part, &chunk);
        }
        Ok(true)
    }

    /// Items `start..=stop` (both < len, start <= stop).
    pub fn range(&mut self, slot: &mut Slot, start: u64, stop: u64) -> Result<Vec<Bytes>> {
        let mut out = Vec::with_capacity((stop - start + 1) as usize);
        if start > stop || stop >= self.count {
            return Ok(out);
        }
        let (_, chunk, offset) = self.locate(slot, start)?;
        let mut wanted = stop - start + 1;
        let mut next = chunk.next;
        for item in chunk.items.into_iter().skip(offset) {
            if wanted == 0 {
                break;
            }
            out.push(item);
            wanted -= 1;
        }
        while wanted > 0 {
            if next == 0 {
                return Err(damaged(&self.parts.home().part_key(0), "chain shorter than its count"));
            }
            super::interrupt::check()?;
            let chunk = self.read_chunk(slot, next)?;
            next = chunk.next;
            for item in chunk.items {
                if wanted == 0 {
                    break;
                }
                out.push(item);
                wanted -= 1;
            }
        }
        Ok(out)
    }

    /// Inserts `element` before (or `after`) the first item equal to `pivot`, walking chunks from the head
    /// only as far as the pivot; false if there is no pivot. Only the chunk that takes the element is
    /// rewritten, unless it overflows: then it is split in two (by bytes) and its old successor relinked.
    pub fn insert_at_pivot(&mut self, slot: &mut Slot, pivot: &[u8], element: Bytes, after: bool) -> Result<bool> {
        let mut part = self.head;
        while part != 0 {
            let mut chunk = self.read_chunk(slot, part)?;
            let Some(at) = chunk.items.iter().position(|item| item.as_ref() == pivot) else {
                part = chunk.next;
                continue;
            };
            self.count += 1;
            self.bytes += element.len() as u64;
            chunk.items.insert(if after { at + 1 } else { at }, element);
            if !chunk.overfull() {
                self.write_chunk(part, &chunk);
            } else {
                self.split_chunk(slot, part, chunk)?;
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// Writes an overfull `chunk` (at `part`) as two chunks of about half its bytes each, the second in a
    /// fresh part linked after it. A chunk of one item stays whole (an item never spans chunks). A large
    /// item ([`is_large`]) is cut off from its neighbours instead, and the rest split again as needed.
    fn split_chunk(&mut self, slot: &mut Slot, part: u32, mut chunk: Chunk) -> Result<()> {
        if chunk.items.len() < 2 {
            self.write_chunk(part, &chunk);
            return Ok(());
        }
        let total: usize = chunk.items.iter().map(|item| 4 + item.len()).sum();
        let mut prefix = 0;
        let mut cut = chunk.items.len();
        for (i, item) in chunk.items.iter().enumerate() {
            prefix += 4 + item.len();
            if prefix * 2 >= total {
                cut = i + 1;
                break;
            }
        }
        if let Some(at) = chunk.items.iter().position(|item| is_large(item)) {
            cut = at.max(1);
        }
        // Both halves keep at least one item (a big last item goes alone into the second).
        let cut = cut.clamp(1, chunk.items.len() - 1);
        let fresh = self.alloc();
        let second = Chunk { prev: part, next: chunk.next, items: chunk.items.split_off(cut) };
        if second.next == 0 {
            self.tail = fresh;
        } else {
            self.relink(slot, second.next, true, fresh)?;
        }
        chunk.next = fresh;
        self.write_chunk(part, &chunk);
        if second.overfull() && second.holds_large() {
            self.split_chunk(slot, fresh, second)?;
        } else {
            self.write_chunk(fresh, &second);
        }
        Ok(())
    }

    /// Removes up to `limit` items equal to `element` (all with `None`), walking from the head
    /// (`from_head`) or the tail and stopping once `limit` are gone; returns how many went. Only chunks
    /// that lose items are rewritten (with, when the two fit in one, the chunk walked just before, which
    /// they are merged into); a chunk left empty is dropped and its neighbours relinked (the last chunk of
    /// a list that empties stays, empty, as after pops: the caller deletes the key).
    pub fn remove_matching(
        &mut self,
        slot: &mut Slot,
        element: &[u8],
        limit: Option<u64>,
        from_head: bool,
    ) -> Result<u64> {
        let mut removed = 0u64;
        let mut part = if from_head { self.head } else { self.tail };
        while part != 0 && limit.is_none_or(|limit| removed < limit) {
            let mut chunk = self.read_chunk(slot, part)?;
            let following = if from_head { chunk.next } else { chunk.prev };
            let before = removed;
            let mut kept = VecDeque::with_capacity(chunk.items.len());
            let drop_item = |item: &Bytes, removed: &mut u64| {
                let matches = item.as_ref() == element && limit.is_none_or(|limit| *removed < limit);
                if matches {
                    *removed += 1;
                }
                matches
            };
            if from_head {
                for item in chunk.items.drain(..) {
                    if drop_item(&item, &mut removed) {
                        self.bytes -= item.len() as u64;
                    } else {
                        kept.push_back(item);
                    }
                }
            } else {
                for item in chunk.items.drain(..).rev() {
                    if drop_item(&item, &mut removed) {
                        self.bytes -= item.len() as u64;
                    } else {
                        kept.push_front(item);
                    }
                }
            }
            if removed > before {
                self.count -= removed - before;
                chunk.items = kept;
                let visited = if from_head { chunk.prev } else { chunk.next };
                if chunk.items.is_empty() && (chunk.prev != 0 || chunk.next != 0) {
                    self.unlink(slot, part, &chunk)?;
                } else if visited != 0 {
                    // Join it with the chunk just walked (already read) when both fit in one, so that
                    // removals do not leave a trail of small chunks for later walks.
                    let neighbour = self.read_chunk(slot, visited)?;
                    if !fit_in_one(&neighbour, &chunk) {
                        self.write_chunk(part, &chunk);
                    } else if from_head {
                        self.merge(slot, (visited, neighbour), (part, chunk))?;
                    } else {
                        self.merge(slot, (part, chunk), (visited, neighbour))?;
                    }
                } else {
                    self.write_chunk(part, &chunk);
                }
            }
            part = following;
        }
        Ok(removed)
    }

    /// Writes adjacent chunks `first` and `second` (in list order, fitting in one) as one chunk in
    /// `first`'s part, dropping `second`'s part and relinking its successor.
    fn merge(&mut self, slot: &mut Slot, first: (u32, Chunk), second: (u32, Chunk)) -> Result<()> {
        let ((first_part, mut first), (second_part, second)) = (first, second);
        first.items.extend(second.items);
        first.next = second.next;
        self.parts.remove(second_part);
        if second.next == 0 {
            self.tail = first_part;
        } else {
            self.relink(slot, second.next, true, first_part)?;
        }
        self.write_chunk(first_part, &first);
        Ok(())
    }

    /// Drops chunk `part` (empty, with neighbours as in `chunk`) from the chain.
    fn unlink(&mut self, slot: &mut Slot, part: u32, chunk: &Chunk) -> Result<()> {
        self.parts.remove(part);
        if chunk.prev == 0 {
            self.head = chunk.next;
        } else {
            self.relink(slot, chunk.prev, false, chunk.next)?;
        }
        if chunk.next == 0 {
            self.tail = chunk.prev;
        } else {
            self.relink(slot, chunk.next, true, chunk.prev)?;
        }
        Ok(())
    }

    /// LPOS: the indexes (from the head) of items equal to `element`, skipping the first `skip` matches,
    /// returning at most `wanted`, looking at no more than `maxlen` items (0 = all); walks from the head
    /// (`from_head`) or the tail, reading chunks only until it has its answer.
    pub fn positions(
        &mut self,
        slot: &mut Slot,
        element: &[u8],
        from_head: bool,
        mut skip: u64,
        wanted: u64,
        maxlen: u64,
    ) -> Result<Vec<u64>> {
        let mut found = Vec::new();
        let mut part = if from_head { self.head } else { self.tail };
        let mut scanned = 0u64;
        while part != 0 && (found.len() as u64) < wanted {
            super::interrupt::check()?;
            let chunk = self.read_chunk(slot, part)?;
            let len = chunk.items.len() as u64;
            for step in 0..len {
                if (maxlen != 0 && scanned >= maxlen) || found.len() as u64 >= wanted {
                    return Ok(found);
                }
                let offset = if from_head { step } else { len - 1 - step };
                if chunk.items[offset as usize].as_ref() == element {
                    if skip > 0 {
                        skip -= 1;
                    } else {
                        found.push(if from_head { scanned } else { self.count - 1 - scanned });
                    }
                }
                scanned += 1;
            }
            if maxlen != 0 && scanned >= maxlen {
                break;
            }
            part = if from_head { chunk.next } else { chunk.prev };
        }
        Ok(found)
    }

    /// Every item, head first.
    pub fn items(&mut self, slot: &mut Slot) -> Result<Vec<Bytes>> {
        if self.count == 0 {
            return Ok(Vec::new());
        }
        self.range(slot, 0, self.count - 1)
    }

    /// The writes of this command: changed chunks.
    pub fn into_ops(self, ops: &mut Vec<BatchOp>) {
        self.parts.into_ops(ops);
    }

    /// The writes that delete every chunk (walking the chain; the owner record is the caller's).
    pub fn free_ops(mut self, slot: &mut Slot, ops: &mut Vec<BatchOp>) -> Result<()> {
        let mut part = self.head;
        while part != 0 {
            super::interrupt::check()?;
            let chunk = self.read_chunk(slot, part)?;
            self.parts.remove(part);
            part = chunk.next;
        }
        self.parts.into_ops(ops);
        Ok(())
    }
}
