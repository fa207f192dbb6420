//! The server group: INFO, CONFIG, FLUSHDB/FLUSHALL, TIME, LASTSAVE, DEBUG, SHUTDOWN and COMMAND.

use std::fmt::Write as _;
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
    }
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
/// DEBUG SLEEP seconds
/// ```
pub fn debug(_ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let sub = args.next_upper()?;
    match sub.as_str() {
        "SLEEP" if args.remaining() == 1 => {
            let seconds = args.next_f64()?;
            if seconds > 0.0 {
                std::thread::sleep(std::time::Duration::from_secs_f64(seconds.min(3600.0)));
            }
            Ok(Reply::Ok)
        }
        _ => Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            sub.to_ascii_lowercase()
        ))),
    }
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

/// CONFIG parameters: (name, setting in `Config`, settable at run time).
const PARAMETERS: &[(&str, &str, bool)] = &[
    ("port", "port", false),
    ("bind", "bind", false),
    ("dir", "dir", false),
    ("databases", "databases", false),
    ("maxclients", "maxclients", true),
    ("appendfsync", "fsync", false),
    ("fsync", "fsync", false),
    ("slots", "slots", false),
    ("page-cache", "page-cache", false),
    ("value-cache", "value-cache", false),
    ("loglevel", "log-level", false),
    ("log-level", "log-level", false),
    ("appendonly", "", false),
    ("save", "", false),
    ("dbfilename", "dbfilename", false),
    ("proto-max-bulk-len", "", true),
];

fn parameter_value(ctx: &Ctx<'_>, name: &str, setting: &str) -> String {
    match name {
        "appendonly" => "yes".into(),
        "save" => String::new(),
        "proto-max-bulk-len" => ctx.server.proto_max_bulk_len().to_string(),
        "loglevel" => match ctx.server.lock_config().log_level.as_str() {
            "error" | "warn" => "warning".into(),
            "info" => "notice".into(),
            "debug" => "verbose".into(),
            _ => "debug".into(),
        },
        _ => ctx.server.lock_config().get(setting).unwrap_or_default(),
    }
}

/// ```text
/// CONFIG GET parameter [parameter ...]
/// ```
pub fn config_get(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let patterns = args.rest();
    let mut pairs = Vec::new();
    for (name, setting, _) in PARAMETERS {
        if patterns.iter().any(|p| crate::glob::matches(p, name.as_bytes(), true)) {
            pairs.push((Reply::bulk(*name), Reply::bulk(parameter_value(ctx, name, setting))));
        }
    }
    Ok(Reply::Map(pairs))
}

/// ```text
/// CONFIG SET parameter value [parameter value ...]
/// ```
pub fn config_set(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let rest = args.rest();
    if !rest.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity("config|set"));
    }
    let mut updates = Vec::new();
    for pair in rest.chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let Some((_, _, settable)) = PARAMETERS.iter().find(|(n, _, _)| *n == name) else {
            return Err(CmdError::err(format!("Unknown option or number of arguments for CONFIG SET - '{name}'")));
        };
        if name == "dbfilename" {
            // Protected in Redis 7.0 (enable-protected-configs no): set it with `--dbfilename`.
            return Err(CmdError::err(
                "CONFIG SET failed (possibly related to argument 'dbfilename') - can't set protected config",
            ));
        }
        if !settable {
            return Err(CmdError::err(format!(
                "CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
            )));
        }
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        let number = crate::config::parse_size(&value).filter(|&n| n >= 1).ok_or_else(|| {
            CmdError::err(format!("CONFIG SET failed (possibly related to argument '{name}') - argument couldn't be parsed into an integer"))
        })?;
        updates.push((name, number));
    }
    for (name, number) in updates {
        match name.as_str() {
            "maxclients" => ctx.server.set_maxclients(number),
            _ => ctx.server.set_proto_max_bulk_len(number),
        }
    }
    Ok(Reply::Ok)
}

/// ```text
/// CONFIG RESETSTAT
/// ```
pub fn config_resetstat(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    ctx.server.stats.reset();
    Ok(Reply::Ok)
}

/// ```text
/// CONFIG REWRITE
/// ```
pub fn config_rewrite(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let config = ctx.server.lock_config().clone();
    let Some(path) = &config.config_file else {
        return Err(CmdError::err("The server is running without a config file"));
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, config.to_file_text())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| CmdError::err(format!("Rewriting config file: {e}")))?;
    Ok(Reply::Ok)
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

/// Default INFO sections, in order.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
    "velo",
];

/// ```text
/// INFO [section [section ...]]
/// ```
pub fn info(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let requested: Vec<String> = args.rest().iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect();
    let mut sections: Vec<&str> = Vec::new();
    if requested.is_empty() || requested.iter().any(|s| s == "default") {
        sections.extend(DEFAULT_SECTIONS);
    }
    if requested.iter().any(|s| s == "all" || s == "everything") {
        sections.extend(DEFAULT_SECTIONS);
        sections.push("commandstats");
    }
    for name in &requested {
        if let Some(known) = DEFAULT_SECTIONS.iter().chain(&["commandstats"]).find(|k| *k == name) {
            sections.push(known);
        }
    }
    let mut seen = Vec::new();
    sections.retain(|s| {
        let new = !seen.contains(s);
        seen.push(*s);
        new
    });
    let mut text = String::new();
    for section in sections {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        info_section(ctx, section, &mut text)?;
    }
    Ok(Reply::Verbatim("txt", Bytes::from(text)))
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn cpu_seconds() -> (f64, f64) {
    // SAFETY: getrusage writes into the struct we pass and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (0.0, 0.0);
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (seconds(usage.ru_stime), seconds(usage.ru_utime))
}

fn info_section(ctx: &Ctx<'_>, section: &str, out: &mut String) -> Result<(), CmdError> {
    let server = ctx.server;
    let stats = &server.stats;
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    match section {
        "server" => {
            let uptime = server.started.elapsed().as_secs();
            let config = server.lock_config().clone();
            let _ = write!(
                out,
                "# Server\r\nredis_version:{}\r\nvelo_version:{}\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\n\
                 multiplexing_api:tokio\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n\
                 executable:velo\r\nconfig_file:{}\r\n",
                super::connection::REDIS_VERSION,
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                server.port.load(Ordering::Relaxed),
                uptime / 86400,
                config.config_file.map(|p| p.display().to_string()).unwrap_or_default(),
            );
        }
        "clients" => {
            let clients = server.clients.all();
            let pubsub =
                clients.iter().filter(|c| c.subs.load(Ordering::Relaxed) + c.psubs.load(Ordering::Relaxed) > 0).count();
            let _ = write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\npubsub_clients:{pubsub}\r\nwatching_clients:{}\r\n\
                 watched_keys:{}\r\nblocked_clients:{}\r\n",
                clients.len(),
                server.maxclients(),
                clients.iter().filter(|c| c.multi.load(Ordering::Relaxed) >= 0).count(),
                server.watches.watched_keys(),
                server.blocking.blocked_clients(),
            );
        }
        "memory" => {
            let rss = rss_bytes();
            let _ = write!(out, "# Memory\r\nused_memory:{rss}\r\nused_memory_rss:{rss}\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n");
        }
        "persistence" => {
            let engine = server.engine.stats();
            let poisoned = engine.slots.iter().any(|s| s.poisoned);
            let config = server.lock_config().clone();
            let _ = write!(
                out,
                "# Persistence\r\nloading:0\r\n{}aof_enabled:1\r\n\
                 aof_last_write_status:{}\r\nvelo_fsync:{}\r\nvelo_wal_bytes:{}\r\nvelo_checkpoints:{}\r\n",
                server.rdb.info(server.lastsave.load(Ordering::Relaxed)),
                if poisoned { "err" } else { "ok" },
                config.fsync,
                engine.total(|s| s.wal_bytes),
                engine.total(|s| s.checkpoints),
            );
        }
        "stats" => {
            let _ = write!(
                out,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\n\
                 total_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nkeyspace_hits:{}\r\n\
                 keyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\ntotal_error_replies:{}\r\n",
                load(&stats.connections),
                load(&stats.commands),
                load(&stats.net_input),
                load(&stats.net_output),
                load(&stats.rejected_connections),
                load(&stats.expired_keys),
                load(&stats.keyspace_hits),
                load(&stats.keyspace_misses),
                server.pubsub.channels(None).len(),
                server.pubsub.numpat(),
                load(&stats.error_replies),
            );
        }
        "replication" => {
            out.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n");
        }
        "modules" => out.push_str("# Modules\r\n"),
        "errorstats" => {
            out.push_str("# Errorstats\r\n");
            for (prefix, count) in stats.errors_by_prefix.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = write!(out, "errorstat_{prefix}:count={count}\r\n");
            }
        }
        "cluster" => out.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
        "cpu" => {
            let (sys, user) = cpu_seconds();
            let _ = write!(out, "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\n");
        }
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            for logical in 0..server.databases() {
                let keys = ctx.engine.dbsize(server.dbmap.physical(logical))?;
                if keys > 0 {
                    let _ = write!(out, "db{logical}:keys={keys}\r\n");
                }
            }
        }
        "commandstats" => {
            out.push_str("# Commandstats\r\n");
            let mut all: Vec<&CommandSpec> = Vec::new();
            for spec in COMMANDS.iter() {
                all.push(spec);
                all.extend(spec.subcommands.iter());
            }
            for spec in all {
                let counters = &stats.commands_by_id[spec.id];
                let calls = load(&counters.calls);
                let rejected = load(&counters.rejected);
                if calls + rejected == 0 {
                    continue;
                }
                let usec = load(&counters.usec);
                let per_call = if calls > 0 { usec as f64 / calls as f64 } else { 0.0 };
                let _ = write!(
                    out,
                    "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={}\r\n",
                    spec.fullname,
                    load(&counters.failed)
                );
            }
        }
        "velo" => {
            let engine = server.engine.stats();
            // Parts of split collections, deleted ones included until the sweeper frees them.
            let mut parts = 0;
            for logical in 0..server.databases() {
                parts += ctx.engine.dbsize(crate::elements::part_db(server.dbmap.physical(logical)))?;
            }
            let _ = write!(out, "# Velo\r\nslots:{}\r\ncollection_parts:{parts}\r\n", engine.slots.len());
            for s in &engine.slots {
                let ratio =
                    if s.raw_value_bytes > 0 { s.stored_value_bytes as f64 / s.raw_value_bytes as f64 } else { 1.0 };
                let _ = write!(
                    out,
                    "slot{}:keys={},wal_bytes={},wal_entries={},last_seq={},checkpoint_seq={},checkpoints={},buckets={},\
                     overflow_pages={},bucket_used_bytes={},chunk_files={},chunk_bytes={},chunk_live_bytes={},big_values={},\
                     big_value_bytes={},raw_value_bytes={},stored_value_bytes={},compression_ratio={ratio:.3},\
                     page_cache_hits={},page_cache_misses={},page_cache_bytes={},value_cache_hits={},value_cache_misses={},\
                     value_cache_bytes={},poisoned={}\r\n",
                    s.slot,
                    s.keys,
                    s.wal_bytes,
                    s.wal_entries,
                    s.last_seq,
                    s.checkpoint_seq,
                    s.checkpoints,
                    s.buckets,
                    s.overflow_pages,
                    s.bucket_used_bytes,
                    s.chunk_files,
                    s.chunk_bytes,
                    s.chunk_live_bytes,
                    s.big_values,
                    s.big_value_bytes,
                    s.raw_value_bytes,
                    s.stored_value_bytes,
                    s.page_cache_hits,
                    s.page_cache_misses,
                    s.page_cache_bytes,
                    s.value_cache_hits,
                    s.value_cache_misses,
                    s.value_cache_bytes,
                    u8::from(s.poisoned),
                );
            }
        }
        _ => {}
    }
    Ok(())
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
        Reply::Array(key_specs),
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
        KeyFinder::SortStore => (
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

/// ```text
/// COMMAND GETKEYS command [arg [arg ...]]
/// ```
pub fn command_getkeys(_ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let argv = args.rest();
    let invalid = || CmdError::err("Invalid command specified");
    let container = lookup(&argv[0]).ok_or_else(invalid)?;
    let spec = match (container.subcommands.is_empty(), argv.get(1)) {
        (false, Some(sub)) => container.subcommand(sub).ok_or_else(invalid)?,
        _ => container,
    };
    // Redis's order of checks: keys at all, then arity, then the key finders.
    if spec.first_key <= 0 && spec.key_finders.is_empty() {
        return Err(CmdError::err("The command has no key arguments"));
    }
    if !spec.arity_ok(argv.len()) {
        return Err(CmdError::err("Invalid number of arguments specified for command"));
    }
    match spec.key_positions(&argv) {
        Some(positions) if !positions.is_empty() => {
            Ok(Reply::Array(positions.into_iter().map(|i| Reply::Bulk(argv[i].clone())).collect()))
        }
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
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "HELP",
        "    Prints this help.",
    ]))
}
