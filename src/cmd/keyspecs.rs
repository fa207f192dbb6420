//! Redis 7.0's key specifications: for each command, where its keys are and how it uses them (flags RO,
//! RW, OW, RM, access, update, insert, delete, not_key, incomplete, variable_flags).
//!
//! The data is `commands/redis/key-specs.json`, generated from Redis 7.0's command files by
//! `scripts/redis-key-specs` (the specs' structure and flags; Redis's free-text notes are left out), and
//! parsed once on first use. COMMAND GETKEYSANDFLAGS evaluates the specs as Redis's `getKeysUsingKeySpecs`
//! does, falling back, as Redis does, to the command's own key finder where the specs are incomplete,
//! unknown or have variable flags (SET, BITFIELD, SORT, MIGRATE, bad numkeys); COMMAND INFO lists the
//! specs. Velo's own key finders (`spec::KeyFinder`, from the command table) stay what dispatch and COMMAND
//! GETKEYS use.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::Value;

use super::{CommandSpec, Reply};

static DATA: &str = include_str!("../../commands/redis/key-specs.json");

/// Read-only access.
pub const RO: u32 = 1;
/// Read and write.
pub const RW: u32 = 1 << 1;
/// Overwrite.
pub const OW: u32 = 1 << 2;
/// Removal.
pub const RM: u32 = 1 << 3;
/// The value is read.
pub const ACCESS: u32 = 1 << 4;
/// The value is updated.
pub const UPDATE: u32 = 1 << 5;
/// Data is inserted.
pub const INSERT: u32 = 1 << 6;
/// Data is deleted.
pub const DELETE: u32 = 1 << 7;
/// Not a key (a shard channel).
pub const NOT_KEY: u32 = 1 << 8;
/// The spec may miss keys.
pub const INCOMPLETE: u32 = 1 << 9;
/// The flags depend on the arguments.
pub const VARIABLE_FLAGS: u32 = 1 << 10;

/// Flag names in Redis's order and spelling (`addReplyFlagsForKeyArgs`).
const NAMES: [(u32, &str, &str); 11] = [
    (RO, "RO", "RO"),
    (RW, "RW", "RW"),
    (OW, "OW", "OW"),
    (RM, "RM", "RM"),
    (ACCESS, "ACCESS", "access"),
    (UPDATE, "UPDATE", "update"),
    (INSERT, "INSERT", "insert"),
    (DELETE, "DELETE", "delete"),
    (NOT_KEY, "NOT_KEY", "not_key"),
    (INCOMPLETE, "INCOMPLETE", "incomplete"),
    (VARIABLE_FLAGS, "VARIABLE_FLAGS", "variable_flags"),
];

/// Where a spec's search begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// At a fixed argument.
    Index(i64),
    /// After the first `keyword` from `startfrom` (negative: searching backwards from the end).
    Keyword(String, i64),
    /// Only the command's own parsing knows.
    Unknown,
}

/// How the keys are found from where the search began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Find {
    /// `lastkey` (relative, or negative from the end), `step`, `limit` (a fraction of the rest).
    Range(i64, i64, i64),
    /// `keynumidx` (relative position of the count), `firstkey` (relative), `step`.
    KeyNum(i64, i64, i64),
    /// Only the command's own parsing knows.
    Unknown,
}

/// One key specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// Flag bits ([`RO`], [`RW`], ...).
    pub flags: u32,
    /// Where the search begins.
    pub begin: Begin,
    /// How keys are found.
    pub find: Find,
}

fn parse_spec(value: &Value) -> Option<KeySpec> {
    let mut flags = 0;
    for flag in value.get("flags")?.as_array()? {
        let flag = flag.as_str()?;
        flags |= NAMES.iter().find(|(_, name, _)| *name == flag)?.0;
    }
    let int = |v: &Value, name: &str| v.get(name).and_then(Value::as_i64);
    let begin = value.get("begin_search")?;
    let begin = if let Some(index) = begin.get("index") {
        Begin::Index(int(index, "pos")?)
    } else if let Some(keyword) = begin.get("keyword") {
        Begin::Keyword(keyword.get("keyword")?.as_str()?.to_string(), int(keyword, "startfrom")?)
    } else {
        Begin::Unknown
    };
    let find = value.get("find_keys")?;
    let find = if let Some(range) = find.get("range") {
        Find::Range(int(range, "lastkey")?, int(range, "step")?, int(range, "limit")?)
    } else if let Some(keynum) = find.get("keynum") {
        Find::KeyNum(int(keynum, "keynumidx")?, int(keynum, "firstkey")?, int(keynum, "step")?)
    } else {
        Find::Unknown
    };
    Some(KeySpec { flags, begin, find })
}

fn table() -> &'static HashMap<String, Vec<KeySpec>> {
    static TABLE: OnceLock<HashMap<String, Vec<KeySpec>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let all: HashMap<String, Vec<Value>> =
            serde_json::from_str(DATA).expect("commands/redis/key-specs.json parses");
        all.into_iter()
            .map(|(name, specs)| {
                let specs = specs.iter().map(|s| parse_spec(s).expect("key spec parses")).collect();
                (name, specs)
            })
            .collect()
    })
}

/// The key specs of a command by its full name (`lmove`, `object|encoding`); `None` for a command Redis
/// 7.0 does not have.
pub fn specs(fullname: &str) -> Option<&'static [KeySpec]> {
    table().get(fullname).map(Vec::as_slice)
}

/// Flag names as COMMAND INFO and GETKEYSANDFLAGS reply them.
pub fn flag_texts(flags: u32) -> Vec<&'static str> {
    NAMES.iter().filter(|(bit, _, _)| flags & bit != 0).map(|(_, _, text)| *text).collect()
}

fn flag_set(flags: u32) -> Reply {
    Reply::Set(flag_texts(flags).into_iter().map(Reply::simple).collect())
}

/// Redis's `getKeysUsingKeySpecs`: each key's position and its spec's flags; `None` where a spec cannot
/// say (unknown, incomplete, a bad count or a range past the arguments).
fn using_specs(specs: &[KeySpec], argv: &[Bytes]) -> Option<Vec<(usize, u32)>> {
    let argc = argv.len() as i64;
    let mut keys = Vec::new();
    for spec in specs {
        if spec.flags & NOT_KEY != 0 {
            continue;
        }
        let mut first = match &spec.begin {
            Begin::Index(pos) => *pos,
            Begin::Keyword(keyword, startfrom) => {
                let found = if *startfrom > 0 {
                    (*startfrom..argc - 1).find(|&i| argv[i as usize].eq_ignore_ascii_case(keyword.as_bytes()))
                } else {
                    (2..=argc + startfrom).rev().find(|&i| argv[i as usize].eq_ignore_ascii_case(keyword.as_bytes()))
                };
                match found {
                    Some(at) => at + 1,
                    // No keyword: this spec has no keys.
                    None => continue,
                }
            }
            Begin::Unknown => return None,
        };
        let (last, step) = match spec.find {
            Find::Range(lastkey, step, limit) => {
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (last, step)
            }
            Find::KeyNum(keynumidx, firstkey, step) => {
                let at = usize::try_from(first + keynumidx).ok().filter(|&at| at < argv.len())?;
                let count = strict_count(&argv[at])?;
                first += firstkey;
                (first + count - 1, step)
            }
            Find::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            keys.push((i as usize, spec.flags));
            i += step.max(1);
        }
        if spec.flags & INCOMPLETE != 0 {
            return None;
        }
    }
    Some(keys)
}

/// A key count as Redis's `string2ll` reads it (no sign, no leading zero), not negative.
fn strict_count(arg: &[u8]) -> Option<i64> {
    let digits = arg.iter().all(u8::is_ascii_digit) && !arg.is_empty() && (arg[0] != b'0' || arg.len() == 1);
    if !digits {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// The flags the commands with their own key finders give their keys in Redis (its getkeys procs); 0
/// for the others (ZUNIONSTORE, EVAL, XREAD, GEORADIUS, ... when their specs fail).
fn proc_flags(command: &str, argv: &[Bytes], position: usize) -> u32 {
    match command {
        "set" => {
            let get = argv.iter().skip(3).any(|arg| arg.eq_ignore_ascii_case(b"get"));
            if get {
                RW | ACCESS | UPDATE
            } else {
                OW | UPDATE
            }
        }
        "bitfield" => {
            let mut readonly = true;
            let mut i = 2;
            while i < argv.len() {
                let rest = argv.len() - i - 1;
                let arg = &argv[i];
                if arg.eq_ignore_ascii_case(b"get") && rest >= 2 {
                    i += 2;
                } else if (arg.eq_ignore_ascii_case(b"set") || arg.eq_ignore_ascii_case(b"incrby")) && rest >= 3 {
                    readonly = false;
                    break;
                } else if arg.eq_ignore_ascii_case(b"overflow") && rest >= 1 {
                    i += 1;
                } else {
                    readonly = false;
                    break;
                }
                i += 1;
            }
            if readonly {
                RO | ACCESS
            } else {
                RW | ACCESS | UPDATE
            }
        }
        "sort" if position != 1 => OW | UPDATE,
        "sort" | "sort_ro" => RO | ACCESS,
        "migrate" => RW | ACCESS | DELETE,
        _ => 0,
    }
}

/// COMMAND GETKEYSANDFLAGS: each key's position and flags (Redis's `getKeysFromCommandWithSpecs`): the key
/// specs when they can say and their flags are fixed, else the command's own key finder (the positions
/// COMMAND GETKEYS finds) with the flags Redis's finder gives. `None`: the arguments do not fit.
pub fn keys_and_flags(spec: &CommandSpec, argv: &[Bytes]) -> Option<Vec<(usize, u32)>> {
    let specs = specs(spec.fullname).unwrap_or(&[]);
    let has_keys = specs.iter().any(|s| s.flags & NOT_KEY == 0);
    let variable = specs.iter().any(|s| s.flags & VARIABLE_FLAGS != 0);
    if has_keys && !variable {
        if let Some(keys) = using_specs(specs, argv) {
            return Some(keys);
        }
    }
    let positions = spec.key_positions(argv)?;
    Some(positions.into_iter().map(|at| (at, proc_flags(spec.fullname, argv, at))).collect())
}

/// COMMAND INFO's key specs of a command Redis 7.0 has (a set of maps, as Redis replies them, without the
/// notes), or `None` for Velo's own commands.
pub fn info_reply(fullname: &str) -> Option<Reply> {
    let map =
        |pairs: Vec<(&'static str, Reply)>| Reply::Map(pairs.into_iter().map(|(k, v)| (Reply::bulk(k), v)).collect());
    let typed = |kind: &'static str, spec: Vec<(&'static str, Reply)>| {
        map(vec![("type", Reply::bulk(kind)), ("spec", map(spec))])
    };
    let specs = specs(fullname)?;
    Some(Reply::Set(
        specs
            .iter()
            .map(|spec| {
                let begin = match &spec.begin {
                    Begin::Index(pos) => typed("index", vec![("index", Reply::Int(*pos))]),
                    Begin::Keyword(keyword, startfrom) => typed(
                        "keyword",
                        vec![("keyword", Reply::bulk(keyword.clone())), ("startfrom", Reply::Int(*startfrom))],
                    ),
                    Begin::Unknown => typed("unknown", Vec::new()),
                };
                let find = match spec.find {
                    Find::Range(lastkey, step, limit) => typed(
                        "range",
                        vec![
                            ("lastkey", Reply::Int(lastkey)),
                            ("keystep", Reply::Int(step)),
                            ("limit", Reply::Int(limit)),
                        ],
                    ),
                    Find::KeyNum(keynumidx, firstkey, step) => typed(
                        "keynum",
                        vec![
                            ("keynumidx", Reply::Int(keynumidx)),
                            ("firstkey", Reply::Int(firstkey)),
                            ("keystep", Reply::Int(step)),
                        ],
                    ),
                    Find::Unknown => typed("unknown", Vec::new()),
                };
                map(vec![("flags", flag_set(spec.flags)), ("begin_search", begin), ("find_keys", find)])
            })
            .collect(),
    ))
}

/// The GETKEYSANDFLAGS reply: `[key, flags]` pairs.
pub fn keys_and_flags_reply(argv: &[Bytes], keys: Vec<(usize, u32)>) -> Reply {
    Reply::Array(
        keys.into_iter()
            .map(|(at, flags)| Reply::Array(vec![Reply::Bulk(argv[at].clone()), flag_set(flags)]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    #[test]
    fn every_spec_parses_and_velo_commands_with_keys_have_specs() {
        assert!(table().len() > 300);
        for spec in crate::cmd::table::COMMANDS.iter().flat_map(|c| std::iter::once(c).chain(c.subcommands.iter())) {
            // Velo's own commands (BF.*, Redis 7.2's) have no Redis 7.0 entry.
            if let Some(specs) = specs(spec.fullname) {
                assert!(spec.first_key <= 0 || !specs.is_empty(), "{} has no key specs", spec.fullname);
            }
        }
        assert_eq!(strict_count(b"05"), None);
        assert_eq!(strict_count(b"+5"), None);
        assert_eq!(strict_count(b"12"), Some(12));
    }

    #[test]
    fn specs_find_keys_as_redis() {
        let lmove = specs("lmove").unwrap();
        assert_eq!(
            using_specs(lmove, &argv("LMOVE a b LEFT RIGHT")),
            Some(vec![(1, RW | ACCESS | DELETE), (2, RW | INSERT)])
        );
        let zunion = specs("zunionstore").unwrap();
        let keys = using_specs(zunion, &argv("ZUNIONSTORE d 2 a b WEIGHTS 1 2")).unwrap();
        assert_eq!(keys.iter().map(|k| k.0).collect::<Vec<_>>(), vec![1, 3, 4]);
        assert_eq!(using_specs(zunion, &argv("ZUNIONSTORE d x a")), None);
        let xread = specs("xread").unwrap();
        let keys = using_specs(xread, &argv("XREAD COUNT 2 STREAMS a b 0 0")).unwrap();
        assert_eq!(keys.iter().map(|k| k.0).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(flag_texts(RW | ACCESS | DELETE), vec!["RW", "access", "delete"]);
    }
}
