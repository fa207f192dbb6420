//! Model tests of split-collection storage (velo::elements) on a real engine with tiny thresholds (so
//! checkpoints and compactions run underneath): random operations on a counted tree, a chunk chain and a
//! hashed table, each "command" starting from the stored header as a server command does, compared after
//! every step with a BTreeMap, a VecDeque and a HashMap (the chain also inserts at pivots, removes
//! matching items and finds positions, as LINSERT, LREM and LPOS); and a split stream compared with the
//! compact stream type. The engine is reopened now and then.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use velo::elements::chain::Chain;
use velo::elements::hashed::Hashed;
use velo::elements::streamed::Streamed;
use velo::elements::tree::Tree;
use velo::elements::Home;
use velo::engine::io::CrashFs;
use velo::engine::{BatchOp, Engine, FsyncPolicy, ValueKind};
use velo::types::stream::{radix_tree_nodes, NodeLimits, StreamId, StreamValue, Trim};

use crate::engine_support::{small_options, TestClock};

const HEADER_KEY: &[u8] = b"collection";

fn seed() -> u64 {
    std::env::var("VELO_MODEL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random)
}

struct Rig {
    fs: CrashFs,
    clock: TestClock,
    engine: Option<Engine>,
}

impl Rig {
    fn new() -> Rig {
        let fs = CrashFs::new();
        let clock = TestClock::new(1_000_000);
        let engine = Engine::open("/data", small_options(&fs, &clock, FsyncPolicy::No)).expect("open");
        Rig { fs, clock, engine: Some(engine) }
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("open engine")
    }

    fn reopen(&mut self) {
        self.engine.take().expect("open").close().expect("close");
        self.engine =
            Some(Engine::open("/data", small_options(&self.fs, &self.clock, FsyncPolicy::No)).expect("reopen"));
    }

    /// Writes a command's parts and the header (kept under HEADER_KEY in db 0) in one batch.
    fn commit(&self, mut ops: Vec<BatchOp>, header: Vec<u8>) {
        ops.push(BatchOp::Set {
            db: 0,
            key: HEADER_KEY.to_vec(),
            kind: ValueKind::Hash,
            value: header,
            expire_at_ms: None,
        });
        let index = self.engine().slot_of(HEADER_KEY);
        self.engine().lock_slot(index).write_batch(ops).expect("write batch");
    }

    fn header(&self) -> Vec<u8> {
        self.engine().get(0, HEADER_KEY).expect("get").expect("header").value.to_vec()
    }
}

fn home() -> Home {
    Home::new(0, HEADER_KEY, 0x5eed)
}

#[test]
fn a_counted_tree_matches_a_btreemap() {
    let seed = seed();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut rig = Rig::new();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let initial: Vec<(Bytes, Bytes)> =
        (0..500u32).map(|i| (Bytes::from(format!("k{:05}", i * 7)), Bytes::from("v"))).collect();
    for (k, v) in &initial {
        model.insert(k.to_vec(), v.to_vec());
    }
    let tree = Tree::create(home(), initial);
    let mut state = Vec::new();
    tree.encode_state(&mut state);
    let mut ops = Vec::new();
    tree.into_ops(&mut ops);
    rig.commit(ops, state);
    for step in 0..3000 {
        let header = rig.header();
        let index = rig.engine().slot_of(HEADER_KEY);
        let mut slot = rig.engine().lock_slot(index);
        let mut tree = Tree::decode_state(home(), HEADER_KEY, &header).expect("state");
        for _ in 0..rng.gen_range(1..6) {
            let key = format!("k{:05}", rng.gen_range(0..6000)).into_bytes();
            match rng.gen_range(0..10) {
                0..=4 => {
                    let value = vec![b'x'; rng.gen_range(0..40)];
                    let added = tree.insert(&mut slot, Bytes::from(key.clone()), Bytes::from(value.clone())).unwrap();
                    assert_eq!(added, model.insert(key.clone(), value).is_none(), "seed {seed} step {step}");
                }
                5..=7 => {
                    let removed = tree.remove(&mut slot, &key).unwrap().map(|v| v.to_vec());
                    assert_eq!(removed, model.remove(&key), "seed {seed} step {step}");
                }
                8 => {
                    let below = tree.count_before(&mut slot, |k| k < key.as_slice()).unwrap();
                    assert_eq!(below as usize, model.range(..key.clone()).count(), "seed {seed} step {step}");
                }
                _ => {
                    let start = rng.gen_range(0..=model.len() as u64);
                    let end = (start + rng.gen_range(0..200)).min(model.len() as u64 + 3);
                    let got: Vec<Vec<u8>> =
                        tree.range(&mut slot, start..end).unwrap().into_iter().map(|(k, _)| k.to_vec()).collect();
                    let want: Vec<Vec<u8>> =
                        model.keys().skip(start as usize).take((end - start) as usize).cloned().collect();
                    assert_eq!(got, want, "seed {seed} step {step}");
                }
            }
            assert_eq!(tree.len() as usize, model.len(), "seed {seed} step {step}");
            assert_eq!(tree.get(&mut slot, &key).unwrap().map(|v| v.to_vec()).as_ref(), model.get(&key));
        }
        let mut ops = Vec::new();
        let mut state = Vec::new();
        tree.encode_state(&mut state);
        tree.into_ops(&mut ops);
        drop(slot);
        rig.commit(ops, state);
        if step % 700 == 699 {
            rig.reopen();
        }
    }
    let header = rig.header();
    let index = rig.engine().slot_of(HEADER_KEY);
    let mut slot = rig.engine().lock_slot(index);
    let mut tree = Tree::decode_state(home(), HEADER_KEY, &header).expect("state");
    let all: Vec<Vec<u8>> = tree.entries(&mut slot).unwrap().into_iter().map(|(k, _)| k.to_vec()).collect();
    assert_eq!(all, model.keys().cloned().collect::<Vec<_>>(), "seed {seed}");
}

#[test]
fn a_chunk_chain_matches_a_deque() {
    let seed = seed();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut rig = Rig::new();
    let mut model: VecDeque<Vec<u8>> = (0..300).map(|i| format!("i{i}").into_bytes()).collect();
    let chain = Chain::create(home(), model.iter().map(|i| Bytes::from(i.clone())));
    let header = chain.header();
    let mut ops = Vec::new();
    chain.into_ops(&mut ops);
    rig.commit(ops, header);
    let mut counter = 0;
    for step in 0..3000 {
        let header = rig.header();
        let index = rig.engine().slot_of(HEADER_KEY);
        let mut slot = rig.engine().lock_slot(index);
        let mut chain = Chain::decode(0, HEADER_KEY, &header).expect("header");
        for _ in 0..rng.gen_range(1..4) {
            let front = rng.gen_bool(0.5);
            match rng.gen_range(0..10) {
                0..=3 => {
                    let items: Vec<Vec<u8>> = (0..rng.gen_range(1..300))
                        .map(|_| {
                            counter += 1;
                            // Mostly small items, some bigger than a chunk.
                            let size = if rng.gen_bool(0.01) { 5000 } else { rng.gen_range(1..30) };
                            let mut item = format!("n{counter}-").into_bytes();
                            item.resize(size.max(item.len()), b'.');
                            item
                        })
                        .collect();
                    chain.push(&mut slot, front, items.iter().map(|i| Bytes::from(i.clone()))).unwrap();
                    for item in items {
                        if front {
                            model.push_front(item);
                        } else {
                            model.push_back(item);
                        }
                    }
                }
                4..=6 if !model.is_empty() => {
                    // Never empty the chain here: an empty collection is deleted by its caller.
                    let n = rng.gen_range(1..300).min(model.len() as u64 - 1);
                    let popped: Vec<Vec<u8>> =
                        chain.pop(&mut slot, front, n, true).unwrap().into_iter().map(|b| b.to_vec()).collect();
                    let want: Vec<Vec<u8>> =
                        (0..n).map(|_| if front { model.pop_front() } else { model.pop_back() }.unwrap()).collect();
                    assert_eq!(popped, want, "seed {seed} step {step}");
                }
                7 if !model.is_empty() => {
                    let at = rng.gen_range(0..model.len());
                    // Some values repeat ("dup" and a few "set" values), for LINSERT/LREM/LPOS below.
                    let value = match rng.gen_range(0..3) {
                        0 => b"dup".to_vec(),
                        1 => format!("set{}", step % 5).into_bytes(),
                        _ => format!("set{step}").into_bytes(),
                    };
                    assert!(chain.set(&mut slot, at as u64, Bytes::from(value.clone())).unwrap());
                    model[at] = value;
                }
                8 if !model.is_empty() && rng.gen_bool(0.5) => {
                    // LINSERT: a pivot that exists (or not), an item small or bigger than a chunk, so that
                    // the chunk taking it splits now and then.
                    let pivot = if rng.gen_bool(0.9) {
                        model[rng.gen_range(0..model.len())].clone()
                    } else {
                        b"no such pivot".to_vec()
                    };
                    let after = rng.gen_bool(0.5);
                    let size = if rng.gen_bool(0.02) { 5000 } else { rng.gen_range(1..40) };
                    let mut item = if rng.gen_bool(0.3) { b"dup".to_vec() } else { format!("ins{step}-").into_bytes() };
                    item.resize(size.max(item.len()), b'+');
                    for _ in 0..rng.gen_range(1..60) {
                        let done = chain.insert_at_pivot(&mut slot, &pivot, Bytes::from(item.clone()), after).unwrap();
                        let at = model.iter().position(|i| *i == pivot);
                        assert_eq!(done, at.is_some(), "seed {seed} step {step}");
                        if let Some(at) = at {
                            model.insert(if after { at + 1 } else { at }, item.clone());
                        }
                    }
                }
                8 if !model.is_empty() => {
                    // LREM: from either end, limited or not; never emptying the chain (see pops).
                    let element =
                        if rng.gen_bool(0.5) { b"dup".to_vec() } else { model[rng.gen_range(0..model.len())].clone() };
                    let limit = if rng.gen_bool(0.3) { None } else { Some(rng.gen_range(1..20u64)) };
                    let matching = model.iter().filter(|i| **i == element).count();
                    if matching < model.len() {
                        let removed = chain.remove_matching(&mut slot, &element, limit, front).unwrap();
                        let mut left = limit.unwrap_or(u64::MAX);
                        let mut want_removed = 0;
                        let mut kept: VecDeque<Vec<u8>> = VecDeque::new();
                        let items: Vec<Vec<u8>> = model.drain(..).collect();
                        let ordered: Box<dyn Iterator<Item = Vec<u8>>> =
                            if front { Box::new(items.into_iter()) } else { Box::new(items.into_iter().rev()) };
                        for item in ordered {
                            if left > 0 && item == element {
                                left -= 1;
                                want_removed += 1;
                            } else if front {
                                kept.push_back(item);
                            } else {
                                kept.push_front(item);
                            }
                        }
                        model = kept;
                        assert_eq!(removed, want_removed, "seed {seed} step {step}");
                    }
                }
                9 if !model.is_empty() && rng.gen_bool(0.3) => {
                    // LPOS: every RANK/COUNT/MAXLEN shape.
                    let element =
                        if rng.gen_bool(0.5) { b"dup".to_vec() } else { model[rng.gen_range(0..model.len())].clone() };
                    let skip = rng.gen_range(0..4u64);
                    let wanted = if rng.gen_bool(0.3) { u64::MAX } else { rng.gen_range(1..6) };
                    let maxlen = if rng.gen_bool(0.5) { 0 } else { rng.gen_range(1..model.len() as u64 + 10) };
                    let got = chain.positions(&mut slot, &element, front, skip, wanted, maxlen).unwrap();
                    let len = model.len() as u64;
                    let order: Vec<u64> = if front { (0..len).collect() } else { (0..len).rev().collect() };
                    let scan = if maxlen == 0 { len } else { maxlen.min(len) };
                    let want: Vec<u64> = order
                        .into_iter()
                        .take(scan as usize)
                        .filter(|&at| model[at as usize] == element)
                        .skip(skip as usize)
                        .take(wanted.min(len) as usize)
                        .collect();
                    assert_eq!(got, want, "seed {seed} step {step}");
                }
                _ if !model.is_empty() => {
                    let at = rng.gen_range(0..model.len()) as u64;
                    let end = (at + rng.gen_range(0..400)).min(model.len() as u64 - 1);
                    let got: Vec<Vec<u8>> =
                        chain.range(&mut slot, at, end).unwrap().into_iter().map(|b| b.to_vec()).collect();
                    let want: Vec<Vec<u8>> = model.range(at as usize..=end as usize).cloned().collect();
                    assert_eq!(got, want, "seed {seed} step {step}");
                    assert_eq!(chain.get(&mut slot, at).unwrap().map(|b| b.to_vec()).as_ref(), model.get(at as usize));
                }
                _ => {}
            }
            assert_eq!(chain.len() as usize, model.len(), "seed {seed} step {step}");
        }
        if step % 100 == 0 {
            // The whole chain, walked head to tail: every link and count still right.
            let all: Vec<Vec<u8>> = chain.items(&mut slot).unwrap().into_iter().map(|b| b.to_vec()).collect();
            assert_eq!(all, model.iter().cloned().collect::<Vec<_>>(), "seed {seed} step {step}");
            assert_eq!(chain.bytes(), model.iter().map(|i| i.len() as u64).sum::<u64>(), "seed {seed} step {step}");
        }
        let header = chain.header();
        let mut ops = Vec::new();
        chain.into_ops(&mut ops);
        drop(slot);
        rig.commit(ops, header);
        if step % 700 == 699 {
            rig.reopen();
        }
    }
}

#[test]
fn a_hashed_table_matches_a_hashmap() {
    let seed = seed();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut rig = Rig::new();
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let hashed = Hashed::create(home(), Vec::new());
    let header = hashed.header();
    let mut ops = Vec::new();
    hashed.into_ops(&mut ops);
    rig.commit(ops, header);
    for step in 0..3000 {
        let header = rig.header();
        let index = rig.engine().slot_of(HEADER_KEY);
        let mut slot = rig.engine().lock_slot(index);
        let mut hashed = Hashed::decode(0, HEADER_KEY, &header).expect("header");
        for _ in 0..rng.gen_range(1..8) {
            let field = format!("f{}", rng.gen_range(0..5000)).into_bytes();
            match rng.gen_range(0..10) {
                0..=5 => {
                    let value = vec![b'v'; rng.gen_range(0..60)];
                    let added =
                        hashed.insert(&mut slot, Bytes::from(field.clone()), Bytes::from(value.clone())).unwrap();
                    assert_eq!(added, model.insert(field, value).is_none(), "seed {seed} step {step}");
                }
                6..=7 => {
                    let removed = hashed.remove(&mut slot, &field).unwrap().map(|v| v.to_vec());
                    assert_eq!(removed, model.remove(&field), "seed {seed} step {step}");
                }
                _ => {
                    let got = hashed.get(&mut slot, &field).unwrap().map(|v| v.to_vec());
                    assert_eq!(got.as_ref(), model.get(&field), "seed {seed} step {step}");
                    // A random pick is an entry of the table, with its value.
                    match hashed.random(&mut slot, rng.gen()).unwrap() {
                        Some((f, v)) => assert_eq!(model.get(f.as_ref()), Some(&v.to_vec()), "seed {seed} step {step}"),
                        None => assert!(model.is_empty(), "seed {seed} step {step}"),
                    }
                }
            }
            assert_eq!(hashed.len() as usize, model.len());
        }
        if step % 500 == 0 {
            let mut all: Vec<Vec<u8>> =
                hashed.entries(&mut slot).unwrap().into_iter().map(|(f, _)| f.to_vec()).collect();
            all.sort();
            let mut want: Vec<Vec<u8>> = model.keys().cloned().collect();
            want.sort();
            assert_eq!(all, want, "seed {seed} step {step}");
        }
        let header = hashed.header();
        let mut ops = Vec::new();
        hashed.into_ops(&mut ops);
        drop(slot);
        rig.commit(ops, header);
        if step % 700 == 699 {
            rig.reopen();
        }
    }
}

/// Point writes on a hashed table keep a bucket's order as before they read buckets as borrowed slices:
/// a new field is appended, an updated one keeps its place, a removed one takes the bucket's last entry
/// (HSCAN/SSCAN and HGETALL order follow it), and the table's byte count follows every change.
#[test]
fn hashed_point_writes_keep_bucket_order_and_byte_count() {
    let rig = Rig::new();
    let hashed = Hashed::create(home(), Vec::new());
    let header = hashed.header();
    let mut ops = Vec::new();
    hashed.into_ops(&mut ops);
    rig.commit(ops, header);
    let index = rig.engine().slot_of(HEADER_KEY);
    let header = rig.header();
    let mut slot = rig.engine().lock_slot(index);
    let mut hashed = Hashed::decode(0, HEADER_KEY, &header).expect("header");
    let b = |s: &str| Bytes::from(s.to_string());
    for (field, value) in [("a", "1"), ("b", "22"), ("c", "333"), ("d", "")] {
        assert!(hashed.insert(&mut slot, b(field), b(value)).unwrap());
    }
    assert!(!hashed.insert(&mut slot, b("b"), b("twenty-two")).unwrap());
    assert_eq!(hashed.remove(&mut slot, b"a").unwrap(), Some(b("1")));
    assert_eq!(hashed.remove(&mut slot, b"a").unwrap(), None);
    assert_eq!(hashed.remove(&mut slot, b"zz").unwrap(), None);
    assert_eq!(hashed.get(&mut slot, b"d").unwrap(), Some(Bytes::new()));
    assert_eq!(hashed.get(&mut slot, b"b").unwrap(), Some(b("twenty-two")));
    assert_eq!(hashed.get(&mut slot, b"a").unwrap(), None);
    let want = vec![(b("d"), b("")), (b("b"), b("twenty-two")), (b("c"), b("333"))];
    assert_eq!(hashed.entries(&mut slot).unwrap(), want);
    assert_eq!(hashed.len(), 3);
    assert_eq!(hashed.bytes(), want.iter().map(|(f, v)| 8 + f.len() as u64 + v.len() as u64).sum::<u64>());
    // Written and read back: the same entries in the same order.
    let header = hashed.header();
    let mut ops = Vec::new();
    hashed.into_ops(&mut ops);
    drop(slot);
    rig.commit(ops, header);
    let header = rig.header();
    let mut slot = rig.engine().lock_slot(index);
    let mut hashed = Hashed::decode(0, HEADER_KEY, &header).expect("header");
    assert_eq!(hashed.entries(&mut slot).unwrap(), want);
    for field in ["b", "c", "d"] {
        assert!(hashed.remove(&mut slot, field.as_bytes()).unwrap().is_some());
    }
    assert_eq!(hashed.entries(&mut slot).unwrap(), Vec::new());
    assert_eq!(hashed.bytes(), 0);
}

#[test]
fn a_split_stream_matches_a_compact_stream() {
    let seed = seed();
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut rig = Rig::new();
    let mut model = StreamValue::default();
    let mut next = 1u64;
    let fields = |rng: &mut SmallRng, n: u64| -> Vec<(Bytes, Bytes)> {
        match rng.gen_range(0..8) {
            0 => vec![(Bytes::from("other"), Bytes::from(vec![b'y'; rng.gen_range(0..600)]))],
            1 => vec![(Bytes::from("f"), Bytes::from(n.to_string())), (Bytes::from("g"), Bytes::from("h"))],
            _ => vec![(Bytes::from("f"), Bytes::from(n.to_string()))],
        }
    };
    for _ in 0..700 {
        let f = fields(&mut rng, next);
        model.append(StreamId::new(next, 0), f, NodeLimits::default());
        next += rng.gen_range(1..3);
    }
    let stream = Streamed::create(Home::new(0, HEADER_KEY, 0x5eed), &model);
    let header = stream.header();
    let mut ops = Vec::new();
    stream.into_ops(&mut ops);
    rig.commit(ops, header);
    let id_near = |rng: &mut SmallRng, next: u64| {
        StreamId::new(rng.gen_range(next.saturating_sub(1500)..next + 2), rng.gen_range(0..2))
    };
    for step in 0..1500 {
        let header = rig.header();
        let index = rig.engine().slot_of(HEADER_KEY);
        let mut slot = rig.engine().lock_slot(index);
        let mut stream = Streamed::decode(0, HEADER_KEY, &header).expect("header");
        let at = format!("seed {seed} step {step}");
        for _ in 0..rng.gen_range(1..5) {
            match rng.gen_range(0..12) {
                0..=3 => {
                    for _ in 0..rng.gen_range(1..40) {
                        let id = StreamId::new(next, 0);
                        let f = fields(&mut rng, next);
                        stream.append(&mut slot, id, f.clone(), NodeLimits::default()).unwrap();
                        model.append(id, f, NodeLimits::default());
                        next += rng.gen_range(1..3);
                    }
                }
                4 => {
                    let id = id_near(&mut rng, next);
                    assert_eq!(stream.delete(&mut slot, id).unwrap(), model.delete(id), "{at}");
                }
                5 | 6 => {
                    let strategy = if rng.gen_bool(0.5) {
                        Trim::MaxLen(rng.gen_range(0..model.len() as u64 + 50))
                    } else {
                        Trim::MinId(id_near(&mut rng, next))
                    };
                    let approx = rng.gen_bool(0.5);
                    let limit = if approx { rng.gen_range(0..400) } else { 0 };
                    let removed = stream.trim(&mut slot, strategy, approx, limit).unwrap();
                    assert_eq!(removed, model.trim(strategy, approx, limit), "{at} {strategy:?} {approx} {limit}");
                }
                7..=9 => {
                    let (a, b) = (id_near(&mut rng, next), id_near(&mut rng, next));
                    let (start, end) = if rng.gen_bool(0.9) { (a.min(b), a.max(b)) } else { (a, b) };
                    let limit = rng.gen_range(0..300);
                    let rev = rng.gen_bool(0.5);
                    let got = stream.range(&mut slot, start, end, limit, rev).unwrap();
                    let take = if limit == 0 { usize::MAX } else { limit };
                    let want: Vec<(StreamId, Vec<(Bytes, Bytes)>)> = if start > end {
                        Vec::new()
                    } else if rev {
                        model.entries.range(start..=end).rev().take(take).map(|(i, e)| (*i, e.fields.clone())).collect()
                    } else {
                        model.entries.range(start..=end).take(take).map(|(i, e)| (*i, e.fields.clone())).collect()
                    };
                    assert_eq!(got, want, "{at} {start}..{end} {limit} {rev}");
                }
                10 => {
                    let id = id_near(&mut rng, next);
                    let want = model.entries.get(&id).map(|e| e.fields.clone());
                    assert_eq!(stream.get(&mut slot, id).unwrap(), want, "{at}");
                }
                _ => {
                    let masters = stream.master_ids(&mut slot).unwrap();
                    assert_eq!(masters.len(), model.node_count(), "{at}");
                    assert_eq!(radix_tree_nodes(masters), model.radix_tree_nodes(), "{at}");
                }
            }
            assert_eq!(stream.len(), model.len() as u64, "{at}");
            assert_eq!(stream.bytes(), model.entry_bytes(), "{at}");
            assert_eq!(stream.node_count(), model.node_count() as u64, "{at}");
            assert_eq!(stream.first_id(&mut slot).unwrap(), model.first_id(), "{at}");
            assert_eq!(stream.top_id(&mut slot).unwrap(), model.entries.keys().next_back().copied(), "{at}");
            assert_eq!(stream.meta().last_id, model.last_id, "{at}");
            assert_eq!(stream.meta().max_deleted_id, model.max_deleted_id, "{at}");
            assert_eq!(stream.meta().entries_added, model.entries_added, "{at}");
        }
        if step % 100 == 0 {
            assert_eq!(stream.materialize(&mut slot).unwrap().node_entries(), model.node_entries(), "{at}");
        }
        let header = stream.header();
        let mut ops = Vec::new();
        stream.into_ops(&mut ops);
        drop(slot);
        rig.commit(ops, header);
        if step % 500 == 499 {
            rig.reopen();
        }
        // Keep the stream long enough to stay interesting.
        if model.len() < 300 {
            let header = rig.header();
            let index = rig.engine().slot_of(HEADER_KEY);
            let mut slot = rig.engine().lock_slot(index);
            let mut stream = Streamed::decode(0, HEADER_KEY, &header).expect("header");
            for _ in 0..400 {
                let id = StreamId::new(next, 0);
                let f = fields(&mut rng, next);
                stream.append(&mut slot, id, f.clone(), NodeLimits::default()).unwrap();
                model.append(id, f, NodeLimits::default());
                next += 1;
            }
            let header = stream.header();
            let mut ops = Vec::new();
            stream.into_ops(&mut ops);
            drop(slot);
            rig.commit(ops, header);
        }
    }
    let header = rig.header();
    let index = rig.engine().slot_of(HEADER_KEY);
    let mut slot = rig.engine().lock_slot(index);
    let mut stream = Streamed::decode(0, HEADER_KEY, &header).expect("header");
    assert_eq!(stream.materialize(&mut slot).unwrap().node_entries(), model.node_entries(), "seed {seed}");
}

/// Random picks of a hashed table are uniform over its entries, although linear hashing leaves its buckets
/// unevenly full (a split bucket holds about half of an unsplit one): a chi-square statistic over many
/// picks stays near its expectation. A "random bucket, random entry" picker fails this by far.
#[test]
fn hashed_random_picks_are_uniform_over_entries() {
    let seed = seed();
    let mut rng = SmallRng::seed_from_u64(seed);
    let rig = Rig::new();
    let index = rig.engine().slot_of(HEADER_KEY);
    let mut slot = rig.engine().lock_slot(index);
    let mut hashed = Hashed::create(home(), Vec::new());
    // Grown one insert at a time, so that some buckets have split and others not.
    let entries = 3000usize;
    for i in 0..entries {
        hashed.insert(&mut slot, Bytes::from(format!("f{i}")), Bytes::from("v")).unwrap();
    }
    let picks = 300_000usize;
    let mut seen: HashMap<Vec<u8>, usize> = HashMap::new();
    for _ in 0..picks {
        let (field, _) = hashed.random(&mut slot, rng.gen()).unwrap().expect("an entry");
        *seen.entry(field.to_vec()).or_default() += 1;
    }
    let expected = picks as f64 / entries as f64;
    let chi2: f64 = (0..entries)
        .map(|i| {
            let observed = *seen.get(format!("f{i}").as_bytes()).unwrap_or(&0) as f64;
            (observed - expected).powi(2) / expected
        })
        .sum();
    // Uniform: mean entries - 1 (2999), standard deviation about 77; a 2:1 skew between halves gives ~11000.
    assert!(chi2 < 3600.0, "seed {seed}: chi-square {chi2:.0} over {entries} entries");
}
