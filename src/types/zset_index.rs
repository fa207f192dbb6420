//! An in-memory order-statistic index for sorted sets: members ordered by `(score, member)` as
//! in Redis (scores as doubles, ties broken by byte-wise member comparison), with rank lookups
//! and ranges by rank, score and lex in O(log n + k), and insert/remove/update in O(log n).
//!
//! Written from scratch; Redis uses a skip list with spans, this module uses a treap (a binary
//! search tree whose random priorities keep it balanced in expectation) whose nodes carry their
//! subtree size, which gives the same operations. Nodes live in an arena (`Vec`) addressed by
//! `u32` indices so the tree needs no unsafe code and no per-node allocation besides the member.
//! A hash map from member to node gives O(1) `ZSCORE` and finds the node to remove.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use thiserror::Error;

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ZsetError {
    /// Scores must not be NaN (Redis: "resulting score is not a number (NaN)").
    #[error("ERR resulting score is not a number (NaN)")]
    NanScore,
    /// More members than the index can address.
    #[error("ERR sorted set too large")]
    TooLarge,
}

/// What [`ZsetIndex::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InsertOutcome {
    /// The member was new.
    Added,
    /// The member existed with another score (given).
    Updated(f64),
    /// The member existed with the same score.
    Unchanged,
}

/// One end of a score range (`ZRANGEBYSCORE`'s `1.5`, `(1.5`, `-inf`, `+inf`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ScoreBound {
    /// The score itself is in range.
    Inclusive(f64),
    /// The score itself is out of range.
    Exclusive(f64),
}

impl ScoreBound {
    /// Parses Redis's bound syntax: an optional `(` then a float (`inf`, `+inf`, `-inf` allowed).
    /// NaN and unparsable text give `None` (Redis: "ERR min or max is not a float").
    pub fn parse(text: &[u8]) -> Option<ScoreBound> {
        let (exclusive, number) = match text.split_first() {
            Some((b'(', rest)) => (true, rest),
            _ => (false, text),
        };
        let value: f64 = std::str::from_utf8(number).ok()?.parse().ok()?;
        if value.is_nan() {
            return None;
        }
        Some(if exclusive { ScoreBound::Exclusive(value) } else { ScoreBound::Inclusive(value) })
    }
}

/// One end of a lex range (`ZRANGEBYLEX`'s `-`, `+`, `[a`, `(a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    /// Below every member.
    Min,
    /// Above every member.
    Max,
    /// The member itself is in range.
    Inclusive(Vec<u8>),
    /// The member itself is out of range.
    Exclusive(Vec<u8>),
}

impl LexBound {
    /// Parses Redis's syntax; `None` for anything else (Redis: "ERR min or max not valid string
    /// range item").
    pub fn parse(text: &[u8]) -> Option<LexBound> {
        match text.split_first()? {
            (b'-', []) => Some(LexBound::Min),
            (b'+', []) => Some(LexBound::Max),
            (b'[', rest) => Some(LexBound::Inclusive(rest.to_vec())),
            (b'(', rest) => Some(LexBound::Exclusive(rest.to_vec())),
            _ => None,
        }
    }
}

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    score: f64,
    member: Arc<[u8]>,
    priority: u32,
    left: u32,
    right: u32,
    /// Nodes in this subtree, itself included.
    size: u32,
}

/// Redis's order: score first (NaN never stored, -0.0 equals 0.0), then member bytes.
fn key_cmp(score_a: f64, member_a: &[u8], score_b: f64, member_b: &[u8]) -> Ordering {
    score_a.partial_cmp(&score_b).unwrap_or(Ordering::Equal).then_with(|| member_a.cmp(member_b))
}

/// A sorted set's members, ordered by `(score, member)`, with ranks.
#[derive(Debug, Clone)]
pub struct ZsetIndex {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    by_member: HashMap<Arc<[u8]>, u32>,
    /// xorshift state for node priorities; any sequence keeps the tree balanced in expectation.
    rng: u64,
}

impl Default for ZsetIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl ZsetIndex {
    /// An empty index.
    pub fn new() -> ZsetIndex {
        ZsetIndex {
            nodes: Vec::new(),
            free: Vec::new(),
            root: NIL,
            by_member: HashMap::new(),
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Number of members (`ZCARD`).
    pub fn len(&self) -> usize {
        self.by_member.len()
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.by_member.is_empty()
    }

    /// A member's score (`ZSCORE`).
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.by_member.get(member).map(|&i| self.node(i).score)
    }

    /// Adds a member or changes its score.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Result<InsertOutcome, ZsetError> {
        if score.is_nan() {
            return Err(ZsetError::NanScore);
        }
        let outcome = match self.score(member) {
            Some(old) if old == score => return Ok(InsertOutcome::Unchanged),
            Some(old) => {
                self.remove(member);
                InsertOutcome::Updated(old)
            }
            None => InsertOutcome::Added,
        };
        if self.nodes.len() - self.free.len() >= (NIL - 1) as usize {
            return Err(ZsetError::TooLarge);
        }
        let member: Arc<[u8]> = Arc::from(member);
        let priority = self.next_priority();
        let node = Node { score, member: member.clone(), priority, left: NIL, right: NIL, size: 1 };
        let index = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        let (before, after) = self.split_by_key(self.root, score, &member);
        let left = self.merge(before, index);
        self.root = self.merge(left, after);
        self.by_member.insert(member, index);
        Ok(outcome)
    }

    /// Removes a member, returning its score (`ZREM`).
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let index = self.by_member.remove(member)?;
        let (score, key) = {
            let node = self.node(index);
            (node.score, node.member.clone())
        };
        let (before, rest) = self.split_by_key(self.root, score, &key);
        let (found, after) = self.split_by_rank(rest, 1);
        debug_assert_eq!(found, index);
        self.root = self.merge(before, after);
        // Drop the member bytes now rather than when the slot is reused.
        self.nodes[index as usize].member = Arc::from(&[][..]);
        self.free.push(index);
        Some(score)
    }

    /// A member's 0-based rank in ascending order (`ZRANK`); `ZREVRANK` is `len - 1 - rank`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.count_before(|n| key_cmp(n.score, &n.member, score, member) == Ordering::Less))
    }

    /// The member and score at a 0-based ascending rank.
    pub fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        self.iter_from(rank).next()
    }

    /// The ascending ranks whose scores lie between `min` and `max` (empty if none).
    pub fn score_rank_range(&self, min: ScoreBound, max: ScoreBound) -> Range<usize> {
        let start = self.count_before(|n| match min {
            ScoreBound::Inclusive(s) => n.score < s,
            ScoreBound::Exclusive(s) => n.score <= s,
        });
        let end = self.count_before(|n| match max {
            ScoreBound::Inclusive(s) => n.score <= s,
            ScoreBound::Exclusive(s) => n.score < s,
        });
        start..end.max(start)
    }

    /// The ascending ranks whose members lie between `min` and `max`, comparing members only.
    /// Like Redis, this is meaningful when all members share one score.
    pub fn lex_rank_range(&self, min: &LexBound, max: &LexBound) -> Range<usize> {
        let start = self.count_before(|n| match min {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(m) => &*n.member < m.as_slice(),
            LexBound::Exclusive(m) => &*n.member <= m.as_slice(),
        });
        let end = self.count_before(|n| match max {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(m) => &*n.member <= m.as_slice(),
            LexBound::Exclusive(m) => &*n.member < m.as_slice(),
        });
        start..end.max(start)
    }

    /// Members in ascending order from a rank on; take as many as needed.
    pub fn iter_from(&self, rank: usize) -> Iter<'_> {
        let mut stack = Vec::new();
        let mut at = self.root;
        let mut skip = rank;
        while at != NIL {
            let node = self.node(at);
            let left_size = self.size(node.left) as usize;
            match skip.cmp(&left_size) {
                Ordering::Less => {
                    stack.push(at);
                    at = node.left;
                }
                Ordering::Equal => {
                    stack.push(at);
                    break;
                }
                Ordering::Greater => {
                    skip -= left_size + 1;
                    at = node.right;
                }
            }
        }
        Iter { index: self, stack, reverse: false }
    }

    /// Members in descending order from an ascending rank downwards (for `ZREVRANGE` start at
    /// `len - 1 - rev_start`).
    pub fn iter_rev_from(&self, rank: usize) -> Iter<'_> {
        let mut stack = Vec::new();
        let mut at = self.root;
        let mut skip = rank;
        while at != NIL {
            let node = self.node(at);
            let left_size = self.size(node.left) as usize;
            match skip.cmp(&left_size) {
                Ordering::Less => at = node.left,
                Ordering::Equal => {
                    stack.push(at);
                    break;
                }
                Ordering::Greater => {
                    stack.push(at);
                    skip -= left_size + 1;
                    at = node.right;
                }
            }
        }
        Iter { index: self, stack, reverse: true }
    }

    /// The members with ascending ranks in `ranks`, ascending.
    pub fn range(&self, ranks: Range<usize>) -> impl Iterator<Item = (&[u8], f64)> {
        self.iter_from(ranks.start).take(ranks.end.saturating_sub(ranks.start))
    }

    /// The members with ascending ranks in `ranks`, descending.
    pub fn range_rev(&self, ranks: Range<usize>) -> impl Iterator<Item = (&[u8], f64)> {
        let end = ranks.end.min(self.len());
        let count = end.saturating_sub(ranks.start);
        let top = if count == 0 { usize::MAX } else { end - 1 };
        self.iter_rev_from(top).take(count)
    }

    /// All members in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0)
    }

    fn node(&self, index: u32) -> &Node {
        &self.nodes[index as usize]
    }

    fn size(&self, index: u32) -> u32 {
        if index == NIL {
            0
        } else {
            self.node(index).size
        }
    }

    fn next_priority(&mut self) -> u32 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 32) as u32
    }

    fn update_size(&mut self, index: u32) {
        let node = self.node(index);
        let size = 1 + self.size(node.left) + self.size(node.right);
        self.nodes[index as usize].size = size;
    }

    /// Number of members for which `before` holds; `before` must hold for a prefix of the order.
    fn count_before(&self, before: impl Fn(&Node) -> bool) -> usize {
        let mut count = 0;
        let mut at = self.root;
        while at != NIL {
            let node = self.node(at);
            if before(node) {
                count += self.size(node.left) as usize + 1;
                at = node.right;
            } else {
                at = node.left;
            }
        }
        count
    }

    /// Splits a subtree into keys `< (score, member)` and keys `>=` it.
    fn split_by_key(&mut self, tree: u32, score: f64, member: &[u8]) -> (u32, u32) {
        if tree == NIL {
            return (NIL, NIL);
        }
        let node = self.node(tree);
        if key_cmp(node.score, &node.member, score, member) == Ordering::Less {
            let (less, rest) = self.split_by_key(node.right, score, member);
            self.nodes[tree as usize].right = less;
            self.update_size(tree);
            (tree, rest)
        } else {
            let (less, rest) = self.split_by_key(node.left, score, member);
            self.nodes[tree as usize].left = rest;
            self.update_size(tree);
            (less, tree)
        }
    }

    /// Splits a subtree into its first `count` nodes and the rest.
    fn split_by_rank(&mut self, tree: u32, count: usize) -> (u32, u32) {
        if tree == NIL {
            return (NIL, NIL);
        }
        let node = self.node(tree);
        let left_size = self.size(node.left) as usize;
        if count <= left_size {
            let (first, rest) = self.split_by_rank(node.left, count);
            self.nodes[tree as usize].left = rest;
            self.update_size(tree);
            (first, tree)
        } else {
            let (first, rest) = self.split_by_rank(node.right, count - left_size - 1);
            self.nodes[tree as usize].right = first;
            self.update_size(tree);
            (tree, rest)
        }
    }

    /// Joins two subtrees where every key of `left` is below every key of `right`.
    fn merge(&mut self, left: u32, right: u32) -> u32 {
        if left == NIL {
            return right;
        }
        if right == NIL {
            return left;
        }
        if self.node(left).priority > self.node(right).priority {
            let merged = self.merge(self.node(left).right, right);
            self.nodes[left as usize].right = merged;
            self.update_size(left);
            left
        } else {
            let merged = self.merge(left, self.node(right).left);
            self.nodes[right as usize].left = merged;
            self.update_size(right);
            right
        }
    }
}

/// An in-order walk (ascending or descending) over `(member, score)` pairs.
pub struct Iter<'a> {
    index: &'a ZsetIndex,
    /// Nodes still to visit, the next one on top.
    stack: Vec<u32>,
    reverse: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.stack.pop()?;
        let node = self.index.node(at);
        // Then the nearest nodes of the subtree on the far side.
        let mut next = if self.reverse { node.left } else { node.right };
        while next != NIL {
            self.stack.push(next);
            let child = self.index.node(next);
            next = if self.reverse { child.right } else { child.left };
        }
        Some((&node.member, node.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The model: a sorted Vec of (score, member).
    #[derive(Default)]
    struct Model(Vec<(f64, Vec<u8>)>);

    impl Model {
        fn position(&self, member: &[u8]) -> Option<usize> {
            self.0.iter().position(|(_, m)| m == member)
        }
        fn insert(&mut self, member: &[u8], score: f64) {
            if let Some(i) = self.position(member) {
                self.0.remove(i);
            }
            self.0.push((score, member.to_vec()));
            self.0.sort_by(|a, b| key_cmp(a.0, &a.1, b.0, &b.1));
        }
    }

    fn pairs<'a>(it: impl Iterator<Item = (&'a [u8], f64)>) -> Vec<(f64, Vec<u8>)> {
        it.map(|(m, s)| (s, m.to_vec())).collect()
    }

    #[test]
    fn ordering_and_ties() {
        let mut z = ZsetIndex::new();
        assert_eq!(z.insert(b"b", 1.0), Ok(InsertOutcome::Added));
        assert_eq!(z.insert(b"a", 1.0), Ok(InsertOutcome::Added));
        assert_eq!(z.insert(b"c", 0.5), Ok(InsertOutcome::Added));
        assert_eq!(z.insert(b"c", 0.5), Ok(InsertOutcome::Unchanged));
        assert_eq!(z.insert(b"d", f64::NAN), Err(ZsetError::NanScore));
        assert_eq!(z.insert(b"z", f64::NEG_INFINITY), Ok(InsertOutcome::Added));
        let members: Vec<&[u8]> = z.iter().map(|(m, _)| m).collect();
        assert_eq!(members, vec![&b"z"[..], b"c", b"a", b"b"]);
        assert_eq!(z.rank(b"a"), Some(2));
        assert_eq!(z.insert(b"z", 2.0), Ok(InsertOutcome::Updated(f64::NEG_INFINITY)));
        assert_eq!(z.rank(b"z"), Some(3));
        assert_eq!(z.get_by_rank(0), Some((&b"c"[..], 0.5)));
        assert_eq!(z.remove(b"c"), Some(0.5));
        assert_eq!(z.remove(b"c"), None);
        assert_eq!(z.len(), 3);
    }

    #[test]
    fn bounds_parse() {
        assert_eq!(ScoreBound::parse(b"(1.5"), Some(ScoreBound::Exclusive(1.5)));
        assert_eq!(ScoreBound::parse(b"-inf"), Some(ScoreBound::Inclusive(f64::NEG_INFINITY)));
        assert_eq!(ScoreBound::parse(b"+inf"), Some(ScoreBound::Inclusive(f64::INFINITY)));
        assert_eq!(ScoreBound::parse(b"nan"), None);
        assert_eq!(ScoreBound::parse(b"x"), None);
        assert_eq!(LexBound::parse(b"-"), Some(LexBound::Min));
        assert_eq!(LexBound::parse(b"[a"), Some(LexBound::Inclusive(b"a".to_vec())));
        assert_eq!(LexBound::parse(b"(a"), Some(LexBound::Exclusive(b"a".to_vec())));
        assert_eq!(LexBound::parse(b"a"), None);
        assert_eq!(LexBound::parse(b""), None);
    }

    #[test]
    fn model_test() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(42);
        for round in 0..4 {
            let mut z = ZsetIndex::new();
            let mut model = Model::default();
            let universe = [20, 200, 2000, 50][round];
            let same_score = round == 3;
            for step in 0..6000 {
                let member = format!("m{}", rng.gen_range(0..universe)).into_bytes();
                let score = if same_score { 0.0 } else { f64::from(rng.gen_range(-50..50)) / 4.0 };
                match rng.gen_range(0..10) {
                    0..=4 => {
                        let expected = match model.position(&member) {
                            None => InsertOutcome::Added,
                            Some(i) if model.0[i].0 == score => InsertOutcome::Unchanged,
                            Some(i) => InsertOutcome::Updated(model.0[i].0),
                        };
                        assert_eq!(z.insert(&member, score), Ok(expected));
                        model.insert(&member, score);
                    }
                    5..=6 => {
                        let expected = model.position(&member).map(|i| model.0.remove(i).0);
                        assert_eq!(z.remove(&member), expected);
                    }
                    _ => {
                        assert_eq!(z.rank(&member), model.position(&member));
                        assert_eq!(z.score(&member), model.position(&member).map(|i| model.0[i].0));
                    }
                }
                assert_eq!(z.len(), model.0.len());
                if step % 97 == 0 {
                    assert_eq!(pairs(z.iter()), model.0, "step {step}");
                    check_ranges(&z, &model, &mut rng, same_score);
                }
            }
        }
    }

    fn check_ranges(z: &ZsetIndex, model: &Model, rng: &mut rand::rngs::SmallRng, lex: bool) {
        let n = model.0.len();
        for _ in 0..20 {
            let a = rng.gen_range(0..n + 3);
            let b = rng.gen_range(0..n + 3);
            let want: Vec<_> = model.0.iter().skip(a).take(b.saturating_sub(a)).cloned().collect();
            assert_eq!(pairs(z.range(a..b)), want, "range {a}..{b}");
            let rev: Vec<_> = want.iter().rev().cloned().collect();
            assert_eq!(pairs(z.range_rev(a..b)), rev, "range_rev {a}..{b}");
            if let Some((score, member)) = model.0.get(a) {
                assert_eq!(z.get_by_rank(a), Some((member.as_slice(), *score)));
            } else {
                assert_eq!(z.get_by_rank(a), None);
            }

            let bound = |rng: &mut rand::rngs::SmallRng| {
                let s = f64::from(rng.gen_range(-60..60)) / 4.0;
                match rng.gen_range(0..4) {
                    0 => ScoreBound::Exclusive(s),
                    1 => ScoreBound::Inclusive(f64::INFINITY * if rng.gen() { 1.0 } else { -1.0 }),
                    _ => ScoreBound::Inclusive(s),
                }
            };
            let (min, max) = (bound(rng), bound(rng));
            let inside = |s: f64| {
                let above = match min {
                    ScoreBound::Inclusive(m) => s >= m,
                    ScoreBound::Exclusive(m) => s > m,
                };
                let below = match max {
                    ScoreBound::Inclusive(m) => s <= m,
                    ScoreBound::Exclusive(m) => s < m,
                };
                above && below
            };
            let want: Vec<_> = model.0.iter().filter(|(s, _)| inside(*s)).cloned().collect();
            assert_eq!(pairs(z.range(z.score_rank_range(min, max))), want, "{min:?} {max:?}");

            if lex {
                let lex_bound = |rng: &mut rand::rngs::SmallRng| {
                    let m = format!("m{}", rng.gen_range(0..60)).into_bytes();
                    match rng.gen_range(0..6) {
                        0 => LexBound::Min,
                        1 => LexBound::Max,
                        2 | 3 => LexBound::Inclusive(m),
                        _ => LexBound::Exclusive(m),
                    }
                };
                let (min, max) = (lex_bound(rng), lex_bound(rng));
                let inside = |m: &[u8]| {
                    let above = match &min {
                        LexBound::Min => true,
                        LexBound::Max => false,
                        LexBound::Inclusive(b) => m >= b.as_slice(),
                        LexBound::Exclusive(b) => m > b.as_slice(),
                    };
                    let below = match &max {
                        LexBound::Min => false,
                        LexBound::Max => true,
                        LexBound::Inclusive(b) => m <= b.as_slice(),
                        LexBound::Exclusive(b) => m < b.as_slice(),
                    };
                    above && below
                };
                let want: Vec<_> = model.0.iter().filter(|(_, m)| inside(m)).cloned().collect();
                let got = pairs(z.range(z.lex_rank_range(&min, &max)));
                assert_eq!(got, want, "{min:?} {max:?}");
            }
        }
    }

    #[test]
    fn large_set_stays_balanced_enough() {
        let mut z = ZsetIndex::new();
        // Ascending inserts are a worst case for an unbalanced tree; the treap must cope.
        for i in 0..200_000u32 {
            z.insert(&i.to_be_bytes(), f64::from(i)).unwrap();
        }
        assert_eq!(z.rank(&150_000u32.to_be_bytes()), Some(150_000));
        assert_eq!(z.get_by_rank(199_999).map(|(_, s)| s), Some(199_999.0));
        for i in (0..200_000u32).step_by(2) {
            assert_eq!(z.remove(&i.to_be_bytes()), Some(f64::from(i)));
        }
        assert_eq!(z.len(), 100_000);
        assert_eq!(z.rank(&150_001u32.to_be_bytes()), Some(75_000));
        let range = z.score_rank_range(ScoreBound::Inclusive(1000.0), ScoreBound::Exclusive(1010.0));
        assert_eq!(range, 500..505);
    }
}
