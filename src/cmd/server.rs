//! The server group: INFO, CONFIG, FLUSHDB/FLUSHALL, TIME, LASTSAVE, SHUTDOWN and COMMAND.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::spec::CommandSpec;
use super::table::{lookup, COMMANDS};
use super::{Args, CmdError, Ctx};
use crate::resp::Reply;

/// ```text
/// FLUSHDB [ASYNC | SYNC]
/// ```
pub fn flushdb(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    flush_mode(args)?;
    let logical = ctx.client.db;
    let touched = super::transactions::existing_watched_keys(ctx, logical, logical)?;
    let db = ctx.db();
    ctx.engine.flush_db(db)?;
    // The parts of the database's split collections go with it (the sweeper would free them anyway).
    ctx.engine.flush_db(crate::elements::part_db(db))?;
    ctx.engine.flush_db(crate::elements::owner_db(db))?;
    super::transactions::touch_logical(ctx, logical, &touched);
    ctx.server.intro.tracking.invalidate_all(&ctx.server.clients);
    ctx.server.blocking.signal_existing(ctx.server, logical);
    Ok(Reply::Ok)
}

/// ```text
/// FLUSHALL [ASYNC | SYNC]
/// ```
pub fn flushall(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    flush_mode(args)?;
    let mut touched = Vec::new();
    for db in 0..ctx.server.databases() {
        touched.push((db, super::transactions::existing_watched_keys(ctx, db, db)?));
    }
    ctx.engine.flush_all()?;
    for (db, keys) in touched {
        super::transactions::touch_logical(ctx, db, &keys);
        ctx.server.blocking.signal_existing(ctx.server, db);
    }
    ctx.server.intro.tracking.invalidate_all(&ctx.server.clients);
    ctx.server.intro.tracking.forget_all_keys();
    Ok(Reply::Ok)
}

fn flush_mode(args: &mut Args) -> Result<(), CmdError> {
    if args.remaining() > 1 || (!args.is_empty() && !args.eat("ASYNC") && !args.eat("SYNC")) {
        return Err(CmdError::Syntax);
    }
    Ok(())
}

/// ```text
/// TIME
/// ```
pub fn time(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ok(Reply::Array(vec![Reply::bulk(now.as_secs().to_string()), Reply::bulk(now.subsec_micros().to_string())]))
}

/// ```text
/// LASTSAVE
/// ```
pub fn lastsave(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::Int(ctx.server.lastsave.load(Ordering::Relaxed) as i64))
}

/// ```text
/// LOLWUT [VERSION version]
/// ```
///
/// Redis 7.0 answers every version but 5 and 6 (whose art Velo does not draw) with its version line.
pub fn lolwut(_ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    if args.remaining() >= 2 && args.peek().is_some_and(|a| a.eq_ignore_ascii_case(b"version")) {
        args.next_bytes()?;
        args.next_i64()?;
    }
    let line = format!("Redis ver. {}\n", super::connection::REDIS_VERSION);
    Ok(Reply::Verbatim("txt", line.into()))
}

/// ```text
/// SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]
/// ```
pub fn shutdown(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let mut abort = false;
    while !args.is_empty() {
        match args.next_upper()?.as_str() {
            "NOSAVE" | "SAVE" | "NOW" | "FORCE" => {}
            "ABORT" => abort = true,
            _ => return Err(CmdError::Syntax),
        }
    }
    if abort {
        return Err(CmdError::err("No shutdown in progress."));
    }
    // Every policy makes the WAL durable on the way out; SAVE and NOSAVE differ only for RDB snapshots.
    ctx.engine.sync()?;
    tracing::info!(client = ctx.client.id(), "SHUTDOWN requested");
    ctx.server.begin_shutdown();
    ctx.client.close = true;
    Ok(Reply::None)
}

/// ```text
/// CONFIG GET parameter [parameter ...]
/// ```
pub fn config_get(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    super::config::get(ctx, args)
}

/// ```text
/// CONFIG SET parameter value [parameter value ...]
/// ```
pub fn config_set(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    super::config::set(ctx, args)
}

/// ```text
/// CONFIG RESETSTAT
/// ```
pub fn config_resetstat(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    ctx.server.stats.reset();
    ctx.server.metrics.reset();
    ctx.server.intro.reset_stats();
    Ok(Reply::Ok)
}

/// ```text
/// CONFIG REWRITE
/// ```
pub fn config_rewrite(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    super::config::rewrite(ctx, args)
}

/// ```text
/// CONFIG HELP
/// ```
pub fn config_help(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(super::connection::help(&[
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Prints this help.",
    ]))
}

/// ```text
/// INFO [section [section ...]]
/// ```
pub fn info(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    super::info::info(ctx, args)
}

/// One COMMAND INFO entry.
fn command_info_entry(spec: &CommandSpec) -> Reply {
    let simple_set = |texts: Vec<&'static str>| Reply::Set(texts.into_iter().map(Reply::simple).collect());
    let own_ranges = spec.key_finders.iter().any(|f| matches!(f, super::spec::KeyFinder::Range { .. }));
    let mut key_specs = if spec.first_key > 0 && !own_ranges {
        let flags = if spec.has(super::spec::Flags::WRITE) { vec!["RW", "update"] } else { vec!["RO", "access"] };
        let last = if spec.last_key < 0 { spec.last_key } else { spec.last_key - spec.first_key };
        vec![Reply::Map(vec![
            (Reply::bulk("flags"), simple_set(flags)),
            (
                Reply::bulk("begin_search"),
                Reply::Map(vec![
                    (Reply::bulk("type"), Reply::bulk("index")),
                    (Reply::bulk("spec"), Reply::Map(vec![(Reply::bulk("index"), Reply::Int(spec.first_key.into()))])),
                ]),
            ),
            (
                Reply::bulk("find_keys"),
                Reply::Map(vec![
                    (Reply::bulk("type"), Reply::bulk("range")),
                    (
                        Reply::bulk("spec"),
                        Reply::Map(vec![
                            (Reply::bulk("lastkey"), Reply::Int(last.into())),
                            (Reply::bulk("keystep"), Reply::Int(spec.key_step.into())),
                            (Reply::bulk("limit"), Reply::Int(0)),
                        ]),
                    ),
                ]),
            ),
        ])]
    } else {
        Vec::new()
    };
    key_specs.extend(spec.key_finders.iter().map(|finder| finder_key_spec(spec, finder)));
    Reply::Array(vec![
        Reply::bulk(spec.fullname),
        Reply::Int(spec.arity.into()),
        simple_set(spec.flags.texts()),
        Reply::Int(spec.first_key.into()),
        Reply::Int(spec.last_key.into()),
        Reply::Int(spec.key_step.into()),
        simple_set(spec.acl.texts()),
        Reply::Array(Vec::new()),
        // Redis 7.0's own specs where it has the command; Velo's finders for its own commands.
        super::keyspecs::info_reply(spec.fullname).unwrap_or(Reply::Array(key_specs)),
        Reply::Array(spec.subcommands.iter().map(command_info_entry).collect()),
    ])
}

/// The COMMAND INFO key spec of a key finder, in Redis's shape (`range`, `keynum`, `keyword`, `unknown`).
fn finder_key_spec(spec: &CommandSpec, finder: &super::spec::KeyFinder) -> Reply {
    use super::spec::{Flags, KeyFinder, KeywordKeys};
    let map =
        |pairs: Vec<(&'static str, Reply)>| Reply::Map(pairs.into_iter().map(|(k, v)| (Reply::bulk(k), v)).collect());
    let simple_set = |texts: &[&'static str]| Reply::Set(texts.iter().map(|t| Reply::simple(*t)).collect());
    let write = spec.has(Flags::WRITE);
    let (flags, begin, find): (&[&'static str], Reply, Reply) = match *finder {
        KeyFinder::Range { first, last, step } => (
            // The first range of a command with several is its destination.
            if write && first == spec.first_key { &["RW", "update"] } else { &["RO", "access"] },
            map(vec![("type", Reply::bulk("index")), ("spec", map(vec![("index", Reply::Int(first.into()))]))]),
            map(vec![
                ("type", Reply::bulk("range")),
                (
                    "spec",
                    map(vec![
                        ("lastkey", Reply::Int(if last < 0 { last } else { last - first }.into())),
                        ("keystep", Reply::Int(step.into())),
                        ("limit", Reply::Int(0)),
                    ]),
                ),
            ]),
        ),
        KeyFinder::NumKeys { at, step } => (
            // Sources of a STORE command are only read; the keys of LMPOP/ZMPOP are popped from.
            if write && spec.first_key <= 0 { &["RW", "access", "delete"] } else { &["RO", "access"] },
            map(vec![("type", Reply::bulk("index")), ("spec", map(vec![("index", Reply::Int(at as i64))]))]),
            map(vec![
                ("type", Reply::bulk("keynum")),
                (
                    "spec",
                    map(vec![
                        ("keynumidx", Reply::Int(0)),
                        ("firstkey", Reply::Int(1)),
                        ("keystep", Reply::Int(step as i64)),
                    ]),
                ),
            ]),
        ),
        KeyFinder::Keyword { keyword, from, keys } => {
            let (last, limit) = if keys == KeywordKeys::Half { (-1, 2) } else { (0, 0) };
            (
                if write { &["OW", "update"] } else { &["RO", "access"] },
                map(vec![
                    ("type", Reply::bulk("keyword")),
                    ("spec", map(vec![("keyword", Reply::bulk(keyword)), ("startfrom", Reply::Int(from as i64))])),
                ]),
                map(vec![
                    ("type", Reply::bulk("range")),
                    (
                        "spec",
                        map(vec![
                            ("lastkey", Reply::Int(last)),
                            ("keystep", Reply::Int(1)),
                            ("limit", Reply::Int(limit)),
                        ]),
                    ),
                ]),
            )
        }
        KeyFinder::SortStore | KeyFinder::Migrate => (
            &["OW", "update"],
            map(vec![("type", Reply::bulk("unknown")), ("spec", map(Vec::new()))]),
            map(vec![("type", Reply::bulk("unknown")), ("spec", map(Vec::new()))]),
        ),
    };
    map(vec![("flags", simple_set(flags)), ("begin_search", begin), ("find_keys", find)])
}

fn command_docs_entry(spec: &CommandSpec) -> Reply {
    let mut fields = vec![
        (Reply::bulk("summary"), Reply::bulk(spec.summary)),
        (Reply::bulk("since"), Reply::bulk(spec.since)),
        (Reply::bulk("group"), Reply::bulk(spec.group)),
        (Reply::bulk("complexity"), Reply::bulk(spec.complexity)),
    ];
    if !spec.subcommands.is_empty() {
        let subs = spec.subcommands.iter().map(|s| (Reply::bulk(s.fullname), command_docs_entry(s))).collect();
        fields.push((Reply::bulk("subcommands"), Reply::Map(subs)));
    }
    Reply::Map(fields)
}

/// Finds a command or `container|sub` by full name.
fn find(name: &[u8]) -> Option<&'static CommandSpec> {
    let text = String::from_utf8_lossy(name).to_ascii_lowercase();
    match text.split_once('|') {
        Some((container, sub)) => lookup(container.as_bytes())?.subcommand(sub.as_bytes()),
        None => lookup(name),
    }
}

/// ```text
/// COMMAND
/// ```
pub fn command(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::Array(COMMANDS.iter().map(command_info_entry).collect()))
}

/// ```text
/// COMMAND COUNT
/// ```
pub fn command_count(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::Int(COMMANDS.len() as i64))
}

/// ```text
/// COMMAND INFO [command-name [command-name ...]]
/// ```
pub fn command_info(_ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let names = args.rest();
    if names.is_empty() {
        return Ok(Reply::Array(COMMANDS.iter().map(command_info_entry).collect()));
    }
    Ok(Reply::Array(names.iter().map(|name| find(name).map_or(Reply::Nil, command_info_entry)).collect()))
}

/// ```text
/// COMMAND DOCS [command-name [command-name ...]]
/// ```
pub fn command_docs(_ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let names = args.rest();
    let specs: Vec<&CommandSpec> =
        if names.is_empty() { COMMANDS.iter().collect() } else { names.iter().filter_map(|n| find(n)).collect() };
    Ok(Reply::Map(specs.into_iter().map(|s| (Reply::bulk(s.fullname), command_docs_entry(s))).collect()))
}

/// ```text
/// COMMAND LIST [FILTERBY MODULE module-name | ACLCAT category | PATTERN pattern]
/// ```
pub fn command_list(_ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let mut filter: Option<(String, Bytes)> = None;
    if !args.is_empty() {
        if !args.eat("FILTERBY") || args.remaining() != 2 {
            return Err(CmdError::Syntax);
        }
        let kind = args.next_upper()?;
        if !["MODULE", "ACLCAT", "PATTERN"].contains(&kind.as_str()) {
            return Err(CmdError::Syntax);
        }
        filter = Some((kind, args.next_bytes()?));
    }
    let mut names = Vec::new();
    for spec in COMMANDS.iter() {
        for s in std::iter::once(spec).chain(spec.subcommands.iter()) {
            let keep = match &filter {
                None => true,
                Some((kind, value)) if kind == "ACLCAT" => {
                    let wanted = format!("@{}", String::from_utf8_lossy(value).to_ascii_lowercase());
                    s.acl.texts().contains(&wanted.as_str())
                }
                Some((kind, value)) if kind == "PATTERN" => crate::glob::matches(value, s.fullname.as_bytes(), true),
                Some(_) => false,
            };
            if keep {
                names.push(Reply::bulk(s.fullname));
            }
        }
    }
    Ok(Reply::Array(names))
}

/// The command (or subcommand) COMMAND GETKEYS and GETKEYSANDFLAGS look into, after Redis's checks in its
/// order: known at all, has keys, then arity (the key finders come after). The shard channels of
/// SSUBSCRIBE/SUNSUBSCRIBE/SPUBLISH are in key positions but flagged `not_key`.
fn keyed_command(argv: &[Bytes]) -> Result<&'static CommandSpec, CmdError> {
    let invalid = || CmdError::err("Invalid command specified");
    let container = lookup(&argv[0]).ok_or_else(invalid)?;
    let spec = match (container.subcommands.is_empty(), argv.get(1)) {
        (false, Some(sub)) => container.subcommand(sub).ok_or_else(invalid)?,
        _ => container,
    };
    if (spec.first_key <= 0 && spec.key_finders.is_empty()) || spec.has(crate::cmd::spec::Flags::PUBSUB) {
        return Err(CmdError::err("The command has no key arguments"));
    }
    if !spec.arity_ok(argv.len()) {
        return Err(CmdError::err("Invalid number of arguments specified for command"));
    }
    Ok(spec)
}

/// ```text
/// COMMAND GETKEYS command [arg [arg ...]]
/// ```
pub fn command_getkeys(_ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let argv = args.rest();
    let spec = keyed_command(&argv)?;
    match spec.key_positions(&argv) {
        Some(positions) if !positions.is_empty() => {
            Ok(Reply::Array(positions.into_iter().map(|i| Reply::Bulk(argv[i].clone())).collect()))
        }
        // EVAL and FCALL may name no key at all: an empty list, not an error (Redis's CMD_NO_MANDATORY_KEYS).
        _ if spec.has(crate::cmd::spec::Flags::NO_MANDATORY_KEYS) => Ok(Reply::Array(Vec::new())),
        _ => Err(CmdError::err("Invalid arguments specified for command")),
    }
}

/// ```text
/// COMMAND GETKEYSANDFLAGS command [arg [arg ...]]
/// ```
pub fn command_getkeysandflags(_ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let argv = args.rest();
    let spec = keyed_command(&argv)?;
    match super::keyspecs::keys_and_flags(spec, &argv) {
        Some(keys) if !keys.is_empty() => Ok(super::keyspecs::keys_and_flags_reply(&argv, keys)),
        _ if spec.has(crate::cmd::spec::Flags::NO_MANDATORY_KEYS) => Ok(Reply::Array(Vec::new())),
        _ => Err(CmdError::err("Invalid arguments specified for command")),
    }
}

/// ```text
/// COMMAND HELP
/// ```
pub fn command_help(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(super::connection::help(&[
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
        "HELP",
        "    Prints this help.",
    ]))
}
