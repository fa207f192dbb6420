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
}
