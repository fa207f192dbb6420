//! Introspection and client commands: CLIENT SETINFO/PAUSE/UNPAUSE/TRACKING/CACHING/GETREDIR/TRACKINGINFO,
//! WAIT, SLOWLOG, LATENCY, MEMORY and MONITOR. The state they read lives in `server::introspection`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::connection::help;
use super::{Args, CmdError, Ctx};
use crate::resp::Reply;
use crate::server::blocking::{parse_timeout, BlockRequest, TimeoutUnit};
use crate::server::pause::PauseKind;
use crate::server::slowlog::EventSeries;
use crate::server::tracking::TrackingState;

/// Redis's reply to a subcommand it knows but with arguments it does not take.
fn subcommand_syntax(args: &Args, container: &str) -> CmdError {
    let sub = String::from_utf8_lossy(&args.argv()[1]).into_owned();
    CmdError::err(format!("unknown subcommand or wrong number of arguments for '{sub}'. Try {container} HELP."))
}

/// ```text
/// CLIENT SETINFO <LIB-NAME libname | LIB-VER libver>
/// ```
pub fn client_setinfo(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let attr = args.next_bytes()?;
    let value = args.next_bytes()?;
    let intro = &ctx.client.handle.intro;
    let slot = if attr.eq_ignore_ascii_case(b"lib-name") {
        &intro.lib_name
    } else if attr.eq_ignore_ascii_case(b"lib-ver") {
        &intro.lib_ver
    } else {
        return Err(CmdError::err(format!("Unrecognized option '{}'", String::from_utf8_lossy(&attr))));
    };
    if value.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(CmdError::err(format!(
            "{} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(&attr)
        )));
    }
    *slot.lock().unwrap_or_else(|p| p.into_inner()) = (!value.is_empty()).then_some(value);
    Ok(Reply::Ok)
}

/// ```text
/// CLIENT PAUSE timeout [WRITE | ALL]
/// ```
pub fn client_pause(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    if args.remaining() > 2 {
        return Err(subcommand_syntax(args, "CLIENT"));
    }
    let timeout = args.next_bytes()?;
    // Redis checks the mode before the timeout.
    let kind = match args.peek() {
        None => PauseKind::All,
        Some(mode) if mode.eq_ignore_ascii_case(b"WRITE") => PauseKind::Write,
        Some(mode) if mode.eq_ignore_ascii_case(b"ALL") => PauseKind::All,
        Some(_) => return Err(CmdError::err("CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let millis =
        super::args::parse_i64(&timeout).ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if millis < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    let end = tokio::time::Instant::now() + Duration::from_millis(millis as u64);
    ctx.server.intro.pause.pause(kind, end);
    Ok(Reply::Ok)
}

/// ```text
/// CLIENT UNPAUSE
/// ```
pub fn client_unpause(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    ctx.server.intro.pause.unpause();
    Ok(Reply::Ok)
}

/// ```text
/// CLIENT TRACKING <ON | OFF> [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] [BCAST] [OPTIN]
///     [OPTOUT] [NOLOOP]
/// ```
pub fn client_tracking(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let switch = args.next_bytes()?;
    let mut wanted = TrackingState::default();
    let mut prefixes: Vec<Bytes> = Vec::new();
    while let Some(option) = args.peek().cloned() {
        args.next_bytes()?;
        let more = !args.is_empty();
        if option.eq_ignore_ascii_case(b"REDIRECT") && more {
            if wanted.redirect != 0 {
                return Err(CmdError::err("A client can only redirect to a single other client"));
            }
            let id = args.next_i64()?;
            if u64::try_from(id).ok().and_then(|id| ctx.server.clients.get(id)).is_none() {
                return Err(CmdError::err("The client ID you want redirect to does not exist"));
            }
            wanted.redirect = id as u64;
        } else if option.eq_ignore_ascii_case(b"BCAST") {
            wanted.bcast = true;
        } else if option.eq_ignore_ascii_case(b"OPTIN") {
            wanted.optin = true;
        } else if option.eq_ignore_ascii_case(b"OPTOUT") {
            wanted.optout = true;
        } else if option.eq_ignore_ascii_case(b"NOLOOP") {
            wanted.noloop = true;
        } else if option.eq_ignore_ascii_case(b"PREFIX") && more {
            prefixes.push(args.next_bytes()?);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let handle = ctx.client.handle.clone();
    if switch.eq_ignore_ascii_case(b"on") {
        let current = handle.intro.tracking().clone();
        if !wanted.bcast && !prefixes.is_empty() {
            return Err(CmdError::err("PREFIX option requires BCAST mode to be enabled"));
        }
        if current.on && current.bcast != wanted.bcast {
            return Err(CmdError::err(
                "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
            ));
        }
        if wanted.bcast && (wanted.optin || wanted.optout) {
            return Err(CmdError::err("OPTIN and OPTOUT are not compatible with BCAST"));
        }
        if wanted.optin && wanted.optout {
            return Err(CmdError::err("You can't specify both OPTIN mode and OPTOUT mode"));
        }
        if (wanted.optin && current.optout) || (wanted.optout && current.optin) {
            return Err(CmdError::err(
                "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
            ));
        }
        if wanted.bcast {
            check_prefixes(&current.prefixes, &prefixes)?;
        }
        wanted.prefixes = prefixes.into_iter().collect();
        ctx.server.intro.tracking.enable(&handle, wanted);
    } else if switch.eq_ignore_ascii_case(b"off") {
        ctx.server.intro.tracking.disable(&handle);
    } else {
        return Err(CmdError::Syntax);
    }
    Ok(Reply::Ok)
}

/// Redis's `checkPrefixCollisionsOrReply`: no new prefix may be a prefix of (or have as prefix) one the
/// client has, or another new one.
fn check_prefixes(existing: &std::collections::BTreeSet<Bytes>, new: &[Bytes]) -> Result<(), CmdError> {
    let overlap = |a: &[u8], b: &[u8]| a[..a.len().min(b.len())] == b[..a.len().min(b.len())];
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, prefix) in new.iter().enumerate() {
        if let Some(old) = existing.iter().find(|old| overlap(old, prefix)) {
            return Err(CmdError::err(format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                text(prefix),
                text(old)
            )));
        }
        if let Some(other) = new[i + 1..].iter().find(|other| overlap(prefix, other)) {
            return Err(CmdError::err(format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                text(prefix),
                text(other)
            )));
        }
    }
    Ok(())
}

/// ```text
/// CLIENT CACHING <YES | NO>
/// ```
pub fn client_caching(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let mut state = ctx.client.handle.intro.tracking();
    if !state.on {
        return Err(CmdError::err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    }
    let option = args.next_bytes()?;
    if option.eq_ignore_ascii_case(b"yes") {
        if !state.optin {
            return Err(CmdError::err("CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."));
        }
    } else if option.eq_ignore_ascii_case(b"no") {
        if !state.optout {
            return Err(CmdError::err("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    state.caching = true;
    Ok(Reply::Ok)
}

/// ```text
/// CLIENT GETREDIR
/// ```
pub fn client_getredir(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let state = ctx.client.handle.intro.tracking();
    Ok(Reply::Int(if state.on { state.redirect as i64 } else { -1 }))
}

/// ```text
/// CLIENT TRACKINGINFO
/// ```
pub fn client_trackinginfo(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let state = ctx.client.handle.intro.tracking().clone();
    let mut flags = vec![Reply::bulk(if state.on { "on" } else { "off" })];
    let mut flag = |on: bool, name: &'static str| {
        if on {
            flags.push(Reply::bulk(name));
        }
    };
    flag(state.bcast, "bcast");
    flag(state.optin, "optin");
    flag(state.optin && state.caching, "caching-yes");
    flag(state.optout, "optout");
    flag(state.optout && state.caching, "caching-no");
    flag(state.noloop, "noloop");
    flag(state.broken_redirect, "broken_redirect");
    Ok(Reply::Map(vec![
        (Reply::bulk("flags"), Reply::Set(flags)),
        (Reply::bulk("redirect"), Reply::Int(if state.on { state.redirect as i64 } else { -1 })),
        (Reply::bulk("prefixes"), Reply::Array(state.prefixes.iter().cloned().map(Reply::Bulk).collect())),
    ]))
}

/// ```text
/// WAIT numreplicas timeout
/// ```
///
/// Velo has no replicas, so no write is ever acknowledged by one: with `numreplicas` ≤ 0 (or inside
/// MULTI) the answer is 0 at once; otherwise, as Redis with no replica, the client waits the whole
/// timeout (0: forever, until CLIENT UNBLOCK or disconnection) and gets 0.
pub fn wait(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let wanted = args.next_i64()?;
    let timeout = parse_timeout(&args.next_bytes()?, TimeoutUnit::Milliseconds)?;
    if wanted > 0 {
        ctx.client.block = Some(BlockRequest {
            keys: Vec::new(),
            timeout,
            serve: Box::new(|_, _| Ok(None)),
            timeout_reply: Reply::Int(0),
            on_deletion: false,
        });
    }
    Ok(Reply::Int(0))
}

/// ```text
/// SLOWLOG GET [count]
/// ```
pub fn slowlog_get(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    if args.remaining() > 1 {
        return Err(subcommand_syntax(args, "SLOWLOG"));
    }
    let slowlog = &ctx.server.intro.slowlog;
    let count = match args.peek() {
        None => 10,
        Some(arg) => match super::args::parse_i64(arg) {
            Some(-1) => slowlog.len(),
            Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
            _ => return Err(CmdError::err("count should be greater than or equal to -1")),
        },
    };
    let entries = slowlog
        .get(count)
        .into_iter()
        .map(|entry| {
            Reply::Array(vec![
                Reply::Int(entry.id as i64),
                Reply::Int(entry.time as i64),
                Reply::Int(entry.duration as i64),
                Reply::Array(entry.argv.into_iter().map(Reply::Bulk).collect()),
                Reply::bulk(entry.peer),
                Reply::Bulk(entry.name),
            ])
        })
        .collect();
    Ok(Reply::Array(entries))
}

/// ```text
/// SLOWLOG LEN
/// ```
pub fn slowlog_len(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::Int(ctx.server.intro.slowlog.len() as i64))
}

/// ```text
/// SLOWLOG RESET
/// ```
pub fn slowlog_reset(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    ctx.server.intro.slowlog.reset();
    Ok(Reply::Ok)
}

/// ```text
/// SLOWLOG HELP
/// ```
pub fn slowlog_help(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(help(&[
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help.",
    ]))
}

/// ```text
/// LATENCY LATEST
/// ```
pub fn latency_latest(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let events = ctx.server.intro.latency.all();
    Ok(Reply::Array(
        events
            .into_iter()
            .map(|(name, series)| {
                let (time, latency) = series.samples.back().copied().unwrap_or_default();
                Reply::Array(vec![
                    Reply::bulk(name),
                    Reply::Int(time as i64),
                    Reply::Int(latency as i64),
                    Reply::Int(series.max as i64),
                ])
            })
            .collect(),
    ))
}

/// ```text
/// LATENCY HISTORY event
/// ```
pub fn latency_history(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let event = args.next_bytes()?;
    let samples = match ctx.server.intro.latency.get(&event) {
        None => Vec::new(),
        Some((_, series)) => series
            .samples
            .iter()
            .map(|&(time, latency)| Reply::Array(vec![Reply::Int(time as i64), Reply::Int(latency as i64)]))
            .collect(),
    };
    Ok(Reply::Array(samples))
}

/// ```text
/// LATENCY RESET [event [event ...]]
/// ```
pub fn latency_reset(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let latency = &ctx.server.intro.latency;
    let events = args.rest();
    let resets = if events.is_empty() {
        latency.reset(None)
    } else {
        events.iter().map(|event| latency.reset(Some(event))).sum()
    };
    Ok(Reply::Int(resets as i64))
}

/// ```text
/// LATENCY HISTOGRAM [command [command ...]]
/// ```
pub fn latency_histogram(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let names = args.rest();
    let mut specs: Vec<&'static super::CommandSpec> = Vec::new();
    let with_subcommands = |spec: &'static super::CommandSpec, out: &mut Vec<&'static super::CommandSpec>| {
        out.push(spec);
        out.extend(spec.subcommands.iter());
    };
    if names.is_empty() {
        for spec in super::table::COMMANDS.iter() {
            with_subcommands(spec, &mut specs);
        }
    } else {
        for name in &names {
            // A name is a command, or `container|subcommand`.
            let mut split = name.splitn(2, |&b| b == b'|');
            let head = split.next().unwrap_or_default();
            let found = super::table::lookup(head).and_then(|spec| match split.next() {
                None => Some(spec),
                Some(sub) => spec.subcommand(sub),
            });
            if let Some(spec) = found {
                if name.contains(&b'|') {
                    specs.push(spec);
                } else {
                    with_subcommands(spec, &mut specs);
                }
            }
        }
    }
    let histograms = &ctx.server.intro.histograms;
    let mut map = Vec::new();
    for spec in specs {
        let histogram = &histograms[spec.id];
        let calls = histogram.calls();
        if calls == 0 {
            continue;
        }
        let buckets =
            histogram.cumulative().into_iter().map(|(us, n)| (Reply::Int(us as i64), Reply::Int(n as i64))).collect();
        map.push((
            Reply::bulk(spec.fullname),
            Reply::Map(vec![
                (Reply::bulk("calls"), Reply::Int(calls as i64)),
                (Reply::bulk("histogram_usec"), Reply::Map(buckets)),
            ]),
        ));
    }
    Ok(Reply::Map(map))
}

/// Redis's `analyzeLatencyForEvent`: (samples, average, mean absolute deviation, period in seconds).
fn analyze(series: &EventSeries, now: u64) -> (u64, u64, u64, u64) {
    let samples = series.samples.len() as u64;
    if samples == 0 {
        return (0, 0, 0, 0);
    }
    let avg = series.samples.iter().map(|s| s.1).sum::<u64>() / samples;
    let oldest = series.samples.iter().map(|s| s.0).min().unwrap_or(now);
    let period = now.saturating_sub(oldest).max(1);
    let mad = series.samples.iter().map(|s| avg.abs_diff(s.1)).sum::<u64>() / samples;
    (samples, avg, mad, period)
}

/// ```text
/// LATENCY DOCTOR
/// ```
pub fn latency_doctor(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let intro = &ctx.server.intro;
    let events = intro.latency.all();
    let threshold = intro.latency_monitor_threshold();
    if events.is_empty() && threshold == 0 {
        return Ok(Reply::Verbatim(
            "txt",
            Bytes::from_static(b"I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n"),
        ));
    }
    let now = crate::engine::system_clock_ms() / 1000;
    let mut report = String::new();
    let (mut slowlog_enable, mut slowlog_tuning, mut slowlog_inspect, mut scheduler, mut large_objects) =
        (false, false, false, false, false);
    let mut advices = 0;
    for (number, (name, series)) in events.iter().enumerate() {
        if number == 0 {
            report.push_str(
                "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
            );
        }
        let (samples, avg, mad, period) = analyze(series, now);
        report.push_str(&format!(
            "{}. {name}: {samples} latency spikes (average {avg}ms, mean deviation {mad}ms, period {:.2} sec). Worst all time event {}ms.",
            number + 1,
            period as f64 / samples.max(1) as f64,
            series.max
        ));
        if name == "command" {
            let slower_than = intro.slowlog_log_slower_than();
            if slower_than < 0 {
                slowlog_enable = true;
                advices += 1;
            } else if (slower_than / 1000) as u64 > threshold {
                slowlog_tuning = true;
                advices += 1;
            }
            slowlog_inspect = true;
            large_objects = true;
            advices += 2;
        }
        if name == "fast-command" {
            scheduler = true;
            advices += 1;
        }
        report.push('\n');
    }
    if events.is_empty() && advices == 0 {
        report.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
    } else if advices == 0 {
        report.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
    } else {
        report.push_str("\nI have a few advices for you:\n\n");
        if slowlog_enable {
            report.push_str(&format!("- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.\n", threshold * 1000));
        }
        if slowlog_tuning {
            report.push_str(&format!("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.\n", threshold * 1000));
        }
        if slowlog_inspect {
            report.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
        }
        if scheduler {
            report.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
        }
        if large_objects {
            report.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
        }
    }
    Ok(Reply::Verbatim("txt", Bytes::from(report)))
}

/// ```text
/// LATENCY GRAPH event
/// ```
pub fn latency_graph(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let event = args.next_bytes()?;
    let Some((name, series)) = ctx.server.intro.latency.get(&event) else {
        return Err(CmdError::err(format!("No samples available for event '{}'", String::from_utf8_lossy(&event))));
    };
    let now = crate::engine::system_clock_ms() / 1000;
    Ok(Reply::Verbatim("txt", Bytes::from(super::sparkline::latency_graph(&name, &series, now))))
}

/// ```text
/// LATENCY HELP
/// ```
pub fn latency_help(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(help(&[
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return a human readable latency analysis report.",
        "GRAPH <event>",
        "    Return an ASCII latency graph for the <event> class.",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
        "    If no commands are specified then all histograms are replied.",
        "HELP",
        "    Prints this help.",
    ]))
}

/// ```text
/// MONITOR
/// ```
pub fn monitor(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let handle = ctx.client.handle.clone();
    if handle.intro.in_exec.load(Ordering::Relaxed) {
        return Err(CmdError::err("MONITOR isn't allowed for DENY BLOCKING client"));
    }
    // A client already monitoring is ignored (no reply at all, as Redis).
    if handle.intro.monitor.swap(true, Ordering::Relaxed) {
        return Ok(Reply::None);
    }
    ctx.server.intro.monitors.add(handle);
    Ok(Reply::Ok)
}

/// ```text
/// RESET
/// ```
///
/// The parts of RESET this module owns: the client stops monitoring and tracking.
pub fn reset_client(ctx: &mut Ctx<'_>) {
    let handle = ctx.client.handle.clone();
    if handle.intro.monitor.swap(false, Ordering::Relaxed) {
        ctx.server.intro.monitors.remove(handle.id);
    }
    ctx.server.intro.tracking.disable(&handle);
}
