//! The shape of a command-table entry ([`CommandSpec`]) and its flag sets.
//!
//! The entries themselves are generated from `commands/*.json` into [`super::table`].

use super::{CmdError, Ctx};
use crate::cmd::args::Args;
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
        /// May block the client (BLPOP, XREAD BLOCK).
        BLOCKING = 8, "blocking";
        /// Allowed while loading.
        LOADING = 9, "loading";
        /// Allowed on a stale replica.
        STALE = 10, "stale";
        /// Not shown in the slow log.
        SKIP_SLOWLOG = 12, "skip_slowlog";
        /// O(1) or O(log N), never blocks.
        FAST = 14, "fast";
        /// Allowed before authentication.
        NO_AUTH = 15, "no_auth";
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

    /// Positions of the keys in `argv` (the name is position 0), from the key spec.
    pub fn key_positions(&self, argc: usize) -> Vec<usize> {
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
