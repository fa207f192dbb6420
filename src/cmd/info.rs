//! INFO: every section and field of Redis 7.0's INFO, with Velo's values. Fields about machinery Velo does
//! not have (forks, RDB/AOF rewrites, replication links, Lua, defragmentation, jemalloc) report the value
//! Redis reports when that machinery is idle; docs/compat.md lists them. Velo's own figures are in the
//! extra `# Velo` section.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use bytes::Bytes;

use super::spec::CommandSpec;
use super::table::COMMANDS;
use super::{Args, CmdError, Ctx};
use crate::resp::Reply;
use crate::server::metrics::rss_bytes;

/// Sections in output order, and whether `INFO` / `INFO default` includes them.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
    ("velo", true),
];

/// ```text
/// INFO [section [section ...]]
/// ```
pub fn info(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let requested: Vec<String> = args.rest().iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect();
    let wanted = |name: &str, default: bool| {
        if requested.is_empty() {
            return default;
        }
        requested.iter().any(|r| {
            r == name
                || (r == "default" && default)
                || r == "all"
                || r == "everything"
                || (r == "module_list" && name == "modules")
        })
    };
    let mut text = String::new();
    for (name, default) in SECTIONS {
        if wanted(name, *default) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            section(ctx, name, &mut text)?;
        }
    }
    Ok(Reply::Verbatim("txt", Bytes::from(text)))
}

/// Redis's `bytesToHuman`.
fn human(n: u64) -> String {
    let n = n as f64;
    let units = ["K", "M", "G", "T", "P", "E"];
    if n < 1024.0 {
        return format!("{n}B");
    }
    let mut value = n / 1024.0;
    for unit in units {
        if value < 1024.0 {
            return format!("{value:.2}{unit}");
        }
        value /= 1024.0;
    }
    format!("{:.2}E", value * 1024.0)
}

/// User and system CPU seconds of the process (`who` RUSAGE_SELF) or the calling thread.
fn cpu_seconds(who: libc::c_int) -> (f64, f64) {
    // SAFETY: getrusage writes into the struct we pass and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return (0.0, 0.0);
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (seconds(usage.ru_stime), seconds(usage.ru_utime))
}

fn uname() -> String {
    // SAFETY: uname fills the struct we pass.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut name) } != 0 {
        return std::env::consts::OS.to_string();
    }
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    format!("{} {} {}", field(&name.sysname), field(&name.release), field(&name.machine))
}

fn total_system_memory() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// 40 random hex characters, fixed for the life of the process (`run_id`, `master_replid`).
fn random_id(cell: &'static OnceLock<String>) -> &'static str {
    cell.get_or_init(|| {
        use std::io::Read as _;
        let mut bytes = [0u8; 20];
        if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
            // No urandom: the clock and pid still tell runs apart.
            let seed = unix_micros() ^ u128::from(std::process::id());
            bytes[..16].copy_from_slice(&seed.to_le_bytes());
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
}

fn unix_micros() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros()
}

fn line(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = write!(out, "{name}:{value}\r\n");
}

fn section(ctx: &Ctx<'_>, name: &str, out: &mut String) -> Result<(), CmdError> {
    let server = ctx.server;
    let stats = &server.stats;
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    let params = server.lock_config().params.clone();
    match name {
        "server" => {
            static RUN_ID: OnceLock<String> = OnceLock::new();
            let uptime = server.started.elapsed().as_secs();
            let config_file = server.lock_config().config_file.clone();
            out.push_str("# Server\r\n");
            line(out, "redis_version", super::connection::REDIS_VERSION);
            line(out, "redis_git_sha1", "00000000");
            line(out, "redis_git_dirty", 0);
            line(out, "redis_build_id", "0");
            line(out, "redis_mode", "standalone");
            line(out, "os", uname());
            line(out, "arch_bits", usize::BITS);
            line(out, "monotonic_clock", "POSIX clock_gettime");
            line(out, "multiplexing_api", if cfg!(target_os = "linux") { "epoll" } else { "kqueue" });
            line(out, "atomicvar_api", "c11-builtin");
            line(out, "gcc_version", "0.0.0");
            line(out, "process_id", std::process::id());
            line(out, "process_supervised", "no");
            line(out, "run_id", random_id(&RUN_ID));
            line(out, "tcp_port", server.port.load(Ordering::Relaxed));
            line(out, "server_time_usec", unix_micros());
            line(out, "uptime_in_seconds", uptime);
            line(out, "uptime_in_days", uptime / 86400);
            line(out, "hz", params.int("hz"));
            line(out, "configured_hz", params.int("hz"));
            line(out, "lru_clock", (unix_micros() / 1_000_000) as u64 & ((1 << 24) - 1));
            let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
            line(out, "executable", exe);
            line(out, "config_file", config_file.map(|p| p.display().to_string()).unwrap_or_default());
            line(out, "io_threads_active", 0);
        }
        "clients" => {
            let clients = server.clients.all();
            out.push_str("# Clients\r\n");
            line(out, "connected_clients", clients.len());
            line(out, "cluster_connections", 0);
            line(out, "maxclients", server.maxclients());
            line(out, "client_recent_max_input_buffer", 0);
            line(out, "client_recent_max_output_buffer", 0);
            line(out, "blocked_clients", server.blocking.blocked_clients() + server.intro.pause.held());
            line(out, "tracking_clients", server.intro.tracking.clients());
            line(out, "clients_in_timeout_table", server.blocking.blocked_clients());
        }
        "memory" => {
            let rss = rss_bytes();
            let peak = server.metrics.peak_rss.fetch_max(rss, Ordering::Relaxed).max(rss);
            let startup = server.metrics.startup_rss.min(rss);
            let dataset = rss - startup;
            let maxmemory = params.uint("maxmemory");
            let total = total_system_memory();
            let percent = |part: u64, whole: u64| if whole > 0 { part as f64 * 100.0 / whole as f64 } else { 0.0 };
            out.push_str("# Memory\r\n");
            line(out, "used_memory", rss);
            line(out, "used_memory_human", human(rss));
            line(out, "used_memory_rss", rss);
            line(out, "used_memory_rss_human", human(rss));
            line(out, "used_memory_peak", peak);
            line(out, "used_memory_peak_human", human(peak));
            line(out, "used_memory_peak_perc", format!("{:.2}%", percent(rss, peak)));
            line(out, "used_memory_overhead", startup);
            line(out, "used_memory_startup", startup);
            line(out, "used_memory_dataset", dataset);
            line(out, "used_memory_dataset_perc", format!("{:.2}%", percent(dataset, rss)));
            line(out, "allocator_allocated", rss);
            line(out, "allocator_active", rss);
            line(out, "allocator_resident", rss);
            line(out, "total_system_memory", total);
            line(out, "total_system_memory_human", human(total));
            for (field, value) in ctx.server.scripting.memory_fields(human) {
                line(out, field, value);
            }
            line(out, "maxmemory", maxmemory);
            line(out, "maxmemory_human", human(maxmemory));
            line(out, "maxmemory_policy", params.get("maxmemory-policy").unwrap_or_default());
            for (field, value) in [
                ("allocator_frag_ratio", "1.00"),
                ("allocator_frag_bytes", "0"),
                ("allocator_rss_ratio", "1.00"),
                ("allocator_rss_bytes", "0"),
                ("rss_overhead_ratio", "1.00"),
                ("rss_overhead_bytes", "0"),
                ("mem_fragmentation_ratio", "1.00"),
                ("mem_fragmentation_bytes", "0"),
                ("mem_not_counted_for_evict", "0"),
                ("mem_replication_backlog", "0"),
                ("mem_total_replication_buffers", "0"),
                ("mem_clients_slaves", "0"),
                ("mem_clients_normal", "0"),
                ("mem_cluster_links", "0"),
                ("mem_aof_buffer", "0"),
                ("mem_allocator", "mimalloc"),
                ("active_defrag_running", "0"),
                ("lazyfree_pending_objects", "0"),
                ("lazyfreed_objects", "0"),
            ] {
                line(out, field, value);
            }
        }
        "persistence" => {
            let engine = server.engine.stats();
            let poisoned = engine.slots.iter().any(|s| s.poisoned);
            let aof = params.flag("appendonly");
            out.push_str("# Persistence\r\n");
            let (cow, processed) = server.rdb.current();
            for field in ["loading", "async_loading"] {
                line(out, field, 0);
            }
            line(out, "current_cow_peak", cow);
            line(out, "current_cow_size", cow);
            line(out, "current_cow_size_age", 0);
            line(out, "current_fork_perc", "0.00");
            line(out, "current_save_keys_processed", processed);
            line(out, "current_save_keys_total", 0);
            out.push_str(&server.rdb.info(server, server.lastsave.load(Ordering::Relaxed)));
            line(out, "aof_enabled", u8::from(aof));
            line(out, "aof_rewrite_in_progress", 0);
            line(out, "aof_rewrite_scheduled", 0);
            line(out, "aof_last_rewrite_time_sec", -1);
            line(out, "aof_current_rewrite_time_sec", -1);
            line(out, "aof_last_bgrewrite_status", "ok");
            line(out, "aof_rewrites", 0);
            line(out, "aof_rewrites_consecutive_failures", 0);
            line(out, "aof_last_write_status", if poisoned { "err" } else { "ok" });
            line(out, "aof_last_cow_size", 0);
            line(out, "module_fork_in_progress", 0);
            line(out, "module_fork_last_cow_size", 0);
            if aof {
                // The WAL is Velo's append-only file.
                line(out, "aof_current_size", engine.total(|s| s.wal_bytes));
                line(out, "aof_base_size", 0);
                for field in ["aof_pending_rewrite", "aof_buffer_length", "aof_pending_bio_fsync", "aof_delayed_fsync"]
                {
                    line(out, field, 0);
                }
            }
        }
        "stats" => {
            let [ops, input, output] = server.metrics.instantaneous();
            out.push_str("# Stats\r\n");
            line(out, "total_connections_received", load(&stats.connections));
            line(out, "total_commands_processed", load(&stats.commands));
            line(out, "instantaneous_ops_per_sec", ops.round() as u64);
            line(out, "total_net_input_bytes", load(&stats.net_input));
            line(out, "total_net_output_bytes", load(&stats.net_output));
            line(out, "total_net_repl_input_bytes", 0);
            line(out, "total_net_repl_output_bytes", 0);
            line(out, "instantaneous_input_kbps", format!("{:.2}", input / 1024.0));
            line(out, "instantaneous_output_kbps", format!("{:.2}", output / 1024.0));
            line(out, "instantaneous_input_repl_kbps", "0.00");
            line(out, "instantaneous_output_repl_kbps", "0.00");
            line(out, "rejected_connections", load(&stats.rejected_connections));
            for field in ["sync_full", "sync_partial_ok", "sync_partial_err"] {
                line(out, field, 0);
            }
            line(out, "expired_keys", load(&stats.expired_keys));
            line(out, "expired_stale_perc", "0.00");
            for field in [
                "expired_time_cap_reached_count",
                "expire_cycle_cpu_milliseconds",
                "evicted_keys",
                "evicted_clients",
                "total_eviction_exceeded_time",
                "current_eviction_exceeded_time",
            ] {
                line(out, field, 0);
            }
            line(out, "keyspace_hits", load(&stats.keyspace_hits));
            line(out, "keyspace_misses", load(&stats.keyspace_misses));
            line(out, "pubsub_channels", server.pubsub.channels(None).len());
            line(out, "pubsub_patterns", server.pubsub.numpat());
            for field in [
                "pubsubshard_channels",
                "latest_fork_usec",
                "total_forks",
                "migrate_cached_sockets",
                "slave_expires_tracked_keys",
                "active_defrag_hits",
                "active_defrag_misses",
                "active_defrag_key_hits",
                "active_defrag_key_misses",
                "total_active_defrag_time",
                "current_active_defrag_time",
            ] {
                line(out, field, 0);
            }
            let tracking = &server.intro.tracking;
            line(out, "tracking_total_keys", tracking.total_keys());
            line(out, "tracking_total_items", tracking.total_items());
            line(out, "tracking_total_prefixes", tracking.total_prefixes());
            line(out, "unexpected_error_replies", 0);
            line(out, "total_error_replies", load(&stats.error_replies));
            line(out, "dump_payload_sanitizations", 0);
            line(out, "total_reads_processed", load(&server.metrics.reads));
            line(out, "total_writes_processed", load(&server.metrics.writes));
            for field in [
                "io_threaded_reads_processed",
                "io_threaded_writes_processed",
                "reply_buffer_shrinks",
                "reply_buffer_expands",
            ] {
                line(out, field, 0);
            }
        }
        "replication" => {
            static REPLID: OnceLock<String> = OnceLock::new();
            out.push_str("# Replication\r\n");
            line(out, "role", "master");
            line(out, "connected_slaves", 0);
            line(out, "master_failover_state", "no-failover");
            line(out, "master_replid", random_id(&REPLID));
            line(out, "master_replid2", "0".repeat(40));
            line(out, "master_repl_offset", super::replication::MASTER_REPL_OFFSET);
            line(out, "second_repl_offset", -1);
            line(out, "repl_backlog_active", 0);
            line(out, "repl_backlog_size", params.uint("repl-backlog-size"));
            line(out, "repl_backlog_first_byte_offset", 0);
            line(out, "repl_backlog_histlen", 0);
        }
        "cpu" => {
            let (sys, user) = cpu_seconds(libc::RUSAGE_SELF);
            let (children_sys, children_user) = cpu_seconds(libc::RUSAGE_CHILDREN);
            #[cfg(target_os = "linux")]
            let (thread_sys, thread_user) = cpu_seconds(libc::RUSAGE_THREAD);
            #[cfg(not(target_os = "linux"))]
            let (thread_sys, thread_user) = (sys, user);
            out.push_str("# CPU\r\n");
            line(out, "used_cpu_sys", format!("{sys:.6}"));
            line(out, "used_cpu_user", format!("{user:.6}"));
            line(out, "used_cpu_sys_children", format!("{children_sys:.6}"));
            line(out, "used_cpu_user_children", format!("{children_user:.6}"));
            line(out, "used_cpu_sys_main_thread", format!("{thread_sys:.6}"));
            line(out, "used_cpu_user_main_thread", format!("{thread_user:.6}"));
        }
        "modules" => out.push_str("# Modules\r\n"),
        "errorstats" => {
            out.push_str("# Errorstats\r\n");
            for (prefix, count) in stats.errors_by_prefix.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = write!(out, "errorstat_{prefix}:count={count}\r\n");
            }
        }
        "cluster" => out.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            for logical in 0..server.databases() {
                let physical = server.dbmap.physical(logical);
                let keys = ctx.engine.dbsize(physical)?;
                if keys > 0 {
                    let (expires, avg_ttl) = ctx.engine.expiry_estimate(physical);
                    let _ = write!(out, "db{logical}:keys={keys},expires={},avg_ttl={avg_ttl}\r\n", expires.min(keys));
                }
            }
        }
        "commandstats" => {
            out.push_str("# Commandstats\r\n");
            for spec in all_specs() {
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
        "latencystats" => {
            out.push_str("# Latencystats\r\n");
            if !params.flag("latency-tracking") {
                return Ok(());
            }
            let percentiles: Vec<f64> = params
                .get("latency-tracking-info-percentiles")
                .unwrap_or_default()
                .split(' ')
                .filter_map(|p| p.parse().ok())
                .collect();
            for spec in all_specs() {
                let Some(histogram) = server.metrics.histogram(spec.id) else { continue };
                let parts: Vec<String> = percentiles
                    .iter()
                    .filter_map(|p| histogram.percentile(*p).map(|ns| format!("p{}={:.3}", p, ns as f64 / 1000.0)))
                    .collect();
                if !parts.is_empty() {
                    let _ = write!(out, "latency_percentiles_usec_{}:{}\r\n", spec.fullname, parts.join(","));
                }
            }
        }
        "velo" => velo_section(ctx, out)?,
        _ => {}
    }
    Ok(())
}

fn all_specs() -> Vec<&'static CommandSpec> {
    let mut all = Vec::new();
    for spec in COMMANDS.iter() {
        all.push(spec);
        all.extend(spec.subcommands.iter());
    }
    all
}

fn velo_section(ctx: &Ctx<'_>, out: &mut String) -> Result<(), CmdError> {
    let server = ctx.server;
    let engine = server.engine.stats();
    let config = server.lock_config().clone();
    // Parts of split collections, deleted ones included until the sweeper frees them.
    let mut parts = 0;
    for logical in 0..server.databases() {
        parts += ctx.engine.dbsize(crate::elements::part_db(server.dbmap.physical(logical)))?;
    }
    out.push_str("# Velo\r\n");
    line(out, "velo_version", env!("CARGO_PKG_VERSION"));
    line(out, "fsync", config.fsync);
    line(out, "wal_bytes", engine.total(|s| s.wal_bytes));
    line(out, "checkpoints", engine.total(|s| s.checkpoints));
    line(out, "slots", engine.slots.len());
    line(out, "collection_parts", parts);
    line(out, "snapshot_last_pause_us", format!("{:.3}", server.rdb.last_pause_us()));
    for s in &engine.slots {
        let ratio = if s.raw_value_bytes > 0 { s.stored_value_bytes as f64 / s.raw_value_bytes as f64 } else { 1.0 };
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
    crate::server::dictionaries::info(ctx.engine, out);
    Ok(())
}
