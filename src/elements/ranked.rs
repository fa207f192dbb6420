//! A split sorted set (docs/format.md §"Split collections"): each member's score in hashed buckets
//! ([`Hashed`], for ZSCORE and for finding a member's place), and the `(score, member)` order in a
//! counted tree ([`Tree`], for ranks and ranges). A change touches one bucket and one path of the tree.

use bytes::Bytes;

use super::hashed::{self, Hashed};
use super::tree::{self, Tree};
use super::{damaged, Home, Result, LAYOUT_RANKED};
use crate::engine::{BatchOp, Slot};

/// A score as 8 bytes whose unsigned order is the numeric order (-0 taken as 0; NaN is never stored).
pub fn score_key(score: f64) -> [u8; 8] {
    let bits = (score + 0.0).to_bits();
    let ordered = if bits >> 63 == 1 { !bits } else { bits | 1 << 63 };
    ordered.to_be_bytes()
}

/// The score whose [`score_key`] is `bytes`.
pub fn score_of_key(bytes: [u8; 8]) -> f64 {
    let ordered = u64::from_be_bytes(bytes);
    f64::from_bits(if ordered >> 63 == 1 { ordered & !(1 << 63) } else { !ordered })
}

/// The tree key of a member: its score key then the member's bytes, so byte order is Redis's order.
pub fn order_key(score: f64, member: &[u8]) -> Bytes {
    let mut key = Vec::with_capacity(8 + member.len());
    key.extend_from_slice(&score_key(score));
    key.extend_from_slice(member);
    Bytes::from(key)
}

/// The (score, member) of a tree key.
pub fn split_order_key(key: &[u8]) -> Option<(f64, &[u8])> {
    let score = score_of_key(key.get(..8)?.try_into().ok()?);
    Some((score, &key[8..]))
}

/// What [`Ranked::insert`] did (as the compact index reports it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Inserted {
    /// New member.
    Added,
    /// Existing member, new score (the old one given).
    Updated(f64),
    /// Existing member, same score.
    Unchanged,
}

/// A split sorted set.
#[derive(Debug)]
pub struct Ranked {
    members: Hashed,
    order: Tree,
}

fn decode_score(key: &[u8], bytes: &[u8]) -> Result<f64> {
    let raw: [u8; 8] = bytes.try_into().map_err(|_| damaged(key, "member score is not 8 bytes"))?;
    Ok(f64::from_le_bytes(raw))
}

impl Ranked {
    /// A new split sorted set at `home` holding `items` (distinct members, any order).
    pub fn create(home: Home, mut items: Vec<(Bytes, f64)>) -> Ranked {
        items.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let entries = items.iter().map(|(m, s)| (m.clone(), Bytes::copy_from_slice(&s.to_le_bytes()))).collect();
        let members = Hashed::create(home, entries);
        let order = Tree::create(home, items.iter().map(|(m, s)| (order_key(*s, m), Bytes::new())).collect());
        Ranked { members, order }
    }

    /// The split sorted set described by header `payload` of `key`.
    pub fn decode(db: u16, key: &[u8], payload: &[u8]) -> Result<Ranked> {
        let (layout, home, count, rest) = super::read_header_prefix(db, key, payload)?;
        if layout != LAYOUT_RANKED || rest.len() != hashed::STATE_LEN + tree::STATE_LEN {
            return Err(damaged(key, format!("not a sorted-set header (layout {layout}, {} bytes)", payload.len())));
        }
        let members = Hashed::decode_state(home, key, count, &rest[..hashed::STATE_LEN])?;
        let order = Tree::decode_state(home, key, &rest[hashed::STATE_LEN..])?;
        if order.len() != count {
            return Err(damaged(key, format!("tree holds {} members, header says {count}", order.len())));
        }
        Ok(Ranked { members, order })
    }

    /// The header payload.
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(super::HEADER_PREFIX_LEN + hashed::STATE_LEN + tree::STATE_LEN);
        super::put_header_prefix(&mut out, LAYOUT_RANKED, self.members.home(), self.members.len());
        self.members.encode_state(&mut out);
        self.order.encode_state(&mut out);
        out
    }

    /// Where the parts live.
    pub fn home(&self) -> Home {
        self.members.home()
    }

    /// Number of members.
    pub fn len(&self) -> u64 {
        self.members.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Bytes of members and scores.
    pub fn bytes(&self) -> u64 {
        self.members.bytes()
    }

    /// The score of `member`.
    pub fn score(&mut self, slot: &mut Slot, member: &[u8]) -> Result<Option<f64>> {
        match self.members.get(slot, member)? {
            Some(bytes) => Ok(Some(decode_score(member, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Sets `member`'s score.
    pub fn insert(&mut self, slot: &mut Slot, member: Bytes, score: f64) -> Result<Inserted> {
        let outcome = match self.score(slot, &member)? {
            Some(old) if old == score => return Ok(Inserted::Unchanged),
            Some(old) => {
                self.order.remove(slot, &order_key(old, &member))?;
                Inserted::Updated(old)
            }
            None => Inserted::Added,
        };
        self.order.insert(slot, order_key(score, &member), Bytes::new())?;
        self.members.insert(slot, member, Bytes::copy_from_slice(&score.to_le_bytes()))?;
        Ok(outcome)
    }

    /// Removes `member`; its score if it was there.
    pub fn remove(&mut self, slot: &mut Slot, member: &[u8]) -> Result<Option<f64>> {
        let Some(bytes) = self.members.remove(slot, member)? else { return Ok(None) };
        let score = decode_score(member, &bytes)?;
        self.order.remove(slot, &order_key(score, member))?;
        Ok(Some(score))
    }

    /// The 0-based ascending rank of `member`.
    pub fn rank(&mut self, slot: &mut Slot, member: &[u8]) -> Result<Option<u64>> {
        let Some(score) = self.score(slot, member)? else { return Ok(None) };
        let key = order_key(score, member);
        Ok(Some(self.order.count_before(slot, |k| k < key.as_ref())?))
    }

    /// How many members come before the first for which `before(score, member)` is false (a predicate
    /// true on a prefix of the order).
    pub fn count_before(&mut self, slot: &mut Slot, before: impl Fn(f64, &[u8]) -> bool) -> Result<u64> {
        self.order.count_before(slot, |key| split_order_key(key).is_some_and(|(s, m)| before(s, m)))
    }

    /// Members and scores at ascending ranks `ranks`.
    pub fn range(&mut self, slot: &mut Slot, ranks: std::ops::Range<u64>) -> Result<Vec<(Bytes, f64)>> {
        let entries = self.order.range(slot, ranks)?;
        let mut out = Vec::with_capacity(entries.len());
        for (key, _) in entries {
            let (score, member) =
                split_order_key(&key).ok_or_else(|| damaged(&key, "tree key shorter than a score"))?;
            out.push((key.slice_ref(member), score));
        }
        Ok(out)
    }

    /// One step of ZSCAN: the members of a few buckets with their scores, and the cursor to continue from.
    pub fn scan(&mut self, slot: &mut Slot, cursor: u64, want: usize) -> Result<(u64, Vec<(Bytes, f64)>)> {
        let (next, entries) = self.members.scan(slot, cursor, want)?;
        let mut out = Vec::with_capacity(entries.len());
        for (member, score) in entries {
            let score = decode_score(&member, &score)?;
            out.push((member, score));
        }
        Ok((next, out))
    }

    /// The writes of this command.
    pub fn into_ops(self, ops: &mut Vec<BatchOp>) {
        self.members.into_ops(ops);
        self.order.into_ops(ops);
    }

    /// The writes deleting every part (the owner record is the caller's).
    pub fn free_ops(self, slot: &mut Slot, ops: &mut Vec<BatchOp>) -> Result<()> {
        self.members.free_ops(ops);
        self.order.free_ops(slot, ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_keys_sort_as_scores() {
        let scores =
            [f64::NEG_INFINITY, -1e300, -2.5, -1.0, -f64::MIN_POSITIVE, 0.0, 1e-300, 1.0, 2.5, 1e300, f64::INFINITY];
        for pair in scores.windows(2) {
            assert!(score_key(pair[0]) < score_key(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        for score in scores {
            assert_eq!(score_of_key(score_key(score)), score);
        }
        assert_eq!(score_key(-0.0), score_key(0.0));
    }
}
