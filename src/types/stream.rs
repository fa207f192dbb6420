//! Stream values: the entries in ID order, the stream's counters (last ID, entries added, largest deleted
//! ID) and its consumer groups (their last-delivered ID, read counter, pending-entries list and consumers),
//! stored as one value of kind `Stream`. Layout: docs/format.md §"Stream value".
//!
//! Redis keeps entries in listpack nodes of at most `stream-node-max-entries` entries and
//! `stream-node-max-bytes` bytes (100 and 4096 by default, [`NodeLimits`]); approximate trimming (`~`)
//! removes only whole nodes, a node is judged by the last entry placed in it (even if deleted), and a node
//! emptied by trimming stays until removed whole. Each entry here remembers its node, and each node its
//! first ID, first fields, byte size (computed as Redis's listpack encoding would take), last placed ID and
//! fill, so that node boundaries, trimming, `radix-tree-keys` and `radix-tree-nodes` follow Redis.
//! Like Redis, a stream stays a key when it has no entries.

use std::collections::BTreeMap;

use bytes::Bytes;

/// Entries per node, Redis's default `stream-node-max-entries`.
pub const NODE_MAX_ENTRIES: u64 = 100;

/// Bytes per node, Redis's default `stream-node-max-bytes`.
pub const NODE_MAX_BYTES: u64 = 4096;

/// The node limits in force when an entry is added (`stream-node-max-entries`, `stream-node-max-bytes`).
/// As in Redis they only decide where new entries go: nodes built under other limits stay as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    /// Entries per node, deleted ones included; 0 for no limit.
    pub entries: u64,
    /// Bytes per node; 0 (or above 1 GiB) for Redis's hard limit of 1 GiB.
    pub bytes: u64,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits { entries: NODE_MAX_ENTRIES, bytes: NODE_MAX_BYTES }
    }
}

impl NodeLimits {
    /// Redis's cap on the entries an approximate (`~`) trim without LIMIT may remove: 100 nodes' worth,
    /// 10000 without an entry limit, at most a million.
    pub fn approx_trim_limit(&self) -> u64 {
        match self.entries {
            0 => 10_000,
            entries => entries.saturating_mul(100).min(1_000_000),
        }
    }
}

/// Why stored bytes are not a stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed stream value at byte {0}")]
pub struct StreamError(pub usize);

/// A stream entry ID: milliseconds and sequence number, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl StreamId {
    /// The smallest ID, `0-0`.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest ID.
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    /// An ID from its parts.
    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// True for `0-0`.
    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// The next ID, if any.
    pub fn next(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The previous ID, if any.
    pub fn prev(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One entry: its field/value pairs and the node it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// Field/value pairs in the order given to XADD.
    pub fields: Vec<(Bytes, Bytes)>,
    /// The node number (increasing along the stream).
    pub node: u64,
}

/// A node: Redis's listpack of up to `stream-node-max-entries` entries (deleted ones included) and about
/// `stream-node-max-bytes` bytes, as configured when its entries were added ([`NodeLimits`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The ID of the first entry placed in it (Redis's master ID).
    pub master_id: StreamId,
    /// The fields of that entry (Redis's master fields: entries with the same fields store values only).
    pub master_fields: Vec<Bytes>,
    /// Its size as a Redis listpack, in bytes.
    pub bytes: u64,
    /// The ID of the last entry placed in it (possibly deleted since).
    pub last_id: StreamId,
    /// Entries ever placed in it, deleted ones included.
    pub placed: u64,
    /// Live entries (not stored: counted from the entries).
    pub live: u64,
}

impl Node {
    /// True when Redis would place an entry with `fields` in this node: it opens a new node when this one
    /// would reach its byte limit (counting the new entry's raw field and value bytes) or holds its
    /// maximum of entries.
    pub fn accepts(&self, fields: &[(Bytes, Bytes)], limits: NodeLimits) -> bool {
        const HARD_LIMIT: u64 = 1 << 30;
        let max_bytes = if limits.bytes == 0 || limits.bytes > HARD_LIMIT { HARD_LIMIT } else { limits.bytes };
        self.bytes + raw_bytes(fields) < max_bytes && (limits.entries == 0 || self.placed < limits.entries)
    }

    /// Places entry `id` in this node (which [`Node::accepts`] it).
    pub fn place(&mut self, id: StreamId, fields: &[(Bytes, Bytes)]) {
        let same =
            self.master_fields.len() == fields.len() && self.master_fields.iter().zip(fields).all(|(m, (f, _))| m == f);
        self.bytes += entry_bytes(id, self.master_id, fields, same);
        self.placed += 1;
        self.live += 1;
        self.last_id = id;
    }

    /// A new node whose first entry is `id`.
    pub fn open(id: StreamId, fields: &[(Bytes, Bytes)]) -> Node {
        // Header and terminator, then the master entry: count, deleted, field count, fields, 0.
        let master = 7
            + int_element(1)
            + int_element(0)
            + int_element(fields.len() as i64)
            + fields.iter().map(|(f, _)| str_element(f)).sum::<u64>()
            + int_element(0);
        let bytes = master + entry_bytes(id, id, fields, true);
        let master_fields = fields.iter().map(|(f, _)| f.clone()).collect();
        Node { master_id: id, master_fields, bytes, last_id: id, placed: 1, live: 1 }
    }
}

/// The raw size of an entry's fields and values (what the split thresholds count).
pub fn raw_bytes(fields: &[(Bytes, Bytes)]) -> u64 {
    fields.iter().map(|(f, v)| (f.len() + v.len()) as u64).sum()
}

/// An entry of a node, as the split form stores it: its ID and fields.
pub type NodeEntry = (StreamId, Vec<(Bytes, Bytes)>);

/// Bytes of a listpack element's back-length for an element of `len` bytes.
fn backlen_size(len: u64) -> u64 {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

/// Bytes of an integer listpack element.
fn int_element(value: i64) -> u64 {
    let encoded = match value {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8_388_608..=8_388_607 => 4,
        -2_147_483_648..=2_147_483_647 => 5,
        _ => 9,
    };
    encoded + backlen_size(encoded)
}

/// Bytes of a string listpack element (a string that is a canonical integer is stored as one).
fn str_element(text: &[u8]) -> u64 {
    if let Some(value) = crate::resp::decode::parse_int(text) {
        return int_element(value);
    }
    let len = text.len() as u64;
    let encoded = match len {
        0..=63 => 1 + len,
        64..=4095 => 2 + len,
        _ => 5 + len,
    };
    encoded + backlen_size(encoded)
}

/// Bytes an entry adds to a node with master `master_id`: flags, the ID as two deltas, the field count
/// and fields unless they equal the master fields, the values, and the element count.
fn entry_bytes(id: StreamId, master_id: StreamId, fields: &[(Bytes, Bytes)], same_fields: bool) -> u64 {
    let n = fields.len() as i64;
    let mut bytes = int_element(0)
        + int_element(id.ms.wrapping_sub(master_id.ms) as i64)
        + int_element(id.seq.wrapping_sub(master_id.seq) as i64);
    if !same_fields {
        bytes += int_element(n) + fields.iter().map(|(f, _)| str_element(f)).sum::<u64>();
    }
    bytes += fields.iter().map(|(_, v)| str_element(v)).sum::<u64>();
    bytes + int_element(if same_fields { n + 3 } else { 2 * n + 4 })
}

/// A pending (delivered, not acknowledged) entry of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The consumer that owns it.
    pub consumer: Bytes,
    /// Last delivery, Unix ms.
    pub delivery_time: u64,
    /// Deliveries so far.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Last interaction (any read or claim attempt), Unix ms: Redis 7.0 reports its age as `idle`.
    pub seen_time: u64,
    /// Last successful read or claim, Unix ms (kept for Redis 7.2's `inactive`; not reported by 7.0).
    pub active_time: Option<u64>,
}

/// A consumer group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// Last delivered ID.
    pub last_id: StreamId,
    /// Logical count of entries read (Redis's `entries-read`); None when unknown.
    pub entries_read: Option<u64>,
    /// Pending entries in ID order.
    pub pel: BTreeMap<StreamId, Pending>,
    /// Consumers by name (Redis lists them in name order).
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    /// Pending entries of one consumer, in ID order.
    pub fn pending_of<'a>(&'a self, consumer: &'a [u8]) -> impl Iterator<Item = (&'a StreamId, &'a Pending)> + 'a {
        self.pel.iter().filter(move |(_, p)| p.consumer.as_ref() == consumer)
    }
}

/// A stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamValue {
    /// Entries in ID order.
    pub entries: BTreeMap<StreamId, StreamEntry>,
    /// The last ID ever added (or set by XSETID).
    pub last_id: StreamId,
    /// The largest ID removed by XDEL.
    pub max_deleted_id: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// The nodes by number (ascending along the stream); new entries join the last one while it has room.
    nodes: BTreeMap<u64, Node>,
    /// Consumer groups by name (Redis lists them in name order).
    pub groups: BTreeMap<Bytes, Group>,
}

/// Byte cursor over a stored stream; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StreamError> {
        let end = self.at.checked_add(n).ok_or(StreamError(self.at))?;
        let out = self.bytes.get(self.at..end).ok_or(StreamError(self.at))?;
        self.at = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, StreamError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, StreamError> {
        let raw = self.take(4)?;
        Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]))
    }
    fn u64(&mut self) -> Result<u64, StreamError> {
        let raw = self.take(8)?;
        let mut buf = [0u8; 8];
        buf.copy_from_slice(raw);
        Ok(u64::from_le_bytes(buf))
    }
    fn id(&mut self) -> Result<StreamId, StreamError> {
        Ok(StreamId::new(self.u64()?, self.u64()?))
    }
    fn blob(&mut self) -> Result<Bytes, StreamError> {
        let len = self.u32()? as usize;
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }
    /// A count of items each at least `min_size` bytes long: a count the rest cannot hold is malformed, so
    /// a hostile count cannot make us allocate much.
    fn count(&mut self, min_size: usize) -> Result<usize, StreamError> {
        let at = self.at;
        let count = self.u32()? as usize;
        if count.saturating_mul(min_size) > self.bytes.len() - self.at {
            return Err(StreamError(at));
        }
        Ok(count)
    }
    /// An optional u64 stored as a presence byte (0 or 1) and the value.
    fn opt_u64(&mut self) -> Result<Option<u64>, StreamError> {
        let at = self.at;
        match self.u8()? {
            0 if self.u64()? == 0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            _ => Err(StreamError(at)),
        }
    }
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    out.extend_from_slice(&id.ms.to_le_bytes());
    out.extend_from_slice(&id.seq.to_le_bytes());
}

fn put_blob(out: &mut Vec<u8>, blob: &[u8]) {
    out.extend_from_slice(&(blob.len() as u32).to_le_bytes());
    out.extend_from_slice(blob);
}

fn put_opt(out: &mut Vec<u8>, value: Option<u64>) {
    out.push(value.is_some() as u8);
    out.extend_from_slice(&value.unwrap_or(0).to_le_bytes());
}

/// Layout version byte.
const VERSION: u8 = 1;

impl StreamValue {
    /// Decodes a stored stream; any malformed or inconsistent input is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<StreamValue, StreamError> {
        let mut r = Reader { bytes, at: 0 };
        if r.u8()? != VERSION {
            return Err(StreamError(0));
        }
        let last_id = r.id()?;
        let max_deleted_id = r.id()?;
        let entries_added = r.u64()?;
        let mut nodes: BTreeMap<u64, Node> = BTreeMap::new();
        for _ in 0..r.count(32)? {
            let at = r.at;
            let number = r.u64()?;
            let master_id = r.id()?;
            let mut master_fields = Vec::new();
            for _ in 0..r.count(4)? {
                master_fields.push(r.blob()?);
            }
            let node = Node { master_id, master_fields, bytes: r.u64()?, last_id: r.id()?, placed: r.u64()?, live: 0 };
            if nodes.keys().next_back().is_some_and(|last| *last >= number) || node.placed == 0 {
                return Err(StreamError(at));
            }
            nodes.insert(number, node);
        }
        let mut entries = BTreeMap::new();
        let mut previous: Option<(StreamId, u64)> = None;
        for _ in 0..r.count(28)? {
            let at = r.at;
            let id = r.id()?;
            let node = r.u64()?;
            // IDs strictly increase, nodes never decrease, and nothing lies beyond the last ID.
            if previous.is_some_and(|(p, n)| p >= id || n > node) || id > last_id {
                return Err(StreamError(at));
            }
            previous = Some((id, node));
            // Every entry lies in a known node that has room for it.
            match nodes.get_mut(&node) {
                Some(n) if n.live < n.placed => n.live += 1,
                _ => return Err(StreamError(at)),
            }
            let mut fields = Vec::new();
            for _ in 0..r.count(8)? {
                fields.push((r.blob()?, r.blob()?));
            }
            entries.insert(id, StreamEntry { fields, node });
        }
        let mut groups = BTreeMap::new();
        for _ in 0..r.count(4 + 16 + 9 + 8)? {
            let at = r.at;
            let name = r.blob()?;
            let last_id = r.id()?;
            let entries_read = r.opt_u64()?;
            let mut consumers = BTreeMap::new();
            for _ in 0..r.count(4 + 8 + 9)? {
                let at = r.at;
                let name = r.blob()?;
                let consumer = Consumer { seen_time: r.u64()?, active_time: r.opt_u64()? };
                // Names strictly increase (the canonical order), so none repeats.
                if consumers.keys().next_back().is_some_and(|last: &Bytes| *last >= name) {
                    return Err(StreamError(at));
                }
                if consumers.insert(name, consumer).is_some() {
                    return Err(StreamError(at));
                }
            }
            let mut pel = BTreeMap::new();
            for _ in 0..r.count(16 + 4 + 16)? {
                let at = r.at;
                let id = r.id()?;
                let consumer = r.blob()?;
                let pending = Pending { consumer, delivery_time: r.u64()?, delivery_count: r.u64()? };
                // Every pending entry belongs to a known consumer; IDs are unique.
                if !consumers.contains_key(&pending.consumer)
                    || pel.keys().next_back().is_some_and(|last: &StreamId| *last >= id)
                    || pel.insert(id, pending).is_some()
                {
                    return Err(StreamError(at));
                }
            }
            if groups.keys().next_back().is_some_and(|last: &Bytes| *last >= name)
                || groups.insert(name, Group { last_id, entries_read, pel, consumers }).is_some()
            {
                return Err(StreamError(at));
            }
        }
        if r.at != bytes.len() {
            return Err(StreamError(r.at));
        }
        Ok(StreamValue { entries, last_id, max_deleted_id, entries_added, nodes, groups })
    }

    /// Encodes for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(VERSION);
        put_id(&mut out, self.last_id);
        put_id(&mut out, self.max_deleted_id);
        out.extend_from_slice(&self.entries_added.to_le_bytes());
        out.extend_from_slice(&(self.nodes.len() as u32).to_le_bytes());
        for (number, node) in &self.nodes {
            out.extend_from_slice(&number.to_le_bytes());
            put_id(&mut out, node.master_id);
            out.extend_from_slice(&(node.master_fields.len() as u32).to_le_bytes());
            for field in &node.master_fields {
                put_blob(&mut out, field);
            }
            out.extend_from_slice(&node.bytes.to_le_bytes());
            put_id(&mut out, node.last_id);
            out.extend_from_slice(&node.placed.to_le_bytes());
        }
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for (id, entry) in &self.entries {
            put_id(&mut out, *id);
            out.extend_from_slice(&entry.node.to_le_bytes());
            out.extend_from_slice(&(entry.fields.len() as u32).to_le_bytes());
            for (field, value) in &entry.fields {
                put_blob(&mut out, field);
                put_blob(&mut out, value);
            }
        }
        out.extend_from_slice(&(self.groups.len() as u32).to_le_bytes());
        for (name, group) in &self.groups {
            put_blob(&mut out, name);
            put_id(&mut out, group.last_id);
            put_opt(&mut out, group.entries_read);
            out.extend_from_slice(&(group.consumers.len() as u32).to_le_bytes());
            for (name, consumer) in &group.consumers {
                put_blob(&mut out, name);
                out.extend_from_slice(&consumer.seen_time.to_le_bytes());
                put_opt(&mut out, consumer.active_time);
            }
            out.extend_from_slice(&(group.pel.len() as u32).to_le_bytes());
            for (id, pending) in &group.pel {
                put_id(&mut out, *id);
                put_blob(&mut out, &pending.consumer);
                out.extend_from_slice(&pending.delivery_time.to_le_bytes());
                out.extend_from_slice(&pending.delivery_count.to_le_bytes());
            }
        }
        out
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries (the stream still exists as a key).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first entry's ID, `0-0` when empty (Redis's `recorded-first-entry-id`).
    pub fn first_id(&self) -> StreamId {
        self.entries.keys().next().copied().unwrap_or_default()
    }

    /// Appends an entry whose ID the caller checked to be greater than `last_id`.
    pub fn append(&mut self, id: StreamId, fields: Vec<(Bytes, Bytes)>, limits: NodeLimits) {
        let number = match self.nodes.iter_mut().next_back() {
            Some((number, node)) if node.accepts(&fields, limits) => {
                node.place(id, &fields);
                *number
            }
            last => {
                let number = last.map_or(0, |(number, _)| number + 1);
                self.nodes.insert(number, Node::open(id, &fields));
                number
            }
        };
        self.entries.insert(id, StreamEntry { fields, node: number });
        self.last_id = id;
        self.entries_added += 1;
    }

    /// Removes an entry (XDEL); true if it existed. A node left without live entries is freed, as Redis
    /// frees it.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some(entry) = self.entries.remove(&id) else { return false };
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        if let Some(node) = self.nodes.get_mut(&entry.node) {
            node.live -= 1;
            if node.live == 0 {
                self.nodes.remove(&entry.node);
            }
        }
        true
    }

    /// Number of nodes (Redis's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Redis's `radix-tree-nodes` (see [`radix_tree_nodes`]).
    pub fn radix_tree_nodes(&self) -> usize {
        radix_tree_nodes(self.nodes.values().map(|node| node.master_id).collect())
    }

    /// Trims as XADD/XTRIM do: keeps at most `maxlen` entries, or (with `minid`) removes entries below
    /// `minid`. Nodes are visited from the first: a node goes whole when that is enough (for MINID: when the
    /// last entry placed in it is below `minid`); otherwise `approx` stops, and exact trimming removes
    /// entries inside that node (which stays, even if empty) and stops. `limit` (non-zero, approx only)
    /// caps the entries removed. Returns the number removed.
    pub fn trim(&mut self, strategy: Trim, approx: bool, limit: u64) -> u64 {
        let mut removed = 0u64;
        let numbers: Vec<u64> = self.nodes.keys().copied().collect();
        for number in numbers {
            if let Trim::MaxLen(maxlen) = strategy {
                if self.entries.len() as u64 <= maxlen {
                    break;
                }
            }
            let Some(node) = self.nodes.get(&number) else { break };
            let (live, last_id) = (node.live, node.last_id);
            if limit != 0 && removed + live > limit {
                break;
            }
            let whole = match strategy {
                Trim::MaxLen(maxlen) => self.entries.len() as u64 - live >= maxlen,
                Trim::MinId(minid) => last_id < minid,
            };
            // Earlier nodes are gone, so this node's live entries are the first ones.
            let ids: Vec<StreamId> = self.entries.keys().take(live as usize).copied().collect();
            if whole {
                for id in &ids {
                    self.entries.remove(id);
                }
                self.nodes.remove(&number);
                removed += live;
                continue;
            }
            if approx {
                break;
            }
            for id in ids {
                let done = match strategy {
                    Trim::MaxLen(maxlen) => self.entries.len() as u64 <= maxlen,
                    Trim::MinId(minid) => id >= minid,
                };
                if done {
                    break;
                }
                self.entries.remove(&id);
                if let Some(node) = self.nodes.get_mut(&number) {
                    node.live -= 1;
                }
                removed += 1;
            }
            break;
        }
        removed
    }

    /// The stream's live entries as the group counters see them.
    pub fn extent(&self) -> Extent {
        Extent { len: self.entries.len() as u64, first: self.first_id() }
    }

    /// Whether `[start, end]` (end unbounded when None) may hold a deleted entry (Redis's tombstone test),
    /// for a stream whose live entries are `extent` (this value's own, or a split stream's).
    pub fn range_has_tombstones(&self, extent: Extent, start: StreamId, end: Option<StreamId>) -> bool {
        // No entries, no deletion, or every deletion before the first entry: nothing deleted lies ahead.
        if extent.len == 0 || self.max_deleted_id.is_zero() || extent.first > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id && end.unwrap_or(StreamId::MAX) >= self.max_deleted_id
    }

    /// The logical position of `id` counted from the first entry ever added, when it can be known.
    pub fn estimate_entries_read(&self, extent: Extent, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if extent.len == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        let first = extent.first;
        if self.max_deleted_id.is_zero() || self.max_deleted_id < first {
            if id < first {
                return Some(self.entries_added - extent.len);
            }
            if id == first {
                return Some(self.entries_added - extent.len + 1);
            }
        }
        None
    }

    /// A group's lag (entries not yet delivered to it), when it can be known. Negative when ENTRIESREAD
    /// claimed more reads than entries were added, as Redis reports it.
    pub fn lag(&self, extent: Extent, group: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        let lag = |read: u64| (self.entries_added as i64).wrapping_sub(read as i64);
        if let Some(read) = group.entries_read {
            if !self.range_has_tombstones(extent, group.last_id, None) {
                return Some(lag(read));
            }
        }
        self.estimate_entries_read(extent, group.last_id).map(lag)
    }

    /// Moves a group's last-delivered ID to `id` (a `>` read delivered it), keeping its read counter.
    pub fn advance_group(&mut self, extent: Extent, group_name: &[u8], id: StreamId) {
        let has_tombstones = self.range_has_tombstones(extent, id, None);
        let estimate = self.estimate_entries_read(extent, id);
        let entries_added = self.entries_added;
        let Some(group) = self.groups.get_mut(group_name) else { return };
        if id <= group.last_id {
            return;
        }
        match group.entries_read {
            Some(read) if !has_tombstones => group.entries_read = Some(read.wrapping_add(1)),
            _ if entries_added != 0 => group.entries_read = estimate,
            _ => {}
        }
        group.last_id = id;
    }

    /// The counters alone (no entries, nodes or groups): what a split stream's header keeps.
    pub fn counters(&self) -> StreamValue {
        StreamValue {
            entries: BTreeMap::new(),
            last_id: self.last_id,
            max_deleted_id: self.max_deleted_id,
            entries_added: self.entries_added,
            nodes: BTreeMap::new(),
            groups: BTreeMap::new(),
        }
    }

    /// The consumer groups alone, in a value of their own: what a split stream's groups part keeps.
    pub fn groups_only(&self) -> StreamValue {
        StreamValue { groups: self.groups.clone(), ..StreamValue::default() }
    }

    /// The counters and groups alone (no entries, no nodes).
    pub fn metadata(&self) -> StreamValue {
        StreamValue {
            entries: BTreeMap::new(),
            last_id: self.last_id,
            max_deleted_id: self.max_deleted_id,
            entries_added: self.entries_added,
            nodes: BTreeMap::new(),
            groups: self.groups.clone(),
        }
    }

    /// The nodes in order, each with its live entries: what a split stream stores.
    pub fn node_entries(&self) -> Vec<(Node, Vec<NodeEntry>)> {
        let mut out: Vec<(Node, Vec<NodeEntry>)> = Vec::with_capacity(self.nodes.len());
        let mut numbers: Vec<u64> = Vec::with_capacity(self.nodes.len());
        for (number, node) in &self.nodes {
            out.push((node.clone(), Vec::new()));
            numbers.push(*number);
        }
        for (id, entry) in &self.entries {
            if let Ok(at) = numbers.binary_search(&entry.node) {
                out[at].1.push((*id, entry.fields.clone()));
            }
        }
        out
    }

    /// A stream from the counters and groups of `metadata` and `nodes` in order with their live entries
    /// (the inverse of [`StreamValue::metadata`] and [`StreamValue::node_entries`]).
    pub fn from_node_entries(metadata: StreamValue, nodes: Vec<(Node, Vec<NodeEntry>)>) -> StreamValue {
        let mut value = metadata;
        value.entries.clear();
        value.nodes.clear();
        for (number, (mut node, entries)) in nodes.into_iter().enumerate() {
            node.live = entries.len() as u64;
            for (id, fields) in entries {
                value.entries.insert(id, StreamEntry { fields, node: number as u64 });
            }
            value.nodes.insert(number as u64, node);
        }
        value
    }

    /// The raw bytes of all entries' fields and values (what the split thresholds count).
    pub fn entry_bytes(&self) -> u64 {
        self.entries.values().map(|entry| raw_bytes(&entry.fields)).sum()
    }
}

/// How many live entries a stream has and its first ID (`0-0` when empty): what the group counters need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Live entries.
    pub len: u64,
    /// The first live entry's ID.
    pub first: StreamId,
}

/// Redis's `radix-tree-nodes`: the nodes of a compressed radix tree (Redis's rax) over the nodes' master
/// IDs as 16 big-endian bytes. In that tree a run of single-child steps is one node, a fork is one node,
/// each key ends in a leaf node, and the root always exists.
pub fn radix_tree_nodes(master_ids: Vec<StreamId>) -> usize {
    let mut keys: Vec<[u8; 16]> = master_ids.into_iter().map(id_key).collect();
    // The tree node at `depth` holding the sorted, distinct `keys` (all sharing `depth` bytes).
    fn count(keys: &[[u8; 16]], depth: usize) -> usize {
        if keys.is_empty() || depth == 16 {
            return 1;
        }
        let (first, last) = (&keys[0], &keys[keys.len() - 1]);
        let common = (depth..16).take_while(|&i| first[i] == last[i]).count();
        if common > 0 {
            // A compressed node up to where the keys part (or end).
            return 1 + count(keys, depth + common);
        }
        // A fork: one child per distinct next byte.
        let mut total = 1;
        let mut start = 0;
        while start < keys.len() {
            let byte = keys[start][depth];
            let end = start + keys[start..].iter().take_while(|k| k[depth] == byte).count();
            total += count(&keys[start..end], depth + 1);
            start = end;
        }
        total
    }
    keys.sort_unstable();
    keys.dedup();
    count(&keys, 0)
}

/// An ID as 16 big-endian bytes (`ms | seq`), whose byte order is the ID order.
pub fn id_key(id: StreamId) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&id.ms.to_be_bytes());
    key[8..].copy_from_slice(&id.seq.to_be_bytes());
    key
}

/// The ID of a 16-byte key made by [`id_key`].
pub fn key_id(key: &[u8]) -> Option<StreamId> {
    let key: [u8; 16] = key.try_into().ok()?;
    Some(StreamId::new(
        u64::from_be_bytes(key[..8].try_into().expect("8 bytes")),
        u64::from_be_bytes(key[8..].try_into().expect("8 bytes")),
    ))
}

/// A trimming strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    /// Keep at most this many entries.
    MaxLen(u64),
    /// Remove entries with smaller IDs.
    MinId(StreamId),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StreamValue {
        let mut s = StreamValue::default();
        for i in 1..=5 {
            s.append(
                StreamId::new(i, 0),
                vec![(Bytes::from_static(b"f"), Bytes::from(format!("v{i}")))],
                NodeLimits::default(),
            );
        }
        s.delete(StreamId::new(2, 0));
        let mut group = Group { last_id: StreamId::new(3, 0), entries_read: Some(3), ..Group::default() };
        group.consumers.insert(Bytes::from_static(b"alice"), Consumer { seen_time: 10, active_time: Some(9) });
        group.consumers.insert(Bytes::from_static(b"bob"), Consumer { seen_time: 11, active_time: None });
        group.pel.insert(
            StreamId::new(3, 0),
            Pending { consumer: Bytes::from_static(b"alice"), delivery_time: 12, delivery_count: 2 },
        );
        s.groups.insert(Bytes::from_static(b"g"), group);
        s.groups.insert(Bytes::from_static(b"h"), Group::default());
        s
    }

    #[test]
    fn roundtrip() {
        let s = sample();
        let bytes = s.to_bytes();
        assert_eq!(StreamValue::from_bytes(&bytes), Ok(s));
        let empty = StreamValue::default();
        assert_eq!(StreamValue::from_bytes(&empty.to_bytes()), Ok(empty));
    }

    #[test]
    fn golden_bytes() {
        let mut s = StreamValue::default();
        s.append(
            StreamId::new(1, 1),
            vec![(Bytes::from_static(b"a"), Bytes::from_static(b"b"))],
            NodeLimits::default(),
        );
        let mut group = Group { last_id: StreamId::new(1, 1), entries_read: Some(1), ..Group::default() };
        group.consumers.insert(Bytes::from_static(b"c"), Consumer { seen_time: 5, active_time: None });
        group.pel.insert(
            StreamId::new(1, 1),
            Pending { consumer: Bytes::from_static(b"c"), delivery_time: 7, delivery_count: 1 },
        );
        s.groups.insert(Bytes::from_static(b"g"), group);
        let u64le = |v: u64| v.to_le_bytes().to_vec();
        let id11 = [u64le(1), u64le(1)].concat();
        let expected = [
            vec![1],                            // version
            id11.clone(),                       // last_id
            vec![0; 16],                        // max_deleted_id
            u64le(1),                           // entries_added
            vec![1, 0, 0, 0],                   // one node
            u64le(0),                           // number 0
            id11.clone(),                       // master ID
            vec![1, 0, 0, 0, 1, 0, 0, 0, b'a'], // master fields: "a"
            u64le(29),                          // listpack bytes
            id11.clone(),                       // last placed
            u64le(1),                           // one entry placed
            vec![1, 0, 0, 0],                   // one entry
            id11.clone(),                       // its ID
            u64le(0),                           // node
            vec![1, 0, 0, 0, 1, 0, 0, 0, b'a', 1, 0, 0, 0, b'b'],
            vec![1, 0, 0, 0, 1, 0, 0, 0, b'g'], // one group "g"
            id11.clone(),                       // last delivered
            [vec![1], u64le(1)].concat(),       // entries_read 1
            vec![1, 0, 0, 0, 1, 0, 0, 0, b'c'], // one consumer "c"
            u64le(5),                           // seen_time
            [vec![0], u64le(0)].concat(),       // no active_time
            vec![1, 0, 0, 0],                   // one pending entry
            id11,
            vec![1, 0, 0, 0, b'c'],
            u64le(7),
            u64le(1),
        ]
        .concat();
        assert_eq!(s.to_bytes(), expected);
        // The hex shown in docs/format.md §"Stream value".
        let doc_hex = "01 01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 \
                       00 00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 \
                       00 00 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 01 00 00 \
                       00 01 00 00 00 61 1d 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 01 00 \
                       00 00 00 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00 00 00 \
                       00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 01 00 \
                       00 00 61 01 00 00 00 62 01 00 00 00 01 00 00 00 67 01 00 00 00 00 00 00 \
                       00 01 00 00 00 00 00 00 00 01 01 00 00 00 00 00 00 00 01 00 00 00 01 00 \
                       00 00 63 05 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 00 \
                       01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 01 00 00 00 63 07 00 00 \
                       00 00 00 00 00 01 00 00 00 00 00 00 00";
        let doc: Vec<u8> = doc_hex.split_whitespace().map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
        assert_eq!(doc, expected);
        assert_eq!(StreamValue::from_bytes(&expected), Ok(s));
    }

    #[test]
    fn rejects_truncations_and_mutations_without_panicking() {
        let bytes = sample().to_bytes();
        for len in 0..bytes.len() {
            assert!(StreamValue::from_bytes(&bytes[..len]).is_err(), "truncation {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(StreamValue::from_bytes(&longer).is_err());
        // Every single-byte mutation either fails cleanly or decodes to something that re-encodes to itself.
        for at in 0..bytes.len() {
            for delta in [1u8, 0x80, 0xff] {
                let mut mutated = bytes.clone();
                mutated[at] = mutated[at].wrapping_add(delta);
                if let Ok(value) = StreamValue::from_bytes(&mutated) {
                    assert_eq!(value.to_bytes(), mutated, "mutation at {at}");
                }
            }
        }
        // A pending entry naming an unknown consumer is rejected.
        let mut bad = sample();
        bad.groups.get_mut(&b"g"[..]).unwrap().consumers.remove(&b"alice"[..]);
        assert!(StreamValue::from_bytes(&bad.to_bytes()).is_err());
    }

    #[test]
    fn nodes_and_trimming() {
        let mut s = StreamValue::default();
        for i in 1..=250 {
            s.append(StreamId::new(i, 1), Vec::new(), NodeLimits::default());
        }
        assert_eq!(s.node_count(), 3);
        // Keys 1-1, 101-1, 201-1: a compressed root (7 shared bytes), a fork, and per key a compressed
        // tail and a leaf, as Redis reports.
        assert_eq!(s.radix_tree_nodes(), 8);
        assert_eq!(StreamValue::default().radix_tree_nodes(), 1);
        assert_eq!(s.trim(Trim::MaxLen(120), true, 10_000), 100);
        assert_eq!(s.trim(Trim::MaxLen(0), true, 50), 0);
        assert_eq!(s.trim(Trim::MaxLen(0), true, 100), 100);
        assert_eq!(s.trim(Trim::MaxLen(10), false, 0), 40);
        assert_eq!(s.len(), 10);
        assert_eq!(s.trim(Trim::MinId(StreamId::new(245, 0)), false, 0), 4);
        assert_eq!(s.first_id(), StreamId::new(245, 1));
        assert_eq!(s.max_deleted_id, StreamId::MIN);
    }
}
