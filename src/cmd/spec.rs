//! The shape of a command-table entry ([`CommandSpec`]) and its flag sets.
//!
//! The entries themselves are generated from `commands/*.json` into [`super::table`].

use bytes::Bytes;

use super::{CmdError, Ctx};
use crate::cmd::args::{parse_i64, Args};
use crate::resp::Reply;

/// A command handler: the command's meaning only; the dispatch gate has already checked arity and policy.
pub type Handler = fn(&mut Ctx<'_>, &mut Args) -> Result<Reply, CmdError>;

macro_rules! bitset {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $flag:ident = $bit:expr, $text:expr;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name(pub u32);
        impl $name {
            $($(#[$fmeta])* pub const $flag: $name = $name(1 << $bit);)*
            /// Every member with its JSON name and its Redis reply text, in Redis's order.
            pub const ALL: &'static [($name, &'static str, &'static str)] = &[$(($name::$flag, stringify!($flag), $text)),*];
            /// The union of two sets.
            pub const fn union(self, other: $name) -> $name {
                $name(self.0 | other.0)
            }
            /// True if every member of `other` is in `self`.
            pub const fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }
            /// The member named `name` in the JSON files.
            pub fn from_name(name: &str) -> Option<$name> {
                Self::ALL.iter().find(|(_, json, _)| *json == name).map(|(v, _, _)| *v)
            }
            /// Redis's reply texts of the members, in order.
            pub fn texts(self) -> Vec<&'static str> {
                Self::ALL.iter().filter(|(v, _, _)| self.contains(*v)).map(|(_, _, text)| *text).collect()
            }
        }
    };
}

bitset! {
    /// Command flags (Redis's `CMD_*`).
    Flags {
        /// Modifies the dataset.
        WRITE = 0, "write";
        /// Only reads.
        READONLY = 1, "readonly";
        /// May grow memory use.
        DENYOOM = 2, "denyoom";
        /// Administrative.
        ADMIN = 4, "admin";
        /// Pub/Sub related.
        PUBSUB = 5, "pubsub";
        /// Not allowed in scripts.
        NOSCRIPT = 6, "noscript";
        /// May block the client (BLPOP, BZPOPMIN, XREAD BLOCK, ...).
        BLOCKING = 8, "blocking";
        /// Allowed while loading.
        LOADING = 9, "loading";
        /// Allowed on a stale replica.
        STALE = 10, "stale";
        /// Not shown to MONITOR clients as it runs (scripts: MONITOR shows the commands they call).
        SKIP_MONITOR = 11, "skip_monitor";
        /// Not shown in the slow log.
        SKIP_SLOWLOG = 12, "skip_slowlog";
        /// O(1) or O(log N), never blocks.
        FAST = 14, "fast";
        /// Allowed before authentication.
        NO_AUTH = 15, "no_auth";
        /// May name no key at all although its key specs allow keys (EVAL with numkeys 0).
        NO_MANDATORY_KEYS = 16, "no_mandatory_keys";
        /// Refused while a replica loads its dataset asynchronously.
        NO_ASYNC_LOADING = 18, "no_async_loading";
        /// Not allowed inside MULTI.
        NO_MULTI = 19, "no_multi";
        /// Key positions depend on the arguments.
        MOVABLE_KEYS = 20, "movablekeys";
        /// Allowed while a script is busy.
        ALLOW_BUSY = 21, "allow_busy";
    }
}

bitset! {
    /// ACL categories (Redis's `ACL_CATEGORY_*`), in Redis's order.
    AclCategories {
        /// `@keyspace`.
        KEYSPACE = 0, "@keyspace";
        /// `@read`.
        READ = 1, "@read";
        /// `@write`.
        WRITE = 2, "@write";
        /// `@set`.
        SET = 3, "@set";
        /// `@sortedset`.
        SORTEDSET = 4, "@sortedset";
        /// `@list`.
        LIST = 5, "@list";
        /// `@hash`.
        HASH = 6, "@hash";
        /// `@string`.
        STRING = 7, "@string";
        /// `@bitmap`.
        BITMAP = 8, "@bitmap";
        /// `@hyperloglog`.
        HYPERLOGLOG = 9, "@hyperloglog";
        /// `@geo`.
        GEO = 10, "@geo";
        /// `@stream`.
        STREAM = 11, "@stream";
        /// `@pubsub`.
        PUBSUB = 12, "@pubsub";
        /// `@admin`.
        ADMIN = 13, "@admin";
        /// `@fast`.
        FAST = 14, "@fast";
        /// `@slow`.
        SLOW = 15, "@slow";
        /// `@blocking`.
        BLOCKING = 16, "@blocking";
        /// `@dangerous`.
        DANGEROUS = 17, "@dangerous";
        /// `@connection`.
        CONNECTION = 18, "@connection";
        /// `@transaction`.
        TRANSACTION = 19, "@transaction";
        /// `@scripting`.
        SCRIPTING = 20, "@scripting";
    }
}

/// One command or subcommand.
#[derive(Debug)]
pub struct CommandSpec {
    /// Dense index, for per-command statistics.
    pub id: usize,
    /// Lower-case name (the subcommand's own name for a subcommand).
    pub name: &'static str,
    /// `name`, or `container|name` for a subcommand.
    pub fullname: &'static str,
    /// Redis arity: exact argument count if positive, minimum if negative (the name counts).
    pub arity: i32,
    /// Command flags.
    pub flags: Flags,
    /// ACL categories, implicit ones included.
    pub acl: AclCategories,
    /// First key position, 0 if none.
    pub first_key: i32,
    /// Last key position; negative counts from the end.
    pub last_key: i32,
    /// Step between keys.
    pub key_step: i32,
    /// Key finders beyond the legacy range: the keys whose positions depend on the arguments (Redis's
    /// `movablekeys`) and, for a command with several ranges, those ranges (which then replace the triple).
    pub key_finders: &'static [KeyFinder],
    /// Redis group (`string`, `generic`, ...).
    pub group: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Redis version that introduced it.
    pub since: &'static str,
    /// Time complexity.
    pub complexity: &'static str,
    /// The handler; `None` for a pure container.
    pub handler: Option<Handler>,
    /// Subcommands of a container.
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    /// True if the arity admits `argc` arguments (the name included).
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// A subcommand by name, case-insensitively.
    pub fn subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        self.subcommands.iter().find(|sub| sub.name.as_bytes().eq_ignore_ascii_case(name))
    }

    /// True if the command has the flag.
    pub fn has(&self, flag: Flags) -> bool {
        self.flags.contains(flag)
    }

    /// Positions of the keys in `argv` (the name is position 0; for a subcommand, the container is 0):
    /// the legacy range first (unless the finders hold the ranges), then each finder in order, as Redis's
    /// COMMAND GETKEYS lists them. `None` when the arguments do not fit the finders (a bad numkeys, a range
    /// beyond the end): Redis's "Invalid arguments".
    pub fn key_positions(&self, argv: &[Bytes]) -> Option<Vec<usize>> {
        let argc = argv.len();
        let own_ranges = self.key_finders.iter().any(|f| matches!(f, KeyFinder::Range { .. }));
        let mut positions = if own_ranges { Vec::new() } else { self.range_positions(argc) };
        let mut keyword_without_key = false;
        for finder in self.key_finders {
            match *finder {
                KeyFinder::Range { first, last, step } => {
                    let last = if last < 0 { argc as i64 + i64::from(last) } else { i64::from(last) };
                    if first as usize >= argc || last < i64::from(first) || last >= argc as i64 {
                        return None;
                    }
                    positions.extend((first as usize..=last as usize).step_by(step.max(1) as usize));
                }
                KeyFinder::NumKeys { at, step } => {
                    // Redis accepts any count whose keys fit before the end (the keys may swallow options).
                    let count = argv.get(at).and_then(|arg| parse_i64(arg)).filter(|n| *n > 0)?;
                    let first = at + 1;
                    let last = (count as u128 - 1) * step as u128 + first as u128;
                    if last >= argc as u128 {
                        return None;
                    }
                    positions.extend((first..=last as usize).step_by(step));
                }
                KeyFinder::Keyword { keyword, from, keys } => {
                    let Some(at) = (from..argc).find(|i| argv[*i].eq_ignore_ascii_case(keyword.as_bytes())) else {
                        continue;
                    };
                    let first = at + 1;
                    match keys {
                        KeywordKeys::One if first < argc => positions.push(first),
                        KeywordKeys::One => keyword_without_key = true,
                        KeywordKeys::Half => {
                            let count = (argc - first) / 2;
                            if count == 0 {
                                return None;
                            }
                            positions.extend(first..first + count);
                        }
                    }
                }
                KeyFinder::SortStore => positions.extend(sort_store_key(argv)),
                KeyFinder::Migrate => positions = migrate_keys(argv),
            }
        }
        if keyword_without_key {
            // A keyword ending the command makes Redis's key specs fail; it then falls back to the command's
            // own parser, which keeps only the last of the keywords that has an argument after it.
            positions = self.range_positions(argc);
            positions.extend(last_keyword_key(argv, self.key_finders));
        }
        Some(positions)
    }

    /// The positions of the legacy first/last/step range.
    fn range_positions(&self, argc: usize) -> Vec<usize> {
        if self.first_key <= 0 || argc == 0 {
            return Vec::new();
        }
        let first = self.first_key as usize;
        let last = if self.last_key < 0 { argc as i64 + i64::from(self.last_key) } else { i64::from(self.last_key) };
        if last < first as i64 {
            return Vec::new();
        }
        let last = (last as usize).min(argc - 1);
        (first..=last).step_by(self.key_step.max(1) as usize).collect()
    }
}

/// A key finder for keys whose positions depend on the arguments (generated from the JSON `key_specs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFinder {
    /// A fixed range, for a command with several (each must fit the arguments).
    Range {
        /// First key position.
        first: i32,
        /// Last key position; negative counts from the end.
        last: i32,
        /// Step between keys.
        step: i32,
    },
    /// Argument `at` holds the number of keys, which follow it `step` apart (ZUNION, LMPOP, SINTERCARD).
    NumKeys {
        /// Position of the count.
        at: usize,
        /// Step between keys.
        step: usize,
    },
    /// The keys after the first `keyword` at or after position `from` (GEORADIUS STORE, XREAD STREAMS).
    Keyword {
        /// The keyword, upper case.
        keyword: &'static str,
        /// Where the search starts.
        from: usize,
        /// How many arguments after the keyword are keys.
        keys: KeywordKeys,
    },
    /// SORT's `STORE destination`, found by SORT's own option parsing (the keyword may be anywhere, but
    /// not as the argument of LIMIT, BY or GET).
    SortStore,
    /// MIGRATE's keys: the key argument, or with `KEYS` (when the key argument is empty) every
    /// argument after it; replaces the positions found before it.
    Migrate,
}

/// How many keys follow a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordKeys {
    /// The one argument after it.
    One,
    /// The first half of the arguments after it (XREAD's `STREAMS key [key ...] id [id ...]`).
    Half,
}

/// MIGRATE's key positions as Redis's `migrateGetKeys` finds them: the first `KEYS` at or after
/// position 6 when argument 3 is empty, else argument 3.
fn migrate_keys(argv: &[Bytes]) -> Vec<usize> {
    let keys_at = (6..argv.len()).find(|&i| argv[i].eq_ignore_ascii_case(b"keys") && argv[3].is_empty());
    match keys_at {
        Some(at) => (at + 1..argv.len()).collect(),
        None => (argv.len() > 3).then_some(3).into_iter().collect(),
    }
}

/// The position of SORT's STORE key: the last `STORE` with an argument, skipping the arguments of
/// LIMIT (two), BY and GET (one each), as SORT parses them.
fn sort_store_key(argv: &[Bytes]) -> Option<usize> {
    let mut found = None;
    let mut i = 2;
    while i < argv.len() {
        let arg = &argv[i];
        if arg.eq_ignore_ascii_case(b"LIMIT") {
            i += 2;
        } else if arg.eq_ignore_ascii_case(b"GET") || arg.eq_ignore_ascii_case(b"BY") {
            i += 1;
        } else if arg.eq_ignore_ascii_case(b"STORE") && i + 1 < argv.len() {
            found = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    found
}

/// The argument after the last of `finders`' keywords that has one (each keyword's argument skipped).
fn last_keyword_key(argv: &[Bytes], finders: &[KeyFinder]) -> Option<usize> {
    let keywords: Vec<(&str, usize)> = finders
        .iter()
        .filter_map(|f| match *f {
            KeyFinder::Keyword { keyword, from, .. } => Some((keyword, from)),
            _ => None,
        })
        .collect();
    let from = keywords.iter().map(|(_, from)| *from).min()?;
    let mut found = None;
    let mut i = from;
    while i < argv.len() {
        if i + 1 < argv.len() && keywords.iter().any(|(k, _)| argv[i].eq_ignore_ascii_case(k.as_bytes())) {
            found = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(first: i32, last: i32, finders: &'static [KeyFinder]) -> CommandSpec {
        CommandSpec {
            id: 0,
            name: "x",
            fullname: "x",
            arity: -2,
            flags: Flags::MOVABLE_KEYS,
            acl: AclCategories(0),
            first_key: first,
            last_key: last,
            key_step: 1,
            key_finders: finders,
            group: "generic",
            summary: "",
            since: "",
            complexity: "",
            handler: None,
            subcommands: &[],
        }
    }

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    #[test]
    fn keyword_half_is_xread_shape() {
        const STREAMS: &[KeyFinder] = &[KeyFinder::Keyword { keyword: "STREAMS", from: 1, keys: KeywordKeys::Half }];
        let xread = spec(0, 0, STREAMS);
        assert_eq!(xread.key_positions(&argv("XREAD COUNT 2 STREAMS a b c 0 0 0")), Some(vec![4, 5, 6]));
        assert_eq!(xread.key_positions(&argv("XREAD streams a b 0")), Some(vec![2]));
        assert_eq!(xread.key_positions(&argv("XREAD STREAMS a")), None);
        assert_eq!(xread.key_positions(&argv("XREAD COUNT 2")), Some(vec![]));
    }

    #[test]
    fn numkeys_after_a_range() {
        const NUMKEYS: &[KeyFinder] = &[KeyFinder::NumKeys { at: 2, step: 1 }];
        let store = spec(1, 1, NUMKEYS);
        assert_eq!(store.key_positions(&argv("ZUNIONSTORE d 2 a b WEIGHTS 1 2")), Some(vec![1, 3, 4]));
        for bad in ["ZUNIONSTORE d 0 a", "ZUNIONSTORE d -1 a", "ZUNIONSTORE d x a", "ZUNIONSTORE d 3 a b"] {
            assert_eq!(store.key_positions(&argv(bad)), None, "{bad}");
        }
    }

    #[test]
    fn sort_store_skips_option_arguments() {
        const SORT: &[KeyFinder] = &[KeyFinder::SortStore];
        let sort = spec(1, 1, SORT);
        assert_eq!(sort.key_positions(&argv("SORT k LIMIT 0 1 STORE d")), Some(vec![1, 6]));
        assert_eq!(sort.key_positions(&argv("SORT k GET STORE")), Some(vec![1]));
        assert_eq!(sort.key_positions(&argv("SORT k STORE a STORE b")), Some(vec![1, 5]));
        assert_eq!(sort.key_positions(&argv("SORT k LIMIT 0 STORE x")), Some(vec![1]));
    }
}
