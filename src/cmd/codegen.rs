//! The generator of [`super::table`] from `commands/*.json` (`docs/commands.md` is [`super::reference`]'s).
//!
//! `tests/it/codegen.rs` runs it and compares the output with the committed `src/cmd/table.rs`
//! (`VELO_BLESS=1 cargo test codegen` rewrites the file). Validation happens here, once, so that a bad
//! JSON file fails the build's test rather than a client.
//!
//! # The JSON fields
//! - `name`, `container` (for a subcommand), `summary`, `complexity`, `group`, `since` (Redis version),
//!   `velo_since`, `arity` (Redis's: N exactly, -N at least; the name counts), `function` (handler path
//!   under `cmd::`), `command_flags`, `acl_categories` (type categories; the rest derive from the flags),
//!   `velo_notes` (intentional differences from Redis).
//! - `key_specs`: where the keys are, a list of finders applied in order (COMMAND GETKEYS lists keys in
//!   that order). Each is one of:
//!   - `{"first": 1, "last": -1, "step": 1}`: a fixed range (last negative counts from the end). It is
//!     Redis's legacy first/last/step triple of COMMAND INFO (0 0 0 without it). Several ranges (PFMERGE's
//!     destination `1..1`, then sources `2..-1`) are spanned by the triple but each must fit the
//!     arguments, as in Redis (`PFMERGE dest` alone has no valid source range).
//!   - `{"numkeys": 2}`: argument 2 holds the number of keys, which follow it (ZUNION, ZUNIONSTORE after
//!     its destination range, LMPOP, SINTERCARD, EVAL-like commands); optional `"step"` (default 1).
//!   - `{"keyword": "STORE", "from": 6}`: the argument after the first `STORE` at or after position 6
//!     (GEORADIUS STORE/STOREDIST); `"keys": "half"` instead takes the first half of all the arguments
//!     after the keyword (XREAD's `STREAMS key ... id ...`).
//!   - `{"parser": "sort"}`: a finder that needs the command's own option parsing (SORT's STORE, which may
//!     come anywhere but not as an argument of LIMIT, BY or GET).
//!
//!   Any finder but the range needs the `MOVABLE_KEYS` flag, as the keys then move with the arguments.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use super::spec::{AclCategories, Flags};

/// The groups a command may belong to, in the order `docs/commands.md` lists them.
pub const GROUPS: &[&str] = &[
    "connection",
    "string",
    "bitmap",
    "generic",
    "server",
    "transactions",
    "scripting",
    "pubsub",
    "hyperloglog",
    "bloom",
    "hash",
    "set",
    "list",
    "sorted_set",
    "geo",
    "stream",
];

/// One command file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandFile {
    /// Upper-case name.
    pub name: String,
    /// Upper-case container name, for a subcommand.
    #[serde(default)]
    pub container: Option<String>,
    /// One-line summary.
    pub summary: String,
    /// Time complexity.
    pub complexity: String,
    /// Redis group.
    pub group: String,
    /// Redis version that introduced the command.
    pub since: String,
    /// Velo version that introduced it.
    pub velo_since: String,
    /// Redis arity.
    pub arity: i32,
    /// Handler path under `cmd::`.
    #[serde(default)]
    pub function: Option<String>,
    /// Flag names (`WRITE`, `FAST`, ...).
    pub command_flags: Vec<String>,
    /// Explicit ACL categories (type categories; the implicit ones derive from the flags).
    pub acl_categories: Vec<String>,
    /// Key positions.
    #[serde(default)]
    pub key_specs: Vec<KeySpec>,
    /// Intentional differences from Redis (collected into docs/compat.md).
    #[serde(default)]
    pub velo_notes: Option<String>,
}

/// One key finder of a command file (see the module documentation for the JSON forms).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum KeySpec {
    /// A fixed range: Redis's legacy first/last/step triple.
    Range {
        /// First key position.
        first: i32,
        /// Last key position; negative counts from the end.
        last: i32,
        /// Step between keys.
        step: i32,
    },
    /// The count of keys at position `numkeys`, the keys right after it.
    NumKeys {
        /// Position of the count.
        numkeys: usize,
        /// Step between keys (1 when absent).
        #[serde(default)]
        step: Option<usize>,
    },
    /// The key (or keys) after a keyword.
    Keyword {
        /// The keyword, upper case.
        keyword: String,
        /// Where the search for the keyword starts.
        from: usize,
        /// `"half"` for XREAD's shape; one key when absent.
        #[serde(default)]
        keys: Option<String>,
    },
    /// A command-specific parser (`sort`, `migrate`).
    Parser {
        /// The parser's name.
        parser: String,
    },
}

/// Reads and validates every `*.json` file in `dir`.
pub fn load(dir: &Path) -> Result<Vec<CommandFile>, String> {
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: CommandFile = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        validate(&file).map_err(|e| format!("{}: {e}", path.display()))?;
        files.push(file);
    }
    for file in &files {
        if let Some(container) = &file.container {
            if !files.iter().any(|f| f.container.is_none() && &f.name == container) {
                return Err(format!("{}: unknown container {container}", file.name));
            }
        } else if file.function.is_none() && !files.iter().any(|f| f.container.as_ref() == Some(&file.name)) {
            return Err(format!("{}: a container without subcommands", file.name));
        }
    }
    Ok(files)
}

fn validate(file: &CommandFile) -> Result<(), String> {
    if file.arity == 0 {
        return Err("arity must not be 0".into());
    }
    if !GROUPS.contains(&file.group.as_str()) {
        return Err(format!("unknown group {}", file.group));
    }
    for flag in &file.command_flags {
        Flags::from_name(flag).ok_or_else(|| format!("unknown flag {flag}"))?;
    }
    for category in &file.acl_categories {
        AclCategories::from_name(category).ok_or_else(|| format!("unknown ACL category {category}"))?;
    }
    let flags = file.command_flags.iter().filter_map(|f| Flags::from_name(f)).fold(Flags(0), Flags::union);
    if flags.contains(Flags::WRITE) && flags.contains(Flags::READONLY) {
        return Err("both WRITE and READONLY".into());
    }
    if file.container.is_some() && file.function.is_none() {
        return Err("a subcommand needs a function".into());
    }
    let mut ranges = 0;
    for spec in &file.key_specs {
        match spec {
            KeySpec::Range { first, last, step } => {
                ranges += 1;
                if *first <= 0 || *step <= 0 {
                    return Err("key spec first and step must be positive".into());
                }
                if file.arity > 0 && (*first >= file.arity || *last >= file.arity) {
                    return Err("key position beyond the fixed arity".into());
                }
            }
            KeySpec::NumKeys { numkeys, step } => {
                if *numkeys == 0 || *step == Some(0) {
                    return Err("numkeys position and step must be positive".into());
                }
            }
            KeySpec::Keyword { keyword, from, keys } => {
                if keyword.is_empty() || *keyword != keyword.to_ascii_uppercase() || *from == 0 {
                    return Err("a keyword spec needs an upper-case keyword and a positive from".into());
                }
                if keys.as_deref().is_some_and(|k| k != "half") {
                    return Err("keyword keys must be \"half\" or absent".into());
                }
            }
            KeySpec::Parser { parser } => {
                if parser != "sort" && parser != "migrate" {
                    return Err(format!("unknown key parser {parser}"));
                }
            }
        }
        if !matches!(spec, KeySpec::Range { .. }) && !flags.contains(Flags::MOVABLE_KEYS) {
            return Err("a movable key spec needs the MOVABLE_KEYS flag".into());
        }
    }
    let range_steps: Vec<i32> = file
        .key_specs
        .iter()
        .filter_map(|k| match k {
            KeySpec::Range { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    if ranges > 1 && range_steps.iter().any(|s| *s != range_steps[0]) {
        return Err("several range key specs need the same step".into());
    }
    Ok(())
}

fn flags_of(file: &CommandFile) -> Flags {
    file.command_flags.iter().filter_map(|f| Flags::from_name(f)).fold(Flags(0), Flags::union)
}

/// Explicit categories plus the implicit ones Redis derives from the flags (`setImplicitACLCategories`).
fn acl_of(file: &CommandFile) -> AclCategories {
    let flags = flags_of(file);
    let mut acl = file
        .acl_categories
        .iter()
        .filter_map(|c| AclCategories::from_name(c))
        .fold(AclCategories(0), AclCategories::union);
    if flags.contains(Flags::WRITE) {
        acl = acl.union(AclCategories::WRITE);
    }
    if flags.contains(Flags::READONLY) && !acl.contains(AclCategories::SCRIPTING) {
        acl = acl.union(AclCategories::READ);
    }
    if flags.contains(Flags::ADMIN) {
        acl = acl.union(AclCategories::ADMIN).union(AclCategories::DANGEROUS);
    }
    if flags.contains(Flags::PUBSUB) {
        acl = acl.union(AclCategories::PUBSUB);
    }
    if flags.contains(Flags::BLOCKING) {
        acl = acl.union(AclCategories::BLOCKING);
    }
    if flags.contains(Flags::FAST) {
        acl = acl.union(AclCategories::FAST);
    }
    if !acl.contains(AclCategories::FAST) {
        acl = acl.union(AclCategories::SLOW);
    }
    acl
}

fn set_expr(type_name: &str, names: Vec<&'static str>) -> String {
    if names.is_empty() {
        return format!("{type_name}(0)");
    }
    let mut expr = format!("{type_name}::{}", names[0]);
    for name in &names[1..] {
        expr = format!("{expr}.union({type_name}::{name})");
    }
    expr
}

fn entry(out: &mut String, file: &CommandFile, id: usize, subs: Option<&str>, indent: &str) {
    let name = file.name.to_ascii_lowercase();
    let fullname = match &file.container {
        Some(container) => format!("{}|{name}", container.to_ascii_lowercase()),
        None => name.clone(),
    };
    let flags = flags_of(file);
    let flag_names = Flags::ALL.iter().filter(|(f, _, _)| flags.contains(*f)).map(|(_, n, _)| *n).collect();
    let acl = acl_of(file);
    let acl_names = AclCategories::ALL.iter().filter(|(c, _, _)| acl.contains(*c)).map(|(_, n, _)| *n).collect();
    // The legacy triple spans every range (Redis merges PFMERGE's destination and sources into 1 -1 1).
    let ranges: Vec<(i32, i32, i32)> = file
        .key_specs
        .iter()
        .filter_map(|k| match k {
            KeySpec::Range { first, last, step } => Some((*first, *last, *step)),
            _ => None,
        })
        .collect();
    let (first, last, step) = match (ranges.first(), ranges.last()) {
        (Some(head), Some(tail)) => (head.0, tail.1, head.2),
        _ => (0, 0, 0),
    };
    let finders: Vec<String> = file
        .key_specs
        .iter()
        .filter_map(|k| match k {
            // One range is the legacy triple itself; several are kept apart, as each must fit the arguments.
            KeySpec::Range { first, last, step } if ranges.len() > 1 => {
                Some(format!("KeyFinder::Range {{ first: {first}, last: {last}, step: {step} }}"))
            }
            KeySpec::Range { .. } => None,
            KeySpec::NumKeys { numkeys, step } => {
                Some(format!("KeyFinder::NumKeys {{ at: {numkeys}, step: {} }}", step.unwrap_or(1)))
            }
            KeySpec::Keyword { keyword, from, keys } => {
                let keys = if keys.is_some() { "Half" } else { "One" };
                Some(format!("KeyFinder::Keyword {{ keyword: {keyword:?}, from: {from}, keys: KeywordKeys::{keys} }}"))
            }
            KeySpec::Parser { parser } if parser == "migrate" => Some("KeyFinder::Migrate".into()),
            KeySpec::Parser { .. } => Some("KeyFinder::SortStore".into()),
        })
        .collect();
    let handler = match &file.function {
        Some(function) => format!("Some(super::{function})"),
        None => "None".into(),
    };
    let subs = match subs {
        Some(array) => format!("&{array}"),
        None => "&[]".into(),
    };
    let _ = writeln!(out, "{indent}CommandSpec {{");
    let i = format!("{indent}    ");
    let _ = writeln!(out, "{i}id: {id},");
    let _ = writeln!(out, "{i}name: {name:?},");
    let _ = writeln!(out, "{i}fullname: {fullname:?},");
    let _ = writeln!(out, "{i}arity: {},", file.arity);
    let _ = writeln!(out, "{i}flags: {},", set_expr("Flags", flag_names));
    let _ = writeln!(out, "{i}acl: {},", set_expr("AclCategories", acl_names));
    let _ = writeln!(out, "{i}first_key: {first},");
    let _ = writeln!(out, "{i}last_key: {last},");
    let _ = writeln!(out, "{i}key_step: {step},");
    let _ = writeln!(out, "{i}key_finders: &[{}],", finders.join(", "));
    let _ = writeln!(out, "{i}group: {:?},", file.group);
    let _ = writeln!(out, "{i}summary: {:?},", file.summary);
    let _ = writeln!(out, "{i}since: {:?},", file.since);
    let _ = writeln!(out, "{i}complexity: {:?},", file.complexity);
    let _ = writeln!(out, "{i}handler: {handler},");
    let _ = writeln!(out, "{i}subcommands: {subs},");
    let _ = writeln!(out, "{indent}}},");
}

/// Generates the text of `src/cmd/table.rs` from the command files.
pub fn generate(files: &[CommandFile]) -> String {
    let mut top: Vec<&CommandFile> = files.iter().filter(|f| f.container.is_none()).collect();
    top.sort_by(|a, b| a.name.cmp(&b.name));
    let mut subs: BTreeMap<&str, Vec<&CommandFile>> = BTreeMap::new();
    for file in files {
        if let Some(container) = &file.container {
            subs.entry(container.as_str()).or_default().push(file);
        }
    }
    subs.values_mut().for_each(|v| v.sort_by(|a, b| a.name.cmp(&b.name)));
    let mut out = String::new();
    out.push_str("//! The command table. @generated by `velo::cmd::codegen` from `commands/*.json`: do not edit;\n");
    out.push_str("//! edit the JSON files, then run `VELO_BLESS=1 cargo test codegen`.\n\n");
    let mut imports = vec!["AclCategories", "CommandSpec", "Flags"];
    let needs_finder = |f: &CommandFile| {
        f.key_specs.iter().filter(|k| matches!(k, KeySpec::Range { .. })).count() > 1
            || f.key_specs.iter().any(|k| !matches!(k, KeySpec::Range { .. }))
    };
    if files.iter().any(needs_finder) {
        imports.push("KeyFinder");
    }
    if files.iter().any(|f| f.key_specs.iter().any(|k| matches!(k, KeySpec::Keyword { .. }))) {
        imports.push("KeywordKeys");
    }
    let _ = writeln!(out, "use super::spec::{{{}}};\n", imports.join(", "));
    let mut id = 0;
    let mut sub_arrays = String::new();
    let mut top_entries = String::new();
    for file in &top {
        let array = subs.get(file.name.as_str()).map(|list| {
            let const_name = format!("{}_SUBCOMMANDS", file.name.replace('-', "_"));
            let _ = writeln!(sub_arrays, "static {const_name}: [CommandSpec; {}] = [", list.len());
            for sub in list {
                entry(&mut sub_arrays, sub, id, None, "    ");
                id += 1;
            }
            sub_arrays.push_str("];\n\n");
            const_name
        });
        entry(&mut top_entries, file, id, array.as_deref(), "    ");
        id += 1;
    }
    let _ = writeln!(out, "/// Number of commands and subcommands (ids are `0..COMMAND_COUNT`).");
    let _ = writeln!(out, "pub const COMMAND_COUNT: usize = {id};\n");
    out.push_str(&sub_arrays);
    let _ = writeln!(out, "/// Every top-level command, sorted by name.");
    let _ = writeln!(out, "pub static COMMANDS: [CommandSpec; {}] = [", top.len());
    out.push_str(&top_entries);
    out.push_str("];\n\n");
    out.push_str("/// Finds a top-level command by name, ASCII-case-insensitively.\n");
    out.push_str("pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {\n");
    // The buffer fits the longest name; a longer request is no command.
    let longest = top.iter().map(|f| f.name.len()).max().unwrap_or(1);
    let _ = writeln!(out, "    let mut lower = [0u8; {longest}];");
    out.push_str("    let lower = lower.get_mut(..name.len())?;\n");
    out.push_str("    lower.copy_from_slice(name);\n");
    out.push_str("    lower.make_ascii_lowercase();\n");
    out.push_str("    let index = match &*lower {\n");
    for (index, file) in top.iter().enumerate() {
        let _ = writeln!(out, "        b{:?} => {index},", file.name.to_ascii_lowercase());
    }
    out.push_str("        _ => return None,\n    };\n    COMMANDS.get(index)\n}\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_command_is_found_by_name() {
        for spec in super::super::table::COMMANDS.iter() {
            let found = super::super::table::lookup(spec.name.to_ascii_uppercase().as_bytes());
            assert!(found.is_some_and(|f| f.name == spec.name), "{}", spec.name);
        }
    }
}
