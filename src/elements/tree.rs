//! An ordered, counted B+-tree of byte keys (with byte values) in parts (docs/format.md §"Split
//! collections"): the order of a split sorted set.
//!
//! Each node is one part. Inner nodes keep, per child, its part, its entry count and a lower bound of its
//! keys, so a lookup, an insert, a delete, a rank or a position reads one node per level: O(log n)
//! parts. Bounds are exact when written and may only become too low after deletes, which keeps every
//! search right: all keys of child `i` are at least its bound and below child `i + 1`'s.

use bytes::Bytes;

use super::{damaged, put_bytes, Home, PartReader, Parts, Result};
use crate::engine::{BatchOp, Slot};

/// Tree nodes use part numbers from here up (below are the hashed buckets of the same collection).
pub const TREE_PART_BASE: u32 = 0x8000_0000;
/// A node splits above this many entries...
pub const NODE_MAX_ENTRIES: usize = 64;
/// ...or above this many encoded bytes (a node always keeps at least one entry).
pub const NODE_MAX_BYTES: usize = 4096;
/// Nodes built in bulk are filled to this many entries, leaving room for inserts.
const BULK_FILL: usize = 48;

const LEAF: u8 = 0;
const INNER: u8 = 1;

#[derive(Debug, Clone)]
struct Child {
    part: u32,
    count: u64,
    min: Bytes,
}

#[derive(Debug)]
enum Node {
    Leaf(Vec<(Bytes, Bytes)>),
    Inner(Vec<Child>),
}

impl Node {
    fn len(&self) -> usize {
        match self {
            Node::Leaf(entries) => entries.len(),
            Node::Inner(children) => children.len(),
        }
    }

    fn encoded_len(&self) -> usize {
        5 + match self {
            Node::Leaf(entries) => entries.iter().map(|(k, v)| 8 + k.len() + v.len()).sum::<usize>(),
            Node::Inner(children) => children.iter().map(|c| 16 + c.min.len()).sum(),
        }
    }

    fn count(&self) -> u64 {
        match self {
            Node::Leaf(entries) => entries.len() as u64,
            Node::Inner(children) => children.iter().map(|c| c.count).sum(),
        }
    }

    fn first_key(&self) -> Bytes {
        match self {
            Node::Leaf(entries) => entries.first().map(|(k, _)| k.clone()).unwrap_or_default(),
            Node::Inner(children) => children.first().map(|c| c.min.clone()).unwrap_or_default(),
        }
    }

    fn overflows(&self) -> bool {
        self.len() > 1 && (self.len() > NODE_MAX_ENTRIES || self.encoded_len() > NODE_MAX_BYTES)
    }

    /// Splits off the upper half.
    fn split_off(&mut self) -> Node {
        match self {
            Node::Leaf(entries) => {
                let at = entries.len() / 2;
                Node::Leaf(entries.split_off(at))
            }
            Node::Inner(children) => {
                let at = children.len() / 2;
                Node::Inner(children.split_off(at))
            }
        }
    }
}

/// An inner node passed on the way down: its part, its children and the index taken.
type PathStep = (u32, Vec<Child>, usize);

/// The index of the child to descend into for `key`: the last whose bound is at or below it (or the first).
fn child_for(children: &[Child], key: &[u8]) -> usize {
    children.partition_point(|c| c.min.as_ref() <= key).saturating_sub(1)
}

/// A counted B+-tree's state (its nodes are parts).
#[derive(Debug)]
pub struct Tree {
    parts: Parts,
    root: u32,
    height: u8,
    next_part: u32,
    count: u64,
}

/// Bytes of the tree's state in a header.
pub const STATE_LEN: usize = 4 + 1 + 4 + 8;

impl Tree {
    /// A tree at `home` holding `entries`, sorted by key and distinct; every node is written.
    pub fn create(home: Home, entries: Vec<(Bytes, Bytes)>) -> Tree {
        let mut tree = Tree { parts: Parts::new(home), root: 0, height: 1, next_part: TREE_PART_BASE, count: 0 };
        tree.count = entries.len() as u64;
        // Leaves, then one level of inner nodes at a time, until one node is left.
        let mut level: Vec<Child> = Vec::new();
        let mut leaf: Vec<(Bytes, Bytes)> = Vec::new();
        let mut leaf_bytes = 5;
        for (key, value) in entries {
            let size = 8 + key.len() + value.len();
            if !leaf.is_empty() && (leaf.len() >= BULK_FILL || leaf_bytes + size > NODE_MAX_BYTES * 3 / 4) {
                level.push(tree.write_new(Node::Leaf(std::mem::take(&mut leaf))));
                leaf_bytes = 5;
            }
            leaf_bytes += size;
            leaf.push((key, value));
        }
        level.push(tree.write_new(Node::Leaf(leaf)));
        while level.len() > 1 {
            let mut upper = Vec::new();
            let mut node: Vec<Child> = Vec::new();
            let mut node_bytes = 5;
            for child in level {
                let size = 16 + child.min.len();
                if !node.is_empty() && (node.len() >= BULK_FILL || node_bytes + size > NODE_MAX_BYTES * 3 / 4) {
                    upper.push(tree.write_new(Node::Inner(std::mem::take(&mut node))));
                    node_bytes = 5;
                }
                node_bytes += size;
                node.push(child);
            }
            upper.push(tree.write_new(Node::Inner(node)));
            level = upper;
            tree.height += 1;
        }
        tree.root = level[0].part;
        tree
    }

    fn write_new(&mut self, node: Node) -> Child {
        let part = self.alloc();
        let child = Child { part, count: node.count(), min: node.first_key() };
        self.write_node(part, &node);
        child
    }

    /// The tree state stored in a header at the start of `bytes`, for the collection at `home`.
    pub fn decode_state(home: Home, key: &[u8], bytes: &[u8]) -> Result<Tree> {
        if bytes.len() < STATE_LEN {
            return Err(damaged(key, "tree state truncated"));
        }
        let root = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
        let height = bytes[4];
        let next_part = u32::from_le_bytes(bytes[5..9].try_into().expect("4 bytes"));
        let count = u64::from_le_bytes(bytes[9..17].try_into().expect("8 bytes"));
        if height == 0 || height > 40 || root < TREE_PART_BASE || root >= next_part {
            return Err(damaged(key, format!("impossible tree (root {root}, height {height}, next {next_part})")));
        }
        Ok(Tree { parts: Parts::new(home), root, height, next_part, count })
    }

    /// Appends the tree state to a header.
    pub fn encode_state(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.root.to_le_bytes());
        out.push(self.height);
        out.extend_from_slice(&self.next_part.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn alloc(&mut self) -> u32 {
        let part = self.next_part;
        self.next_part = self.next_part.checked_add(1).expect("tree node numbers exhausted");
        part
    }

    fn read_node(&mut self, slot: &mut Slot, part: u32) -> Result<Node> {
        let bytes = self.parts.expect(slot, part)?;
        let bad = || damaged(&self.parts.home().part_key(part), "tree node does not decode");
        let kind = *bytes.first().ok_or_else(bad)?;
        let body = bytes.slice(1..);
        let mut reader = PartReader::new(&body);
        let n = reader.u32().ok_or_else(bad)? as usize;
        let node = match kind {
            LEAF => {
                let mut entries = Vec::with_capacity(n.min(body.len() / 8));
                for _ in 0..n {
                    let key = reader.bytes().ok_or_else(bad)?;
                    let value = reader.bytes().ok_or_else(bad)?;
                    entries.push((key, value));
                }
                Node::Leaf(entries)
            }
            INNER => {
                let mut children = Vec::with_capacity(n.min(body.len() / 16));
                for _ in 0..n {
                    let part = reader.u32().ok_or_else(bad)?;
                    let low = reader.u32().ok_or_else(bad)? as u64;
                    let high = reader.u32().ok_or_else(bad)? as u64;
                    let min = reader.bytes().ok_or_else(bad)?;
                    children.push(Child { part, count: high << 32 | low, min });
                }
                Node::Inner(children)
            }
            _ => return Err(bad()),
        };
        if !reader.is_done() || node.len() == 0 && part != self.root {
            return Err(bad());
        }
        Ok(node)
    }

    fn write_node(&mut self, part: u32, node: &Node) {
        let mut out = Vec::with_capacity(node.encoded_len());
        match node {
            Node::Leaf(entries) => {
                out.push(LEAF);
                out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
                for (key, value) in entries {
                    put_bytes(&mut out, key);
                    put_bytes(&mut out, value);
                }
            }
            Node::Inner(children) => {
                out.push(INNER);
                out.extend_from_slice(&(children.len() as u32).to_le_bytes());
                for child in children {
                    out.extend_from_slice(&child.part.to_le_bytes());
                    out.extend_from_slice(&(child.count as u32).to_le_bytes());
                    out.extend_from_slice(&((child.count >> 32) as u32).to_le_bytes());
                    put_bytes(&mut out, &child.min);
                }
            }
        }
        self.parts.put(part, out);
    }

    /// Descends towards `key`: the inner nodes passed (part, children, index taken) and the leaf's part.
    fn descend(&mut self, slot: &mut Slot, key: &[u8]) -> Result<(Vec<PathStep>, u32)> {
        let mut path = Vec::with_capacity(self.height as usize);
        let mut part = self.root;
        for _ in 1..self.height {
            let Node::Inner(children) = self.read_node(slot, part)? else {
                return Err(damaged(&self.parts.home().part_key(part), "leaf where an inner node belongs"));
            };
            let index = child_for(&children, key);
            let next = children[index].part;
            path.push((part, children, index));
            part = next;
        }
        Ok((path, part))
    }

    fn read_leaf(&mut self, slot: &mut Slot, part: u32) -> Result<Vec<(Bytes, Bytes)>> {
        match self.read_node(slot, part)? {
            Node::Leaf(entries) => Ok(entries),
            Node::Inner(_) => Err(damaged(&self.parts.home().part_key(part), "inner node where a leaf belongs")),
        }
    }

    /// The value at `key`.
    pub fn get(&mut self, slot: &mut Slot, key: &[u8]) -> Result<Option<Bytes>> {
        let (_, leaf) = self.descend(slot, key)?;
        let entries = self.read_leaf(slot, leaf)?;
        Ok(entries.binary_search_by(|(k, _)| k.as_ref().cmp(key)).ok().map(|at| entries[at].1.clone()))
    }

    /// Leaf `part`'s entries as slices of `bytes` (its part's bytes); `None` if the part is not a leaf
    /// (the caller's owned path reports the damage).
    ///
    /// ZADD and ZREM change one leaf: reading it as slices, rather than a `Bytes` per key and value (up
    /// to 64 of each, each an atomic reference count cloned and dropped), and writing it back from them
    /// halves what a leaf costs them (docs/performance.md, issue 9, branch `scriptspeed`).
    fn leaf_slices<'b>(&self, part: u32, bytes: &'b Bytes) -> Result<Option<Vec<(&'b [u8], &'b [u8])>>> {
        if bytes.first() != Some(&LEAF) {
            return Ok(None);
        }
        let bad = || damaged(&self.parts.home().part_key(part), "tree node does not decode");
        let body = &bytes[1..];
        let mut at = 0usize;
        let mut take = |len: usize| -> Option<&'b [u8]> {
            let end = at.checked_add(len)?;
            let out = body.get(at..end)?;
            at = end;
            Some(out)
        };
        let u32_at = |raw: &[u8]| u32::from_le_bytes(raw.try_into().expect("4 bytes")) as usize;
        let n = u32_at(take(4).ok_or_else(bad)?);
        let mut entries = Vec::with_capacity(n.min(body.len() / 8));
        for _ in 0..n {
            let key_len = u32_at(take(4).ok_or_else(bad)?);
            let key = take(key_len).ok_or_else(bad)?;
            let value_len = u32_at(take(4).ok_or_else(bad)?);
            let value = take(value_len).ok_or_else(bad)?;
            entries.push((key, value));
        }
        if at != body.len() || entries.is_empty() && part != self.root {
            return Err(bad());
        }
        Ok(Some(entries))
    }

    /// Writes leaf `part` holding `entries`, in the encoding of [`Tree::write_node`].
    fn write_leaf_slices(&mut self, part: u32, entries: &[(&[u8], &[u8])]) {
        let size: usize = entries.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
        let mut out = Vec::with_capacity(5 + size);
        out.push(LEAF);
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (key, value) in entries {
            put_bytes(&mut out, key);
            put_bytes(&mut out, value);
        }
        self.parts.put(part, out);
    }

    /// Sets `key` to `value`; true if the key is new.
    pub fn insert(&mut self, slot: &mut Slot, key: Bytes, value: Bytes) -> Result<bool> {
        let (mut path, leaf_part) = self.descend(slot, &key)?;
        let bytes = self.parts.expect(slot, leaf_part)?;
        if let Some(mut entries) = self.leaf_slices(leaf_part, &bytes)? {
            let added = match entries.binary_search_by(|(k, _)| (*k).cmp(&key[..])) {
                Ok(at) => {
                    entries[at].1 = &value;
                    false
                }
                Err(at) => {
                    entries.insert(at, (&key, &value));
                    true
                }
            };
            let size: usize = entries.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
            let overflows = entries.len() > 1 && (entries.len() > NODE_MAX_ENTRIES || size > NODE_MAX_BYTES);
            if !overflows {
                // The common case: the leaf changes alone, no split.
                self.write_leaf_slices(leaf_part, &entries);
                if added {
                    self.count += 1;
                }
                let count = entries.len() as u64;
                let first = entries[0].0;
                let min = if std::ptr::eq(first, &key[..]) { key.clone() } else { bytes.slice_ref(first) };
                drop(entries);
                let Some((parent_part, mut children, index)) = path.pop() else { return Ok(added) };
                children[index].count = count;
                if min < children[index].min || index == 0 {
                    children[index].min = min;
                }
                if !added {
                    // Nothing above changes: a replaced value keeps every count and bound.
                    return Ok(false);
                }
                return self.insert_upwards(path, parent_part, Node::Inner(children), added);
            }
        }
        let mut entries = self.read_leaf(slot, leaf_part)?;
        let added = match entries.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(at) => {
                entries[at].1 = value;
                false
            }
            Err(at) => {
                entries.insert(at, (key.clone(), value));
                true
            }
        };
        if added {
            self.count += 1;
        }
        self.insert_upwards(path, leaf_part, Node::Leaf(entries), added)
    }

    /// Writes `node` (part `part`), splitting it if it overflows, then fixes counts, bounds and splits
    /// upwards along `path`; `added` as [`Tree::insert`] returns it.
    fn insert_upwards(&mut self, mut path: Vec<PathStep>, mut part: u32, mut node: Node, added: bool) -> Result<bool> {
        loop {
            let sibling = if node.overflows() {
                let upper = node.split_off();
                let upper_part = self.alloc();
                let child = Child { part: upper_part, count: upper.count(), min: upper.first_key() };
                self.write_node(upper_part, &upper);
                Some(child)
            } else {
                None
            };
            self.write_node(part, &node);
            let count = node.count();
            let min = node.first_key();
            match path.pop() {
                Some((parent_part, mut children, index)) => {
                    children[index].count = count;
                    if min < children[index].min || index == 0 {
                        children[index].min = min;
                    }
                    match sibling {
                        Some(sibling) => children.insert(index + 1, sibling),
                        // Nothing above changes: a replaced value keeps every count and bound.
                        None if !added => return Ok(false),
                        None => {}
                    }
                    part = parent_part;
                    node = Node::Inner(children);
                }
                None => {
                    if let Some(sibling) = sibling {
                        let new_root = self.alloc();
                        let left = Child { part, count, min };
                        self.write_node(new_root, &Node::Inner(vec![left, sibling]));
                        self.root = new_root;
                        self.height += 1;
                    }
                    return Ok(added);
                }
            }
        }
    }

    /// Removes `key`; its value if it was there.
    pub fn remove(&mut self, slot: &mut Slot, key: &[u8]) -> Result<Option<Bytes>> {
        let (mut path, leaf_part) = self.descend(slot, key)?;
        let bytes = self.parts.expect(slot, leaf_part)?;
        let value = match self.leaf_slices(leaf_part, &bytes)? {
            Some(mut entries) => {
                let Ok(at) = entries.binary_search_by(|(k, _)| (*k).cmp(key)) else { return Ok(None) };
                let (_, value) = entries.remove(at);
                let value = bytes.slice_ref(value);
                self.count -= 1;
                if entries.is_empty() {
                    self.remove_upwards(path, leaf_part, Node::Leaf(Vec::new()));
                } else {
                    // The common case: the leaf keeps entries; the counts above change.
                    self.write_leaf_slices(leaf_part, &entries);
                    let count = entries.len() as u64;
                    drop(entries);
                    if let Some((parent_part, mut children, index)) = path.pop() {
                        children[index].count = count;
                        self.remove_upwards(path, parent_part, Node::Inner(children));
                    }
                }
                value
            }
            None => {
                let mut entries = self.read_leaf(slot, leaf_part)?;
                let Ok(at) = entries.binary_search_by(|(k, _)| k.as_ref().cmp(key)) else { return Ok(None) };
                let (_, value) = entries.remove(at);
                self.count -= 1;
                self.remove_upwards(path, leaf_part, Node::Leaf(entries));
                value
            }
        };
        // A root with one child hands the root role down.
        while self.height > 1 {
            let Node::Inner(children) = self.read_node(slot, self.root)? else { break };
            if children.len() != 1 {
                break;
            }
            self.parts.remove(self.root);
            self.root = children[0].part;
            self.height -= 1;
        }
        Ok(Some(value))
    }

    /// Writes `node` (part `part`, removed if it is left empty below the root), then the counts of the
    /// inner nodes along `path`.
    fn remove_upwards(&mut self, mut path: Vec<PathStep>, mut part: u32, mut node: Node) {
        loop {
            let empty = node.len() == 0;
            let count = node.count();
            match path.pop() {
                Some((parent_part, mut children, index)) => {
                    if empty {
                        self.parts.remove(part);
                        children.remove(index);
                    } else {
                        self.write_node(part, &node);
                        children[index].count = count;
                    }
                    part = parent_part;
                    node = Node::Inner(children);
                }
                None => {
                    self.write_node(part, &node);
                    break;
                }
            }
        }
    }

    /// How many keys satisfy `before`, a predicate true for a prefix of the key order (e.g. "key < x").
    pub fn count_before(&mut self, slot: &mut Slot, before: impl Fn(&[u8]) -> bool) -> Result<u64> {
        let mut skipped = 0;
        let mut part = self.root;
        for _ in 1..self.height {
            let Node::Inner(children) = self.read_node(slot, part)? else {
                return Err(damaged(&self.parts.home().part_key(part), "leaf where an inner node belongs"));
            };
            // All keys of child i are at least its bound: a child whose bound fails holds no match.
            let matching = children.partition_point(|c| before(&c.min));
            if matching == 0 {
                return Ok(skipped);
            }
            skipped += children[..matching - 1].iter().map(|c| c.count).sum::<u64>();
            part = children[matching - 1].part;
        }
        let entries = self.read_leaf(slot, part)?;
        Ok(skipped + entries.partition_point(|(k, _)| before(k)) as u64)
    }

    /// The entries at ranks `ranks` (ascending; clipped to the tree).
    pub fn range(&mut self, slot: &mut Slot, ranks: std::ops::Range<u64>) -> Result<Vec<(Bytes, Bytes)>> {
        let end = ranks.end.min(self.count);
        let mut rank = ranks.start;
        let mut out = Vec::with_capacity(end.saturating_sub(rank).min(1 << 16) as usize);
        while rank < end {
            super::interrupt::check()?;
            // Descend by counts to the leaf holding `rank`.
            let mut part = self.root;
            let mut local = rank;
            for _ in 1..self.height {
                let Node::Inner(children) = self.read_node(slot, part)? else {
                    return Err(damaged(&self.parts.home().part_key(part), "leaf where an inner node belongs"));
                };
                let mut next = None;
                for child in &children {
                    if local < child.count {
                        next = Some(child.part);
                        break;
                    }
                    local -= child.count;
                }
                part = next.ok_or_else(|| damaged(&self.parts.home().part_key(part), "counts below the total"))?;
            }
            let entries = self.read_leaf(slot, part)?;
            let from = local as usize;
            if from >= entries.len() {
                return Err(damaged(&self.parts.home().part_key(part), "leaf shorter than its count"));
            }
            let take = (entries.len() - from).min((end - rank) as usize);
            out.extend(entries.into_iter().skip(from).take(take));
            rank += take as u64;
        }
        Ok(out)
    }

    /// Every entry in order.
    pub fn entries(&mut self, slot: &mut Slot) -> Result<Vec<(Bytes, Bytes)>> {
        self.range(slot, 0..self.count)
    }

    /// The writes of this command: changed nodes.
    pub fn into_ops(self, ops: &mut Vec<BatchOp>) {
        self.parts.into_ops(ops);
    }

    /// The writes deleting every node (the owner record is the caller's).
    pub fn free_ops(mut self, slot: &mut Slot, ops: &mut Vec<BatchOp>) -> Result<()> {
        let mut stack = vec![(self.root, self.height)];
        while let Some((part, height)) = stack.pop() {
            super::interrupt::check()?;
            if height > 1 {
                if let Node::Inner(children) = self.read_node(slot, part)? {
                    stack.extend(children.iter().map(|c| (c.part, height - 1)));
                }
            }
            self.parts.remove(part);
        }
        self.parts.into_ops(ops);
        Ok(())
    }
}
