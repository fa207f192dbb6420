//! Redis 7.0's command list as the reference for Velo's, and the generator of `docs/commands.md`.
//!
//! `commands/redis/redis-7.0.json` is every command and subcommand of Redis 7.0 (name, group, summary,
//! since), written by `scripts/redis-commands` from a real redis-server's `COMMAND DOCS`.
//! `commands/redis/status.json` says, for each one Velo does not have, whether it is `planned` (and as part
//! of what) or `n/a` (and why), and lists Velo's extensions (commands absent from Redis 7.0). A
//! container's status covers its subcommands unless one has its own entry.
//!
//! [`check`] refuses a Velo command missing from the reference that is not a listed extension, a Redis
//! command with no status, a status for a command Velo has, and stale entries; `tests/it/codegen.rs` runs
//! it through [`generate_docs`], so a table and its documentation cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use super::codegen::{CommandFile, GROUPS};

/// The reference file: Redis's commands.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// The redis-server version it was taken from.
    pub redis_version: String,
    /// Every top-level command, sorted by name.
    pub commands: Vec<RefCommand>,
}

/// One command (or subcommand) of the reference.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefCommand {
    /// Upper-case name (a subcommand's own name).
    pub name: String,
    /// Redis's one-line summary.
    pub summary: String,
    /// Redis's group (`sorted-set`, `cluster`, ...).
    pub group: String,
    /// The Redis version that introduced it.
    pub since: String,
    /// Subcommands (empty for a subcommand).
    #[serde(default)]
    pub subcommands: Vec<RefCommand>,
}

/// The status file: what Velo does about the commands it lacks, and its extensions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusFile {
    /// Full name (`SCRIPT DEBUG`) → status of a Redis command Velo does not have.
    pub missing: BTreeMap<String, Missing>,
    /// Full name → why Velo has a command Redis 7.0 does not.
    pub extensions: BTreeMap<String, String>,
}

/// The status of a Redis command Velo does not have.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Missing {
    /// `planned` or `n/a`.
    pub status: String,
    /// What it is planned with, or why it does not apply.
    pub note: String,
}

/// Reads the reference and the status file from `dir` (`commands/redis`).
pub fn load(dir: &Path) -> Result<(Reference, StatusFile), String> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let reference: Reference =
        serde_json::from_str(&read("redis-7.0.json")?).map_err(|e| format!("redis-7.0.json: {e}"))?;
    let status: StatusFile = serde_json::from_str(&read("status.json")?).map_err(|e| format!("status.json: {e}"))?;
    Ok((reference, status))
}

fn full_name(file: &CommandFile) -> String {
    match &file.container {
        Some(container) => format!("{container} {}", file.name),
        None => file.name.clone(),
    }
}

/// Every reference entry by full name, with its container's name for a subcommand.
fn reference_names(reference: &Reference) -> BTreeMap<String, (&RefCommand, Option<&str>)> {
    let mut names = BTreeMap::new();
    for command in &reference.commands {
        names.insert(command.name.clone(), (command, None));
        for sub in &command.subcommands {
            names.insert(format!("{} {}", command.name, sub.name), (sub, Some(command.name.as_str())));
        }
    }
    names
}

/// The status entry of a Redis command Velo lacks: its own, else its container's.
fn missing_status<'a>(status: &'a StatusFile, name: &str, container: Option<&str>) -> Option<&'a Missing> {
    status.missing.get(name).or_else(|| container.and_then(|c| status.missing.get(c)))
}

/// Checks Velo's command files against the reference and the status file; the error lists every problem.
pub fn check(files: &[CommandFile], reference: &Reference, status: &StatusFile) -> Result<(), String> {
    let velo: BTreeSet<String> = files.iter().map(full_name).collect();
    let redis = reference_names(reference);
    let mut problems = Vec::new();
    for name in &velo {
        if !redis.contains_key(name) && !status.extensions.contains_key(name) {
            problems.push(format!("{name}: a Velo command absent from Redis 7.0 and not listed as an extension"));
        }
    }
    for (name, (_, container)) in &redis {
        if velo.contains(name) {
            if status.missing.contains_key(name) {
                problems.push(format!("{name}: marked planned/n/a in status.json but Velo has it"));
            }
            if status.extensions.contains_key(name) {
                problems.push(format!("{name}: listed as an extension but Redis 7.0 has it"));
            }
        } else if missing_status(status, name, *container).is_none() {
            problems.push(format!("{name}: a Redis 7.0 command with no status in status.json"));
        }
    }
    for (name, missing) in &status.missing {
        if !redis.contains_key(name) {
            problems.push(format!("{name}: in status.json but not a Redis 7.0 command"));
        }
        if missing.status != "planned" && missing.status != "n/a" {
            problems.push(format!("{name}: status must be \"planned\" or \"n/a\", not {:?}", missing.status));
        }
        if missing.note.trim().is_empty() {
            problems.push(format!("{name}: a status needs a note (what it is planned with, or why n/a)"));
        }
    }
    for name in status.extensions.keys() {
        if !velo.contains(name) {
            problems.push(format!("{name}: listed as an extension but Velo has no such command"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Velo's group name for a Redis group.
fn group_of(redis_group: &str) -> String {
    redis_group.replace('-', "_")
}

fn cell(text: &str) -> String {
    text.trim().replace('|', "\\|").replace('\n', " ")
}

/// Generates `docs/commands.md`: every command and subcommand of Redis 7.0 and every Velo extension, by
/// group, with Velo's status and notes. Fails as [`check`] does.
pub fn generate_docs(files: &[CommandFile], reference: &Reference, status: &StatusFile) -> Result<String, String> {
    check(files, reference, status)?;
    let redis = reference_names(reference);
    // group → full name → (since, status, summary, notes)
    let mut groups: BTreeMap<String, BTreeMap<String, [String; 4]>> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for file in files {
        let name = full_name(file);
        let state = if redis.contains_key(&name) { "supported" } else { "extension" };
        *counts.entry(state).or_default() += 1;
        let mut notes = file.velo_notes.clone().unwrap_or_default();
        if let Some(why) = status.extensions.get(&name) {
            notes = format!("{why} {notes}");
        }
        let row = [file.since.clone(), state.to_string(), file.summary.clone(), notes];
        groups.entry(file.group.clone()).or_default().insert(name, row);
    }
    for (name, (command, container)) in &redis {
        if files.iter().any(|f| full_name(f) == *name) {
            continue;
        }
        let Some(missing) = missing_status(status, name, *container) else { continue };
        let state = if missing.status == "planned" { "planned" } else { "n/a" };
        *counts.entry(state).or_default() += 1;
        let note = match container {
            Some(container) if !status.missing.contains_key(name) => format!("As {container}."),
            _ => missing.note.clone(),
        };
        let row = [command.since.clone(), state.to_string(), command.summary.clone(), note];
        groups.entry(group_of(&command.group)).or_default().insert(name.clone(), row);
    }
    let mut out = String::new();
    out.push_str("# Commands\n\n");
    out.push_str("<!-- @generated by `velo::cmd::reference` from `commands/*.json` and `commands/redis/`: do not\n");
    out.push_str("     edit; run `VELO_BLESS=1 cargo test --test it codegen` after changing them. -->\n\n");
    let _ = writeln!(
        out,
        "Every command and subcommand of Redis {} (from its `COMMAND DOCS`, `commands/redis/redis-7.0.json`,\n\
         regenerated by `scripts/redis-commands`) and every command Velo adds, with Velo's status:\n",
        reference.redis_version
    );
    out.push_str("- **supported**: `velo serve` has it; differences from Redis are in the notes and in [compat.md](compat.md);\n");
    out.push_str("- **planned**: not yet, part of the future work the note names;\n");
    out.push_str("- **n/a**: not applicable to Velo, for the reason given;\n");
    out.push_str("- **extension**: not a Redis 7.0 command.\n\n");
    let _ = writeln!(
        out,
        "Totals: {} supported, {} planned, {} n/a, {} extensions.",
        counts.get("supported").unwrap_or(&0),
        counts.get("planned").unwrap_or(&0),
        counts.get("n/a").unwrap_or(&0),
        counts.get("extension").unwrap_or(&0)
    );
    let mut order: Vec<String> = GROUPS.iter().map(|g| g.to_string()).collect();
    order.extend(groups.keys().filter(|g| !GROUPS.contains(&g.as_str())).cloned());
    for group in order {
        let Some(rows) = groups.get(&group) else { continue };
        let _ = write!(
            out,
            "\n## {group}\n\n| command | since (Redis) | status | summary | notes |\n| --- | --- | --- | --- | --- |\n"
        );
        for (name, [since, state, summary, notes]) in rows {
            let _ = writeln!(out, "| {name} | {since} | {state} | {} | {} |", cell(summary), cell(notes));
        }
    }
    Ok(out)
}
