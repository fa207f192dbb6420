//! A large stream split into parts (docs/format.md §"Split streams").
//!
//! The stream's nodes (Redis's listpacks of at most `stream-node-max-entries` entries and about
//! `stream-node-max-bytes` bytes, 100 and 4096 by default, modelled by [`crate::types::stream`]) are the
//! unit of storage: a counted [`Tree`] maps each node's master ID (16 bytes big-endian, so byte order is ID
//! order) to a small *record* (the node's sizes, last placed ID,
//! master fields and the number of the *chunk* part holding its live entries). The last node's record
//! (the *tail*) lives in the header instead, so that XADD writes the header and one chunk and touches the
//! tree only when it opens a node. XDEL touches one node, trimming whole nodes from the front plus one,
//! and range reads seek by master ID and read only the chunks they return: O(log n) parts per step. The
//! counters and the consumer groups stay in the header (the compact encoding of a stream without
//! entries), so group bookkeeping costs one header write however long the stream is.

use bytes::Bytes;

use super::tree::{self, Tree};
use super::{damaged, put_bytes, Home, PartReader, Parts, Result, LAYOUT_STREAM};
use crate::engine::{BatchOp, Slot};
use crate::types::stream::{
    id_key, key_id, raw_bytes, Extent, Node, NodeEntry, NodeLimits, StreamId, StreamValue, Trim,
};

/// Chunk parts are numbered from 0 up; they must stay below the tree's node parts.
const CHUNK_LIMIT: u32 = tree::TREE_PART_BASE;

/// Nodes read per tree step when a range walks along the stream.
const WALK_BATCH: u64 = 16;

/// One node's record in the tree: what XADD and trimming need to know of it without reading its entries.
#[derive(Debug, Clone)]
struct Record {
    /// The chunk part holding its live entries.
    chunk: u32,
    /// The node as Redis would have it (master ID, master fields, listpack bytes, last placed, counts).
    node: Node,
    /// Raw field and value bytes of its live entries.
    live_bytes: u64,
}

impl Record {
    /// `chunk u32 | live u32 | placed u32 | live_bytes u64 | listpack bytes u64 | last_id ms u64 | seq u64 |
    /// master field count u32 | fields (len u32 | bytes)` (little-endian).
    fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(52 + self.node.master_fields.iter().map(|f| 4 + f.len()).sum::<usize>());
        out.extend_from_slice(&self.chunk.to_le_bytes());
        out.extend_from_slice(&(self.node.live as u32).to_le_bytes());
        out.extend_from_slice(&(self.node.placed as u32).to_le_bytes());
        out.extend_from_slice(&self.live_bytes.to_le_bytes());
        out.extend_from_slice(&self.node.bytes.to_le_bytes());
        out.extend_from_slice(&self.node.last_id.ms.to_le_bytes());
        out.extend_from_slice(&self.node.last_id.seq.to_le_bytes());
        out.extend_from_slice(&(self.node.master_fields.len() as u32).to_le_bytes());
        for field in &self.node.master_fields {
            put_bytes(&mut out, field);
        }
        Bytes::from(out)
    }

    fn decode(master_id: StreamId, bytes: &Bytes) -> Option<Record> {
        let mut r = PartReader::new(bytes);
        let chunk = r.u32()?;
        let live = r.u32()? as u64;
        let placed = r.u32()? as u64;
        let live_bytes = r.u64()?;
        let listpack_bytes = r.u64()?;
        let last_id = StreamId::new(r.u64()?, r.u64()?);
        let n = r.u32()? as usize;
        let mut master_fields = Vec::with_capacity(n.min(bytes.len() / 4));
        for _ in 0..n {
            master_fields.push(r.bytes()?);
        }
        if !r.is_done() || chunk >= CHUNK_LIMIT || live > placed || last_id < master_id {
            return None;
        }
        let node = Node { master_id, master_fields, bytes: listpack_bytes, last_id, placed, live };
        Some(Record { chunk, node, live_bytes })
    }
}

/// A chunk: `count u32 | per entry: ms u64 | seq u64 | pair count u32 | (field, value) as len u32 | bytes`.
fn encode_chunk(entries: &[NodeEntry]) -> Vec<u8> {
    let size: usize =
        entries.iter().map(|(_, f)| 20 + f.iter().map(|(a, b)| 8 + a.len() + b.len()).sum::<usize>()).sum();
    let mut out = Vec::with_capacity(4 + size);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (id, fields) in entries {
        out.extend_from_slice(&id.ms.to_le_bytes());
        out.extend_from_slice(&id.seq.to_le_bytes());
        out.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        for (field, value) in fields {
            put_bytes(&mut out, field);
            put_bytes(&mut out, value);
        }
    }
    out
}

fn decode_chunk(bytes: &Bytes) -> Option<Vec<NodeEntry>> {
    let mut r = PartReader::new(bytes);
    let n = r.u32()? as usize;
    let mut entries: Vec<NodeEntry> = Vec::with_capacity(n.min(bytes.len() / 20));
    for _ in 0..n {
        let id = StreamId::new(r.u64()?, r.u64()?);
        if entries.last().is_some_and(|(last, _)| *last >= id) {
            return None;
        }
        let pairs = r.u32()? as usize;
        let mut fields = Vec::with_capacity(pairs.min(bytes.len() / 8));
        for _ in 0..pairs {
            fields.push((r.bytes()?, r.bytes()?));
        }
        entries.push((id, fields));
    }
    r.is_done().then_some(entries)
}

/// A split stream, for the length of one command.
#[derive(Debug)]
pub struct Streamed {
    home: Home,
    /// Master ID (16 bytes BE) to node record.
    nodes: Tree,
    /// The chunk parts read or written by this command.
    chunks: Parts,
    next_chunk: u32,
    len: u64,
    bytes: u64,
    /// The last node's record, kept in the header (absent when XDEL emptied the last node: the tree's last
    /// node is then the last one). Its master ID is above every master ID in the tree.
    tail: Option<Record>,
    /// Counters, and groups once loaded (no entries).
    meta: StreamValue,
    /// Whether `meta.groups` holds the groups: they live in their own part, which commands that touch
    /// no group (XADD, XDEL, XTRIM, XLEN, XRANGE, XREAD) neither read nor rewrite.
    groups_loaded: bool,
    /// The groups part as read (None: there was none), so that an unchanged one is not rewritten.
    groups_stored: Option<Bytes>,
}

/// The part holding a split stream's consumer groups (the compact encoding of a stream with only groups).
pub const GROUPS_PART: u32 = u32::MAX;

impl Streamed {
    /// The split form of `value` at `home`.
    pub fn create(home: Home, value: &StreamValue) -> Streamed {
        let mut chunks = Parts::new(home);
        let mut records = Vec::new();
        let mut next_chunk = 0;
        for (node, entries) in value.node_entries() {
            let chunk = next_chunk;
            next_chunk += 1;
            let live_bytes = entries.iter().map(|(_, fields)| raw_bytes(fields)).sum();
            chunks.put(chunk, encode_chunk(&entries));
            records.push(Record { chunk, node, live_bytes });
        }
        let tail = records.pop();
        let records =
            records.into_iter().map(|r| (Bytes::copy_from_slice(&id_key(r.node.master_id)), r.encode())).collect();
        Streamed {
            home,
            nodes: Tree::create(home, records),
            chunks,
            next_chunk,
            len: value.len() as u64,
            bytes: value.entry_bytes(),
            tail,
            meta: value.metadata(),
            groups_loaded: true,
            groups_stored: None,
        }
    }

    /// The split stream described by the header `payload` stored at `key` in `db`.
    pub fn decode(db: u16, key: &[u8], payload: &[u8]) -> Result<Streamed> {
        let (layout, home, len, rest) = super::read_header_prefix(db, key, payload)?;
        if layout != LAYOUT_STREAM || rest.len() < tree::STATE_LEN + 16 {
            return Err(damaged(key, format!("not a stream header (layout {layout}, {} bytes)", payload.len())));
        }
        let nodes = Tree::decode_state(home, key, &rest[..tree::STATE_LEN])?;
        let rest = &rest[tree::STATE_LEN..];
        let next_chunk = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        let bytes = u64::from_le_bytes(rest[4..12].try_into().expect("8 bytes"));
        let tail_len = u32::from_le_bytes(rest[12..16].try_into().expect("4 bytes")) as usize;
        let rest = &rest[16..];
        let bad_tail = || damaged(key, "stream header's tail record does not decode");
        let tail = match tail_len {
            0 => None,
            _ if tail_len < 16 || tail_len > rest.len() => return Err(bad_tail()),
            _ => {
                let raw = &rest[..tail_len];
                let master = StreamId::new(
                    u64::from_le_bytes(raw[..8].try_into().expect("8 bytes")),
                    u64::from_le_bytes(raw[8..16].try_into().expect("8 bytes")),
                );
                Some(Record::decode(master, &Bytes::copy_from_slice(&raw[16..])).ok_or_else(bad_tail)?)
            }
        };
        let meta = StreamValue::from_bytes(&rest[tail_len..]).map_err(|err| damaged(key, err.to_string()))?;
        if !meta.is_empty() || meta.node_count() != 0 || !meta.groups.is_empty() || next_chunk > CHUNK_LIMIT {
            return Err(damaged(key, "stream header holds entries or groups"));
        }
        let chunks = Parts::new(home);
        Ok(Streamed {
            home,
            nodes,
            chunks,
            next_chunk,
            len,
            bytes,
            tail,
            meta,
            groups_loaded: false,
            groups_stored: None,
        })
    }

    /// The header payload: `marker | layout 4 | id u64 | live entries u64 | tree state | next chunk u32 |
    /// entry bytes u64 | tail length u32 | tail (master ID, record) | the compact encoding of the stream
    /// without entries (counters and groups)`.
    pub fn header(&self) -> Vec<u8> {
        let meta = self.meta.counters().to_bytes();
        let tail = self.tail.as_ref().map(Record::encode);
        let tail_len = tail.as_ref().map_or(0, |t| 16 + t.len());
        let mut out = Vec::with_capacity(super::HEADER_PREFIX_LEN + tree::STATE_LEN + 16 + tail_len + meta.len());
        super::put_header_prefix(&mut out, LAYOUT_STREAM, self.home, self.len);
        self.nodes.encode_state(&mut out);
        out.extend_from_slice(&self.next_chunk.to_le_bytes());
        out.extend_from_slice(&self.bytes.to_le_bytes());
        out.extend_from_slice(&(tail_len as u32).to_le_bytes());
        if let (Some(record), Some(encoded)) = (&self.tail, &tail) {
            out.extend_from_slice(&record.node.master_id.ms.to_le_bytes());
            out.extend_from_slice(&record.node.master_id.seq.to_le_bytes());
            out.extend_from_slice(encoded);
        }
        out.extend_from_slice(&meta);
        out
    }

    /// Where the parts live.
    pub fn home(&self) -> Home {
        self.home
    }

    /// Live entries.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no entry is live (the stream still exists).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Raw field and value bytes of the live entries.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Nodes (Redis's `radix-tree-keys`).
    pub fn node_count(&self) -> u64 {
        self.nodes.len() + u64::from(self.tail.is_some())
    }

    /// Reads the consumer groups from their part, once; until then `meta` has none.
    pub fn load_groups(&mut self, slot: &mut Slot) -> Result<()> {
        if self.groups_loaded {
            return Ok(());
        }
        if let Some(bytes) = self.chunks.get(slot, GROUPS_PART)? {
            let stored = StreamValue::from_bytes(&bytes)
                .map_err(|err| damaged(&self.home.part_key(GROUPS_PART), format!("groups part: {err}")))?;
            self.meta.groups = stored.groups;
            self.groups_stored = Some(bytes);
        }
        self.groups_loaded = true;
        Ok(())
    }

    /// The counters and groups (groups only after [`Streamed::load_groups`]).
    pub fn meta(&self) -> &StreamValue {
        &self.meta
    }

    /// The counters and groups, to change.
    pub fn meta_mut(&mut self) -> &mut StreamValue {
        &mut self.meta
    }

    fn bad_record(&self) -> super::ElementError {
        damaged(&self.home.owner_key(), "stream node record does not decode")
    }

    /// Node records at ranks `ranks` (clipped), with their master IDs.
    fn records(&mut self, slot: &mut Slot, ranks: std::ops::Range<u64>) -> Result<Vec<Record>> {
        let in_tree = self.nodes.len();
        let mut out = Vec::new();
        if ranks.start < in_tree {
            let raw = self.nodes.range(slot, ranks.start..ranks.end.min(in_tree))?;
            out.reserve(raw.len() + 1);
            for (key, value) in raw {
                let record = key_id(&key).and_then(|master| Record::decode(master, &value));
                out.push(record.ok_or_else(|| self.bad_record())?);
            }
        }
        // The tail is the node after the tree's last.
        if let Some(tail) = &self.tail {
            if ranks.start <= in_tree && in_tree < ranks.end {
                out.push(tail.clone());
            }
        }
        Ok(out)
    }

    fn is_tail(&self, record: &Record) -> bool {
        self.tail.as_ref().is_some_and(|tail| tail.node.master_id == record.node.master_id)
    }

    fn record(&mut self, slot: &mut Slot, rank: u64) -> Result<Option<Record>> {
        Ok(self.records(slot, rank..rank + 1)?.pop())
    }

    fn put_record(&mut self, slot: &mut Slot, record: &Record) -> Result<()> {
        if self.is_tail(record) {
            self.tail = Some(record.clone());
        } else {
            self.nodes.insert(slot, Bytes::copy_from_slice(&id_key(record.node.master_id)), record.encode())?;
        }
        Ok(())
    }

    fn drop_record(&mut self, slot: &mut Slot, record: &Record) -> Result<()> {
        if self.is_tail(record) {
            self.tail = None;
        } else {
            self.nodes.remove(slot, &id_key(record.node.master_id))?;
        }
        self.chunks.remove(record.chunk);
        Ok(())
    }

    fn chunk(&mut self, slot: &mut Slot, chunk: u32) -> Result<Vec<NodeEntry>> {
        let bytes = self.chunks.expect(slot, chunk)?;
        decode_chunk(&bytes).ok_or_else(|| damaged(&self.home.part_key(chunk), "stream chunk does not decode"))
    }

    /// How many nodes have a master ID at most `id`: the node that may hold `id` is the one before.
    fn nodes_up_to(&mut self, slot: &mut Slot, id: StreamId) -> Result<u64> {
        let key = id_key(id);
        let in_tree = self.nodes.count_before(slot, |k| k <= &key[..])?;
        Ok(in_tree + u64::from(self.tail.as_ref().is_some_and(|tail| tail.node.master_id <= id)))
    }

    /// The first live entry's ID, `0-0` when none.
    pub fn first_id(&mut self, slot: &mut Slot) -> Result<StreamId> {
        if self.len == 0 {
            return Ok(StreamId::MIN);
        }
        // Only the first node can be empty (exact trimming leaves it), so this reads one or two nodes.
        let mut rank = 0;
        while let Some(record) = self.record(slot, rank)? {
            if record.node.live > 0 {
                return Ok(self.chunk(slot, record.chunk)?.first().map_or(StreamId::MIN, |(id, _)| *id));
            }
            rank += 1;
        }
        Ok(StreamId::MIN)
    }

    /// The last live entry's ID.
    pub fn top_id(&mut self, slot: &mut Slot) -> Result<Option<StreamId>> {
        if self.len == 0 {
            return Ok(None);
        }
        let mut rank = self.node_count();
        while rank > 0 {
            rank -= 1;
            let Some(record) = self.record(slot, rank)? else { break };
            if record.node.live > 0 {
                return Ok(self.chunk(slot, record.chunk)?.last().map(|(id, _)| *id));
            }
        }
        Ok(None)
    }

    /// What the group counters need: live entries and the first ID.
    pub fn extent(&mut self, slot: &mut Slot) -> Result<Extent> {
        Ok(Extent { len: self.len, first: self.first_id(slot)? })
    }

    /// The fields of entry `id`.
    pub fn get(&mut self, slot: &mut Slot, id: StreamId) -> Result<Option<Vec<(Bytes, Bytes)>>> {
        let rank = self.nodes_up_to(slot, id)?;
        if rank == 0 {
            return Ok(None);
        }
        let Some(record) = self.record(slot, rank - 1)? else { return Ok(None) };
        if id > record.node.last_id || record.node.live == 0 {
            return Ok(None);
        }
        let mut entries = self.chunk(slot, record.chunk)?;
        Ok(match entries.binary_search_by(|(e, _)| e.cmp(&id)) {
            Ok(at) => Some(entries.swap_remove(at).1),
            Err(_) => None,
        })
    }

    /// Entries with IDs in `[start, end]`, ascending (descending when `rev`), at most `limit` (0: all).
    pub fn range(
        &mut self,
        slot: &mut Slot,
        start: StreamId,
        end: StreamId,
        limit: usize,
        rev: bool,
    ) -> Result<Vec<NodeEntry>> {
        let limit = if limit == 0 { usize::MAX } else { limit };
        let mut out = Vec::new();
        if start > end || self.len == 0 {
            return Ok(out);
        }
        if !rev {
            // From the node that may hold `start` onwards, until a node starts after `end`.
            let mut rank = self.nodes_up_to(slot, start)?.saturating_sub(1);
            while rank < self.node_count() {
                let batch = self.records(slot, rank..rank + WALK_BATCH)?;
                rank += batch.len() as u64;
                for record in batch {
                    if record.node.master_id > end {
                        return Ok(out);
                    }
                    if record.node.live == 0 || record.node.last_id < start {
                        continue;
                    }
                    super::interrupt::check()?;
                    for (id, fields) in self.chunk(slot, record.chunk)? {
                        if id > end {
                            return Ok(out);
                        }
                        if id >= start {
                            out.push((id, fields));
                            if out.len() >= limit {
                                return Ok(out);
                            }
                        }
                    }
                }
            }
        } else {
            // From the node that may hold `end` backwards, until a node ends before `start`.
            let mut high = self.nodes_up_to(slot, end)?;
            while high > 0 {
                let low = high.saturating_sub(WALK_BATCH);
                let batch = self.records(slot, low..high)?;
                high = low;
                for record in batch.into_iter().rev() {
                    if record.node.last_id < start {
                        return Ok(out);
                    }
                    if record.node.live > 0 {
                        super::interrupt::check()?;
                        for (id, fields) in self.chunk(slot, record.chunk)?.into_iter().rev() {
                            if id < start {
                                return Ok(out);
                            }
                            if id <= end {
                                out.push((id, fields));
                                if out.len() >= limit {
                                    return Ok(out);
                                }
                            }
                        }
                    }
                    if record.node.master_id <= start {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Appends an entry whose ID the caller checked to be greater than the last ID, placing it in the last
    /// node as Redis would, or in a new node.
    pub fn append(
        &mut self,
        slot: &mut Slot,
        id: StreamId,
        fields: Vec<(Bytes, Bytes)>,
        limits: NodeLimits,
    ) -> Result<()> {
        let raw = raw_bytes(&fields);
        let count = self.node_count();
        let last = if count > 0 { self.record(slot, count - 1)? } else { None };
        match last {
            Some(mut record) if record.node.accepts(&fields, limits) => {
                let mut entries = self.chunk(slot, record.chunk)?;
                record.node.place(id, &fields);
                record.live_bytes += raw;
                entries.push((id, fields));
                self.chunks.put(record.chunk, encode_chunk(&entries));
                self.put_record(slot, &record)?;
            }
            _ => {
                let chunk = self.next_chunk;
                if chunk >= CHUNK_LIMIT {
                    return Err(damaged(&self.home.owner_key(), "stream chunk numbers exhausted"));
                }
                self.next_chunk += 1;
                // The old tail goes into the tree; the new node is the tail.
                if let Some(old) = self.tail.take() {
                    self.put_record(slot, &old)?;
                }
                self.tail = Some(Record { chunk, node: Node::open(id, &fields), live_bytes: raw });
                self.chunks.put(chunk, encode_chunk(&[(id, fields)]));
            }
        }
        self.len += 1;
        self.bytes += raw;
        self.meta.last_id = id;
        self.meta.entries_added += 1;
        Ok(())
    }

    /// Removes entry `id` (XDEL); true if it existed. A node left without live entries is freed, as Redis
    /// frees it.
    pub fn delete(&mut self, slot: &mut Slot, id: StreamId) -> Result<bool> {
        let rank = self.nodes_up_to(slot, id)?;
        if rank == 0 {
            return Ok(false);
        }
        let Some(mut record) = self.record(slot, rank - 1)? else { return Ok(false) };
        if id > record.node.last_id || record.node.live == 0 {
            return Ok(false);
        }
        let mut entries = self.chunk(slot, record.chunk)?;
        let Ok(at) = entries.binary_search_by(|(e, _)| e.cmp(&id)) else { return Ok(false) };
        let (_, fields) = entries.remove(at);
        let raw = raw_bytes(&fields);
        record.node.live -= 1;
        record.live_bytes -= raw;
        self.len -= 1;
        self.bytes -= raw;
        if id > self.meta.max_deleted_id {
            self.meta.max_deleted_id = id;
        }
        if record.node.live == 0 {
            self.drop_record(slot, &record)?;
        } else {
            self.chunks.put(record.chunk, encode_chunk(&entries));
            self.put_record(slot, &record)?;
        }
        Ok(true)
    }

    /// Trims as [`StreamValue::trim`] does (same node rules): whole nodes from the front without reading
    /// their entries, then, when exact, part of one node. Returns the number of entries removed.
    pub fn trim(&mut self, slot: &mut Slot, strategy: Trim, approx: bool, limit: u64) -> Result<u64> {
        let mut removed = 0u64;
        loop {
            if let Trim::MaxLen(maxlen) = strategy {
                if self.len <= maxlen {
                    break;
                }
            }
            let Some(mut record) = self.record(slot, 0)? else { break };
            let live = record.node.live;
            if limit != 0 && removed + live > limit {
                break;
            }
            let whole = match strategy {
                Trim::MaxLen(maxlen) => self.len - live >= maxlen,
                Trim::MinId(minid) => record.node.last_id < minid,
            };
            if whole {
                self.drop_record(slot, &record)?;
                self.len -= live;
                self.bytes -= record.live_bytes;
                removed += live;
                continue;
            }
            if approx {
                break;
            }
            let mut entries = self.chunk(slot, record.chunk)?;
            let mut dropped = 0;
            for (id, fields) in &entries {
                let done = match strategy {
                    Trim::MaxLen(maxlen) => self.len <= maxlen,
                    Trim::MinId(minid) => *id >= minid,
                };
                if done {
                    break;
                }
                let raw = raw_bytes(fields);
                self.len -= 1;
                self.bytes -= raw;
                record.live_bytes -= raw;
                record.node.live -= 1;
                dropped += 1;
            }
            if dropped > 0 {
                // The node stays even when emptied, as in Redis.
                entries.drain(..dropped);
                self.chunks.put(record.chunk, encode_chunk(&entries));
                self.put_record(slot, &record)?;
                removed += dropped as u64;
            }
            break;
        }
        Ok(removed)
    }

    /// The master IDs of all nodes, in order (for `radix-tree-nodes`): reads the tree, not the entries.
    pub fn master_ids(&mut self, slot: &mut Slot) -> Result<Vec<StreamId>> {
        let raw = self.nodes.entries(slot)?;
        let mut ids =
            raw.iter().map(|(key, _)| key_id(key).ok_or_else(|| self.bad_record())).collect::<Result<Vec<_>>>()?;
        ids.extend(self.tail.as_ref().map(|tail| tail.node.master_id));
        Ok(ids)
    }

    /// The whole stream as one compact value.
    pub fn materialize(&mut self, slot: &mut Slot) -> Result<StreamValue> {
        self.load_groups(slot)?;
        let records = self.records(slot, 0..self.node_count())?;
        let mut nodes = Vec::with_capacity(records.len());
        for record in records {
            super::interrupt::check()?;
            let entries = self.chunk(slot, record.chunk)?;
            nodes.push((record.node, entries));
        }
        Ok(StreamValue::from_node_entries(self.meta.clone(), nodes))
    }

    /// The writes of this command: changed chunks and tree nodes (the header is the caller's).
    pub fn into_ops(mut self, ops: &mut Vec<BatchOp>) {
        if self.groups_loaded {
            let groups = (!self.meta.groups.is_empty()).then(|| self.meta.groups_only().to_bytes());
            if groups.as_deref() != self.groups_stored.as_deref() {
                match groups {
                    Some(bytes) => self.chunks.put(GROUPS_PART, bytes),
                    None => self.chunks.remove(GROUPS_PART),
                }
            }
        }
        self.chunks.into_ops(ops);
        self.nodes.into_ops(ops);
    }

    /// The writes deleting every part (the owner record is the caller's).
    pub fn free_ops(mut self, slot: &mut Slot, ops: &mut Vec<BatchOp>) -> Result<()> {
        for record in self.records(slot, 0..self.node_count())? {
            self.chunks.remove(record.chunk);
        }
        self.chunks.remove(GROUPS_PART);
        self.chunks.into_ops(ops);
        self.nodes.free_ops(slot, ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_headers_records_and_chunks_are_damage_not_panics() {
        let mut value = StreamValue::default();
        for i in 1..=3 {
            value.append(StreamId::new(i, 0), vec![(Bytes::from("f"), Bytes::from("v"))], NodeLimits::default());
        }
        value.groups.insert(Bytes::from("g"), Default::default());
        let stream = Streamed::create(Home { db: 0, hash_slot: 1, id: 2 }, &value);
        let header = stream.header();
        assert!(Streamed::decode(0, b"k", &header).is_ok());
        for len in 0..header.len() {
            assert!(Streamed::decode(0, b"k", &header[..len]).is_err(), "header cut at {len}");
        }
        let (node, entries) = value.node_entries().remove(0);
        let record = Record { chunk: 0, node: node.clone(), live_bytes: 6 }.encode();
        assert!(Record::decode(node.master_id, &record).is_some());
        for len in 0..record.len() {
            assert!(Record::decode(node.master_id, &record.slice(..len)).is_none(), "record cut at {len}");
        }
        let chunk = Bytes::from(encode_chunk(&entries));
        assert_eq!(decode_chunk(&chunk), Some(entries));
        for len in 0..chunk.len() {
            assert!(decode_chunk(&chunk.slice(..len)).is_none(), "chunk cut at {len}");
        }
    }
}
