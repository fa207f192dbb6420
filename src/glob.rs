//! Redis's glob-style pattern matching (`stringmatchlen`): `*`, `?`, `[abc]`, `[^a-z]`, `\x`, with Redis
//! 7.0's results for every input (unterminated classes, reversed ranges, a trailing `\`, signed-char
//! ranges, its nesting limit), in time bounded by pattern length × subject length.
//!
//! Used by KEYS, SCAN MATCH, PSUBSCRIBE, PUBSUB CHANNELS, CONFIG GET and everything else taking a pattern.
//!
//! # Why it is bounded
//! Redis matches recursively, retrying every split at every `*`: `a*a*a*…b` against a run of `a`s is
//! exponential there (7.0 prunes part of it, not all). Here a pattern is first compiled into a sequence of
//! tokens, each either a star or a set of the bytes it accepts (a literal, `?` or a class: every such
//! element consumes exactly one byte, whatever the text). Such a pattern matches greedily with a single
//! backtrack point (the last star seen): when a later star is reached, any earlier choice that could
//! succeed can be replaced by one that the later star covers. Each byte of the subject is retried at most
//! once per token, so the work is O(tokens × subject).
//!
//! # Redis's quirks, kept
//! - An empty subject matches only the empty pattern (`*` does not match `""`).
//! - Inside a class, `\x` compares `x` case-sensitively even for nocase matching; a range `a-z` takes
//!   the three bytes whatever they are (`[a-]x]` is a range `a`..`]` followed by more class members).
//! - Range bounds and the subject byte compare as C `char`s, which are signed: `[a-\xff]` is the range
//!   -1..=97, so it accepts `\x00`..`a` and `\xff` but not `b` or `\x80`.
//! - An unterminated class runs to the end of the pattern.
//! - A match that has to pass through more than 1000 stars (each followed by more pattern) fails, as
//!   Redis's recursion limit makes it fail.

/// Redis's recursion limit: a star followed by more pattern recurses once; deeper than this fails.
const MAX_NESTING: usize = 1000;

/// One compiled pattern element.
#[derive(Clone, Debug)]
enum Token {
    /// One or more consecutive `*`.
    Star,
    /// Exactly one byte from this set (bit `b` set when byte `b` is accepted).
    One([u64; 4]),
}

/// A compiled glob pattern: compile once, match many subjects.
#[derive(Clone, Debug)]
pub struct Pattern {
    tokens: Vec<Token>,
    /// The pattern was empty (matches only the empty subject).
    empty: bool,
    /// A successful match would recurse deeper than Redis allows: nothing non-empty matches.
    too_deep: bool,
}

fn set_bit(set: &mut [u64; 4], byte: u8) {
    set[usize::from(byte >> 6)] |= 1 << (byte & 63);
}

fn has_bit(set: &[u64; 4], byte: u8) -> bool {
    set[usize::from(byte >> 6)] & (1 << (byte & 63)) != 0
}

/// A byte as C's (signed) `char`, lowered as C's `tolower` in the C locale (ASCII only) when `nocase`.
fn c_char(byte: u8, nocase: bool) -> i32 {
    let byte = if nocase { byte.to_ascii_lowercase() } else { byte };
    i32::from(byte as i8)
}

/// The set accepting `byte` (and its other ASCII case when `nocase`).
fn literal(set: &mut [u64; 4], byte: u8, nocase: bool) {
    set_bit(set, byte);
    if nocase {
        set_bit(set, byte.to_ascii_lowercase());
        set_bit(set, byte.to_ascii_uppercase());
    }
}

impl Pattern {
    /// Compiles `pattern`; `nocase` folds ASCII case as Redis does.
    pub fn new(pattern: &[u8], nocase: bool) -> Pattern {
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < pattern.len() {
            let mut set = [0u64; 4];
            match pattern[i] {
                b'*' => {
                    if !matches!(tokens.last(), Some(Token::Star)) {
                        tokens.push(Token::Star);
                    }
                    i += 1;
                    continue;
                }
                b'?' => set = [u64::MAX; 4],
                b'[' => {
                    i += 1;
                    let negate = pattern.get(i) == Some(&b'^');
                    if negate {
                        i += 1;
                    }
                    let class = &mut set;
                    loop {
                        let rest = &pattern[i.min(pattern.len())..];
                        match rest {
                            [b'\\', escaped, ..] => {
                                // Escaped members compare exactly, even for nocase matching (as Redis).
                                set_bit(class, *escaped);
                                i += 2;
                            }
                            [b']', ..] => break,
                            // Unterminated: the class ends with the pattern.
                            [] => break,
                            [start, b'-', end, ..] => {
                                let (mut low, mut high) = (i32::from(*start as i8), i32::from(*end as i8));
                                if low > high {
                                    std::mem::swap(&mut low, &mut high);
                                }
                                if nocase {
                                    low = c_char(low as i8 as u8, true);
                                    high = c_char(high as i8 as u8, true);
                                }
                                for byte in 0..=255u8 {
                                    let c = c_char(byte, nocase);
                                    if c >= low && c <= high {
                                        set_bit(class, byte);
                                    }
                                }
                                i += 3;
                            }
                            [member, ..] => {
                                literal(class, *member, nocase);
                                i += 1;
                            }
                        }
                    }
                    if negate {
                        for word in set.iter_mut() {
                            *word = !*word;
                        }
                    }
                }
                b'\\' if i + 1 < pattern.len() => {
                    i += 1;
                    literal(&mut set, pattern[i], nocase);
                }
                byte => literal(&mut set, byte, nocase),
            }
            tokens.push(Token::One(set));
            i += 1;
        }
        let recursions = tokens.windows(2).filter(|w| matches!(w, [Token::Star, Token::One(_)])).count();
        Pattern { tokens, empty: pattern.is_empty(), too_deep: recursions > MAX_NESTING }
    }

    /// True if the pattern matches all of `text`.
    pub fn matches(&self, text: &[u8]) -> bool {
        if text.is_empty() {
            return self.empty;
        }
        if self.too_deep {
            return false;
        }
        let tokens = &self.tokens;
        let (mut p, mut s) = (0, 0);
        // The last star seen: its token index and the subject position it is retried from next.
        let mut backtrack: Option<(usize, usize)> = None;
        while s < text.len() {
            match tokens.get(p) {
                Some(Token::Star) => {
                    if p + 1 == tokens.len() {
                        return true;
                    }
                    backtrack = Some((p, s));
                    p += 1;
                    continue;
                }
                Some(Token::One(set)) if has_bit(set, text[s]) => {
                    p += 1;
                    s += 1;
                    continue;
                }
                _ => {}
            }
            match backtrack {
                Some((star, from)) => {
                    backtrack = Some((star, from + 1));
                    p = star + 1;
                    s = from + 1;
                }
                None => return false,
            }
        }
        tokens[p..].iter().all(|t| matches!(t, Token::Star))
    }
}

/// True if `text` matches `pattern` (compiles the pattern each call: use [`Pattern`] in loops).
pub fn matches(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    Pattern::new(pattern, nocase).matches(text)
}

#[cfg(test)]
mod tests {
    use super::{matches, Pattern};
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// A direct transcription of Redis 7.0.15's recursive `stringmatchlen_impl` (exponential, but the
    /// reference for results). `at` reads past the end as C reads the string's NUL terminator.
    fn reference(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
        fn at(s: &[u8], i: usize) -> u8 {
            s.get(i).copied().unwrap_or(0)
        }
        fn lower(c: i32) -> i32 {
            if (i32::from(b'A')..=i32::from(b'Z')).contains(&c) {
                c + 32
            } else {
                c
            }
        }
        fn signed(b: u8) -> i32 {
            i32::from(b as i8)
        }
        fn imp(pat: &[u8], mut p: usize, s: &[u8], mut i: usize, nocase: bool, skip: &mut bool, nest: usize) -> bool {
            if nest > 1000 {
                return false;
            }
            let mut plen = pat.len() as isize - p as isize;
            let mut slen = s.len() - i;
            while plen > 0 && slen > 0 {
                match at(pat, p) {
                    b'*' => {
                        while plen > 0 && at(pat, p + 1) == b'*' {
                            p += 1;
                            plen -= 1;
                        }
                        if plen == 1 {
                            return true;
                        }
                        while slen > 0 {
                            if imp(pat, p + 1, s, i, nocase, skip, nest + 1) {
                                return true;
                            }
                            if *skip {
                                return false;
                            }
                            i += 1;
                            slen -= 1;
                        }
                        *skip = true;
                        return false;
                    }
                    b'?' => {
                        i += 1;
                        slen -= 1;
                    }
                    b'[' => {
                        p += 1;
                        plen -= 1;
                        let not = at(pat, p) == b'^';
                        if not {
                            p += 1;
                            plen -= 1;
                        }
                        let mut matched = false;
                        loop {
                            if at(pat, p) == b'\\' && plen >= 2 {
                                p += 1;
                                plen -= 1;
                                if at(pat, p) == s[i] {
                                    matched = true;
                                }
                            } else if at(pat, p) == b']' {
                                break;
                            } else if plen == 0 {
                                p -= 1;
                                plen += 1;
                                break;
                            } else if plen >= 3 && at(pat, p + 1) == b'-' {
                                let (mut start, mut end, mut c) =
                                    (signed(at(pat, p)), signed(at(pat, p + 2)), signed(s[i]));
                                if start > end {
                                    std::mem::swap(&mut start, &mut end);
                                }
                                if nocase {
                                    start = lower(start);
                                    end = lower(end);
                                    c = lower(c);
                                }
                                p += 2;
                                plen -= 2;
                                if c >= start && c <= end {
                                    matched = true;
                                }
                            } else if lower_if(at(pat, p), nocase) == lower_if(s[i], nocase) {
                                matched = true;
                            }
                            p += 1;
                            plen -= 1;
                        }
                        if not {
                            matched = !matched;
                        }
                        if !matched {
                            return false;
                        }
                        i += 1;
                        slen -= 1;
                    }
                    other => {
                        let mut c = other;
                        if other == b'\\' && plen >= 2 {
                            p += 1;
                            plen -= 1;
                            c = at(pat, p);
                        }
                        if lower_if(c, nocase) != lower_if(s[i], nocase) {
                            return false;
                        }
                        i += 1;
                        slen -= 1;
                    }
                }
                p += 1;
                plen -= 1;
                if slen == 0 {
                    while at(pat, p) == b'*' {
                        p += 1;
                        plen -= 1;
                    }
                    break;
                }
            }
            plen == 0 && slen == 0
        }
        fn lower_if(b: u8, nocase: bool) -> u8 {
            if nocase {
                b.to_ascii_lowercase()
            } else {
                b
            }
        }
        imp(pattern, 0, text, 0, nocase, &mut false, 0)
    }

    #[test]
    fn patterns() {
        assert!(matches(b"*", b"anything", false));
        assert!(matches(b"h?llo", b"hello", false));
        assert!(matches(b"h*llo", b"heeeello", false));
        assert!(matches(b"h[ae]llo", b"hallo", false));
        assert!(!matches(b"h[^e]llo", b"hello", false));
        assert!(matches(b"h[a-b]llo", b"hbllo", false));
        assert!(matches(b"a\\*b", b"a*b", false));
        assert!(!matches(b"a\\*b", b"axb", false));
        assert!(matches(b"foo*", b"foo", false));
        assert!(!matches(b"foo", b"foobar", false));
        assert!(matches(b"MAX*", b"maxclients", true));
        assert!(!matches(b"", b"a", false));
        assert!(matches(b"", b"", false));
        // Redis quirks.
        assert!(!matches(b"*", b"", false));
        assert!(matches(b"[a-]x]", b"b", false) == reference(b"[a-]x]", b"b", false));
        assert!(matches(b"[^", b"q", false));
        assert!(!matches(b"[", b"[", false));
        assert!(matches(b"a\\", b"a\\", false));
        assert!(matches(b"[z-a]", b"m", false));
        assert!(matches(b"[a-\xff]", b"\xff", false));
        assert!(!matches(b"[a-\xff]", b"b", false));
        assert!(!matches(b"[\\A]", b"a", true));
        assert!(matches(b"[A]", b"a", true));
    }

    #[test]
    fn pathological_patterns_are_fast() {
        let text = [b'a'; 40];
        let began = std::time::Instant::now();
        assert!(!matches(b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", &text, false));
        let long = vec![b'a'; 100_000];
        let pattern: Vec<u8> = b"*a".repeat(500).into_iter().chain(*b"*b").collect();
        assert!(!matches(&pattern, &long, false));
        assert!(began.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn nesting_limit_as_redis() {
        let text = b"a".repeat(1001);
        assert!(matches(&b"*a".repeat(1000), &text, false));
        assert!(reference(&b"*a".repeat(1000), &text, false));
        assert!(!matches(&b"*a".repeat(1001), &text, false));
        assert!(!reference(&b"*a".repeat(1001), &text, false));
        assert!(matches(&[b"*a".repeat(1000), b"*".to_vec()].concat(), &text, false));
    }

    #[test]
    fn random_patterns_match_the_reference() {
        const PATTERN_BYTES: &[u8] = b"**??[[]]^^--\\\\aabbAB z\xff\x80\x00";
        const TEXT_BYTES: &[u8] = b"aabbAB-]\\^[*?z\xff\x80\x7f\x00";
        let mut rng = SmallRng::seed_from_u64(8);
        for round in 0..200_000 {
            let plen = rng.gen_range(0..10);
            let slen = rng.gen_range(0..8);
            let pattern: Vec<u8> = (0..plen).map(|_| PATTERN_BYTES[rng.gen_range(0..PATTERN_BYTES.len())]).collect();
            let text: Vec<u8> = (0..slen).map(|_| TEXT_BYTES[rng.gen_range(0..TEXT_BYTES.len())]).collect();
            let nocase = round % 2 == 1;
            assert_eq!(
                Pattern::new(&pattern, nocase).matches(&text),
                reference(&pattern, &text, nocase),
                "pattern {:?} text {:?} nocase {nocase}",
                String::from_utf8_lossy(&pattern),
                String::from_utf8_lossy(&text)
            );
        }
    }

    #[test]
    fn every_byte_in_ranges_matches_the_reference() {
        for (start, end) in [(b'a', 0xffu8), (0x80, 0x7f), (b'A', b'z'), (b'Z', b'a'), (0, 0xff), (b'[', b'a')] {
            let pattern = [b'[', start, b'-', end, b']'];
            for byte in 0..=255u8 {
                for nocase in [false, true] {
                    assert_eq!(matches(&pattern, &[byte], nocase), reference(&pattern, &[byte], nocase));
                }
            }
        }
    }
}
