//! Key families: the group of keys that share one trained compression dictionary. A key's family is the
//! longest operator-given prefix it starts with, else its text up to (not including) the last separator
//! (`:` by default), else the default family (the empty name). Keys of one family usually hold values of
//! one shape (`user:1001`, `user:1002`), which is what makes a shared dictionary pay.

/// How keys are grouped into families. Cheap to clone; the engine keeps one behind a lock so that
/// CONFIG SET can change it while writes go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRules {
    /// Bytes that end a family prefix; the last one in the key wins.
    pub separators: Vec<u8>,
    /// Operator-given prefixes, checked first (longest match wins); the matching prefix is the family.
    pub prefixes: Vec<Vec<u8>>,
}

impl Default for FamilyRules {
    fn default() -> Self {
        Self { separators: b":".to_vec(), prefixes: Vec::new() }
    }
}

impl FamilyRules {
    /// The family of `key` (a prefix of it; empty for the default family).
    pub fn family_of<'k>(&self, key: &'k [u8]) -> &'k [u8] {
        let mut best: Option<usize> = None;
        for prefix in &self.prefixes {
            if key.starts_with(prefix) && best.is_none_or(|len| prefix.len() > len) {
                best = Some(prefix.len());
            }
        }
        if let Some(len) = best {
            return &key[..len];
        }
        match key.iter().rposition(|byte| self.separators.contains(byte)) {
            Some(at) => &key[..at],
            None => &[],
        }
    }

    /// Parses the operator's prefix list: prefixes separated by commas or spaces, empty for none.
    pub fn parse_prefixes(text: &str) -> Vec<Vec<u8>> {
        text.split([',', ' ']).filter(|p| !p.is_empty()).map(|p| p.as_bytes().to_vec()).collect()
    }
}

/// The order in which to pack records into segments: the indexes of `keys` grouped by family (families in
/// the order they first appear), each family's keys in their given order. A checkpoint's memtable comes out
/// in key-hash order, which interleaves the families; a segment of one family's values compresses better
/// (about a fifth fewer chunk bytes on three JSON-like families: docs/performance.md §"Trained
/// dictionaries"), and its records all share one dictionary, if any. Order only: the format is unchanged.
pub fn grouped_order<'k>(keys: impl Iterator<Item = &'k [u8]>, rules: &FamilyRules) -> Vec<usize> {
    let mut ids: std::collections::HashMap<&'k [u8], u32> = std::collections::HashMap::new();
    let mut tagged: Vec<(u32, usize)> = keys
        .enumerate()
        .map(|(index, key)| {
            let next = ids.len() as u32;
            (*ids.entry(rules.family_of(key)).or_insert(next), index)
        })
        .collect();
    if ids.len() > 1 {
        tagged.sort_unstable();
    }
    tagged.into_iter().map(|(_, index)| index).collect()
}

/// How a family name is shown: the default family is `(default)`.
pub fn display_family(family: &[u8]) -> String {
    if family.is_empty() {
        "(default)".to_string()
    } else {
        String::from_utf8_lossy(family).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_prefixes() {
        let rules = FamilyRules::default();
        assert_eq!(rules.family_of(b"user:1001"), b"user");
        assert_eq!(rules.family_of(b"app:user:1001"), b"app:user");
        assert_eq!(rules.family_of(b"plain"), b"");
        assert_eq!(rules.family_of(b":x"), b"");
        let rules =
            FamilyRules { separators: b":./".to_vec(), prefixes: FamilyRules::parse_prefixes("sess,session_, ev") };
        assert_eq!(rules.family_of(b"session_42:x"), b"session_");
        assert_eq!(rules.family_of(b"sess42"), b"sess");
        assert_eq!(rules.family_of(b"a.b/c"), b"a.b");
        assert_eq!(rules.family_of(b"event.1"), b"ev");
        assert_eq!(display_family(b""), "(default)");
    }

    #[test]
    fn grouped_order_keeps_each_familys_order() {
        let keys: [&[u8]; 7] = [b"user:1", b"event:1", b"user:2", b"plain", b"event:2", b"user:3", b"other"];
        let order = grouped_order(keys.iter().copied(), &FamilyRules::default());
        assert_eq!(order, vec![0, 2, 5, 1, 4, 3, 6]);
        assert_eq!(grouped_order([&b"a:1"[..], b"a:2"].into_iter(), &FamilyRules::default()), vec![0, 1]);
        assert!(grouped_order(std::iter::empty(), &FamilyRules::default()).is_empty());
    }
}
